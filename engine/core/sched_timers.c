/*
 * sched_timers.c — the scheduler's clocks: items that wait for a time (an
 * item's `delay`, a retry's backoff, a limit key's rate), the `timeout` of a
 * process() call, and run_queue{ max_time = }.
 *
 * Waiting items (and limit keys waiting for their rate) are in one heap,
 * `delayed`, ordered by due time (hrtime in milliseconds), with one uv timer
 * armed for the first. Each runner task that
 * runs an item with a timeout owns a uv timer of its own (made at first use,
 * closed when the task ends); its expiry destroys the runner task, which
 * cancels what it waits on, and the attempt fails (scheduler.c,
 * sched_job_abandoned).
 */
#include <math.h>
#include <stdlib.h>

#include "engine.h"

double sched_now_ms(void) { return (double)uv_hrtime() / 1e6; }

/* --- items waiting for a time --- */

static void on_delay_timer(uv_timer_t *timer);

/* Arms the delay timer for the first due item (or stops it). A libuv timer
 * fires once the loop's clock (hrtime in whole milliseconds, read at the start
 * of the iteration, so never ahead of hrtime) reaches its start + timeout:
 * counting from that clock, the timer never fires before the item is due. */
static void arm_delay_timer(aq_engine *E) {
  aq_sched *s = &E->sched;
  int32_t id;
  double due;
  if (s->stopping || !aq_item_queue_peek(&s->delayed, &id, &due)) {
    uv_timer_stop(&s->delay_timer);
    return;
  }
  double wait = due - (double)uv_now(&E->loop);
  uint64_t ms = wait > 0 ? (uint64_t)ceil(wait) : 0;
  uv_timer_start(&s->delay_timer, on_delay_timer, ms, 0);
}

/* Adds an entry (an item id, or -key for a key's wake-up) to `delayed`. */
static int delay_entry(aq_engine *E, int32_t entry, double due_ms) {
  aq_sched *s = &E->sched;
  int32_t first;
  double first_due;
  int was_first = !aq_item_queue_peek(&s->delayed, &first, &first_due) || due_ms < first_due;
  if (aq_item_queue_push(&s->delayed, entry, due_ms) != 0) return -1;
  if (was_first) arm_delay_timer(E);
  return 0;
}

int sched_delay_item(aq_engine *E, int32_t id, double due_ms) {
  if (delay_entry(E, id, due_ms) != 0) return -1;
  E->sched.items[id].state = AQ_ITEM_DELAYED;
  return 0;
}

int sched_delay_key(aq_engine *E, int32_t key, double due_ms) {
  if (delay_entry(E, -key, due_ms) != 0) return -1;
  E->sched.key_wakes++;
  return 0;
}

static void on_delay_timer(uv_timer_t *timer) {
  aq_engine *E = timer->data;
  aq_sched *s = &E->sched;
  double now = sched_now_ms();
  int32_t id;
  double due;
  while (!s->stopping && aq_item_queue_peek(&s->delayed, &id, &due) && due <= now) {
    aq_item_queue_pop(&s->delayed, &id);
    if (id < 0) {
      s->key_wakes--;
      limits_key_wake(E, -id);
      continue;
    }
    aq_item_rec *r = &s->items[id];
    if (r->attempts > 0) s->classes[r->class_id].retrying--;
    sched_item_ready(E, id);
  }
  arm_delay_timer(E);
  sched_dispatch(E);
}

int sched_pop_delayed(aq_engine *E, int32_t *id) {
  aq_sched *s = &E->sched;
  while (aq_item_queue_pop(&s->delayed, id)) {
    if (*id > 0) return 1;
    s->key_wakes--; /* a key's wake-up: nothing to drop */
    s->keys[-*id].wake_pending = 0;
  }
  return 0;
}

/* --- retries --- */

/* xorshift64*: enough for jitter, and not shared with the script's math.random. */
static double jitter_unit(aq_sched *s) {
  uint64_t x = s->jitter_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  s->jitter_state = x;
  return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0; /* [0, 1) */
}

