/*
 * core_lua.c — the `aqueue.core` Lua module: the task primitives the Lua
 * library is built on (spawn, suspend/wake, cancel, the runner's park and
 * yield), the run lifecycle used by run_queue, os.exit, and logging.
 *
 * The item hot path (enqueue, take, done) is not here: the Lua runner calls
 * the aq__sched_* functions through the FFI (core_ffi.h, whose text this
 * module exports as core.ffi_cdef).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core_lua.h"
#include "engine.h"
#include "errors.h"
#include "sched_timers.h"

static aq_engine *engine(lua_State *L) { return aq_engine_from_lua(L); }

/* The running task, raising when L is not one (see aq_task_current). */
static aq_task *running(lua_State *L) { return aq_task_current(L); }

/* core.spawn(fn, ...) -> task id. The task starts on the driver's next turn. */
static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  aq_task *t = task_create(&engine(L)->tasks, AQ_TASK_SPAWN, L, lua_gettop(L) - 1);
  if (!t) return luaL_error(L, "out of memory");
  lua_pushnumber(L, task_id(t));
  return 1;
}

/* core.current() -> the running task's id, or nil outside a task. */
static int l_current(lua_State *L) {
  aq_task *t = engine(L)->tasks.current;
  if (!t || t->co != L) return 0;
  lua_pushnumber(L, task_id(t));
  return 1;
}

/* A suspension with a timeout (core.suspend's third argument). Ownership: the
 * timer belongs to this file from l_suspend until its close callback frees it;
 * exactly one of on_suspend_timeout (the time is up), l_wake (woken first) or
 * task_destroy (the task ended: the cancel hook) starts the close. */
typedef struct {
  uv_timer_t timer;
  aq_task *task;
} suspend_timer;

/* What core.suspend returns when its timeout expired (core.TIMED_OUT). */
static char timed_out_marker;

static void on_suspend_timer_closed(uv_handle_t *handle) { free(handle->data); }

static void close_suspend_timer(aq_task *task, void *data) {
  (void)task;
  suspend_timer *st = data;
  uv_close((uv_handle_t *)&st->timer, on_suspend_timer_closed); /* closing also stops it */
}

static void on_suspend_timeout(uv_timer_t *timer) {
  suspend_timer *st = timer->data;
  aq_task *t = st->task;
  lua_pushlightuserdata(t->co, &timed_out_marker);
  aq_task_resume(t, 1); /* clears the cancel hook: this callback closes */
  close_suspend_timer(t, st);
}

/* core.suspend([unslotted [, guard [, timeout]]]) -> the values given to
 * core.wake, or core.TIMED_OUT when `timeout` seconds passed first. With
 * `unslotted`, a runner gives its worker slot back while it waits
 * (handle:result) and gets one again before it continues. `guard`, a
 * function, runs as a task of its own if this task ends (is cancelled) after
 * suspending and before it runs again, also after a core.wake: what the
 * waker handed over (an item, a permit) can then be passed on. The timeout's
 * timer is closed whichever way the wait ends. */
