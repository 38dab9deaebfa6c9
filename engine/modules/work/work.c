/*
 * work.c — aqueue.work(fn, ...): CPU work on the libuv thread pool, the
 * binding (aqueue.work_core).
 *
 * fn(...) runs on a pool thread, in a Lua state that belongs to that thread
 * (work_threads.c). The calling task yields until the results are back
 * (aq_task_work, like any module's pool work), so the loop thread keeps
 * running other tasks, and with a pool as large as the machine has cores
 * every core can compute at once.
 *
 * Only plain values cross threads, never a Lua object: fn travels as its
 * bytecode (lua_dump; so it must have no upvalues), and its arguments and
 * results as bytes (work_values.c), rebuilt in the other state.
 *
 * Ownership: a work_req belongs to this file from l_work until after_work
 * frees it; aq_task_work calls after_work exactly once, on the loop thread,
 * with the task's coroutine, or with NULL when the task was cancelled (then it
 * only frees). The pool threads' states are closed by close_module when the
 * engine closes.
 */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "aqueue.h"
#include "builtin.h"
#include "work_threads.h"
#include "work_values.h"

/* The module's state for the engine: where results are rebuilt. */
typedef struct {
  lua_State *decoder; /* a coroutine of the engine's state where results are rebuilt */
  int decoder_ref;    /* its registry ref (keeps it alive) */
  int decode_fn_ref;  /* registry ref of decode_results, so calling it allocates nothing */
} work_module;

typedef struct {
  work_call call; /* what crosses to the pool thread and back */
  work_module *mod;
} work_req;

static void req_free(work_req *req) {
  work_call_free(&req->call);
  free(req);
}

/* On a pool thread. */
static void run_in_pool(void *data) {
  work_req *req = data;
  work_call_run(&req->call);
}

/* Protected, in the decoder coroutine: rebuilds fn's results from req->call.out. */
static int decode_results(lua_State *L) {
  work_req *req = lua_touserdata(L, 1);
  lua_settop(L, 0);
  work_reader r = {req->call.out.data, req->call.out.data + req->call.out.len};
  uint32_t n = work_read_u32(L, &r);
  luaL_checkstack(L, (int)(n > 100000 ? 100000 : n) + 8, "aqueue.work: fn returned too many results");
  for (uint32_t i = 0; i < n; i++) work_decode_value(L, &r, 0);
  return (int)n;
}

/* Pushes fn's results onto co and returns how many; or its failure. The
 * results are rebuilt in a spare coroutine under lua_pcall, so running out of
 * memory there is an error rather than a panic, then moved. */
static int push_results(lua_State *co, work_req *req) {
  lua_State *H = req->mod->decoder;
  lua_settop(H, 0);
  lua_rawgeti(H, LUA_REGISTRYINDEX, req->mod->decode_fn_ref);
  lua_pushlightuserdata(H, req);
  int nresults;
  if (lua_pcall(H, 1, LUA_MULTRET, 0) != 0) {
    nresults = aq_push_failure(co, "ENOMEM", "%s", lua_tostring(H, -1)); /* the decoding failed: no memory */
  } else {
    int n = lua_gettop(H);
    if (!lua_checkstack(co, n + 5)) {
      nresults = aq_push_failure(co, AQ_EWORK, "aqueue.work: fn returned too many results");
    } else {
      lua_xmove(H, co, n);
      nresults = n;
    }
  }
  lua_settop(H, 0);
  return nresults;
}

/* aq_task_work's after: on the loop thread, once fn is done (co NULL: the
 * task was cancelled, nobody waits for the results). */
static int after_work(lua_State *co, void *data) {
  work_req *req = data;
  int nresults = 0;
  if (co) {
    if (req->call.error) nresults = aq_push_failure(co, req->call.error_code, "%s", req->call.error);
    else if (!req->call.out.data) nresults = aq_push_failure(co, "ENOMEM", "aqueue.work: out of memory");
    else nresults = push_results(co, req);
  }
  req_free(req);
  return nresults;
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  aq_buf *b = ud;
  aq_buf_add(b, p, sz);
  return b->failed;
}

/* Raises, naming the (first four) upvalues of the function at index 1. */
static void refuse_upvalues(lua_State *L) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const char *name;
  int i = 1;
  for (; i <= 4 && (name = lua_getupvalue(L, 1, i)) != NULL; i++) {
    lua_pop(L, 1);
    if (i > 1) luaL_addstring(&b, ", ");
    luaL_addstring(&b, name[0] ? name : "?");
  }
  if (i == 5 && lua_getupvalue(L, 1, 5)) {
    lua_pop(L, 1);
    luaL_addstring(&b, ", ...");
  }
  luaL_pushresult(&b);
  const char *names = lua_tostring(L, -1);
  luaL_error(L,
             "aqueue.work: fn has upvalues (%s); it runs in a separate Lua state on a pool "
             "thread, so pass those values as arguments instead",
             names);
}

/* Checks that the function at index 1 can be sent, and pushes its bytecode
 * (cached per function in the weak table at upvalue 2). Raises otherwise. */
