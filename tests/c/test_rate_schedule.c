/*
 * test_rate_schedule.c — unit tests of the limits.rate arithmetic
 * (engine/core/rate_schedule.h), on simulated clocks: starts that come late by a
 * timer's granularity keep the asked rate; no start is ever before its due
 * time; N starts take at least (N - 1)/r; an idle key does not save up a
 * burst. Prints one line per check and a count; exits 1 on a failure.
 */
#include <math.h>
#include <stdio.h>

#include "rate_schedule.h"
#include "check.h"


/* A key with always an item waiting, woken by a timer that counts whole
 * milliseconds (it fires at the first whole ms after the due time, plus
 * `extra_ms` of loop latency): each wake starts every item that is due.
 * Returns the time of the n-th start (the first is at `t0`); *early counts
 * starts made before their due time. */
static double simulate(double rate, int n, double t0, double extra_ms, int *early) {
  double interval = 1000.0 / rate, due = 0, now = t0, last = t0;
  int started = 0;
  *early = 0;
  while (started < n) {
    while (started < n && aq_rate_may_start(due, now)) {
      if (started > 0 && now < due) (*early)++;
      due = aq_rate_next_due(due, now, interval);
      last = now;
      started++;
    }
    now = ceil(due) + extra_ms; /* the delay timer's wake-up */
  }
  return last;
}

static void test_rates_kept(void) {
  static const double rates[] = {200, 1000, 5000, 10000};
  for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
    double r = rates[i];
    int n = (int)(r * 2), early;
    double t0 = 1000.25;
    double last = simulate(r, n, t0, 0.7, &early);
    double achieved = (n - 1) / ((last - t0) / 1000.0);
    check(early == 0, "rate %g: no start before its due time", r);
    check(last - t0 >= (n - 1) * 1000.0 / r - 1e-6, "rate %g: %d starts take at least (N-1)/r (%.3f ms)", r, n,
          last - t0);
    check(achieved >= 0.95 * r && achieved <= r * 1.000001, "rate %g: achieved %.1f/s, within 5%% below", r,
          achieved);
  }
}

static void test_schedule_from_due_times(void) {
  /* 100/s: due every 10 ms; starts 2 ms late keep the 10 ms grid. */
  double due = aq_rate_next_due(0, 500, 10);
  check(due == 510, "the first start begins the schedule (due %g)", due);
  due = aq_rate_next_due(due, 512, 10);
  check(due == 520, "a start 2 ms late: the next is due 10 ms after the late one's due time (%g)", due);
  due = aq_rate_next_due(due, 521.5, 10);
  check(due == 530, "and again (%g)", due);
  check(!aq_rate_may_start(530, 529.999), "not before its due time");
  check(aq_rate_may_start(530, 530), "at its due time");
}

static void test_idle_saves_no_burst(void) {
  /* 1000/s, then the key has nothing to start for a second. */
  double due = aq_rate_next_due(0, 100, 1);
  due = aq_rate_next_due(due, 101, 1);
  check(due == 102, "busy: due 1 ms apart (%g)", due);
  due = aq_rate_next_due(due, 1102, 1);
  check(due == 1103, "after an idle second the schedule starts again from that start (%g)", due);
  check(!aq_rate_may_start(due, 1102.5), "so the next start waits its full interval");
  /* Late by exactly the window: still caught up; a hair more: restarted. */
  double w = aq_rate_window_ms(1);
  check(aq_rate_next_due(200, 200 + w, 1) == 201, "late by the window (%g ms): caught up", w);
  check(aq_rate_next_due(200, 200 + w + 0.001, 1) == 200 + w + 1.001, "late by more: restarted");
  check(aq_rate_window_ms(50) == 50, "a slow rate's window is one interval");
}

static void test_catch_up_is_bounded(void) {
  /* 10000/s (0.1 ms apart), a start 4 ms late: the starts due meanwhile are
   * made up at once, no more than the window's worth. */
  double interval = 0.1, due = aq_rate_next_due(0, 0, interval), now = due + 4.0;
  int burst = 0;
  while (aq_rate_may_start(due, now)) {
    due = aq_rate_next_due(due, now, interval);
    burst++;
  }
  check(burst <= (int)(aq_rate_window_ms(interval) / interval) + 1, "catch-up burst %d is bounded by the window",
        burst);
  check(burst >= 40, "and makes up for the late starts (%d)", burst);
}

int main(void) {
  test_schedule_from_due_times();
  test_idle_saves_no_burst();
  test_catch_up_is_bounded();
  test_rates_kept();
  return check_summary();
}
