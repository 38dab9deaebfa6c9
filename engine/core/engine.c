/*
 * engine.c — the engine's life: the loop and the Lua state, loading the script
 * as the main task, the resume driver, signals, shutdown and cleanup.
 *
 * The resume driver (on_driver) is the only caller of lua_resume. It runs from
 * a uv_idle handle that is active exactly while some task is READY, so an
 * engine with nothing runnable blocks in epoll_wait. It resumes ready tasks in
 * order for at most one time slice, then lets the loop run timers and I/O.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "engine.h"
#include "open_handles.h"
#include "sched_timers.h"

/* How long the driver may run tasks before the loop gets control back. */
#define SLICE_NS (10 * 1000 * 1000)

static char engine_key; /* its address keys the engine in the Lua registry */

aq_engine *aq_engine_from_lua(lua_State *L) {
  lua_pushlightuserdata(L, &engine_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  aq_engine *E = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return E;
}

uv_loop_t *aq_engine_loop(aq_engine *E) { return &E->loop; }

uint64_t engine_now_ms(aq_engine *E) { return uv_now(&E->loop); }

void engine_log(aq_engine *E, const char *text, size_t len) {
  display_output(&E->display, 2, text, len);
  if (len == 0 || text[len - 1] != '\n') display_output(&E->display, 2, "\n", 1);
}

/* --- errors --- */

/* The text of an error value at idx: strings and numbers as they are, other
 * values through aqueue.traceback.text (__tostring, or a table as JSON), else
 * tostring, called protected (so it cannot raise here). Pushes the text on L
 * and returns it. */
static const char *error_text(lua_State *L, int idx) {
  idx = lua_gettop(L) + 1 + idx;
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    lua_pushvalue(L, idx);
    return lua_tostring(L, -1);
  }
  if (t != LUA_TNIL) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "aqueue.traceback");
    if (lua_pcall(L, 1, 1, 0) == 0 && lua_istable(L, -1)) lua_getfield(L, -1, "text");
    else lua_pushnil(L);
    lua_remove(L, -2); /* the module, or require's error */
    if (!lua_isfunction(L, -1)) {
      lua_pop(L, 1);
      lua_getglobal(L, "tostring");
    }
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) == 0 && lua_type(L, -1) == LUA_TSTRING) return lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  return lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
}

/* The main task raised: print its message and the traceback of where. */
static void report_main_error(aq_engine *E, aq_task *t) {
  lua_xmove(t->co, E->L, 1); /* the error value */
  const char *msg = error_text(E->L, -1);
  luaL_traceback(E->L, t->co, msg, 0);
  size_t len;
  const char *text = lua_tolstring(E->L, -1, &len);
  engine_log(E, text, len);
  lua_pop(E->L, 3);
  E->had_failures = 1;
}

/* --- the resume driver --- */

static void engine_shutdown_now(aq_engine *E);

/* Resumes one task and files it where its yield says it belongs. */
static void resume(aq_engine *E, aq_task *t) {
  if (t->guard_ref != LUA_NOREF) { /* it runs again: its guard is not needed */
    luaL_unref(E->L, LUA_REGISTRYINDEX, t->guard_ref);
    t->guard_ref = LUA_NOREF;
  }
  int nargs = t->nresults;
  t->nresults = 0;
  t->status = AQ_TASK_RUNNING;
  E->tasks.current = t;
  watchdog_resume_started(&E->watchdog, runner_deadline(t));
  int rc = lua_resume(t->co, nargs);
  E->tasks.current = NULL;
  watchdog_resume_ended(&E->watchdog, t); /* the hook may have yielded it: see below */
  if (rc == LUA_YIELD && sched_job_overdue(t)) {
    /* Its process() ran past its timeout without yielding until now, so the
     * timer could not fire: the attempt fails as if it had. */
    sched_job_timed_out(&E->sched, t);
    return;
  }
  if (rc == LUA_YIELD) {
    /* task_yield set WAITING, PARKED or READY. A plain coroutine.yield()
     * from task code, or the watchdog's hook (a signal to handle), leaves
     * RUNNING: it just yields the turn. */
    lua_settop(t->co, 0);
    if (t->status == AQ_TASK_RUNNING) task_make_ready(t);
    return;
  }
  if (rc != 0) {
    if (t->kind == AQ_TASK_MAIN) {
      report_main_error(E, t);
      E->stop_reason = "stopped: the script raised";
    } else {
      /* Runners and spawned tasks catch errors in Lua; reaching here is a bug
       * in the engine's own Lua code. Say so loudly and stop. */
      lua_xmove(t->co, E->L, 1);
      fprintf(stderr, "aqueue: internal error in a task: %s\n", error_text(E->L, -1));
      lua_pop(E->L, 2);
      E->had_failures = 1;
    }
  }
  task_destroy(t);
  if (rc != 0) engine_request_shutdown(E, -1);
}

