/*
 * sched_limits.c — limit keys: run_queue{ limits = { per_key = n, rate = r } }
 * with Item:limit_key(). At most n items of a key run at once, and at most r
 * start per second (one every 1/r s).
 *
 * An item of a key waits in the key's own queue (HELD) until the key lets it
 * through into the run's `queued`. A key lets an item through while fewer than
 * per_key of its items are through and unfinished; with a rate, only one item
 * at a time is through and not yet started, and it waits in `delayed`
 * (RATE_WAIT) until the key's next start time. So `queued` never holds an item
 * that may not start: workers never skip over items, items of other keys are
 * never stuck behind a limited one whatever the order, and each step is one
 * queue operation (O(1) for lifo and fifo, O(log n) for priority).
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* Returns the new key's id (> 0), or -1 out of memory. per_key <= 0 means no
 * limit on running items; rate <= 0 no limit on starts. */
int32_t aq__sched_limit_key_add(aq_engine *E, int32_t per_key, double rate) {
  aq_sched *s = &E->sched;
  if (s->nkeys >= s->keys_cap) { /* key 0 is never stored: nkeys starts at 1 */
    int32_t cap = s->keys_cap ? s->keys_cap * 2 : 64;
    aq_limit_key *keys = realloc(s->keys, (size_t)cap * sizeof *keys);
    if (!keys) return -1;
    s->keys = keys;
    s->keys_cap = cap;
  }
  aq_limit_key *k = &s->keys[s->nkeys];
  memset(k, 0, sizeof *k);
  k->per_key = per_key > 0 ? per_key : INT32_MAX;
  k->interval_ms = rate > 0 ? 1000.0 / rate : 0;
  aq_item_queue_init(&k->waiting, s->order);
  return s->nkeys++;
}

/* Lets items of key `key` through while its limits allow. */
static void let_through(aq_engine *E, int32_t key) {
  aq_sched *s = &E->sched;
  aq_limit_key *k = &s->keys[key];
  int32_t id;
  while (k->through < k->per_key && (k->interval_ms == 0 || k->not_started == 0) &&
         aq_item_queue_peek(&k->waiting, &id, NULL)) {
    double now = k->interval_ms > 0 ? sched_now_ms() : 0;
    int rc = k->interval_ms > 0 && k->next_start_ms > now
                 ? sched_delay_item(E, id, k->next_start_ms, AQ_ITEM_RATE_WAIT)
                 : sched_push_queued(s, id);
    if (rc != 0) return; /* out of memory: it stays held; the next end retries */
    aq_item_queue_pop(&k->waiting, &id);
    s->held--;
    k->through++;
    k->not_started++;
  }
}

int limits_item_ready(aq_engine *E, int32_t id) {
  aq_sched *s = &E->sched;
  aq_item_rec *r = &s->items[id];
  if (aq_item_queue_push(&s->keys[r->limit_key].waiting, id, r->priority) != 0) return -1;
  r->state = AQ_ITEM_HELD;
  s->held++;
  let_through(E, r->limit_key);
  return 0;
}

void limits_item_started(aq_engine *E, aq_item_rec *r) {
  aq_limit_key *k = &E->sched.keys[r->limit_key];
  k->not_started--;
  if (k->interval_ms > 0) {
    k->next_start_ms = sched_now_ms() + k->interval_ms;
    let_through(E, r->limit_key); /* the next one waits for next_start_ms */
  }
}

void limits_item_ended(aq_engine *E, aq_item_rec *r) {
  E->sched.keys[r->limit_key].through--;
  let_through(E, r->limit_key);
}

int limits_pop_held(aq_engine *E, int32_t *id) {
  aq_sched *s = &E->sched;
  /* Keys are emptied one after another: the scan resumes where it stopped. */
  for (; s->held > 0 && s->drop_scan < s->nkeys; s->drop_scan++)
    if (aq_item_queue_pop(&s->keys[s->drop_scan].waiting, id)) {
      s->held--;
      return 1;
    }
  return 0;
}

void limits_free(aq_sched *s) {
  for (int32_t key = 1; key < s->nkeys; key++) aq_item_queue_free(&s->keys[key].waiting);
  free(s->keys);
  s->keys = NULL;
  s->nkeys = s->keys_cap = 0;
}
