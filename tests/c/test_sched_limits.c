/*
 * test_sched_limits.c — unit tests of the limit keys (engine/core/sched_limits.h)
 * on their own: no Lua, no loop. The run's queue is a plain aq_item_queue, the
 * clock a variable the test moves, and wake-ups are recorded instead of timed.
 * A "worker" takes from the queue as the scheduler does: an id starts as it
 * is, a token (-key) starts its key's best held item if the key may start one.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "item_queue.h"
#include "sched_limits.h"

/* --- the test's clock and wake-ups --- */

static double now_ms;
static double fake_now(void) { return now_ms; }

static int wakes;              /* wake-ups asked for */
static int32_t wake_key;       /* the last one's key */
static double wake_due;        /* and due time */

static int record_wake(void *data, int32_t key, double due_ms) {
  (void)data;
  wakes++;
  wake_key = key;
  wake_due = due_ms;
  return 0;
}

typedef struct {
  aq_item_queue queued;
  aq_limits limits;
} run;

static void run_init(run *r, aq_order order) {
  aq_item_queue_init(&r->queued, order);
  limits_init(&r->limits, order, &r->queued, fake_now, record_wake, NULL);
  now_ms = 1000.0;
  wakes = 0;
  wake_key = 0;
  wake_due = 0;
}

static void run_free(run *r) {
  limits_free(&r->limits);
  aq_item_queue_free(&r->queued);
}

/* A worker takes the next startable item: its id, 0 when none may start now.
 * *key gets the item's key (0 for a plain item). */
static int32_t take(run *r, int32_t *key) {
  int32_t entry, id;
  while (aq_item_queue_pop(&r->queued, &entry)) {
    if (entry > 0) {
      *key = 0;
      return entry;
    }
    if (limits_take_token(&r->limits, -entry, &id)) {
      *key = -entry;
      limits_item_started(&r->limits, -entry);
      return id;
    }
  }
  return 0;
}

/* --- per_key --- */

static void test_per_key(void) {
  run r;
  run_init(&r, AQ_ORDER_FIFO);
  int32_t k = limits_key_add(&r.limits, 2, 0);
  check(k == 1, "per_key: the first key is 1 (got %d)", k);
  for (int32_t id = 1; id <= 5; id++) limits_item_ready(&r.limits, k, id, 0);
  check(r.limits.held == 5, "per_key: 5 items held (got %lld)", (long long)r.limits.held);
  check(aq_item_queue_len(&r.queued) == 2, "per_key 2: 2 tokens queued for 5 held items (got %zu)",
        aq_item_queue_len(&r.queued));

  /* Workers take what they can, then the oldest running item ends, and so on. */
  int32_t started[8], running[8];
  int nstarted = 0, nrunning = 0, most_running = 0, key;
  for (int round = 0; round < 20 && nstarted < 5; round++) {
    int32_t id;
    while ((id = take(&r, &key)) != 0) {
      started[nstarted++] = id;
      running[nrunning++] = id;
      if (nrunning > most_running) most_running = nrunning;
    }
    if (nrunning > 0) { /* the oldest ends */
      memmove(running, running + 1, (size_t)--nrunning * sizeof *running);
      limits_item_ended(&r.limits, k);
    }
  }
  check(nstarted == 5, "per_key: all 5 items started (got %d)", nstarted);
  check(most_running == 2, "per_key 2: at most 2 ran at once, and 2 did (got %d)", most_running);
  int in_order = 1;
  for (int i = 0; i < nstarted; i++) in_order &= started[i] == i + 1;
  check(in_order, "per_key: the key's items started in the run's order (fifo)");
  check(r.limits.held == 0 && r.limits.tokens == 0, "per_key: nothing held, no token left (held %lld, tokens %lld)",
        (long long)r.limits.held, (long long)r.limits.tokens);
  check(wakes == 0, "per_key without a rate asks for no wake-up (got %d)", wakes);
  run_free(&r);
}

/* A key at its limit holds its items back; plain items and another key's
 * items start meanwhile. */
static void test_keys_do_not_block_others(void) {
  run r;
  run_init(&r, AQ_ORDER_LIFO);
  int32_t a = limits_key_add(&r.limits, 1, 0);
  int32_t b = limits_key_add(&r.limits, 1, 0);
  for (int32_t id = 1; id <= 3; id++) limits_item_ready(&r.limits, a, id, 0);
  for (int32_t id = 4; id <= 6; id++) limits_item_ready(&r.limits, b, id, 0);
  aq_item_queue_push(&r.queued, 7, 0); /* plain items, newest on top (lifo) */
  aq_item_queue_push(&r.queued, 8, 0);
  int32_t got[8];
  int n = 0, key;
  int32_t id;
  while ((id = take(&r, &key)) != 0) got[n++] = id;
  /* a's first item and b's first item (their per_key is 1) and both plain ones */
  int has_a = 0, has_b = 0, plain = 0;
  for (int i = 0; i < n; i++) {
    has_a += got[i] >= 1 && got[i] <= 3;
    has_b += got[i] >= 4 && got[i] <= 6;
    plain += got[i] == 7 || got[i] == 8;
  }
  check(n == 4, "two keys at per_key 1: 4 started while both are at their limit (got %d)", n);
  check(has_a == 1 && has_b == 1 && plain == 2, "one item of each key and both plain items started (%d, %d, %d)",
        has_a, has_b, plain);
  check(r.limits.held == 4, "the keys hold their other 4 items (got %lld)", (long long)r.limits.held);
  limits_item_ended(&r.limits, a);
  id = take(&r, &key);
  check(key == a && id >= 1 && id <= 3, "an item of key a ended: the next of a starts (id %d, key %d)", id, key);
  check(take(&r, &key) == 0, "and nothing more may start");
  run_free(&r);
}

