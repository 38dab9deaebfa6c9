/*
 * aqueue.h — the C API of the aqueue engine, for its built-in bindings and for
 * third-party C modules loaded with `require`.
 *
 * Model: every piece of Lua runs in an engine *task* (a coroutine owned by the
 * engine). A yielding binding starts an operation (a uv timer, a uv request, ...),
 * and ends with `return aq_task_yield(L, cancel, data);`. When the operation
 * completes, its callback pushes the results onto the task's stack and calls
 * aq_task_resume(); the engine's single resume driver then continues the task,
 * and the pushed values become the binding's return values in Lua.
 *
 * Threads: every function here must be called from the loop thread (the thread
 * running the engine), unless its comment says otherwise. None of them yields
 * unless its comment says so.
 *
 * Ownership: the engine owns tasks and their coroutines. A binding owns the
 * operation it started until either its completion callback runs (it then calls
 * aq_task_resume, and the cancel hook will never be called) or the engine calls
 * its cancel hook (it then must stop the operation and release what it owns;
 * the task will never run again and must not be resumed). Exactly one of the two
 * happens.
 */
#ifndef AQUEUE_H
#define AQUEUE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AQUEUE_VERSION_MAJOR 0
#define AQUEUE_VERSION_MINOR 1
#define AQUEUE_VERSION_PATCH 0
/* The binary interface of this header: raised whenever a change would break a
 * module built against an earlier one. A module is loaded only by an
 * aqueue-run of the same ABI (see AQ_MODULE_CHECK). */
#define AQUEUE_ABI_VERSION 1

#if defined(__GNUC__)
#define AQ_EXPORT __attribute__((visibility("default")))
#define AQ_PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))
#else
#define AQ_EXPORT
#define AQ_PRINTF(fmt_index, args_index)
#endif

typedef struct aq_engine aq_engine; /* opaque: one per process */
typedef struct aq_task aq_task;     /* opaque: one per engine task */

/* Called by the engine when a task that waits on your operation is cancelled
 * (Ctrl-C, shutdown, a cancelled handle). Stop the operation and release what it
 * owns; do not touch the task's Lua state and do not resume it. Called at most
 * once, on the loop thread, never from inside a task. */
typedef void (*aq_cancel_fn)(aq_task *task, void *data);

/* --- modules --- */

/* Checks that the aqueue-run loading a module has the ABI the module was built
 * for, and raises a Lua error naming both otherwise (it does not return then).
 * Call it first thing in your luaopen_ function, through the macro:
 *   int luaopen_mymod(lua_State *L) { AQ_MODULE_CHECK(L, "mymod"); ... } */
AQ_EXPORT void aq_abi_check(lua_State *L, int module_abi, const char *module_name);
#define AQ_MODULE_CHECK(L, name) aq_abi_check((L), AQUEUE_ABI_VERSION, (name))

/* Makes require(name) call `open` (package.preload[name]): for modules linked
 * into a program rather than loaded from a .so. */
AQ_EXPORT void aq_register_module(lua_State *L, const char *name, lua_CFunction open);

/* A named number a module hands to its Lua side (aq_export_ffi_contract). */
typedef struct {
  const char *name;
  int value;
} aq_constant;

/* For a module whose Lua side calls its C functions through LuaJIT's FFI:
 * sets what both sides must agree on in the table at the top of L's stack
 * (the module's table, in its luaopen_ function): `ffi_cdef` = cdef, the
 * declarations for ffi.cdef (best the text of the header the C side is
 * compiled against, embedded at build time, so they cannot differ), and each
 * of the n constants under its name. The strings are copied. */
AQ_EXPORT void aq_export_ffi_contract(lua_State *L, const char *cdef, const aq_constant *constants, size_t n);

/* --- the engine --- */

/* The engine that runs the Lua state L (a task's coroutine or the main state).
 * Never fails inside aqueue-run. */
AQ_EXPORT aq_engine *aq_engine_from_lua(lua_State *L);

/* The engine's libuv loop. Handles you start on it must be closed by you. */
AQ_EXPORT uv_loop_t *aq_engine_loop(aq_engine *engine);

/* The engine's main Lua state: for registry references (luaL_ref/luaL_unref)
 * that outlive the task that made them. Never yield or resume it. */
AQ_EXPORT lua_State *aq_engine_state(aq_engine *engine);

/* Writes a line for the user on stderr, above the live display's panel (never
 * through it); a newline is added when text has none. The text is copied. */
AQ_EXPORT void aq_log(aq_engine *engine, const char *text, size_t len);

/* Stops the engine at once with exit status `status`, as a second Ctrl-C does:
 * every task is cancelled (their cancel hooks run), the summary says `reason`
 * (a string that outlives the engine, e.g. a literal). For a module whose own
 * state failed beyond repair. Not from inside a cancel hook. */
