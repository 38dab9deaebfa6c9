/*
 * work.c — aqueue.work(fn, ...): CPU work on the libuv thread pool.
 *
 * fn(...) runs on a pool thread, in a Lua state that belongs to that thread
 * (created the first time the thread runs work, reused after, closed when the
 * engine closes). The calling task yields until the results are back, so the
 * loop thread keeps running other tasks, and with a pool as large as the
 * machine has cores every core can compute at once.
 *
 * Only plain values cross threads, never a Lua object: fn travels as its
 * bytecode (lua_dump; so it must have no upvalues), and its arguments and
 * results are written into a malloc'd byte buffer in the format below, then
 * rebuilt in the other state. Supported: nil, booleans, numbers, strings, and
 * tables of those (nested; metatables are not copied; a table reached twice is
 * copied twice; a cycle is refused).
 *
 * Wire format (native byte order; both ends are this process):
 *   value  = TAG_NIL | TAG_FALSE | TAG_TRUE | TAG_NUMBER double
 *          | TAG_STRING u64-length bytes
 *          | TAG_TABLE u32-narr u32-nhash value{narr} (key value){nhash}
 *   input  = u64-length bytecode u32-nargs value{nargs}
 *   output = u32-nresults value{nresults}
 *
 * Ownership: a work_req belongs to this file from l_work until after_work
 * frees it; after_work always runs, once, on the loop thread (also when
 * uv_cancel took the request off the queue). The task is resumed by after_work
 * unless the engine cancelled it first (cancel_work): then req->task is NULL
 * and after_work only frees. A pool thread's Lua state belongs to the global
 * `workers` list; close_module closes them all when the engine closes, when
 * every work request has completed and the pool threads are idle.
 *
 * Threads: l_work, cancel_work, after_work and close_module run on the loop
 * thread; run_in_pool on a pool thread, touching only its request and its own
 * thread's Lua state — never the engine's.
 */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "aqueue.h"
#include "builtin.h"

enum { TAG_NIL, TAG_FALSE, TAG_TRUE, TAG_NUMBER, TAG_STRING, TAG_TABLE };

/* Deeper nesting is refused: it is almost always a cycle through several
 * tables, and it bounds the C recursion of the encoder and decoder. */
#define MAX_DEPTH 100

/* Loaded functions each pool thread keeps, by bytecode; past this the cache
 * starts over (a script has few distinct work functions; this bounds one that
 * makes them on the fly). */
#define MAX_CACHED_FNS 64

/* --- a growable byte buffer --- */

typedef struct {
  char *data;
  size_t len, cap;
  int oom; /* an allocation failed: the content is incomplete */
} wbuf;