static int l_suspend(lua_State *L) {
  aq_engine *E = engine(L);
  aq_task *t = running(L);
  double timeout = luaL_optnumber(L, 3, -1);
  if (timeout != timeout) return luaL_argerror(L, 3, "timeout is NaN");
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  suspend_timer *st = NULL; /* allocated after the last check that can raise */
  if (timeout >= 0 && timeout != HUGE_VAL) {
    st = malloc(sizeof *st);
    if (!st) return luaL_error(L, "out of memory");
  }
  if (!lua_isnoneornil(L, 2)) {
    lua_pushvalue(L, 2);
    t->guard_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  sched_task_suspends(&E->sched, t, lua_toboolean(L, 1));
  t->suspended = 1;
  if (!st) return aq_task_yield(L, NULL, NULL);
  uv_timer_init(&E->loop, &st->timer);
  st->timer.data = st;
  st->task = t;
  aq_timer_start(&st->timer, on_suspend_timeout, timeout);
  return aq_task_yield(L, close_suspend_timer, st);
}

/* core.wake(id, ...) -> true when the task was suspended and is now ready with
 * those values; false when it has ended or waits on something else. */
static int l_wake(lua_State *L) {
  aq_task *t = task_by_id(&engine(L)->tasks, luaL_checknumber(L, 1));
  if (!t || t->status != AQ_TASK_WAITING || !t->suspended) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (t->cancel == close_suspend_timer) close_suspend_timer(t, t->cancel_data); /* woken in time */
  int n = lua_gettop(L) - 1;
  lua_xmove(L, t->co, n);
  aq_task_resume(t, n);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.cancel(id) -> true when the task was running and is now ended. */
static int l_cancel(lua_State *L) {
  aq_engine *E = engine(L);
  aq_task *t = task_by_id(&E->tasks, luaL_checknumber(L, 1));
  if (t && t == E->tasks.current) return luaL_error(L, "a task cannot cancel itself");
  if (t) task_destroy(t);
  lua_pushboolean(L, t != NULL);
  return 1;
}

/* core.park(): a runner without work waits until the scheduler has some. */
static int l_park(lua_State *L) {
  aq_task *t = running(L);
  return sched_park(&engine(L)->sched, t);
}

/* core.yield_now(): back of the ready list, keeping any worker slot. */
static int l_yield_now(lua_State *L) {
  return task_yield(running(L), AQ_TASK_READY);
}

/* core.set_runner(runner, timed_out): `runner` is the function every runner
 * task runs; `timed_out(id, message)` finishes a process() its timeout cut
 * short (it runs as a task of its own). */
static int l_set_runner(lua_State *L) {
  aq_sched *s = &engine(L)->sched;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (s->runner_fn_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->runner_fn_ref);
  if (s->timed_out_fn_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->timed_out_fn_ref);
  lua_pushvalue(L, 1);
  s->runner_fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, 2);
  s->timed_out_fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static const char *const order_names[] = {"lifo", "fifo", "priority", NULL};

/* core.run_start(num_workers, order, progress, max_items, max_time): 0 for
 * no limit. */
static int l_run_start(lua_State *L) {
  aq_engine *E = engine(L);
  lua_Integer workers = luaL_checkinteger(L, 1);
  int order = luaL_checkoption(L, 2, NULL, order_names);
  int progress = luaL_checkoption(L, 3, "auto", aq_progress_names);
  double max_items = luaL_optnumber(L, 4, 0);
  double max_time = luaL_optnumber(L, 5, 0);
  if (E->sched.active) return luaL_error(L, "run_queue is already running");
  if (workers < 1 || workers > 10000000) return luaL_error(L, "num_workers must be between 1 and 10000000");
  if (sched_run_start(&E->sched, (int32_t)workers, (aq_order)order, (int64_t)max_items) != 0)
    return luaL_error(L, "out of memory");
  if (max_time > 0) sched_max_time_start(&E->sched, max_time);
  display_run_started(&E->display, (aq_progress)progress);
  return 0;
}

/* core.run_wait() -> "done" when the run has finished, "stopping" while a
 * graceful stop has waiting items to drop (the caller drops them and waits
 * again). */
static int l_run_wait(lua_State *L) {
  aq_engine *E = engine(L);
  aq_sched *s = &E->sched;
  aq_task *t = running(L);
  if (!s->active) return luaL_error(L, "no run is active");
  if (s->stopping && sched_waiting(s) > 0) {
    lua_pushliteral(L, "stopping");
    return 1;
  }
  if (sched_run_finished(s)) {
    lua_pushliteral(L, "done");
    return 1;
  }
  s->waiter = t;
  return aq_task_yield(L, NULL, NULL);
}

static void collect_dropped(int32_t id, void *ud) {
  lua_State *L = ud;
  lua_pushinteger(L, id);
  lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
}

/* core.run_drop() -> the ids of the queued items taken out by a graceful stop. */
static int l_run_drop(lua_State *L) {
  lua_newtable(L);
  sched_drop_queued(&engine(L)->sched, collect_dropped, L);
  return 1;
}

static void set_number(lua_State *L, const char *key, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, key);
}

/* core.run_finish() -> the run's counters; prints the summary line and ends
 * the run. */
static int l_run_finish(lua_State *L) {
  aq_engine *E = engine(L);
  aq_sched *s = &E->sched;
  if (!s->active) return luaL_error(L, "no run is active");
  double elapsed = (double)(uv_hrtime() - s->started_ns) / 1e9;
  lua_createtable(L, 0, 8);
  set_number(L, "processed", (double)s->processed);
  set_number(L, "failed", (double)s->failed);
  set_number(L, "hooks_failed", (double)s->hooks_failed);
  set_number(L, "retried", (double)s->retried);
  set_number(L, "not_started", (double)s->dropped);
  set_number(L, "cancelled", (double)s->cancelled);
  set_number(L, "enqueued", (double)s->enqueued);
  set_number(L, "duplicates", (double)s->duplicates);
  set_number(L, "elapsed", elapsed);
  lua_pushboolean(L, s->stop_why == AQ_STOP_INTERRUPTED);
  lua_setfield(L, -2, "interrupted");
  static const char *const stop_names[] = {NULL, "interrupted", "max_items", "max_time"};
  if (s->stop_why != AQ_STOP_NONE) {
    lua_pushstring(L, stop_names[s->stop_why]);
    lua_setfield(L, -2, "stopped");
  }
  lua_createtable(L, 0, s->nclasses);
  for (int32_t i = 0; i < s->nclasses; i++) {
    aq_class_stats *c = &s->classes[i];
    if (c->done + c->failed + c->queued + c->max_queued == 0) continue;
    lua_createtable(L, 0, 4);
    set_number(L, "done", (double)c->done);
    set_number(L, "failed", (double)c->failed);
    set_number(L, "retried", (double)c->retried);
    set_number(L, "max_queued", (double)c->max_queued);
    lua_setfield(L, -2, c->name);
  }
  lua_setfield(L, -2, "classes");
  static const char *const stop_texts[] = {NULL, "interrupted", "stopped: max_items reached",
                                           "stopped: max_time reached"};
  display_run_finished(&E->display, stop_texts[s->stop_why]);
  sched_run_finish(s);
  return 1;
}

/* os.exit([code]): stop the engine now with that status (true 0, false 1). The
 * calling task never continues. */
static int l_exit(lua_State *L) {
  aq_engine *E = engine(L);
  int code = AQ_EXIT_OK;
  if (lua_isboolean(L, 1)) code = lua_toboolean(L, 1) ? AQ_EXIT_OK : AQ_EXIT_FAILED;
  else if (!lua_isnoneornil(L, 1)) code = (int)luaL_checkinteger(L, 1);
  fflush(stdout);
  E->exit_code = code & 0xff;
  E->stop_reason = "stopped by os.exit";
  engine_request_shutdown(E, E->exit_code);
  if (E->tasks.current && E->tasks.current->co == L) return aq_task_yield(L, NULL, NULL);
  return 0;
}

/* core.log(text): a line for the user, above the display. */
static int l_log(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  engine_log(engine(L), text, len);
  return 0;
}

/* core.defaults() -> num_workers, order, progress, state, fresh, retry_failed,
 * max_items, max_time, redis, run from the command line (nil or false when
 * unset). */
static int l_defaults(lua_State *L) {
  aq_engine *E = engine(L);
  if (E->cli_workers > 0) lua_pushinteger(L, E->cli_workers);
  else lua_pushnil(L);
  if (E->cli_order >= 0) lua_pushstring(L, order_names[E->cli_order]);
  else lua_pushnil(L);
  if (E->cli_progress >= 0) lua_pushstring(L, aq_progress_names[E->cli_progress]);
  else lua_pushnil(L);
  if (E->cli_state) lua_pushstring(L, E->cli_state);
  else lua_pushnil(L);
  lua_pushboolean(L, E->cli_fresh);
  lua_pushboolean(L, E->cli_retry_failed);
  if (E->cli_max_items > 0) lua_pushnumber(L, E->cli_max_items);
  else lua_pushnil(L);
  if (E->cli_max_time > 0) lua_pushnumber(L, E->cli_max_time);
  else lua_pushnil(L);
  if (E->cli_redis) lua_pushstring(L, E->cli_redis);
  else lua_pushnil(L);
  if (E->cli_run) lua_pushstring(L, E->cli_run);
  else lua_pushnil(L);
  return 10;
}

/* core.output(stream, text): text the script writes to stdout (1) or stderr
 * (2) while the panel routes that stream (see core.routes). */
static int l_output(lua_State *L) {
  int stream = (int)luaL_checkinteger(L, 1);
  size_t len;
  const char *text = luaL_checklstring(L, 2, &len);
  display_output(&engine(L)->display, stream, text, len);
  return 0;
}

/* core.routes(stream) -> true while writes to stdout (1) / stderr (2) must go
 * through core.output so they land above the panel. */
static int l_routes(lua_State *L) {
  lua_pushboolean(L, display_routes(&engine(L)->display, (int)luaL_checkinteger(L, 1)));
  return 1;
}

/* core.note_failure(text): a failed item or hook, for the final summary. */
static int l_note_failure(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  display_note_failure(&engine(L)->display, text, len);
  return 0;
}

/* core.note_error(text): a failed attempt that will be retried, for the panel. */
static int l_note_error(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  display_note_error(&engine(L)->display, text, len);
  return 0;
}

/* core.mark_failed(): the exit status will be 1 (an error nobody caught). */
static int l_mark_failed(lua_State *L) {
  engine(L)->had_failures = 1;
  return 0;
}

/* core.now() -> seconds on a monotonic clock (for measuring durations). */
static int l_now(lua_State *L) {
  lua_pushnumber(L, (double)uv_hrtime() / 1e9);
  return 1;
}

/* core.can_yield() -> true when the running task may yield where it is now:
 * false in a coroutine the script made, a table.sort comparator, a
 * string.gsub callback, a metamethod called from C. The Lua waits check it
 * before they register as waiters, so a wait that cannot happen leaves no trace. */
static int l_can_yield(lua_State *L) {
  lua_pushboolean(L, task_yieldable(L) != NULL);
  return 1;
}

/* core_ffi.h's text, generated at build time (cmake/embed_text.cmake). */
extern const char aq_core_ffi_cdef[];

/* What lua/aqueue/sched.lua must agree on with the scheduler, defined once
 * in C: the FFI declarations (core_ffi.h's text) and the constants of the
 * hot path (scheduler.h, sched_runner.h), read once into Lua locals. */
static void export_sched_contract(lua_State *L) {
  static const aq_constant constants[] = {
      {"ITEM_TRACK_OVERALL", AQ_ITEM_TRACK_OVERALL}, {"ITEM_HAS_HOOK", AQ_ITEM_HAS_HOOK},
      {"JOB_PROCESS", AQ_JOB_PROCESS},               {"JOB_HOOK", AQ_JOB_HOOK},
      {"JOB_KIND_MASK", AQ_JOB_KIND_MASK},           {"JOB_ID_SHIFT", AQ_JOB_ID_SHIFT},
      {"ENQUEUE_NO_MEMORY", AQ_ENQUEUE_NO_MEMORY},   {"ENQUEUE_STOPPING", AQ_ENQUEUE_STOPPING},
      {"ENQUEUE_SUBTREE_DONE", AQ_ENQUEUE_SUBTREE_DONE}, {"ENQUEUE_NO_RUN", AQ_ENQUEUE_NO_RUN},
  };
  aq_export_ffi_contract(L, aq_core_ffi_cdef, constants, sizeof constants / sizeof constants[0]);
}

static int open_core(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"spawn", l_spawn},         {"current", l_current},     {"suspend", l_suspend},
      {"wake", l_wake},           {"cancel", l_cancel},       {"park", l_park},
      {"yield_now", l_yield_now}, {"set_runner", l_set_runner}, {"run_start", l_run_start},
      {"run_wait", l_run_wait},   {"run_drop", l_run_drop},   {"run_finish", l_run_finish},
      {"exit", l_exit},           {"log", l_log},             {"defaults", l_defaults},
      {"now", l_now},             {"mark_failed", l_mark_failed},
      {"output", l_output},       {"routes", l_routes},       {"note_failure", l_note_failure},
      {"note_error", l_note_error}, {"can_yield", l_can_yield},
      {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, funcs);
  lua_pushlightuserdata(L, engine(L));
  lua_setfield(L, -2, "engine");
  lua_pushlightuserdata(L, &timed_out_marker);
  lua_setfield(L, -2, "TIMED_OUT");
  lua_pushinteger(L, (lua_Integer)uv_available_parallelism()); /* the cores this process may run on */
  lua_setfield(L, -2, "cpus");
  export_sched_contract(L);
  return 1;
}

void core_lua_open(lua_State *L) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, open_core);
  lua_setfield(L, -2, "aqueue.core");
  lua_pushcfunction(L, aq_open_errors);
  lua_setfield(L, -2, "aqueue.errors");
  lua_pop(L, 2);
  /* os.exit ends the engine cleanly instead of leaving the process mid-loop. */
  lua_getglobal(L, "os");
  lua_pushcfunction(L, l_exit);
  lua_setfield(L, -2, "exit");
  lua_pop(L, 1);
}