static void on_driver(uv_idle_t *handle) {
  aq_engine *E = handle->data;
  E->tasks.slice_deadline = uv_hrtime() + SLICE_NS;
  aq_task *t;
  while (!E->tasks.shutdown && (t = task_list_pop(&E->tasks.ready))) {
    resume(E, t);
    sched_dispatch(&E->sched);
    if (uv_hrtime() >= E->tasks.slice_deadline) break;
  }
  if (E->tasks.shutdown) {
    engine_shutdown_now(E);
    return;
  }
  if (E->tasks.ready.len == 0) uv_idle_stop(handle);
  display_flush(&E->display); /* what the tasks printed, above the panel */
}

/* --- stopping --- */

void engine_request_shutdown(aq_engine *E, int exit_code) {
  if (exit_code >= 0 && E->exit_code < 0) E->exit_code = exit_code;
  if (E->tasks.shutdown) return;
  E->tasks.shutdown = 1;
  if (!E->tasks.current) engine_shutdown_now(E);
  else if (!uv_is_active((uv_handle_t *)&E->driver)) uv_idle_start(&E->driver, on_driver);
}

/* Cancels every task. Their cancel hooks close what they had started, so the
 * loop then ends by itself once those handles are closed. */
static void engine_shutdown_now(aq_engine *E) {
  E->tasks.shutdown = 1;
  uv_idle_stop(&E->driver);
  for (uint32_t i = 0; i < E->tasks.cap; i++)
    if (E->tasks.all[i]) task_destroy(E->tasks.all[i]);
  sched_stop_timers(&E->sched); /* nothing will take the delayed items now */
  if (E->sched.active && E->display.mode != AQ_PROGRESS_NONE) display_run_finished(&E->display, E->stop_reason);
}

static void on_signal(uv_signal_t *handle, int signum) {
  aq_engine *E = handle->data;
  watchdog_signal_handled(&E->watchdog);
  if (signum == SIGINT && ++E->sigint_count == 1 && sched_request_stop(&E->sched, AQ_STOP_INTERRUPTED)) {
    /* Graceful: no new items start; the task in run_wait hears "stopping". */
    E->exit_code = AQ_EXIT_INTERRUPTED;
    static const char msg[] = "aqueue: interrupted: letting running items finish (Ctrl-C again to stop now)";
    engine_log(E, msg, sizeof msg - 1);
    return;
  }
  E->exit_code = signum == SIGINT ? AQ_EXIT_INTERRUPTED : 128 + signum;
  E->stop_reason = signum == SIGINT ? "interrupted" : "terminated";
  engine_request_shutdown(E, E->exit_code);
}

/* --- life --- */

/* Where the Lua library and the C modules are: in the build tree, the
 * source tree's lua/ and the build's modules/; next to an installed binary,
 * <bindir>/../share/aqueue/lua and <bindir>/../lib/aqueue/modules (so a moved
 * prefix keeps working). A binary whose path is unknown uses the build's. */