AQ_EXPORT void aq_engine_stop(aq_engine *engine, int status, const char *reason);

/* The task whose coroutine is L, when L is the running task. Raises a Lua error
 * (it does not return) when L is not a task that may yield into the engine:
 * a coroutine the script created itself, or a task that cannot yield where it
 * is now (inside a table.sort comparator, a string.gsub callback, a __gc or
 * other metamethod called from C: "attempt to yield across C-call boundary").
 * Use it at the start of every yielding binding, before starting any
 * operation, so that a yield that cannot happen leaves nothing armed. */
AQ_EXPORT aq_task *aq_task_current(lua_State *L);

/* The coroutine of a task: push resume values onto it before aq_task_resume. */
AQ_EXPORT lua_State *aq_task_state(aq_task *task);

/* Suspends the running task until aq_task_resume. `cancel` (may be NULL when
 * there is nothing to release) is called instead if the task is cancelled while
 * it waits. Use exactly as `return aq_task_yield(L, cancel, data);` in a
 * lua_CFunction; L must be the coroutine of aq_task_current(L). Raises, with
 * the task unchanged, where aq_task_current would: what was started then is
 * the binding's to release, which is why aq_task_current comes first. */
AQ_EXPORT int aq_task_yield(lua_State *L, aq_cancel_fn cancel, void *data);

/* Makes a waiting task runnable again. Before calling, push `nresults` values
 * onto aq_task_state(task): they become the results of the binding that
 * yielded. Clears the cancel hook. Never runs Lua: the task continues later,
 * from the engine's resume driver. */
AQ_EXPORT void aq_task_resume(aq_task *task, int nresults);

/* The I/O-failure form of aq_task_resume: the binding returns nil, message.
 * Prefer aq_task_resume_failure (below), which adds the code. */
AQ_EXPORT void aq_task_resume_error(aq_task *task, const char *message);

/* --- I/O failures ---
 *
 * Every I/O failure reaches Lua in one shape: nil, "CODE: message", "CODE".
 * CODE is stable, for scripts to test: libuv's name of the error where libuv
 * has one (uv_err_name: "ENOENT", "ECONNREFUSED", "ETIMEDOUT", "EAI_NONAME",
 * ...), else one of aqueue's own below. The message is for people: after the
 * code, what failed and on what ("ENOENT: no such file or directory: a.txt").
 * Misuse (a wrong argument) raises instead. README's "I/O failures" lists the
 * codes of the built-in bindings; Lua reads them from require("aqueue.errors"). */
#define AQ_ECERT "ECERT"         /* TLS: the peer's certificate is not trusted */
#define AQ_ETLS "ETLS"           /* TLS: any other failure (handshake, ...) */
#define AQ_EREDIRECTS "EREDIRECTS" /* HTTP: too many redirects */
#define AQ_EHTTP "EHTTP"         /* HTTP: a transfer failure with no better code */
#define AQ_EWORK "EWORK"         /* aqueue.work: fn raised, or its results cannot cross */
#define AQ_EREDIS "EREDIS"       /* aqueue.redis: the server answered with an error reply */
#define AQ_EAUTH "EAUTH"         /* aqueue.redis: the server refused the password */
#define AQ_EAQRUN "EAQRUN"       /* aqueue.redis_run: the shared run in Redis cannot be used */
#define AQ_EJSON "EJSON"         /* aqueue.http: res:json() on a body that is not JSON */
#define AQ_EROBOTS "EROBOTS"     /* aqueue.http: run_queue{ robots = true } and robots.txt disallows the URL */

/* The description of a code of the built-in bindings ("connection refused"),
 * or NULL for a code they never return. The string is static. */
AQ_EXPORT const char *aq_error_text(const char *code);

/* Pushes nil, "CODE: " followed by fmt formatted as lua_pushfstring does
 * (%s %d %f %p %c %%), and "CODE" onto L; returns 3, so a binding that fails
 * before yielding ends with `return aq_push_failure(L, code, fmt, ...);`.
 * `code` is copied. */
AQ_EXPORT int aq_push_failure(lua_State *L, const char *code, const char *fmt, ...);

/* The yielded form: pushes the same three values onto the waiting task and
 * resumes it (as aq_task_resume(task, 3)). Use instead of
 * aq_task_resume_error, whose failures have no code. */
AQ_EXPORT void aq_task_resume_failure(aq_task *task, const char *code, const char *fmt, ...);

/* --- timers --- */

/* Starts `timer` (initialized by you on aq_engine_loop's loop) to call `cb`
 * once, `seconds` from now: never earlier, at most about a millisecond later.
 * libuv counts a timeout from the loop's cached clock, which stands still
 * while tasks run; this reads the clock first and rounds up, so CPU work done
 * earlier in the same loop turn does not make the timer fire early. Use it
 * for every "in N seconds from now" (a timeout, a sleep); 0 or less (and NaN)
 * fires on the next loop turn; very large values are capped (~30000 years).
 * Restarts a timer that is already running. Returns 0, or a libuv error.
 * The timer stays yours: stop or close it as with uv_timer_start. */
