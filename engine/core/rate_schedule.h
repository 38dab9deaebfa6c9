/*
 * rate_schedule.h — the arithmetic of limits.rate (sched_limits.c): when may
 * a limit key start its next item?
 *
 * A key with rate r keeps the *due time* of its next start, 1/r after the due
 * time of the previous one, not after the moment that start actually
 * happened: a start that comes a little late (the delay timer counts whole
 * milliseconds, the loop was running other tasks) does not push every later
 * start back, so the key starts r items per second, not fewer. It is a token
 * bucket with a burst of 1 whose token is counted from its due time.
 *
 * Two rules keep it from ever going faster than asked:
 *   - a start never happens before its due time, so N starts in a row take at
 *     least (N - 1)/r seconds;
 *   - when a start comes so late that the key was idle (no item was waiting,
 *     or its per_key limit held it) for more than the catch-up window, the
 *     schedule starts again from that start: idle time is not saved up for a
 *     burst. Within the window, the late starts are made up for at once,
 *     which is at most window * r items (a few milliseconds' worth).
 *
 * Times are milliseconds of one monotonic clock. Pure functions: no state,
 * no clock reads, so tests/c/test_rate_schedule.c checks them exactly.
 */
#ifndef AQ_RATE_SCHEDULE_H
#define AQ_RATE_SCHEDULE_H

/* How late a start may be and still keep the schedule (ms): the delay timer's
 * whole milliseconds, plus a turn of the loop busy with other tasks (the
 * driver runs tasks for up to 10 ms), plus being descheduled on a busy machine.
 * At 10,000/s, 5 ms still lost 2-5 % of the starts on a loaded 2-core machine. */
#define AQ_RATE_CATCHUP_MS 10.0

/* The catch-up window of a key whose starts are interval_ms apart. */
static inline double aq_rate_window_ms(double interval_ms) {
  return interval_ms > AQ_RATE_CATCHUP_MS ? interval_ms : AQ_RATE_CATCHUP_MS;
}

/* Whether a key whose next start is due at due_ms may start one at now_ms. */
static inline int aq_rate_may_start(double due_ms, double now_ms) { return due_ms <= now_ms; }

/* The due time of the start after one made at now_ms (>= due_ms) when it was
 * due at due_ms. A key that never started has due_ms 0: its first start
 * begins the schedule. */
static inline double aq_rate_next_due(double due_ms, double now_ms, double interval_ms) {
  if (now_ms - due_ms > aq_rate_window_ms(interval_ms)) return now_ms + interval_ms;
  return due_ms + interval_ms;
}

#endif