static int wbuf_put(wbuf *b, const void *p, size_t n) {
  if (b->oom) return -1;
  if (n > b->cap - b->len) {
    size_t cap = b->cap ? b->cap : 256;
    while (n > cap - b->len) {
      if (cap > SIZE_MAX / 2) {
        b->oom = 1;
        return -1;
      }
      cap *= 2;
    }
    char *data = realloc(b->data, cap);
    if (!data) {
      b->oom = 1;
      return -1;
    }
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static void wbuf_put_tag(wbuf *b, unsigned char tag) { wbuf_put(b, &tag, 1); }

static void wbuf_put_u32(wbuf *b, uint32_t v) { wbuf_put(b, &v, sizeof v); }

static void wbuf_put_u64(wbuf *b, uint64_t v) { wbuf_put(b, &v, sizeof v); }

static void wbuf_free(wbuf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->oom = 0;
}

/* --- encoding Lua values (either side) --- */

typedef struct {
  lua_State *L;
  wbuf *out;
  const void *path[MAX_DEPTH]; /* the tables being encoded, outermost first */
  int depth;
  char what[96];   /* on failure: what was refused ("a function") */
  char where[200]; /* on failure: the keys leading to it (".a[2]"), built while unwinding */
  int in_key;      /* on failure: the refused value is used as a key at `where` */
} encoder;

static int is_identifier(const char *s, size_t len) {
  if (len == 0 || len > 40 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return 1;
}

/* Puts the key at stack index k in front of e->where (".name", "[3]",
 * "[\"a b\"]"). A path too long to fit keeps its innermost part. */
static void prepend_key(encoder *e, int k) {
  char seg[64];
  lua_State *L = e->L;
  switch (lua_type(L, k)) {
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, k, &len);
    if (is_identifier(s, len)) snprintf(seg, sizeof seg, ".%s", s);
    else snprintf(seg, sizeof seg, "[\"%.*s%s\"]", len > 24 ? 24 : (int)len, s, len > 24 ? "..." : "");
    break;
  }
  case LUA_TNUMBER: snprintf(seg, sizeof seg, "[%.14g]", lua_tonumber(L, k)); break;
  case LUA_TBOOLEAN: snprintf(seg, sizeof seg, "[%s]", lua_toboolean(L, k) ? "true" : "false"); break;
  default: snprintf(seg, sizeof seg, "[<%s>]", lua_typename(L, lua_type(L, k))); break;
  }
  size_t n = strlen(seg), have = strlen(e->where);
  if (n + have >= sizeof e->where) return;
  memmove(e->where + n, e->where, have + 1);
  memcpy(e->where, seg, n);
}

static int encode_value(encoder *e, int idx);

/* Encodes the table at idx: its array part 1..#t by index, then every other
 * pair. Returns 0, or -1 with e->what / e->where set. */
static int encode_table(encoder *e, int idx) {
  lua_State *L = e->L;
  const void *self = lua_topointer(L, idx);
  for (int i = 0; i < e->depth; i++) {
    if (e->path[i] == self) {
      snprintf(e->what, sizeof e->what, "a table that contains itself (a cycle)");
      return -1;
    }
  }
  if (e->depth == MAX_DEPTH) {
    snprintf(e->what, sizeof e->what, "tables nested more than %d deep", MAX_DEPTH);
    return -1;
  }
  e->path[e->depth++] = self;
  size_t narr = lua_objlen(L, idx);
  if (narr > INT_MAX) narr = 0; /* then all pairs go the general way */
  wbuf_put_tag(e->out, TAG_TABLE);
  wbuf_put_u32(e->out, (uint32_t)narr);
  size_t nhash_at = e->out->len;
  wbuf_put_u32(e->out, 0); /* patched below */
  for (size_t i = 1; i <= narr; i++) {
    lua_rawgeti(L, idx, (int)i);
    int rc = encode_value(e, lua_gettop(L));
    if (rc != 0) {
      lua_pushnumber(L, (lua_Number)i);
      prepend_key(e, -1);
      lua_pop(L, 2);
      return -1;
    }
    lua_pop(L, 1);
  }
  uint32_t nhash = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int k = lua_gettop(L) - 1;
    if (lua_type(L, k) == LUA_TNUMBER) {
      lua_Number n = lua_tonumber(L, k);
      if (n >= 1 && n <= (lua_Number)narr && n == (lua_Number)(size_t)n) {
        lua_pop(L, 1); /* already sent as the array part */
        continue;
      }
    }
    if (encode_value(e, k) != 0) {
      e->in_key = 1;
      lua_pop(L, 2);
      return -1;
    }
    if (encode_value(e, k + 1) != 0) {
      prepend_key(e, k);
      lua_pop(L, 2);
      return -1;
    }
    nhash++;
    lua_pop(L, 1);
  }
  if (!e->out->oom) memcpy(e->out->data + nhash_at, &nhash, sizeof nhash);
  e->depth--;
  return 0;
}

/* Encodes the value at stack index idx (absolute). Returns 0, or -1 with
 * e->what set to what cannot cross. Never raises: the caller has made room
 * on the stack for MAX_DEPTH levels. Out of memory shows as e->out->oom. */
static int encode_value(encoder *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
  case LUA_TNIL: wbuf_put_tag(e->out, TAG_NIL); return 0;
  case LUA_TBOOLEAN: wbuf_put_tag(e->out, lua_toboolean(L, idx) ? TAG_TRUE : TAG_FALSE); return 0;
  case LUA_TNUMBER: {
    double d = lua_tonumber(L, idx);
    wbuf_put_tag(e->out, TAG_NUMBER);
    wbuf_put(e->out, &d, sizeof d);
    return 0;
  }
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    wbuf_put_tag(e->out, TAG_STRING);
    wbuf_put_u64(e->out, len);
    wbuf_put(e->out, s, len);
    return 0;
  }
  case LUA_TTABLE: return encode_table(e, idx);
  default: {
    const char *type = lua_typename(L, lua_type(L, idx));
    snprintf(e->what, sizeof e->what, "a %s", type);
    return -1;
  }
  }
}