AQ_EXPORT int aq_timer_start(uv_timer_t *timer, uv_timer_cb cb, double seconds);

/* --- the thread pool --- */

/* Runs on a pool thread: no Lua, no loop calls; touch only what `data` owns. */
typedef void (*aq_work_fn)(void *data);
/* Runs on the loop thread once the work is done. With L (the task's
 * coroutine): push the binding's results onto L and return how many (for an
 * I/O failure, push nil and a message and return 2). With L NULL (the task was
 * cancelled meanwhile): return 0. Either way, free what data owns. */
typedef int (*aq_after_work_fn)(lua_State *L, void *data);

/* Runs work(data) on libuv's thread pool, then after(L, data) on the loop
 * thread; the values `after` pushes become the binding's results. Yields: use
 * as `return aq_task_work(L, work, after, data);` in a lua_CFunction. `after`
 * is called exactly once, also when the task is cancelled (with L NULL): work
 * that has started runs to its end first (a pool thread cannot be stopped),
 * work that has not is dropped. When the pool cannot take the work, or L
 * cannot yield (see aq_task_current), calls after(NULL, data) and raises a
 * Lua error. */
AQ_EXPORT int aq_task_work(lua_State *L, aq_work_fn work, aq_after_work_fn after, void *data);

/* Registers fn(engine, data) to run once when the engine closes: after every
 * task was cancelled (so cancel hooks have run), while the loop still runs
 * close callbacks, before the Lua state is closed. For state a module keeps
 * for the whole engine (a connection pool, thread-pool Lua states). Hooks run
 * in reverse order of registration. Returns 0, or -1 when out of memory. */
AQ_EXPORT int aq_engine_on_close(aq_engine *engine, void (*fn)(aq_engine *engine, void *data), void *data);

/* A module's state for the whole engine: a zero-filled block of `size` bytes,
 * made on the first call with this `key` (any address of the module's own,
 * e.g. of a static variable) and the same block on later calls. When the
 * engine closes, on_close(engine, state) runs (as an aq_engine_on_close hook:
 * close the module's handles there); the block itself lives until the Lua
 * state is closed. Raises a Lua error when out of memory. */
AQ_EXPORT void *aq_module_state(lua_State *L, const void *key, size_t size,
                                void (*on_close)(aq_engine *engine, void *state));

/* Keeps the loaded module that holds `symbol` (any function of the module's
 * own, e.g. its luaopen_) loaded until the process ends. Lua unloads C
 * modules when its state closes; a module whose libraries keep state past
 * that (TLS libraries' allocations made at load time, a library's
 * per-thread state that the thread pool's threads outlive) calls this from
 * its luaopen_. Returns 0, or -1 when the module cannot be found. */
AQ_EXPORT int aq_module_keep_loaded(const void *symbol);

/* --- a growable byte buffer ---
 *
 * For building output (a frame, a JSON line, a response body) before handing
 * it over in one piece. Start from a zeroed aq_buf. Appends never fail loudly:
 * when memory runs out the buffer is marked `failed`, later appends do
 * nothing, and the owner checks `failed` once at the end. Free with
 * aq_buf_free. */
typedef struct {
  char *data;
  size_t len, cap;
  int failed;
} aq_buf;

static inline int aq_buf_reserve(aq_buf *b, size_t more) {
  if (b->failed) return -1;
  if (b->len + more <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < b->len + more) cap *= 2;
  char *d = realloc(b->data, cap);
  if (!d) {
    b->failed = 1;
    return -1;
  }
  b->data = d;
  b->cap = cap;
  return 0;
}

static inline void aq_buf_add(aq_buf *b, const char *s, size_t n) {
  if (n == 0) return; /* memcpy must not see the NULL data of an empty buffer */
  if (aq_buf_reserve(b, n) == 0) {
    memcpy(b->data + b->len, s, n);
    b->len += n;
  }
}

static inline void aq_buf_puts(aq_buf *b, const char *s) { aq_buf_add(b, s, strlen(s)); }

static inline void aq_buf_printf(aq_buf *b, const char *fmt, ...) AQ_PRINTF(2, 3);
static inline void aq_buf_printf(aq_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    aq_buf_add(b, small, (size_t)n);
    return;
  }
  if (aq_buf_reserve(b, (size_t)n + 1) != 0) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

static inline void aq_buf_reset(aq_buf *b) {
  b->len = 0;
  b->failed = 0;
}

static inline void aq_buf_free(aq_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}

#ifdef __cplusplus
}
#endif
#endif /* AQUEUE_H */
