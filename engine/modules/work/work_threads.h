/*
 * work_threads.h — the Lua states of the thread pool's threads, and running
 * one aqueue.work call in them.
 *
 * Each pool thread gets a Lua state of its own the first time it runs a call
 * (standard libraries open), keeps it for the next calls (with the functions
 * it loaded, by bytecode), and loses it when the engine closes
 * (work_threads_close). A state is only ever used by its own thread.
 *
 * Threads: work_call_run runs on a pool thread and touches only its call and
 * that thread's state; work_threads_close runs on the loop thread, once every
 * call has completed.
 */
#ifndef AQ_WORK_THREADS_H
#define AQ_WORK_THREADS_H

#include "aqueue.h"

/* One call of fn, as it crosses the threads. The loop thread fills `in`
 * before queueing it; the pool thread fills `out` or `error`; the loop thread
 * reads them back, then frees the call (work_call_free). */
typedef struct {
  aq_buf in;              /* u64 bytecode length, bytecode, u32 nargs, the arguments (work_values.h) */
  aq_buf out;             /* u32 nresults, the results */
  char *error;            /* malloc'd message when fn raised or its results cannot cross */
  const char *error_code; /* its code: AQ_EWORK, or "ENOMEM" */
} work_call;

/* On a pool thread: runs the call in this thread's state. Never fails
 * loudly: a failure is left in call->error. */
void work_call_run(work_call *call);

/* Frees what the call holds (not the call itself). */
void work_call_free(work_call *call);

/* On the loop thread, when the engine closes and the pool threads are idle:
 * closes every pool thread's state. A later call makes a fresh one. */
void work_threads_close(void);

#endif