/* --- priority --- */

/* An urgent item of a key is not queued behind the key's older tokens: a new
 * best held item gets a token of its own, at its priority. */
static void test_priority_order(void) {
  run r;
  run_init(&r, AQ_ORDER_PRIORITY);
  int32_t k = limits_key_add(&r.limits, 2, 0);
  aq_item_queue_push(&r.queued, 9, 2.0); /* a plain item */
  limits_item_ready(&r.limits, k, 1, 5.0);
  limits_item_ready(&r.limits, k, 2, 3.0);
  limits_item_ready(&r.limits, k, 3, 1.0);
  int32_t top;
  double top_priority = -1;
  aq_item_queue_peek(&r.queued, &top, &top_priority);
  check(top == -k && top_priority == 1.0, "the key's newest best item put a token at its priority (top %d at %g)", top,
        top_priority);
  int key;
  int32_t order[3];
  for (int i = 0; i < 3; i++) order[i] = take(&r, &key);
  check(order[0] == 3 && order[1] == 9 && order[2] == 2,
        "priority: 3 (1.0), the plain 9 (2.0), 2 (3.0) start in that order (got %d %d %d)", order[0], order[1],
        order[2]);
  check(take(&r, &key) == 0, "per_key 2: the key's third token starts nothing while two run");
  limits_item_ended(&r.limits, k);
  check(take(&r, &key) == 1, "one ends: the last held item (5.0) starts");
  run_free(&r);
}

/* --- rate --- */

static void test_rate(void) {
  run r;
  run_init(&r, AQ_ORDER_FIFO);
  int32_t k = limits_key_add(&r.limits, 0, 100.0); /* one start every 10 ms, no per_key */
  for (int32_t id = 1; id <= 3; id++) limits_item_ready(&r.limits, k, id, 0);
  int key;
  check(take(&r, &key) == 1, "rate: the first item starts at once");
  check(take(&r, &key) == 0, "rate: the second does not start in the same millisecond");
  check(wakes == 1 && wake_key == k && wake_due == 1010.0,
        "rate 100/s: one wake-up asked, for the key, 10 ms after the first start (%d, key %d, at %g)", wakes,
        wake_key, wake_due);
  now_ms = 1005.0;
  limits_item_ended(&r.limits, k);
  check(take(&r, &key) == 0 && wakes == 1, "an item ending before the next start time releases nothing, asks no new wake-up");
  now_ms = 1010.0;
  limits_key_wake(&r.limits, k);
  check(take(&r, &key) == 2, "at the wake-up the next item starts");
  check(wakes == 2 && wake_due == 1020.0, "the start after it is due 10 ms later, counted from the due time (%g)",
        wake_due);
  /* A wake-up that comes late keeps the schedule: the next is due 10 ms after
   * the previous due time, not after the late start. */
  now_ms = 1023.0;
  limits_key_wake(&r.limits, k);
  check(take(&r, &key) == 3, "a late wake-up starts the third item");
  check(r.limits.keys[k].next_start_ms == 1030.0, "and the next start stays due at 1030 (got %g)",
        r.limits.keys[k].next_start_ms);
  check(r.limits.held == 0, "rate: every item started");
  run_free(&r);
}

/* A token that comes up while its key may not start is dropped; the key
 * gets a new one when it may. */
static void test_token_dropped_at_limit(void) {
  run r;
  run_init(&r, AQ_ORDER_FIFO);
  int32_t k = limits_key_add(&r.limits, 1, 0);
  limits_item_ready(&r.limits, k, 1, 0);
  limits_item_ready(&r.limits, k, 2, 0);
  int key;
  check(take(&r, &key) == 1, "token: the first item starts");
  /* force a stale token in, as a new best item would, then let a worker meet it */
  aq_item_queue_push(&r.queued, -k, 0);
  r.limits.keys[k].tokens++;
  r.limits.tokens++;
  check(take(&r, &key) == 0, "a token met while the key is at per_key starts nothing");
  check(r.limits.tokens == 0 && r.limits.held == 1, "it is dropped; the item stays held (tokens %lld, held %lld)",
        (long long)r.limits.tokens, (long long)r.limits.held);
  limits_item_ended(&r.limits, k);
  check(take(&r, &key) == 2, "when the running item ends, the held one starts");
  run_free(&r);
}

/* --- graceful stop --- */

static void test_pop_held(void) {
  run r;
  run_init(&r, AQ_ORDER_LIFO);
  int32_t a = limits_key_add(&r.limits, 1, 0);
  int32_t b = limits_key_add(&r.limits, 1, 0);
  for (int32_t id = 1; id <= 3; id++) limits_item_ready(&r.limits, id == 2 ? b : a, id, 0);
  int32_t entry, id;
  int tokens = 0;
  while (aq_item_queue_pop(&r.queued, &entry)) { /* a stop drops the tokens first */
    limits_token_dropped(&r.limits, -entry);
    tokens++;
  }
  int dropped = 0;
  while (limits_pop_held(&r.limits, &id)) dropped++;
  /* a: a token for item 1, one more for 3 (its new best); b: one for item 2 */
  check(tokens == 3 && dropped == 3, "a stop takes every token (3) and every held item (3) out (%d, %d)", tokens,
        dropped);
  check(r.limits.held == 0 && r.limits.tokens == 0, "then nothing is held and no token counted");
  run_free(&r);
}

int main(void) {
  test_per_key();
  test_keys_do_not_block_others();
  test_priority_order();
  test_rate();
  test_token_dropped_at_limit();
  test_pop_held();
  return check_summary();
}