static void library_dirs(char *lua, char *modules, size_t size) {
  char exe[4096], dir[4096];
  size_t len = sizeof exe;
  int in_build_tree = 1;
  if (uv_exepath(exe, &len) == 0) {
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    char *real_build = realpath(AQUEUE_BUILD_DIR, NULL);
    in_build_tree = real_build && realpath(exe, dir) && strcmp(dir, real_build) == 0;
    free(real_build);
  }
  if (in_build_tree) {
    snprintf(lua, size, "%s", AQUEUE_SOURCE_LUA_DIR);
    snprintf(modules, size, "%s", AQUEUE_MODULES_BUILD_DIR);
  } else {
    snprintf(lua, size, "%s/%s", exe, AQUEUE_LUA_RELATIVE_DIR);
    snprintf(modules, size, "%s/%s", exe, AQUEUE_MODULES_RELATIVE_DIR);
  }
}

static void set_package_path(lua_State *L) {
  char lua[8192], modules[8192];
  library_dirs(lua, modules, sizeof lua);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", lua, lua, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_getfield(L, -2, "cpath");
  lua_pushfstring(L, "%s/?.so;%s", modules, lua_tostring(L, -1));
  lua_setfield(L, -4, "cpath");
  lua_pop(L, 3);
}

/* --- what the watchdog asks --- */

/* Some other task could run if the running one yielded: a run is on, or a
 * task other than it (and the parked runners) is alive. */
static int others_could_run(void *data) {
  aq_engine *E = data;
  return E->sched.active || E->tasks.live > E->sched.parked.len + 1;
}

static void describe_task(void *data, aq_task *t, char *out, size_t size) {
  aq_engine *E = data;
  sched_describe_task(&E->sched, t, out, size);
}

static void log_now(void *data, const char *text, size_t len) {
  aq_engine *E = data;
  engine_log(E, text, len);
  display_flush(&E->display);
}

/* --- what the scheduler asks --- */

/* No worker can be started and none runs: nothing would take the queued
 * jobs, so the engine stops (a state file keeps the queue for a rerun). */
static void sched_out_of_memory(void *data, const char *what) {
  aq_engine *E = data;
  char line[200];
  int n = snprintf(line, sizeof line, "aqueue: out of memory: %s", what);
  engine_log(E, line, n < 0 ? 0 : (size_t)n >= sizeof line ? sizeof line - 1 : (size_t)n);
  E->stop_reason = "stopped: out of memory";
  E->had_failures = 1;
  engine_request_shutdown(E, AQ_EXIT_FAILED);
}

aq_engine *engine_create(void) {
  aq_engine *E = calloc(1, sizeof *E);
  if (!E) {
    fprintf(stderr, "aqueue-run: out of memory\n");
    return NULL;
  }
  E->exit_code = -1;
  E->cli_order = -1;
  E->cli_progress = -1;
  int err = uv_loop_init(&E->loop);
  if (err) {
    fprintf(stderr, "aqueue-run: cannot create the event loop: %s\n", uv_strerror(err));
    free(E);
    return NULL;
  }
  E->L = luaL_newstate();
  if (!E->L) {
    fprintf(stderr, "aqueue-run: cannot create the Lua state (out of memory)\n");
    uv_loop_close(&E->loop);
    free(E);
    return NULL;
  }
  luaL_openlibs(E->L);
  set_package_path(E->L);
  lua_pushlightuserdata(E->L, &engine_key);
  lua_pushlightuserdata(E->L, E);
  lua_rawset(E->L, LUA_REGISTRYINDEX);
  uv_idle_init(&E->loop, &E->driver);
  E->driver.data = E;
  E->driver.idle_cb = on_driver;
  tasks_init(&E->tasks, E->L, &E->driver);
  sched_init(&E->sched, &E->tasks, &E->loop, &E->watchdog);
  E->sched.out_of_memory = sched_out_of_memory;
  E->sched.owner_data = E;
  display_init(&E->display, &E->loop, &E->sched);

  /* Signals never keep the loop alive on their own. */
  uv_signal_init(&E->loop, &E->sigint);
  uv_signal_init(&E->loop, &E->sigterm);
  E->sigint.data = E->sigterm.data = E;
  uv_signal_start(&E->sigint, on_signal, SIGINT);
  uv_signal_start(&E->sigterm, on_signal, SIGTERM);
  uv_unref((uv_handle_t *)&E->sigint);
  uv_unref((uv_handle_t *)&E->sigterm);
  aq_watchdog_hooks hooks = {
      .data = E,
      .others_could_run = others_could_run,
      .describe = describe_task,
      .log_now = log_now,
      .restore_terminal = display_restore_terminal,
  };
  watchdog_start(&E->watchdog, &E->tasks, &hooks); /* after uv_signal_start: its handler runs before libuv's */
  return E;
}

