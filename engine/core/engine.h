/*
 * engine.h — the engine: one libuv loop, one LuaJIT state, the task table
 * with its resume driver, signals, and the pieces it wires together: the
 * scheduler, the display and the watchdog. It is the top of core's process
 * pieces; what Lua calls (core_lua.c, sched_ffi.c) and the public API
 * (api.c) sit above it.
 *
 * One engine per process. Everything here runs on the loop thread.
 */
#ifndef AQ_ENGINE_H
#define AQ_ENGINE_H

#include <stdint.h>
#include <lua.h>
#include <uv.h>

#include "aqueue.h"
#include "display.h"
#include "scheduler.h"
#include "task.h"
#include "watchdog.h"

/* Exit statuses (SPEC section 3). */
enum { AQ_EXIT_OK = 0, AQ_EXIT_FAILED = 1, AQ_EXIT_USAGE = 2, AQ_EXIT_INTERRUPTED = 130 };

struct aq_engine {
  uv_loop_t loop;
  lua_State *L;          /* the main state: never a task, never resumed */
  uv_idle_t driver;      /* active exactly while the ready list is not empty */
  uv_signal_t sigint, sigterm;

  aq_tasks tasks;        /* every task, the ready list, the running one (task.h) */
  aq_sched sched;        /* the current run's queue, and the runners (scheduler.h) */
  aq_display display;
  aq_watchdog watchdog;  /* interrupts Lua code that does not yield (watchdog.c) */
  struct aq_close_hook *close_hooks; /* aq_engine_on_close, newest first */

  int sigint_count;
  int exit_code;         /* set by os.exit or a signal; -1 until then */
  const char *stop_reason; /* why the engine stopped early, for the summary */
  int had_failures;      /* the main task raised, a module or the script failed (items and hooks: sched.had_failures) */
  int32_t cli_workers;   /* -w: num_workers (wins over run_queue's); 0 unset */
  int cli_order;         /* --order: an aq_order, -1 unset */
  int cli_progress;      /* --progress: an aq_progress, -1 unset */
  const char *cli_state; /* --state FILE, NULL unset (points into argv) */
  const char *cli_redis, *cli_run; /* --redis URL, --run NAME, NULL unset (point into argv) */
  int cli_fresh, cli_retry_failed; /* --fresh, --retry-failed */
  double cli_max_items, cli_max_time; /* --max-items, --max-time (win over run_queue's); 0 unset */
};

/* Creates the engine: loop, Lua state with the standard libraries, tasks,
 * scheduler, display, watchdog, signals (the `aqueue.core` module on top of
 * it: core_lua_open). Returns NULL (with a message on stderr) when
 * the loop or the state cannot be created. */
aq_engine *engine_create(void);

/* Loads the script as the main task with its arguments: `code` (-e) when not
 * NULL, else the file `path` ("-": stdin). argv[script_index] is the script
 * (with `code`: the first script argument). Returns 0, or a non-zero exit
 * status after printing why (unreadable file, syntax error). */
int engine_load_script(aq_engine *E, const char *path, const char *code, int argc, char **argv,
                       int script_index);

/* Loads `require(module).main(command)` as the main task: the command-line
 * tools that run no script (--status). Returns 0 or an exit status. */
int engine_load_tool(aq_engine *E, const char *module, const char *command);

/* Runs the loop until every task has ended; returns the exit status. */
int engine_run(aq_engine *E);

/* Cancels what is left, closes the engine's handles, the Lua state and the
 * loop, and frees the engine. A handle some owner left open is reported and
 * closed (open_handles.h). Returns `status`, or AQ_EXIT_LEFT_OPEN in strict
 * close when the loop did not close cleanly. */
int engine_destroy(aq_engine *E, int status);

/* Asks for an immediate stop (second Ctrl-C, os.exit, a fatal error): every task
 * is cancelled when the driver next gets control. */
void engine_request_shutdown(aq_engine *E, int exit_code);

/* Writes a line for the user on stderr, above the display's panel. */
void engine_log(aq_engine *E, const char *text, size_t len);

/* Loop time in milliseconds (uv_now). */
uint64_t engine_now_ms(aq_engine *E);

#endif
