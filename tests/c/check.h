/*
 * check.h — the one assertion of the C unit tests: each check prints "ok" or
 * "FAIL" with its description and the run goes on, so that one run shows every
 * failure; check_summary() ends main with the counts and the exit status.
 * Included by one test program each (the counters are its own).
 */
#ifndef AQ_TEST_CHECK_H
#define AQ_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int checks_run = 0;
static int checks_failed = 0;

/* Returns cond, so a test can stop a line of checks that depend on it. */
static int check(int cond, const char *fmt, ...) {
  va_list ap;
  checks_run++;
  if (!cond) checks_failed++;
  printf("%s %d - ", cond ? "ok  " : "FAIL", checks_run);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
  return cond;
}

/* Prints "N passed, M failed" (the line ctest's log and CI read) and returns
 * main's exit status. */
static int check_summary(void) {
  printf("%d passed, %d failed\n", checks_run - checks_failed, checks_failed);
  return checks_failed ? 1 : 0;
}

#endif