static void push_bytecode(lua_State *L) {
  if (lua_type(L, 1) != LUA_TFUNCTION)
    luaL_error(L, "aqueue.work: fn must be a function (got %s)", luaL_typename(L, 1));
  if (lua_iscfunction(L, 1))
    luaL_error(L, "aqueue.work: fn is a C function; only a Lua function can be sent to a pool thread");
  if (lua_getupvalue(L, 1, 1)) {
    lua_pop(L, 1);
    refuse_upvalues(L);
  }
  lua_pushvalue(L, 1);
  lua_rawget(L, lua_upvalueindex(2));
  if (lua_type(L, -1) == LUA_TSTRING) return;
  lua_pop(L, 1);
  aq_buf bc = {0};
  lua_pushvalue(L, 1);
  int rc = lua_dump(L, dump_writer, &bc);
  lua_pop(L, 1);
  if (rc != 0 || bc.failed) {
    aq_buf_free(&bc);
    luaL_error(L, "aqueue.work: cannot dump fn (out of memory)");
  }
  lua_pushlstring(L, bc.data, bc.len);
  aq_buf_free(&bc);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, -2);
  lua_rawset(L, lua_upvalueindex(2));
}

/* Writes fn's bytecode (at the top of L) and the arguments (stack 2 ..
 * nargs + 1) into req->call.in; the caller made WORK_ENCODE_STACK room. Raises (after freeing req) when an argument
 * cannot cross or memory runs out. */
static void encode_input(lua_State *L, work_req *req, int nargs) {
  size_t bclen;
  const char *bc = lua_tolstring(L, -1, &bclen);
  aq_buf *in = &req->call.in;
  work_put_u64(in, bclen);
  aq_buf_add(in, bc, bclen);
  work_put_u32(in, (uint32_t)nargs);
  work_encoder e = {.L = L, .out = in};
  for (int i = 2; i <= nargs + 1; i++) {
    if (work_encode_value(&e, i) != 0) {
      char msg[512];
      work_describe_failure(&e, msg, sizeof msg, "argument", i - 1, "to");
      req_free(req);
      luaL_error(L, "aqueue.work: %s", msg);
    }
  }
  if (in->failed) {
    req_free(req);
    luaL_error(L, "aqueue.work: out of memory for the arguments");
  }
}

/* aqueue.work(fn, ...) -> fn(...)'s results, computed on a pool thread.
 * Raises when fn or an argument cannot be sent; returns nil, "EWORK: ...",
 * "EWORK" when fn raised or a result cannot come back (nil, "ENOMEM: ...",
 * "ENOMEM" when memory ran out on the way). */
static int l_work(lua_State *L) {
  aq_task_current(L); /* a task that cannot yield raises before anything is built */
  int nargs = lua_gettop(L) - 1;
  push_bytecode(L);
  luaL_checkstack(L, WORK_ENCODE_STACK, "aqueue.work: no stack left");
  work_req *req = calloc(1, sizeof *req);
  if (!req) return luaL_error(L, "aqueue.work: out of memory");
  req->mod = lua_touserdata(L, lua_upvalueindex(1));
  encode_input(L, req, nargs);
  lua_pop(L, 1); /* the bytecode */
  return aq_task_work(L, run_in_pool, after_work, req);
}

/* The pool size libuv uses, read from UV_THREADPOOL_SIZE the way it does. */
static unsigned pool_size(void) {
  const char *val = getenv("UV_THREADPOOL_SIZE");
  unsigned n = val ? (unsigned)atoi(val) : 4;
  if (n == 0) n = 1;
  if (n > 1024) n = 1024;
  return n;
}

/* work_core.pool_size() -> the number of pool threads (the most work calls
 * that run at once). */
static int l_pool_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)pool_size());
  return 1;
}

/* libuv starts its pool, UV_THREADPOOL_SIZE threads (default 4), at the first
 * request that needs it and never resizes it. Size it to the cores we may run
 * on, unless the user chose. Called before any work is queued. */
static void size_pool_to_cores(void) {
  if (getenv("UV_THREADPOOL_SIZE")) return;
  char n[16];
  snprintf(n, sizeof n, "%u", uv_available_parallelism());
  setenv("UV_THREADPOOL_SIZE", n, 0);
}

/* Engine close hook: the pool threads are idle (every work request has
 * completed), so their states can be closed from here. */
static void close_module(aq_engine *E, void *data) {
  (void)E;
  free(data);
  work_threads_close();
}

int aq_open_work(lua_State *L) {
  size_pool_to_cores();
  aq_engine *E = aq_engine_from_lua(L);
  lua_State *decoder = lua_newthread(L);
  int decoder_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushcfunction(L, decode_results);
  int decode_fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  lua_newtable(L); /* the module */
  work_module *mod = malloc(sizeof *mod);
  if (!mod) return luaL_error(L, "aqueue.work: out of memory");
  mod->decoder = decoder;
  mod->decoder_ref = decoder_ref;
  mod->decode_fn_ref = decode_fn_ref;
  if (aq_engine_on_close(E, close_module, mod) != 0) {
    free(mod);
    return luaL_error(L, "aqueue.work: out of memory");
  }
  lua_pushlightuserdata(L, mod);
  lua_newtable(L); /* fn -> bytecode, weak keys */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushcclosure(L, l_work, 2);
  lua_setfield(L, -2, "work");
  lua_pushcfunction(L, l_pool_size);
  lua_setfield(L, -2, "pool_size");
  return 1;
}
