/*
 * sched_runner.h — the scheduler's record of one runner task: the worker slot
 * it holds, the job it runs, that job's timeout and its set_desc text.
 *
 * A runner is a task (task.h) the scheduler created to run item jobs; the
 * task points to this record through its owner_data, which only the
 * scheduler reads. The record is made with the task (sched_dispatch) and
 * freed when the task ends (the scheduler's task-ending hook).
 */
#ifndef AQ_SCHED_RUNNER_H
#define AQ_SCHED_RUNNER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "task.h"

/* A job names an item and what to run for it, as one number:
 * id << AQ_JOB_ID_SHIFT | kind, kind being AQ_JOB_PROCESS (run
 * item:process()) or AQ_JOB_HOOK (run item:after_children_processed()).
 * 0 is no job. Defined here only: aqueue.core exports these constants
 * (core_lua.c) and lua/aqueue/sched.lua reads them from there. */
enum { AQ_JOB_PROCESS = 0, AQ_JOB_HOOK = 1, AQ_JOB_KIND_MASK = 1, AQ_JOB_ID_SHIFT = 1 };
static inline int32_t sched_job(int32_t id, int32_t kind) { return id << AQ_JOB_ID_SHIFT | kind; }
static inline int32_t sched_job_item(int32_t job) { return job >> AQ_JOB_ID_SHIFT; }
static inline int sched_job_is_process(int32_t job) { return (job & AQ_JOB_KIND_MASK) == AQ_JOB_PROCESS; }

typedef struct {
  aq_task *task;       /* the runner task this record belongs to */
  void *sched;         /* the scheduler that owns it, for the timeout's callback */
  int32_t slot;        /* worker slot held, -1 when none */
  int32_t job;         /* current job (AQ_JOB_* encoding above), 0 when none */
  int wants_slot;      /* woken from an unslotted wait: needs a slot before it runs */
  int starting;        /* woken by dispatch for a job it has not taken yet */
  uv_timer_t *timeout_timer; /* the item's `timeout`, made at first use, owned */
  double timeout_s;    /* the armed timeout, for the error message */
  uint64_t timeout_due_ns; /* hrtime the armed timeout passes, 0 when none: the
                        * timer cannot fire while the task runs without yielding */
  int timed_out;       /* destroyed by its timeout: the attempt failed */
  char *desc;          /* set_desc text, owned (malloc) */
  size_t desc_len, desc_cap;
} aq_runner;

/* The runner record of task t, NULL when t is not a runner. */
static inline aq_runner *runner_of(const aq_task *t) { return (aq_runner *)t->owner_data; }

/* The hrtime the job of task t times out, 0 when none (or t is no runner). */
static inline uint64_t runner_deadline(const aq_task *t) {
  const aq_runner *r = runner_of(t);
  return r ? r->timeout_due_ns : 0;
}

/* A new record (no slot, no job) for a runner of scheduler `sched`; NULL
 * when memory runs out. runner_attach ties it to its task. */
aq_runner *runner_new(void *sched);
void runner_attach(aq_runner *r, aq_task *t);

/* Frees the record: its timeout timer is closed (and freed by the close
 * callback), the task no longer points to it. */
void runner_free(aq_runner *r);

/* Stops the job's timeout. Returns 1 when one was armed (its deadline is
 * gone), else 0. Inline: every job ends through here. */
static inline int runner_timeout_stop(aq_runner *r) {
  int had = r->timeout_due_ns != 0;
  r->timeout_due_ns = 0;
  if (r->timeout_timer) uv_timer_stop(r->timeout_timer);
  return had;
}

/* The job's text for the display (set_desc); out of memory, the old text stays. */
void runner_set_desc(aq_runner *r, const char *text, size_t len);

#endif
