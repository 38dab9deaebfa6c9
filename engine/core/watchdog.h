/*
 * watchdog.h — a thread that watches the loop thread while it runs Lua.
 *
 * Lua code that never yields holds the loop thread: no timer fires, no signal
 * callback runs, the display stands still. The watchdog, a thread of its own
 * that wakes every 100 ms, notices when the running resume has lasted over a
 * second, when the running item's `timeout` has passed, or when SIGINT or
 * SIGTERM arrived (its signal handler runs before libuv's), and sets a LuaJIT
 * count hook. The hook then runs on the loop thread, between two Lua
 * instructions: it prints the "without yielding" warning, and, when the
 * resume has held the loop for 200 ms with a timeout passed or a signal
 * waiting, interrupts it by yielding the task (a preemption that pcall cannot
 * catch; never inside aqueue's own Lua library): the engine then fails a
 * timed-out attempt as usual, or handles the signal and resumes the task
 * later where it stopped.
 *
 * LuaJIT runs no hook inside a compiled trace (a tight loop). For those, the
 * engine fails an attempt whose timeout passed when it next yields or returns,
 * and after a second Ctrl-C or a SIGTERM that the loop has not handled within
 * a second, the watchdog restores the terminal and ends the process (_exit,
 * with the status the signal asks for): as safe as kill -9 for a state file.
 *
 * Threads: the fields marked "shared" are atomics; everything else belongs to
 * the loop thread, except `thread`, `mu`, `cond` and `stop`, which start/stop
 * use under `mu`. The hot path (one resume) costs a clock read and three
 * relaxed stores before, one store and one load after.
 *
 * The watchdog knows the tasks, not what they run: who a task is, and whether
 * others wait, it asks through aq_watchdog_hooks.
 */
#ifndef AQ_WATCHDOG_H
#define AQ_WATCHDOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <uv.h>

#include "task.h"

/* What the watchdog asks of the engine above it (set by engine.c); all are
 * called on the loop thread, except restore_terminal. */
typedef struct {
  void *data;
  /* Some other task could run if the running one yielded. */
  int (*others_could_run)(void *data);
  /* Names task t for the warning: "Page: <desc> (worker 3)", "the main chunk". */
  void (*describe)(void *data, aq_task *t, char *out, size_t size);
  /* Prints a line for the user now (the loop may not get control for a while). */
  void (*log_now)(void *data, const char *text, size_t len);
  /* Gives the terminal back before the process exits at once: async-signal-safe,
   * called from the watchdog's thread. */
  void (*restore_terminal)(void);
} aq_watchdog_hooks;

typedef struct aq_watchdog {
  lua_State *L;                 /* the main state: lua_sethook applies to all its coroutines */
  aq_tasks *tasks;              /* loop: whose running task the hook looks at */
  aq_watchdog_hooks hooks;
  _Atomic uint64_t resume_start; /* shared: hrtime the running resume began, 0 outside one */
  _Atomic uint64_t resume_seq;   /* shared: counts resumes, names the running one */
  _Atomic uint64_t deadline;     /* shared: hrtime the running item's timeout passes, 0 none */
  _Atomic uint64_t warned_seq;   /* shared: the resume the warning was given for */
  _Atomic int hook_set;          /* shared: the hook is set (under hook_mu) */
  _Atomic unsigned sigints;       /* shared: SIGINTs received */
  _Atomic unsigned signals_seen;    /* shared: SIGINT/SIGTERM received (the signal handler) */
  _Atomic unsigned signals_handled; /* shared: of those, handled by the loop (on_signal) */
  _Atomic int exit_status;       /* shared: 130 / 143 once a signal asks to stop at once */
  uint64_t seq;                  /* loop: the loop thread's copy of resume_seq */
  uv_mutex_t hook_mu;            /* serializes lua_sethook between the two threads */
  uv_mutex_t mu;                 /* with cond: the watchdog's sleep, and stop */
  uv_cond_t cond;
  uv_thread_t thread;
  int stop;                      /* under mu */
  int running;                   /* loop: the thread was started (and must be joined) */
  char library[4096];            /* loop: chunk-name prefix of aqueue's Lua modules */
  size_t library_len;            /* 0: unknown */
  uint64_t warn_ns;              /* set before the thread starts, then read-only: the */
  uint64_t exit_grace_ns;        /* defaults of watchdog.c, or their test knobs (test_knobs.h) */
} aq_watchdog;

/* Starts the thread and chains the signal handler before libuv's (call after
 * the engine's uv_signal_start), watching the tasks of T. On failure the
 * engine runs without a watchdog (and says so on stderr). */
void watchdog_start(aq_watchdog *w, aq_tasks *T, const aq_watchdog_hooks *hooks);

/* Stops and joins the thread and takes the signal handler out. Idempotent. */
void watchdog_stop(aq_watchdog *w);

/* The driver, around lua_resume: `deadline` the task's timeout (hrtime, 0
 * none). A task the hook yielded comes back RUNNING (a signal: it is made
 * ready again) or overdue (sched_job_overdue: it has timed out). */
void watchdog_resume_started(aq_watchdog *w, uint64_t deadline);
void watchdog_resume_ended(aq_watchdog *w, aq_task *t);

/* The running task's job ends: gives the warning the hook could not give
 * while compiled code ran (one relaxed load when there is none to give). */
void watchdog_job_ending(aq_watchdog *w, aq_task *t);

/* The running item's timeout changed (armed, or its process returned). */
void watchdog_set_deadline(aq_watchdog *w, uint64_t deadline);

/* on_signal ran for one SIGINT/SIGTERM: the loop has it in hand. */
void watchdog_signal_handled(aq_watchdog *w);

#endif
