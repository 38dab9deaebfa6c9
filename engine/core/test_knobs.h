/*
 * test_knobs.h — wall-clock timings of the display and the watchdog that the
 * test suite may shorten through the environment (README, "Development").
 *
 * Some behaviour only shows after a fixed time: the ETA counts as exact once
 * the total has not grown for 3 s, a plain progress line comes every 2 s, a
 * json one every second, a resume that holds the loop is warned about after
 * 1 s, an unhandled stop signal ends the process after 1 s. A test that only
 * needs the event to happen sets the variable and waits less; one test of
 * each still runs with the defaults. Not a user setting: unset, the
 * behaviour is the default one.
 *
 * Each knob is read once, by its owner when it starts (display_init,
 * watchdog_start), never on a hot path.
 */
#ifndef AQ_TEST_KNOBS_H
#define AQ_TEST_KNOBS_H

#include <stdint.h>
#include <stdlib.h>

#define AQ_TEST_ETA_STABLE_MS "AQUEUE_TEST_ETA_STABLE_MS"   /* display: the ETA exact after (3000) */
#define AQ_TEST_PLAIN_TICK_MS "AQUEUE_TEST_PLAIN_TICK_MS"   /* display: a plain progress line every (2000) */
#define AQ_TEST_JSON_TICK_MS "AQUEUE_TEST_JSON_TICK_MS"     /* display: a json progress line every (1000) */
#define AQ_TEST_NO_YIELD_WARN_MS "AQUEUE_TEST_NO_YIELD_WARN_MS" /* watchdog: the "without yielding" warning after (1000) */
#define AQ_TEST_EXIT_GRACE_MS "AQUEUE_TEST_EXIT_GRACE_MS"   /* watchdog: the last resort after (1000) */

/* The knob `name` in milliseconds: its value when it is a whole number from 1
 * to a day, else `default_ms`. */
static inline uint64_t aq__test_knob_ms(const char *name, uint64_t default_ms) {
  const char *text = getenv(name);
  if (!text || !*text) return default_ms;
  char *end;
  unsigned long long ms = strtoull(text, &end, 10);
  return *end == '\0' && ms >= 1 && ms <= 24ull * 3600 * 1000 ? (uint64_t)ms : default_ms;
}

#endif
