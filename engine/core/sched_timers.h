/*
 * sched_timers.h — the scheduler's clocks above its item tree: a failed
 * process()'s retry after a backoff, the `timeout` of a process() call, and
 * run_queue{ max_time = } (how: sched_timers.c).
 */
#ifndef AQ_SCHED_TIMERS_H
#define AQ_SCHED_TIMERS_H

#include "scheduler.h"

/* Process failed: retry after a backoff (returns its seconds) or not (-1). */
double sched_retry(aq_sched *s, int32_t id, double base_s, double cap_s);
/* The same, for an item of a remote queue: the store waits the backoff and
 * runs it again, so it leaves this scheduler now (sched_hand_back). */
double sched_retry_remote(aq_sched *s, int32_t id, double base_s, double cap_s);
/* Arms the running process()'s timeout. Returns 0, or -1 out of memory. */
int32_t sched_arm_timeout(aq_sched *s, double seconds);
/* Ends the running process()'s timeout: its seconds when it had passed, else 0. */
double sched_timeout_over(aq_sched *s);
/* The job's process() timeout has passed (whether or not its timer fired). */
int sched_job_overdue(const aq_task *t);
/* Ends a task whose process() timed out; the attempt fails (the task's end
 * hands it to Lua). */
void sched_job_timed_out(aq_sched *s, aq_task *t);
void sched_max_time_start(aq_sched *s, double seconds);

#endif
