/*
 * work_threads.c — the pool threads' Lua states (see work_threads.h): made on
 * first use, kept in the global `workers` list, closed all together when the
 * engine closes. Each call loads fn from its bytecode (cached per thread),
 * rebuilds the arguments, calls fn protected and encodes its results.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "work_threads.h"
#include "work_values.h"

/* Loaded functions each pool thread keeps, by bytecode; past this the cache
 * starts over (a script has few distinct work functions; this bounds one that
 * makes them on the fly). */
#define MAX_CACHED_FNS 64

typedef struct worker {
  lua_State *L;
  int cache_ref;     /* registry ref of a table: bytecode -> loaded function */
  int ncached;       /* entries in that table */
  size_t kept_kb;    /* heap size after the last full collection */
  struct worker *next;
} worker;

static pthread_mutex_t workers_lock = PTHREAD_MUTEX_INITIALIZER;
static worker *workers;                /* every pool thread's state */
static unsigned workers_generation;    /* bumped each time they are all closed */
static _Thread_local worker *my_worker; /* this pool thread's; stale if the generation moved */
static _Thread_local unsigned my_generation;

static int open_worker_libs(lua_State *L) {
  luaL_openlibs(L);
  return 0;
}

/* This pool thread's state, created on first use. NULL when out of memory. */
static worker *worker_get(void) {
  pthread_mutex_lock(&workers_lock);
  worker *w = my_worker;
  if (!w || my_generation != workers_generation) {
    w = calloc(1, sizeof *w);
    lua_State *L = w ? luaL_newstate() : NULL;
    if (!L || lua_cpcall(L, open_worker_libs, NULL) != 0) {
      if (L) lua_close(L);
      free(w);
      pthread_mutex_unlock(&workers_lock);
      return NULL;
    }
    w->L = L;
    w->cache_ref = LUA_NOREF;
    w->next = workers;
    workers = w;
    my_worker = w;
    my_generation = workers_generation;
  }
  pthread_mutex_unlock(&workers_lock);
  return w;
}

void work_threads_close(void) {
  pthread_mutex_lock(&workers_lock);
  while (workers) {
    worker *w = workers;
    workers = w->next;
    lua_close(w->L);
    free(w);
  }
  workers_generation++;
  pthread_mutex_unlock(&workers_lock);
}

void work_call_free(work_call *call) {
  aq_buf_free(&call->in);
  aq_buf_free(&call->out);
  free(call->error);
  call->error = NULL;
}

/* Copies the error value at the top of L into a malloc'd message (NULL when
 * out of memory). */
static char *error_message(lua_State *L) {
  const char *msg = lua_tostring(L, -1); /* strings and numbers */
  char fallback[64];
  if (!msg) {
    snprintf(fallback, sizeof fallback, "(error object is a %s value)", luaL_typename(L, -1));
    msg = fallback;
  }
  return strdup(msg);
}

/* Pushes the function of bytecode bc, loaded once per thread and cached. */
static void push_function(lua_State *L, worker *w, const char *bc, size_t len) {
  if (w->cache_ref == LUA_NOREF || w->ncached >= MAX_CACHED_FNS) {
    if (w->cache_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, w->cache_ref);
    w->cache_ref = LUA_NOREF;
    lua_newtable(L);
    w->cache_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    w->ncached = 0;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, w->cache_ref);
  lua_pushlstring(L, bc, len);
  lua_pushvalue(L, -1);
  lua_rawget(L, -3);
  if (lua_isfunction(L, -1)) {
    lua_replace(L, -3);
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  if (luaL_loadbuffer(L, bc, len, "=aqueue.work") != 0) lua_error(L);
  lua_pushvalue(L, -1);
  lua_insert(L, -4); /* cache, bytecode, fn -> fn, cache, bytecode, fn */
  lua_rawset(L, -3);
  lua_pop(L, 1);
  w->ncached++;
}

/* Sets the call's failure: fn raised, or a result cannot cross. The message
 * is at the top of L. Raises only when out of memory. */
static int fail_call(lua_State *L, work_call *call) {
  call->error_code = AQ_EWORK;
  call->error = error_message(L);
  if (!call->error) return luaL_error(L, "out of memory");
  return 0;
}

/* Encodes fn's results (the whole stack of L) into call->out. */
static int encode_results(lua_State *L, work_call *call) {
  int n = lua_gettop(L);
  luaL_checkstack(L, WORK_ENCODE_STACK, "aqueue.work: no stack left to encode the results");
  work_encoder e = {.L = L, .out = &call->out};
  work_put_u32(&call->out, (uint32_t)n);
  for (int i = 1; i <= n; i++) {
    if (work_encode_value(&e, i) != 0) {
      char msg[512];
      work_describe_failure(&e, msg, sizeof msg, "result", i, "back from");
      aq_buf_free(&call->out);
      lua_pushfstring(L, "aqueue.work: %s", msg);
      return fail_call(L, call);
    }
  }
  if (call->out.failed) {
    aq_buf_free(&call->out);
    return luaL_error(L, "aqueue.work: out of memory for fn's results");
  }
  return 0;
}

typedef struct {
  work_call *call;
  worker *w;
} pool_call_args;

/* In the pool thread's state, protected: loads fn, rebuilds the arguments,
 * calls fn and encodes its results into call->out (or sets call->error). */
static int pool_call(lua_State *L) {
  pool_call_args *a = lua_touserdata(L, 1);
  work_call *call = a->call;
  lua_settop(L, 0);
  work_reader r = {call->in.data, call->in.data + call->in.len};
  uint64_t bclen;
  work_read_bytes(L, &r, &bclen, sizeof bclen);
  if ((uint64_t)(r.end - r.p) < bclen) return luaL_error(L, "aqueue.work: internal error: truncated bytecode");
  push_function(L, a->w, r.p, (size_t)bclen);
  r.p += bclen;
  uint32_t nargs = work_read_u32(L, &r);
  luaL_checkstack(L, (int)(nargs > 100000 ? 100000 : nargs) + 8, "aqueue.work: too many arguments");
  for (uint32_t i = 0; i < nargs; i++) work_decode_value(L, &r, 0);
  if (lua_pcall(L, (int)nargs, LUA_MULTRET, 0) != 0) return fail_call(L, call);
  return encode_results(L, call);
}

/* Keeps an idle thread's state from holding on to the garbage of its last
 * call (a big result string, say) until some later call allocates: collects
 * in full whenever the heap has doubled (and grown by 8 MB) since last time. */
static void trim_heap(worker *w) {
  size_t kb = (size_t)lua_gc(w->L, LUA_GCCOUNT, 0);
  if (kb > 2 * w->kept_kb + 8192) {
    lua_gc(w->L, LUA_GCCOLLECT, 0);
    w->kept_kb = (size_t)lua_gc(w->L, LUA_GCCOUNT, 0);
  }
}

void work_call_run(work_call *call) {
  worker *w = worker_get();
  if (!w) {
    call->error_code = "ENOMEM";
    call->error = strdup("aqueue.work: cannot create a Lua state on the pool thread (out of memory)");
    return;
  }
  pool_call_args a = {call, w};
  if (lua_cpcall(w->L, pool_call, &a) != 0) {
    free(call->error);
    call->error_code = "ENOMEM"; /* pool_call itself failed: memory or stack */
    call->error = error_message(w->L);
    aq_buf_free(&call->out);
  }
  lua_settop(w->L, 0);
  trim_heap(w);
}
