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
 * running the engine), unless its comment says otherwise.
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

#include <lua.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AQUEUE_VERSION_MAJOR 0
#define AQUEUE_VERSION_MINOR 1
#define AQUEUE_VERSION_PATCH 0

#if defined(__GNUC__)
#define AQ_EXPORT __attribute__((visibility("default")))
#else
#define AQ_EXPORT
#endif

typedef struct aq_engine aq_engine; /* opaque: one per process */
typedef struct aq_task aq_task;     /* opaque: one per engine task */

/* Called by the engine when a task that waits on your operation is cancelled
 * (Ctrl-C, shutdown, a cancelled handle). Stop the operation and release what it
 * owns; do not touch the task's Lua state and do not resume it. Called at most
 * once, on the loop thread, never from inside a task. */
typedef void (*aq_cancel_fn)(aq_task *task, void *data);

/* The engine that runs the Lua state L (a task's coroutine or the main state).
 * Never fails inside aqueue-run. */
AQ_EXPORT aq_engine *aq_engine_from_lua(lua_State *L);

/* The engine's libuv loop. Handles you start on it must be closed by you. */
AQ_EXPORT uv_loop_t *aq_engine_loop(aq_engine *engine);

/* The task whose coroutine is L, when L is the running task. Raises a Lua error
 * (it does not return) when L is not a task that may yield into the engine:
 * for example a coroutine the script created itself. Use it at the start of
 * every yielding binding, before starting any operation. */
AQ_EXPORT aq_task *aq_task_current(lua_State *L);

/* The coroutine of a task: push resume values onto it before aq_task_resume. */
AQ_EXPORT lua_State *aq_task_state(aq_task *task);

/* Suspends the running task until aq_task_resume. `cancel` (may be NULL when
 * there is nothing to release) is called instead if the task is cancelled while
 * it waits. Use exactly as `return aq_task_yield(L, cancel, data);` in a
 * lua_CFunction; L must be the coroutine of aq_task_current(L). */
AQ_EXPORT int aq_task_yield(lua_State *L, aq_cancel_fn cancel, void *data);

/* Makes a waiting task runnable again. Before calling, push `nresults` values
 * onto aq_task_state(task): they become the results of the binding that
 * yielded. Clears the cancel hook. Never runs Lua: the task continues later,
 * from the engine's resume driver. */
AQ_EXPORT void aq_task_resume(aq_task *task, int nresults);

/* The I/O-failure form of aq_task_resume: the binding returns nil, message. */
AQ_EXPORT void aq_task_resume_error(aq_task *task, const char *message);

/* Registers fn(engine, data) to run once when the engine closes: after every
 * task was cancelled (so cancel hooks have run), while the loop still runs
 * close callbacks, before the Lua state is closed. For state a module keeps
 * for the whole engine (a connection pool, thread-pool Lua states). Hooks run
 * in reverse order of registration. Returns 0, or -1 when out of memory. */
AQ_EXPORT int aq_engine_on_close(aq_engine *engine, void (*fn)(aq_engine *engine, void *data), void *data);

#ifdef __cplusplus
}
#endif
#endif /* AQUEUE_H */
