/*
 * sched_backoff.h — the arithmetic of a retry's wait (run_queue's retries,
 * Item.retry_backoff): exponential backoff with full jitter.
 *
 * Retry n (1 for the first) waits a uniform time in
 * [0, min(cap, base * 2^(n - 1))], so many items failing together do not
 * retry together. The jitter comes from a xorshift64* generator of the
 * scheduler's own: enough for spreading retries, and not shared with the
 * script's math.random.
 *
 * Pure functions: no clock, no global state, so tests/c/test_sched_backoff.c
 * checks them exactly.
 */
#ifndef AQ_SCHED_BACKOFF_H
#define AQ_SCHED_BACKOFF_H

#include <math.h>
#include <stdint.h>

/* The longest wait of retry `retry` (1 for the first), in seconds. */
static inline double aq_backoff_ceiling_s(double base_s, double cap_s, int retry) {
  double ceiling = base_s * ldexp(1.0, retry - 1);
  return ceiling > cap_s ? cap_s : ceiling;
}

/* The next number of the generator whose state is *state (never 0), in [0, 1). */
static inline double aq_backoff_jitter(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

#endif