/* Stack room the encoder needs: two slots per level of nesting, and spare. */
#define ENCODE_STACK (2 * MAX_DEPTH + 8)

/* Describes an encoder failure for value number n ("argument", "result"). */
static void describe_failure(const encoder *e, char *msg, size_t size, const char *kind, int n,
                             const char *direction) {
  if (e->where[0])
    snprintf(msg, size,
             "fn's %s #%d holds %s%s at %s; only nil, boolean, number, string and tables of "
             "those can cross %s a pool thread",
             kind, n, e->what, e->in_key ? " used as a key" : "", e->where, direction);
  else
    snprintf(msg, size,
             "fn's %s #%d %s %s%s; only nil, boolean, number, string and tables of those "
             "can cross %s a pool thread",
             kind, n, e->in_key ? "holds" : "is", e->what, e->in_key ? " used as a key" : "",
             direction);
}

/* --- decoding (either side; raises on out of memory or malformed input,
 * so only inside a protected call) --- */

typedef struct {
  const char *p, *end;
} reader;

static void read_bytes(lua_State *L, reader *r, void *out, size_t n) {
  if ((size_t)(r->end - r->p) < n) luaL_error(L, "aqueue.work: internal error: truncated value");
  memcpy(out, r->p, n);
  r->p += n;
}

static uint32_t read_u32(lua_State *L, reader *r) {
  uint32_t v;
  read_bytes(L, r, &v, sizeof v);
  return v;
}

static void decode_value(lua_State *L, reader *r, int depth) {
  unsigned char tag;
  read_bytes(L, r, &tag, 1);
  luaL_checkstack(L, 3, "aqueue.work: values nested too deep");
  switch (tag) {
  case TAG_NIL: lua_pushnil(L); return;
  case TAG_FALSE: lua_pushboolean(L, 0); return;
  case TAG_TRUE: lua_pushboolean(L, 1); return;
  case TAG_NUMBER: {
    double d;
    read_bytes(L, r, &d, sizeof d);
    lua_pushnumber(L, d);
    return;
  }
  case TAG_STRING: {
    uint64_t len;
    read_bytes(L, r, &len, sizeof len);
    if ((uint64_t)(r->end - r->p) < len) luaL_error(L, "aqueue.work: internal error: truncated string");
    lua_pushlstring(L, r->p, (size_t)len);
    r->p += len;
    return;
  }
  case TAG_TABLE: {
    if (depth >= MAX_DEPTH) luaL_error(L, "aqueue.work: internal error: tables too deep");
    uint32_t narr = read_u32(L, r), nhash = read_u32(L, r);
    /* the sizes are hints: cap them so a bad count cannot ask for gigabytes */
    size_t left = (size_t)(r->end - r->p);
    lua_createtable(L, narr <= left ? (int)narr : 0, nhash <= left / 2 ? (int)nhash : 0);
    for (uint32_t i = 1; i <= narr; i++) {
      decode_value(L, r, depth + 1);
      lua_rawseti(L, -2, (int)i);
    }
    for (uint32_t i = 0; i < nhash; i++) {
      decode_value(L, r, depth + 1);
      decode_value(L, r, depth + 1);
      lua_rawset(L, -3);
    }
    return;
  }
  default: luaL_error(L, "aqueue.work: internal error: bad value tag %d", (int)tag);
  }
}

/* --- requests --- */

typedef struct work_module work_module;

typedef struct {
  uv_work_t work;
  work_module *mod;
  aq_task *task; /* the waiting task; NULL once the engine cancelled it */
  wbuf in;       /* bytecode and arguments, written on the loop thread */
  wbuf out;      /* results, written on the pool thread */
  char *error;   /* malloc'd message when fn raised or its results cannot cross */
  const char *error_code; /* its code: AQ_EWORK, or "ENOMEM" */
} work_req;

static void req_free(work_req *req) {
  wbuf_free(&req->in);
  wbuf_free(&req->out);
  free(req->error);
  free(req);
}

/* --- pool threads' Lua states --- */

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

typedef struct {
  work_req *req;
  worker *w;
} pool_call_args;

/* In the pool thread's state, protected: loads fn, rebuilds the arguments,
 * calls fn and encodes its results into req->out (or sets req->error). */
