/*
 * sched_timers.c — the scheduler's clocks above its item tree: a failed
 * process()'s retry after a backoff, the `timeout` of a process() call, and
 * run_queue{ max_time = }.
 *
 * A retry waits in the scheduler's `delays` (sched_delays.c) for a backoff
 * (sched_backoff.h). Each runner that runs an item with a timeout owns a uv
 * timer of its own in its record (sched_runner.h: made at first use, closed
 * when the task ends); its expiry destroys the runner task, which cancels
 * what it waits on, and the attempt fails (the scheduler's task-ending hook
 * hands it to Lua).
 */
#include <stdlib.h>

#include "sched_backoff.h"
#include "sched_timers.h"

/* --- retries --- */

/* The wait before attempt n + 1 of item `id`, or -1 when it has none left. */
static double retry_wait(aq_sched *s, int32_t id, double base_s, double cap_s) {
  int32_t attempts = items_attempts(&s->items, id);
  if (attempts >= items_max_attempts(&s->items, id)) return -1;
  return aq_backoff_ceiling_s(base_s, cap_s, attempts) * aq_backoff_jitter(&s->jitter_state);
}

/* The running item `id` is no longer running here: it waits for a retry. */
static void retry_counted(aq_sched *s, int32_t id) {
  aq_class_stats *c = &s->classes[s->items.recs[id].class_id];
  c->running--;
  c->retried++;
  s->retried++;
  s->running_jobs--;
  int32_t key = items_limit_key(&s->items, id);
  if (key) limits_item_ended(&s->limits, key);
  sched_job_over(s);
}

double sched_retry(aq_sched *s, int32_t id, double base_s, double cap_s) {
  double wait_s = retry_wait(s, id, base_s, cap_s);
  if (wait_s < 0 || sched_delay_item(s, id, sched_now_ms() + wait_s * 1000.0) != 0) return -1;
  aq_class_stats *c = &s->classes[s->items.recs[id].class_id];
  c->queued++;
  c->retrying++;
  retry_counted(s, id);
  /* A graceful stop drops the item with the other waiting ones. */
  if (s->stopping) sched_notify_waiter(s);
  return wait_s;
}

double sched_retry_remote(aq_sched *s, int32_t id, double base_s, double cap_s) {
  double wait_s = retry_wait(s, id, base_s, cap_s);
  if (wait_s < 0) return -1;
  retry_counted(s, id);
  sched_hand_back(s, id);
  return wait_s;
}

/* --- timeouts --- */

void sched_job_timed_out(aq_sched *s, aq_task *t) {
  runner_of(t)->timed_out = 1;
  task_destroy(t); /* cancels what it waits on; hands the job to Lua */
  sched_dispatch(s);
}

static void on_job_timeout(uv_timer_t *timer) {
  aq_runner *r = timer->data;
  sched_job_timed_out(r->sched, r->task);
}

int sched_job_overdue(const aq_task *t) {
  const aq_runner *r = runner_of(t);
  return r && r->timeout_due_ns && r->job && sched_job_is_process(r->job) && uv_hrtime() >= r->timeout_due_ns;
}

/* The running job's process() has returned: its timeout no longer applies.
 * Returns the timeout in seconds when it had passed (the attempt failed,
 * though no timer could fire while the task did not yield), else 0. */
double sched_timeout_over(aq_sched *s) {
  aq_task *t = s->tasks->current;
  aq_runner *r = t ? runner_of(t) : NULL;
  if (!r || !r->timeout_due_ns) return 0;
  int over = uv_hrtime() >= r->timeout_due_ns;
  if (runner_timeout_stop(r)) watchdog_set_deadline(s->watchdog, 0);
  return over ? r->timeout_s : 0;
}

int32_t sched_arm_timeout(aq_sched *s, double seconds) {
  aq_task *t = s->tasks->current;
  aq_runner *r = t ? runner_of(t) : NULL;
  if (!r || !r->job || !(seconds > 0)) return 0;
  if (!r->timeout_timer) {
    r->timeout_timer = malloc(sizeof *r->timeout_timer);
    if (!r->timeout_timer) return -1; /* the attempt fails: it would run without its timeout */
    uv_timer_init(s->loop, r->timeout_timer);
    r->timeout_timer->data = r;
  }
  /* The deadline itself, for when the task does not yield (watchdog.h). */
  r->timeout_due_ns = uv_hrtime() + (seconds < 1e9 ? (uint64_t)(seconds * 1e9) : (uint64_t)1e18);
  watchdog_set_deadline(s->watchdog, r->timeout_due_ns);
  r->timeout_s = seconds;
  aq_timer_start(r->timeout_timer, on_job_timeout, seconds);
  return 0;
}

/* --- max_time --- */

static void on_max_time(uv_timer_t *timer) { sched_request_stop(timer->data, AQ_STOP_MAX_TIME); }

void sched_max_time_start(aq_sched *s, double seconds) {
  aq_timer_start(&s->max_time_timer, on_max_time, seconds);
}
