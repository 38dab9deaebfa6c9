/*
 * sched_limits.c — limit keys: run_queue{ limits = { per_key = n, rate = r } }
 * with Item:limit_key(). At most n items of a key run at once, and at most r
 * start per second (one every 1/r s, counted from due times: rate_schedule.h).
 *
 * An item of a key waits in the key's own queue (HELD), in the run's order.
 * The run's `queued` holds *tokens* for the key (the id -key) instead of its
 * items: when a worker takes a token, it starts the key's best held item at
 * that moment, if the key may start one; a token that comes up while the key
 * is at its limit is dropped (a new one is pushed when an item of the key
 * ends, or when its rate allows the next start: a wake-up in `delayed`).
 *
 * A key keeps as many tokens as it could start items now, at the priority of
 * its best held item, and one more whenever a new item becomes its best held
 * one, so an urgent item of a busy key is not queued behind its older tokens.
 * So items of other keys are never stuck behind a limited one, a key's items
 * start in the run's order, and each step is a few queue operations (O(1) for
 * lifo and fifo, O(log n) for priority).
 */
#include <stdlib.h>
#include <string.h>

#include "rate_schedule.h"
#include "sched_limits.h"

void limits_init(aq_limits *l, aq_order order, aq_item_queue *queued, double (*now_ms)(void),
                 int (*wake_at)(void *data, int32_t key, double due_ms), void *data) {
  memset(l, 0, sizeof *l);
  l->nkeys = 1; /* key 0 is "no key" */
  l->drop_scan = 1;
  l->order = order;
  l->queued = queued;
  l->now_ms = now_ms;
  l->wake_at = wake_at;
  l->data = data;
}

int32_t limits_key_add(aq_limits *l, int32_t per_key, double rate) {
  if (l->nkeys >= l->keys_cap) { /* key 0 is never stored: nkeys starts at 1 */
    int32_t cap = l->keys_cap ? l->keys_cap * 2 : 64;
    aq_limit_key *keys = realloc(l->keys, (size_t)cap * sizeof *keys);
    if (!keys) return -1;
    l->keys = keys;
    l->keys_cap = cap;
  }
  aq_limit_key *k = &l->keys[l->nkeys];
  memset(k, 0, sizeof *k);
  k->per_key = per_key > 0 ? per_key : INT32_MAX;
  k->interval_ms = rate > 0 ? 1000.0 / rate : 0;
  aq_item_queue_init(&k->waiting, l->order);
  return l->nkeys++;
}

/* Whether the key's rate lets an item start now; if not, a wake-up is due at
 * the key's next start time. */
static int rate_allows(aq_limits *l, int32_t key) {
  aq_limit_key *k = &l->keys[key];
  if (k->interval_ms == 0 || aq_rate_may_start(k->next_start_ms, l->now_ms())) return 1;
  if (!k->wake_pending && l->wake_at(l->data, key, k->next_start_ms) == 0) k->wake_pending = 1;
  return 0;
}

static int push_token(aq_limits *l, int32_t key, double priority) {
  if (aq_item_queue_push(l->queued, -key, priority) != 0) return -1;
  l->keys[key].tokens++;
  l->tokens++;
  return 0;
}

/* Gives the key the tokens it can use now; `new_best`: an item just became
 * its best held one and gets a token of its own. */
static void give_tokens(aq_limits *l, int32_t key, int new_best) {
  aq_limit_key *k = &l->keys[key];
  int32_t best;
  double priority = 0; /* the best held item's: read for the priority order only */
  if (k->running >= k->per_key || !aq_item_queue_peek(&k->waiting, &best, &priority)) return;
  if (!rate_allows(l, key)) return;
  int64_t can_start = (int64_t)k->per_key - k->running;
  int64_t held = (int64_t)aq_item_queue_len(&k->waiting);
  int64_t want = can_start < held ? can_start : held;
  /* A rate lets one start at a time: the next token comes when this one's
   * item starts (limits_item_started), at once while starts are due, so a
   * wake-up does not queue tokens that would mostly be dropped. */
  if (k->interval_ms > 0 && want > 1) want = 1;
  int pushed = 0;
  while (k->tokens < want && push_token(l, key, priority) == 0) pushed = 1;
  if (new_best && !pushed) push_token(l, key, priority);
  /* Out of memory: the key gets its tokens when one of its items ends. */
}

int limits_item_ready(aq_limits *l, int32_t key, int32_t id, double priority) {
  aq_limit_key *k = &l->keys[key];
  if (aq_item_queue_push(&k->waiting, id, priority) != 0) return -1;
  l->held++;
  int32_t best;
  aq_item_queue_peek(&k->waiting, &best, NULL);
  give_tokens(l, key, best == id);
  return 0;
}

int limits_take_token(aq_limits *l, int32_t key, int32_t *id) {
  aq_limit_key *k = &l->keys[key];
  k->tokens--;
  l->tokens--;
  if (k->running >= k->per_key || !rate_allows(l, key) || !aq_item_queue_pop(&k->waiting, id)) return 0;
  l->held--;
  return 1;
}

void limits_token_dropped(aq_limits *l, int32_t key) {
  l->keys[key].tokens--;
  l->tokens--;
}

void limits_item_started(aq_limits *l, int32_t key) {
  aq_limit_key *k = &l->keys[key];
  k->running++;
  if (k->interval_ms > 0) {
    k->next_start_ms = aq_rate_next_due(k->next_start_ms, l->now_ms(), k->interval_ms);
    give_tokens(l, key, 0); /* the next one waits for next_start_ms, or catches up */
  }
}

void limits_item_ended(aq_limits *l, int32_t key) {
  l->keys[key].running--;
  give_tokens(l, key, 0);
}

void limits_key_wake(aq_limits *l, int32_t key) {
  l->keys[key].wake_pending = 0;
  give_tokens(l, key, 0);
}

void limits_key_wake_dropped(aq_limits *l, int32_t key) { l->keys[key].wake_pending = 0; }

int limits_pop_held(aq_limits *l, int32_t *id) {
  /* Keys are emptied one after another: the scan resumes where it stopped. */
  for (; l->held > 0 && l->drop_scan < l->nkeys; l->drop_scan++)
    if (aq_item_queue_pop(&l->keys[l->drop_scan].waiting, id)) {
      l->held--;
      return 1;
    }
  return 0;
}

void limits_free(aq_limits *l) {
  for (int32_t key = 1; key < l->nkeys; key++) aq_item_queue_free(&l->keys[key].waiting);
  free(l->keys);
  l->keys = NULL;
  l->nkeys = l->keys_cap = 0;
}