static int pool_call(lua_State *L) {
  pool_call_args *a = lua_touserdata(L, 1);
  work_req *req = a->req;
  lua_settop(L, 0);
  reader r = {req->in.data, req->in.data + req->in.len};
  uint64_t bclen;
  read_bytes(L, &r, &bclen, sizeof bclen);
  if ((uint64_t)(r.end - r.p) < bclen) return luaL_error(L, "aqueue.work: internal error: truncated bytecode");
  push_function(L, a->w, r.p, (size_t)bclen);
  r.p += bclen;
  uint32_t nargs = read_u32(L, &r);
  luaL_checkstack(L, (int)(nargs > 100000 ? 100000 : nargs) + 8, "aqueue.work: too many arguments");
  for (uint32_t i = 0; i < nargs; i++) decode_value(L, &r, 0);
  if (lua_pcall(L, (int)nargs, LUA_MULTRET, 0) != 0) {
    req->error_code = AQ_EWORK; /* fn raised */
    req->error = error_message(L);
    if (!req->error) return luaL_error(L, "out of memory");
    return 0;
  }
  int n = lua_gettop(L);
  luaL_checkstack(L, ENCODE_STACK, "aqueue.work: no stack left to encode the results");
  encoder e = {.L = L, .out = &req->out};
  wbuf_put_u32(&req->out, (uint32_t)n);
  for (int i = 1; i <= n; i++) {
    if (encode_value(&e, i) != 0) {
      char msg[512];
      describe_failure(&e, msg, sizeof msg, "result", i, "back from");
      wbuf_free(&req->out);
      lua_pushfstring(L, "aqueue.work: %s", msg);
      req->error_code = AQ_EWORK; /* a result cannot cross */
      req->error = error_message(L);
      if (!req->error) return luaL_error(L, "out of memory");
      return 0;
    }
  }
  if (req->out.oom) {
    wbuf_free(&req->out);
    return luaL_error(L, "aqueue.work: out of memory for fn's results");
  }
  return 0;
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

/* On a pool thread. */
static void run_in_pool(uv_work_t *work) {
  work_req *req = work->data;
  worker *w = worker_get();
  if (!w) {
    req->error_code = "ENOMEM";
    req->error = strdup("aqueue.work: cannot create a Lua state on the pool thread (out of memory)");
    return;
  }
  pool_call_args a = {req, w};
  if (lua_cpcall(w->L, pool_call, &a) != 0) {
    free(req->error);
    req->error_code = "ENOMEM"; /* pool_call itself failed: memory or stack */
    req->error = error_message(w->L);
    wbuf_free(&req->out);
  }
  lua_settop(w->L, 0);
  trim_heap(w);
}

/* --- the loop-thread side --- */

struct work_module {
  lua_State *decoder; /* a coroutine of the engine's state where results are rebuilt */
  int decoder_ref;    /* its registry ref (keeps it alive) */
  int decode_fn_ref;  /* registry ref of decode_results, so calling it allocates nothing */
};

/* Protected, in the decoder coroutine: rebuilds fn's results from req->out. */
static int decode_results(lua_State *L) {
  work_req *req = lua_touserdata(L, 1);
  lua_settop(L, 0);
  reader r = {req->out.data, req->out.data + req->out.len};
  uint32_t n = read_u32(L, &r);
  luaL_checkstack(L, (int)(n > 100000 ? 100000 : n) + 8, "aqueue.work: fn returned too many results");
  for (uint32_t i = 0; i < n; i++) decode_value(L, &r, 0);
  return (int)n;
}

static void after_work(uv_work_t *work, int status) {
  work_req *req = work->data;
  aq_task *task = req->task;
  if (!task) { /* cancelled: nobody waits for these results */
    req_free(req);
    return;
  }
  if (status != 0) { /* UV_ECANCELED comes only after cancel_work, which cleared task */
    aq_task_resume_failure(task, uv_err_name(status), "aqueue.work: %s", uv_strerror(status));
  } else if (req->error) {
    aq_task_resume_failure(task, req->error_code, "%s", req->error);
  } else if (!req->out.data) {
    aq_task_resume_failure(task, "ENOMEM", "aqueue.work: out of memory");
  } else {
    /* Rebuild the results in a spare coroutine under lua_pcall, so running
     * out of memory there is an error rather than a panic; then move them. */
    lua_State *H = req->mod->decoder;
    lua_settop(H, 0);
    lua_rawgeti(H, LUA_REGISTRYINDEX, req->mod->decode_fn_ref);
    lua_pushlightuserdata(H, req);
    if (lua_pcall(H, 1, LUA_MULTRET, 0) != 0) {
      aq_task_resume_failure(task, "ENOMEM", "%s", lua_tostring(H, -1)); /* the decoding failed: no memory */
    } else {
      int n = lua_gettop(H);
      lua_State *co = aq_task_state(task);
      if (!lua_checkstack(co, n + 5)) {
        aq_task_resume_failure(task, AQ_EWORK, "aqueue.work: fn returned too many results");
      } else {
        lua_xmove(H, co, n);
        aq_task_resume(task, n);
      }
    }
    lua_settop(H, 0);
  }
  req_free(req);
}

/* The task was cancelled (Ctrl-C, a timeout, handle:cancel): take the work off
 * the queue if it has not started; if it runs, let it finish, and after_work
 * drops the results. Either way after_work frees the request. */
static void cancel_work(aq_task *task, void *data) {
  (void)task;
  work_req *req = data;
  req->task = NULL;
  uv_cancel((uv_req_t *)&req->work);
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  return wbuf_put(ud, p, sz);
}

/* Checks that the function at index 1 can be sent, and pushes its bytecode
 * (cached per function in the weak table at upvalue 2). Raises otherwise. */
static void push_bytecode(lua_State *L) {
  if (lua_type(L, 1) != LUA_TFUNCTION)
    luaL_error(L, "aqueue.work: fn must be a function (got %s)", luaL_typename(L, 1));
  if (lua_iscfunction(L, 1))
    luaL_error(L, "aqueue.work: fn is a C function; only a Lua function can be sent to a pool thread");
  const char *name = lua_getupvalue(L, 1, 1);
  if (name) {
    lua_pop(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
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
  lua_pushvalue(L, 1);
  lua_rawget(L, lua_upvalueindex(2));
  if (lua_type(L, -1) == LUA_TSTRING) return;
  lua_pop(L, 1);
  wbuf bc = {0};
  lua_pushvalue(L, 1);
  int rc = lua_dump(L, dump_writer, &bc);
  lua_pop(L, 1);
  if (rc != 0 || bc.oom) {
    wbuf_free(&bc);
    luaL_error(L, "aqueue.work: cannot dump fn (out of memory)");
  }
  lua_pushlstring(L, bc.data, bc.len);
  wbuf_free(&bc);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, -2);
  lua_rawset(L, lua_upvalueindex(2));
}

/* aqueue.work(fn, ...) -> fn(...)'s results, computed on a pool thread.
 * Raises when fn or an argument cannot be sent; returns nil, "EWORK: ...",
 * "EWORK" when fn raised or a result cannot come back (nil, "ENOMEM: ...",
 * "ENOMEM" when memory ran out on the way). */
static int l_work(lua_State *L) {
  aq_task *task = aq_task_current(L);
  work_module *mod = lua_touserdata(L, lua_upvalueindex(1));
  int nargs = lua_gettop(L) - 1;
  push_bytecode(L);
  luaL_checkstack(L, ENCODE_STACK, "aqueue.work: no stack left");
  size_t bclen;
  const char *bc = lua_tolstring(L, -1, &bclen);

  work_req *req = calloc(1, sizeof *req);
  if (!req) return luaL_error(L, "aqueue.work: out of memory");
  req->mod = mod;
  req->task = task;
  req->work.data = req;
  wbuf_put_u64(&req->in, bclen);
  wbuf_put(&req->in, bc, bclen);
  wbuf_put_u32(&req->in, (uint32_t)nargs);
  encoder e = {.L = L, .out = &req->in};
  for (int i = 2; i <= nargs + 1; i++) {
    if (encode_value(&e, i) != 0) {
      char msg[512];
      describe_failure(&e, msg, sizeof msg, "argument", i - 1, "to");
      req_free(req);
      return luaL_error(L, "aqueue.work: %s", msg);
    }
  }
  if (req->in.oom) {
    req_free(req);
    return luaL_error(L, "aqueue.work: out of memory for the arguments");
  }
  lua_pop(L, 1); /* the bytecode */
  int err = uv_queue_work(aq_engine_loop(aq_engine_from_lua(L)), &req->work, run_in_pool, after_work);
  if (err) {
    req_free(req);
    return luaL_error(L, "aqueue.work: %s", uv_strerror(err));
  }
  return aq_task_yield(L, cancel_work, req);
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