/* Exponential backoff with full jitter: a uniform wait in
 * [0, min(cap, base * 2^(retry - 1))], so many items failing together do not
 * retry together. */
double aq__sched_retry(aq_engine *E, int32_t id, double base_s, double cap_s) {
  aq_sched *s = &E->sched;
  aq_item_rec *r = &s->items[id];
  if (r->attempts >= r->max_attempts) return -1;
  double ceiling = base_s * ldexp(1.0, r->attempts - 1);
  if (ceiling > cap_s) ceiling = cap_s;
  double wait_s = ceiling * jitter_unit(s);
  aq_class_stats *c = &s->classes[r->class_id];
  if (sched_delay_item(E, id, sched_now_ms() + wait_s * 1000.0) != 0) return -1;
  c->running--;
  c->queued++;
  c->retrying++;
  c->retried++;
  s->retried++;
  s->running_jobs--;
  if (r->limit_key) limits_item_ended(E, r);
  sched_job_over(E);
  /* A graceful stop drops the item with the other waiting ones. */
  if (s->stopping) sched_notify_waiter(E);
  return wait_s;
}

/* --- timeouts --- */

void sched_job_timed_out(aq_task *t) {
  aq_engine *E = t->engine;
  t->timed_out = 1;
  task_destroy(t); /* cancels what it waits on; hands the job to Lua */
  sched_dispatch(E);
}

static void on_job_timeout(uv_timer_t *timer) { sched_job_timed_out(timer->data); }

int sched_job_overdue(const aq_task *t) {
  return t->timeout_due_ns && t->job && t->job % 2 == 0 && uv_hrtime() >= t->timeout_due_ns;
}

/* The running job's process() has returned: its timeout no longer applies.
 * Returns the timeout in seconds when it had passed (the attempt failed,
 * though no timer could fire while the task did not yield), else 0. */
double aq__sched_timeout_over(aq_engine *E) {
  aq_task *t = E->current;
  if (!t || !t->timeout_due_ns) return 0;
  int over = uv_hrtime() >= t->timeout_due_ns;
  sched_job_timer_stop(t);
  return over ? t->timeout_s : 0;
}

int32_t aq__sched_arm_timeout(aq_engine *E, double seconds) {
  aq_task *t = E->current;
  if (!t || !t->job || !(seconds > 0)) return 0;
  if (!t->timeout_timer) {
    t->timeout_timer = malloc(sizeof *t->timeout_timer);
    if (!t->timeout_timer) return -1; /* the attempt fails: it would run without its timeout */
    uv_timer_init(&E->loop, t->timeout_timer);
    t->timeout_timer->data = t;
  }
  /* The deadline itself, for when the task does not yield (watchdog.h). */
  t->timeout_due_ns = uv_hrtime() + (seconds < 1e9 ? (uint64_t)(seconds * 1e9) : (uint64_t)1e18);
  watchdog_set_deadline(&E->watchdog, t->timeout_due_ns);
  t->timeout_s = seconds;
  aq_timer_start(t->timeout_timer, on_job_timeout, seconds);
  return 0;
}

void sched_job_timer_stop(aq_task *t) {
  if (t->timeout_due_ns) {
    t->timeout_due_ns = 0;
    if (t->engine->current == t) watchdog_set_deadline(&t->engine->watchdog, 0);
  }
  if (t->timeout_timer) uv_timer_stop(t->timeout_timer);
}

static void free_closed_timer(uv_handle_t *handle) { free(handle); }

void sched_job_timer_free(aq_task *t) {
  if (!t->timeout_timer) return;
  uv_close((uv_handle_t *)t->timeout_timer, free_closed_timer);
  t->timeout_timer = NULL;
}

/* --- max_time --- */

static void on_max_time(uv_timer_t *timer) {
  aq_engine *E = timer->data;
  sched_request_stop(E, AQ_STOP_MAX_TIME);
}

void sched_max_time_start(aq_engine *E, double seconds) {
  aq_timer_start(&E->sched.max_time_timer, on_max_time, seconds);
}
