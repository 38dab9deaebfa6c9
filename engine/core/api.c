/*
 * api.c — the parts of the public C API (engine/include/aqueue.h) that are
 * not the engine's or the tasks' own: the ABI check, module registration and
 * FFI contracts, a module's state, logging and stopping for modules, and
 * running work on the thread pool.
 * (aq_timer_start is timer_start.c's: the scheduler uses it too.)
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "engine.h"

void aq_abi_check(lua_State *L, int module_abi, const char *module_name) {
  if (module_abi == AQUEUE_ABI_VERSION) return;
  luaL_error(L,
             "%s was built for aqueue ABI %d, but this aqueue-run (%s) has ABI %d: "
             "rebuild it against this aqueue's aqueue.h",
             module_name, module_abi, AQUEUE_VERSION, AQUEUE_ABI_VERSION);
}

void aq_register_module(lua_State *L, const char *name, lua_CFunction open) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, open);
  lua_setfield(L, -2, name);
  lua_pop(L, 2);
}

void aq_export_ffi_contract(lua_State *L, const char *cdef, const aq_constant *constants, size_t n) {
  lua_pushstring(L, cdef);
  lua_setfield(L, -2, "ffi_cdef");
  for (size_t i = 0; i < n; i++) {
    lua_pushinteger(L, constants[i].value);
    lua_setfield(L, -2, constants[i].name);
  }
}

int aq_module_keep_loaded(const void *symbol) {
  Dl_info info;
  if (!dladdr(symbol, &info) || !info.dli_fname) return -1;
  return dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) ? 0 : -1;
}

/* The block is a userdata anchored in the registry under `key`, so the Lua
 * state frees it, after the close hooks have run. */
void *aq_module_state(lua_State *L, const void *key, size_t size, void (*on_close)(aq_engine *E, void *state)) {
  lua_pushlightuserdata(L, (void *)key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  void *state = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (state) return state;
  state = lua_newuserdata(L, size);
  memset(state, 0, size);
  if (aq_engine_on_close(aq_engine_from_lua(L), on_close, state) != 0) {
    lua_pop(L, 1);
    luaL_error(L, "out of memory");
    return NULL;
  }
  lua_pushlightuserdata(L, (void *)key);
  lua_insert(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);
  return state;
}

lua_State *aq_engine_state(aq_engine *E) { return E->L; }

void aq_log(aq_engine *E, const char *text, size_t len) { engine_log(E, text, len); }

void aq_engine_stop(aq_engine *E, int status, const char *reason) {
  if (status != 0) E->had_failures = 1;
  if (!E->stop_reason) E->stop_reason = reason;
  engine_request_shutdown(E, status);
}

/* --- aq_task_work --- */

typedef struct {
  uv_work_t req;
  aq_task *task;      /* NULL once the task was cancelled */
  aq_work_fn work;
  aq_after_work_fn after;
  void *data;
} pool_job;

static void run_work(uv_work_t *req) {
  pool_job *job = req->data;
  job->work(job->data);
}

static void work_done(uv_work_t *req, int status) {
  pool_job *job = req->data;
  (void)status; /* UV_ECANCELED only after cancel_work, which cleared task */
  if (job->task) {
    lua_State *co = aq_task_state(job->task);
    aq_task_resume(job->task, job->after(co, job->data));
  } else {
    job->after(NULL, job->data);
  }
  free(job);
}

static void cancel_work(aq_task *task, void *data) {
  pool_job *job = data;
  (void)task;
  job->task = NULL;
  uv_cancel((uv_req_t *)&job->req); /* fails when it already runs: work_done comes later */
}

int aq_task_work(lua_State *L, aq_work_fn work, aq_after_work_fn after, void *data) {
  aq_task *task = task_yieldable(L);
  if (!task) {
    after(NULL, data); /* `after` is called exactly once, also here */
    aq_task_current(L); /* raises why */
  }
  pool_job *job = malloc(sizeof *job);
  if (!job) {
    after(NULL, data);
    return luaL_error(L, "out of memory");
  }
  job->req.data = job;
  job->task = task;
  job->work = work;
  job->after = after;
  job->data = data;
  int err = uv_queue_work(aq_engine_loop(aq_engine_from_lua(L)), &job->req, run_work, work_done);
  if (err) {
    free(job);
    after(NULL, data);
    return luaL_error(L, "cannot use the thread pool: %s", uv_strerror(err));
  }
  return aq_task_yield(L, cancel_work, job);
}
