/*
 * sleep.c — aqueue.sleep(seconds): the first yielding binding, and the model
 * for the others. It uses only the public API of aqueue.h.
 *
 * Ownership: the sleep_req (and its uv timer) belongs to this file from
 * l_sleep until the timer's close callback frees it. Exactly one of
 * on_sleep_over (the task resumes) or cancel_sleep (the task was cancelled)
 * starts the close.
 */
#include <math.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "aqueue.h"
#include "builtin.h"

typedef struct {
  uv_timer_t timer;
  aq_task *task;
} sleep_req;

static void on_sleep_closed(uv_handle_t *handle) { free(handle->data); }

static void on_sleep_over(uv_timer_t *timer) {
  sleep_req *req = timer->data;
  aq_task_resume(req->task, 0);
  uv_close((uv_handle_t *)timer, on_sleep_closed);
}

static void cancel_sleep(aq_task *task, void *data) {
  (void)task;
  sleep_req *req = data;
  uv_close((uv_handle_t *)&req->timer, on_sleep_closed); /* closing also stops it */
}

/* aqueue.sleep(seconds): yields for that long (rounded up to the millisecond;
 * 0 or less gives other tasks a turn). Raises on a non-number or NaN. */
static int l_sleep(lua_State *L) {
  double seconds = luaL_checknumber(L, 1);
  if (isnan(seconds)) return luaL_argerror(L, 1, "seconds is NaN");
  aq_task *task = aq_task_current(L);
  uv_loop_t *loop = aq_engine_loop(aq_engine_from_lua(L));
  sleep_req *req = malloc(sizeof *req);
  if (!req) return luaL_error(L, "out of memory");
  uv_timer_init(loop, &req->timer);
  req->timer.data = req;
  req->task = task;
  aq_timer_start(&req->timer, on_sleep_over, seconds); /* from now, never early */
  return aq_task_yield(L, cancel_sleep, req);
}

/* require("aqueue.sleep_core") -> { sleep = aqueue.sleep } */
int aq_open_sleep(lua_State *L) {
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, l_sleep);
  lua_setfield(L, -2, "sleep");
  return 1;
}
