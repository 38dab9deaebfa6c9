/*
 * test_sched_backoff.c — unit tests of a retry's wait (engine/core/sched_backoff.h):
 * the ceiling doubles from `base` per retry up to `cap`, the jitter is in
 * [0, 1) and spreads over it, and so every wait is within [0, ceiling].
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "sched_backoff.h"

static void test_ceiling(void) {
  double want[] = {1, 2, 4, 8, 16, 30, 30};
  int ok = 1;
  for (int retry = 1; retry <= 7; retry++) ok &= aq_backoff_ceiling_s(1.0, 30.0, retry) == want[retry - 1];
  check(ok, "base 1 s, cap 30 s: retries 1..7 wait at most 1 2 4 8 16 30 30 s");
  check(aq_backoff_ceiling_s(0.25, 1e9, 3) == 1.0, "base 0.25 s, retry 3: at most 1 s");
  check(aq_backoff_ceiling_s(0.5, 0.1, 1) == 0.1, "a cap below base caps the first retry too");
  check(aq_backoff_ceiling_s(1.0, 60.0, 1000) == 60.0, "a far retry stays at the cap (no overflow)");
}

static void test_jitter(void) {
  uint64_t state = 0x9e3779b97f4a7c15ull;
  double lo = 1, hi = 0, sum = 0;
  int in_range = 1, zero_state = 0, below[10] = {0};
  const int n = 100000;
  for (int i = 0; i < n; i++) {
    double u = aq_backoff_jitter(&state);
    in_range &= u >= 0 && u < 1;
    zero_state |= state == 0;
    if (u < lo) lo = u;
    if (u > hi) hi = u;
    sum += u;
    if (u >= 0 && u < 1) below[(int)(u * 10)]++;
  }
  check(in_range, "%d draws all in [0, 1)", n);
  check(!zero_state, "the generator's state never becomes 0");
  check(lo < 0.001 && hi > 0.999, "they spread over the whole range (%g .. %g)", lo, hi);
  int even = 1;
  for (int i = 0; i < 10; i++) even &= below[i] > n / 10 * 9 / 10 && below[i] < n / 10 * 11 / 10;
  check(even, "each tenth of [0, 1) gets about a tenth of the draws");
  check(fabs(sum / n - 0.5) < 0.01, "their mean is 0.5 (got %g)", sum / n);

  uint64_t a = 42, b = 42;
  int same = 1;
  for (int i = 0; i < 100; i++) same &= aq_backoff_jitter(&a) == aq_backoff_jitter(&b);
  check(same, "the same seed gives the same waits");
}

/* Retry n of an item waits ceiling(n) * jitter: within [0, ceiling(n)]. */
static void test_wait_bounds(void) {
  uint64_t state = 1;
  int ok = 1;
  for (int retry = 1; retry <= 12; retry++)
    for (int i = 0; i < 1000; i++) {
      double ceiling = aq_backoff_ceiling_s(0.1, 5.0, retry);
      double wait = ceiling * aq_backoff_jitter(&state);
      ok &= wait >= 0 && wait <= ceiling && ceiling <= 5.0;
    }
  check(ok, "12 retries x 1000 waits, base 0.1 s, cap 5 s: every wait within [0, its ceiling]");
}

int main(void) {
  test_ceiling();
  test_jitter();
  test_wait_bounds();
  return check_summary();
}