/* Sets the global `arg` the way luajit does: arg[0] the script, arg[1..] its
 * arguments, negative indexes the interpreter and its options. With -e
 * (`code`), arg[0] is "-e" and argv[script_index] is arg[1]. */
static void set_arg_global(lua_State *L, int argc, char **argv, int script_index, int code) {
  lua_createtable(L, argc - script_index + 1, script_index + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script_index + (code && i >= script_index));
  }
  if (code) {
    lua_pushliteral(L, "-e");
    lua_rawseti(L, -2, 0);
  }
  lua_setglobal(L, "arg");
}

/* Loads -e CODE, or the script from stdin ("-"), onto E->L. Returns the
 * luaL_load* status. */
static int load_code_or_stdin(aq_engine *E, const char *code) {
  if (code) return luaL_loadbuffer(E->L, code, strlen(code), "=(command line)");
  return luaL_loadfile(E->L, NULL); /* stdin, named "=stdin" as luajit does */
}

/* The loaded chunk on E->L becomes the main task, called with argv[first_arg..]. */
static int start_main_task(aq_engine *E, int argc, char **argv, int first_arg) {
  int nargs = argc - first_arg;
  luaL_checkstack(E->L, nargs, "too many script arguments");
  for (int i = first_arg; i < argc; i++) lua_pushstring(E->L, argv[i]);
  if (!task_create(&E->tasks, AQ_TASK_MAIN, E->L, nargs)) {
    fprintf(stderr, "aqueue-run: out of memory\n");
    return AQ_EXIT_FAILED;
  }
  return 0;
}

int engine_load_script(aq_engine *E, const char *path, const char *code, int argc, char **argv,
                       int script_index) {
  int first_arg = code ? script_index : script_index + 1;
  if (code || strcmp(path, "-") == 0) {
    set_arg_global(E->L, argc, argv, script_index, code != NULL);
    int rc = load_code_or_stdin(E, code);
    if (rc != 0) {
      fprintf(stderr, "%s\n", lua_tostring(E->L, -1));
      lua_pop(E->L, 1);
      return rc == LUA_ERRSYNTAX ? AQ_EXIT_FAILED : AQ_EXIT_USAGE;
    }
    return start_main_task(E, argc, argv, first_arg);
  }
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "aqueue-run: cannot open %s: %s\n", path, strerror(errno));
    return AQ_EXIT_USAGE;
  }
  if (S_ISDIR(st.st_mode)) {
    fprintf(stderr, "aqueue-run: %s is a directory, not a Lua script\n", path);
    return AQ_EXIT_USAGE;
  }
  if (access(path, R_OK) != 0) {
    fprintf(stderr, "aqueue-run: cannot read %s: %s\n", path, strerror(errno));
    return AQ_EXIT_USAGE;
  }
  set_arg_global(E->L, argc, argv, script_index, 0);
  int rc = luaL_loadfile(E->L, path);
  if (rc != 0) {
    /* LuaJIT already says "file:line: message". */
    fprintf(stderr, "%s\n", lua_tostring(E->L, -1));
    lua_pop(E->L, 1);
    return rc == LUA_ERRSYNTAX ? AQ_EXIT_FAILED : AQ_EXIT_USAGE;
  }
  return start_main_task(E, argc, argv, first_arg);
}

