/*
 * sched_limits.h — limit keys: run_queue{ limits = { per_key = n, rate = r } }
 * with Item:limit_key() (how they work: sched_limits.c).
 *
 * The limits of one run hold the items of limit keys back and give the run's
 * queue of startable things (`queued`, the scheduler's) tokens, -key, that
 * start them. They know the item queue, a clock and a way to be woken at a
 * time, both given by the scheduler (tests/c/test_sched_limits.c gives its
 * own), and nothing of items beyond their ids and priorities.
 */
#ifndef AQ_SCHED_LIMITS_H
#define AQ_SCHED_LIMITS_H

#include <stdint.h>

#include "item_queue.h"

/* One limit key: its items wait in `waiting`; the run's `queued` holds tokens
 * (-key) that start them. */
typedef struct {
  int32_t per_key;       /* most items running at once */
  double interval_ms;    /* 1000 / rate: time between starts, 0 for no rate */
  int32_t running;       /* started and not ended (done, failed, retried) */
  int32_t tokens;        /* its tokens in `queued` */
  int wake_pending;      /* a wake-up for the next start time is asked for */
  double next_start_ms;  /* the clock's time the next start is due (rate_schedule.h); 0 before the first */
  aq_item_queue waiting; /* items held back, in the run's order */
} aq_limit_key;

typedef struct {
  aq_limit_key *keys;    /* index = limit key id; keys[0] unused */
  int32_t nkeys, keys_cap;
  int64_t held;          /* items in the keys' waiting queues */
  int64_t tokens;        /* keys' tokens in `queued` */
  int32_t drop_scan;     /* limits_pop_held: the first key that may hold items */
  aq_order order;        /* the run's order, for the keys' queues */
  aq_item_queue *queued; /* where tokens go: the run's queue, not owned */
  double (*now_ms)(void); /* the clock (ms) of the rates */
  /* Asks for limits_key_wake(key) once the clock reaches due_ms. Returns 0, or
   * -1 out of memory. */
  int (*wake_at)(void *data, int32_t key, double due_ms);
  void *data;
} aq_limits;

/* Limits with no keys, for a run in `order` whose queue is `queued`. */
void limits_init(aq_limits *l, aq_order order, aq_item_queue *queued, double (*now_ms)(void),
                 int (*wake_at)(void *data, int32_t key, double due_ms), void *data);
/* Frees the keys. */
void limits_free(aq_limits *l);

/* Returns the new key's id (> 0), or -1 out of memory. per_key <= 0 means no
 * limit on running items; rate <= 0 no limit on starts. */
int32_t limits_key_add(aq_limits *l, int32_t per_key, double rate);
/* Item `id` of `key` may start: it is held by its key. Returns 0, or -1 out
 * of memory. */
int limits_item_ready(aq_limits *l, int32_t key, int32_t id, double priority);
/* A worker took a token of `key` from `queued`: the held item to start into
 * *id (1), or 0 when the key may not start one now (the token is dropped). */
int limits_take_token(aq_limits *l, int32_t key, int32_t *id);
/* A token of `key` was taken out of `queued` without a worker (graceful stop). */
void limits_token_dropped(aq_limits *l, int32_t key);
/* The wake-up asked of wake_at has come / was dropped. */
void limits_key_wake(aq_limits *l, int32_t key);
void limits_key_wake_dropped(aq_limits *l, int32_t key);
/* An item of `key` started / ended (done, failed, retried). */
void limits_item_started(aq_limits *l, int32_t key);
void limits_item_ended(aq_limits *l, int32_t key);
/* Takes any one held item out of its key (graceful stop). Returns 1, or 0. */
int limits_pop_held(aq_limits *l, int32_t *id);

#endif
