/*
 * sched_ffi.c — the FFI entry points (core_ffi.h): each finds the engine's
 * scheduler or display and hands on (a tail call: the hot path pays one
 * jump). The scheduler itself does not know the engine that holds it.
 */
#include "engine.h"
#include "core_ffi.h"
#include "sched_timers.h"

int32_t aq__sched_class_add(aq_engine *E, const char *name) { return sched_class_add(&E->sched, name); }

int32_t aq__sched_enqueue(aq_engine *E, int32_t parent, int32_t class_id, double priority, int32_t flags,
                          double delay_s, int32_t limit_key, int32_t max_attempts) {
  return sched_enqueue(&E->sched, parent, class_id, priority, flags, delay_s, limit_key, max_attempts);
}

int32_t aq__sched_take(aq_engine *E) { return sched_take(&E->sched); }

void aq__sched_process_done(aq_engine *E, int32_t id, int32_t ok) { sched_process_done(&E->sched, id, ok); }

void aq__sched_hook_done(aq_engine *E, int32_t id, int32_t ok) { sched_hook_done(&E->sched, id, ok); }

int32_t aq__sched_reap(aq_engine *E) { return sched_reap(&E->sched); }

int32_t aq__sched_reaped_count(aq_engine *E) { return E->sched.items.nreaped; }

int32_t aq__sched_item_finished(aq_engine *E, int32_t id) { return sched_item_finished(&E->sched, id); }

int32_t aq__sched_current_job(aq_engine *E) { return sched_current_job(&E->sched); }

/* 1 once a graceful stop of the run began (first Ctrl-C, max_items,
 * max_time), until the next run starts: aqueue.stopping(). */
int32_t aq__sched_stopping(aq_engine *E) { return E->sched.stopping; }

void aq__sched_set_desc(aq_engine *E, const char *text, size_t len) { sched_set_desc(&E->sched, text, len); }

void aq__sched_note_duplicate(aq_engine *E) { E->sched.duplicates++; }

int32_t aq__sched_attempt(aq_engine *E, int32_t id) { return sched_attempt(&E->sched, id); }

double aq__sched_retry(aq_engine *E, int32_t id, double base_s, double cap_s) {
  return sched_retry(&E->sched, id, base_s, cap_s);
}

int32_t aq__sched_arm_timeout(aq_engine *E, double seconds) { return sched_arm_timeout(&E->sched, seconds); }

double aq__sched_timeout_over(aq_engine *E) { return sched_timeout_over(&E->sched); }

int32_t aq__sched_limit_key_add(aq_engine *E, int32_t per_key, double rate) {
  return limits_key_add(&E->sched.limits, per_key, rate);
}

int32_t aq__sched_restore_open(aq_engine *E, int32_t parent, int32_t class_id, int32_t flags) {
  return sched_restore_open(&E->sched, parent, class_id, flags);
}

void aq__sched_restore_release(aq_engine *E, int32_t id) { sched_restore_release(&E->sched, id); }

int32_t aq__sched_restore_attempts(aq_engine *E, int32_t id, int32_t attempts) {
  return sched_restore_attempts(&E->sched, id, attempts);
}

/* track_overall items finished before the restart: the overall bar counts them. */
void aq__sched_add_overall_done(aq_engine *E, int64_t n) {
  E->sched.overall_total += n;
  E->sched.overall_done += n;
}

void aq__sched_hold_open(aq_engine *E, int32_t parent) { sched_hold_open(&E->sched, parent); }

void aq__sched_hold_run(aq_engine *E, int32_t delta) { sched_hold_run(&E->sched, delta); }

double aq__sched_retry_remote(aq_engine *E, int32_t id, double base_s, double cap_s) {
  return sched_retry_remote(&E->sched, id, base_s, cap_s);
}

void aq__sched_stop_after_starts(aq_engine *E, int64_t n) {
  aq_sched *s = &E->sched;
  s->max_items = n;
  if (s->started >= n) sched_request_stop(s, AQ_STOP_MAX_ITEMS);
}

void aq__display_shared_run(aq_engine *E, int64_t processes, int64_t queued, int64_t running, int64_t done,
                            int64_t failed) {
  display_set_shared_run(&E->display, processes, queued, running, done, failed);
}

void aq__display_key_name(aq_engine *E, int32_t key, const char *name, size_t len) {
  display_set_key_name(&E->display, key, name, len);
}