int engine_load_tool(aq_engine *E, const char *module, const char *command) {
  if (luaL_loadstring(E->L, "local module, command = ...; return require(module).main(command)") != 0) {
    fprintf(stderr, "aqueue-run: %s\n", lua_tostring(E->L, -1));
    return AQ_EXIT_FAILED;
  }
  lua_pushstring(E->L, module);
  lua_pushstring(E->L, command);
  if (!task_create(&E->tasks, AQ_TASK_MAIN, E->L, 2)) {
    fprintf(stderr, "aqueue-run: out of memory\n");
    return AQ_EXIT_FAILED;
  }
  return 0;
}

/* Returns 1 when some task still waits (and says so), 0 otherwise. */
static int report_stuck_tasks(aq_engine *E) {
  uint32_t stuck = 0;
  for (uint32_t i = 0; i < E->tasks.cap; i++) {
    aq_task *t = E->tasks.all[i];
    if (t && t->status != AQ_TASK_PARKED) stuck++;
  }
  if (stuck > 0) {
    fprintf(stderr,
            "aqueue: %u task%s still waiting with nothing left that could wake %s; "
            "cancelled\n",
            stuck, stuck == 1 ? " was" : "s were", stuck == 1 ? "it" : "them");
    E->had_failures = 1;
  }
  return stuck > 0;
}

int engine_run(aq_engine *E) {
  uv_run(&E->loop, UV_RUN_DEFAULT);
  /* The loop ran dry. Anything still waiting can never be woken. */
  if (!E->tasks.shutdown && report_stuck_tasks(E)) E->stop_reason = "stopped: tasks were stuck";
  engine_shutdown_now(E);
  uv_run(&E->loop, UV_RUN_DEFAULT); /* close callbacks of the cancelled work */
  if (E->exit_code >= 0) return E->exit_code;
  return E->had_failures || E->sched.had_failures ? AQ_EXIT_FAILED : AQ_EXIT_OK;
}

struct aq_close_hook {
  void (*fn)(aq_engine *E, void *data);
  void *data;
  struct aq_close_hook *next;
};

int aq_engine_on_close(aq_engine *E, void (*fn)(aq_engine *E, void *data), void *data) {
  struct aq_close_hook *h = malloc(sizeof *h);
  if (!h) return -1;
  h->fn = fn;
  h->data = data;
  h->next = E->close_hooks;
  E->close_hooks = h;
  return 0;
}

static void run_close_hooks(aq_engine *E) {
  while (E->close_hooks) {
    struct aq_close_hook *h = E->close_hooks;
    E->close_hooks = h->next;
    h->fn(E, h->data);
    free(h);
  }
  uv_run(&E->loop, UV_RUN_DEFAULT); /* the close callbacks of what they closed */
}

/* The handles engine_create opened. */
static void close_engine_handles(aq_engine *E) {
  uv_close((uv_handle_t *)&E->driver, NULL);
  uv_close((uv_handle_t *)&E->sigint, NULL);
  uv_close((uv_handle_t *)&E->sigterm, NULL);
}

int engine_destroy(aq_engine *E, int status) {
  watchdog_stop(&E->watchdog); /* before the Lua state goes: it sets hooks on it */
  engine_shutdown_now(E);
  run_close_hooks(E);
  display_close(&E->display);
  sched_close(&E->sched);
  sched_free(&E->sched); /* releases its registry refs */
  close_engine_handles(E);
  lua_close(E->L); /* the bindings' __gc close what their userdata held */
  /* Every owner has closed what it opened; anything else is a leak, reported. */
  int problems = open_handles_close_loop(&E->loop);
  tasks_free(&E->tasks);
  free(E);
  return problems > 0 && open_handles_strict() ? AQ_EXIT_LEFT_OPEN : status;
}
