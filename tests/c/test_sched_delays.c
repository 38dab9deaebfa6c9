/*
 * test_sched_delays.c — unit tests of the heap of entries waiting for a time
 * (engine/core/sched_delays.h) on a bare libuv loop, without Lua: entries
 * come due in due-time order (ties in the order they were added), never
 * before their time, an earlier entry re-arms the timer, a stopped heap lets
 * nothing come due, and the timer closes cleanly.
 */
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "check.h"
#include "sched_delays.h"

#define MAX_SEEN 16

typedef struct {
  int32_t entry[MAX_SEEN];
  double at[MAX_SEEN];   /* sched_now_ms() when it came due */
  int n;
  int afters;            /* calls of `after` */
  int seen_at_after;     /* entries seen when `after` was last called */
} seen;

static void on_due(void *data, int32_t entry) {
  seen *s = data;
  if (s->n < MAX_SEEN) {
    s->entry[s->n] = entry;
    s->at[s->n] = sched_now_ms();
  }
  s->n++;
}

static void on_after(void *data) {
  seen *s = data;
  s->afters++;
  s->seen_at_after = s->n;
}

static void test_due_order(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  seen s = {0};
  aq_delays dl;
  delays_init(&dl, &loop, on_due, on_after, &s);
  double now = sched_now_ms();
  double due[] = {now + 30, now + 10, now + 20, now + 10, now + 5};
  int32_t entries[] = {3, 1, -2, 4, 5}; /* -2: a limit key's wake-up, an entry like any */
  for (int i = 0; i < 5; i++) delays_add(&dl, entries[i], due[i]);
  check(delays_len(&dl) == 5, "5 entries wait (got %zu)", delays_len(&dl));
  uv_run(&loop, UV_RUN_DEFAULT); /* returns once the timer is no longer armed */
  int32_t want[] = {5, 1, 4, -2, 3};
  double want_due[] = {now + 5, now + 10, now + 10, now + 20, now + 30};
  int in_order = s.n == 5, never_early = s.n == 5;
  for (int i = 0; i < 5 && i < s.n; i++) {
    in_order &= s.entry[i] == want[i];
    never_early &= s.at[i] >= want_due[i];
  }
  check(in_order, "entries came due by due time, equal times in the order added: 5 1 4 -2 3 (%d came)", s.n);
  check(never_early, "none came due before its time");
  check(s.afters >= 1 && s.seen_at_after == 5, "`after` ran after the last entries came due (%d calls)", s.afters);
  check(delays_len(&dl) == 0, "the heap is empty");
  delays_close(&dl);
  uv_run(&loop, UV_RUN_DEFAULT);
  check(uv_loop_close(&loop) == 0, "the timer closed: the loop closes");
}

/* The timer is armed for a late entry; an earlier one added after it comes
 * due first. */
static void test_earlier_entry_rearms(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  seen s = {0};
  aq_delays dl;
  delays_init(&dl, &loop, on_due, on_after, &s);
  double now = sched_now_ms();
  delays_add(&dl, 1, now + 200);
  delays_add(&dl, 2, now + 5);
  uv_run(&loop, UV_RUN_DEFAULT);
  check(s.n == 2 && s.entry[0] == 2 && s.entry[1] == 1, "an entry added later but due sooner came first (%d came)",
        s.n);
  check(s.n == 2 && s.at[0] >= now + 5 && s.at[1] >= now + 200, "each at or after its own time");
  delays_close(&dl);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

/* A graceful stop: nothing comes due; the entries stay, to be dropped; a
 * restart lets new entries come due again. */
static void test_stop_and_restart(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  seen s = {0};
  aq_delays dl;
  delays_init(&dl, &loop, on_due, on_after, &s);
  double now = sched_now_ms();
  delays_add(&dl, 1, now + 1);
  delays_add(&dl, 2, now + 2);
  delays_stop(&dl);
  uv_run(&loop, UV_RUN_DEFAULT);
  check(s.n == 0 && s.afters == 0, "stopped: nothing came due (%d)", s.n);
  int32_t entry;
  int popped = 0;
  while (delays_pop(&dl, &entry)) popped++;
  check(popped == 2 && delays_len(&dl) == 0, "the 2 entries are taken out by pop (%d)", popped);
  delays_clear(&dl);
  delays_restart(&dl);
  delays_add(&dl, 7, sched_now_ms() + 1);
  uv_run(&loop, UV_RUN_DEFAULT);
  check(s.n == 1 && s.entry[0] == 7, "restarted: a new entry comes due (%d came)", s.n);
  delays_clear(&dl);
  delays_close(&dl);
  uv_run(&loop, UV_RUN_DEFAULT);
  check(uv_loop_close(&loop) == 0, "closed after a stop and a restart");
}

int main(void) {
  test_due_order();
  test_earlier_entry_rearms();
  test_stop_and_restart();
  return check_summary();
}
