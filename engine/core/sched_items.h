/*
 * sched_items.h — the item records of one run, by id (1..): a 12-byte record
 * per id, the fields most runs never set kept apart, and the life of ids.
 *
 * A million queued items cost 12 MB of records. The fields a run may never
 * need live in side arrays (index = id), each made when first needed, so a
 * run that does not use them pays nothing:
 *   priorities   order = "priority" only: made with the records
 *   limit_keys   made by the first item with a limit key
 *   attempts     made by the first item that may retry (max_attempts > 1),
 *                or that is restored with attempts already used
 * Before a side array is made, every item has its default: limit key 0, one
 * attempt allowed, and attempts 1 once its process has started (RUNNING or
 * past it; an item restored open ran before the restart), else 0 — the only
 * values possible, since without the array no item could have retried. A
 * side array made late starts from those, so making it late is exact.
 *
 * An id goes free -> live (items_new_id) -> reaped (items_reaped_push: its
 * record is free, Lua still holds its item table) -> free again once Lua
 * released the table (items_reaped_pop), so an id never names two items at
 * once. `reaped` grows with the records: an id is there at most once, so a
 * push always finds room.
 *
 * Memory beyond the highest id used is never touched (not zeroed), so the
 * records a doubling adds cost no resident memory until used: read only ids
 * below next_id. Owned by the scheduler; freed at the end of each run.
 */
#ifndef AQ_SCHED_ITEMS_H
#define AQ_SCHED_ITEMS_H

#include <stdint.h>

/* An item's flags (aq__sched_enqueue, aq__sched_restore_open). */
enum { AQ_ITEM_TRACK_OVERALL = 1, AQ_ITEM_HAS_HOOK = 2 };

/* Where an item is. The first four are "finished" for handles: its process()
 * will not run again. */
typedef enum {
  AQ_ITEM_FREE,
  AQ_ITEM_OPEN,          /* process() finished; children still open */
  AQ_ITEM_HOOK_QUEUED,
  AQ_ITEM_HOOK_RUNNING,
  AQ_ITEM_QUEUED,        /* in `queued`: may start as soon as a worker is free */
  AQ_ITEM_RUNNING,       /* process() running */
  AQ_ITEM_DELAYED,       /* in `delays`: its delay or retry backoff runs */
  AQ_ITEM_HELD           /* in its limit key's `waiting` until one of its tokens comes up */
} aq_item_state;

/* One per id, 12 bytes. */
typedef struct {
  int32_t parent;   /* parent id, 0 for a root item; next free id while FREE */
  int32_t pending;  /* own process (until done) + unfinished children */
  uint16_t class_id;
  uint8_t flags;
  uint8_t state;
} aq_item_rec;

/* An item's attempts (the `attempts` side array). */
typedef struct {
  uint16_t started; /* process() calls started so far */
  uint16_t allowed; /* 1 + retries */
} aq_item_attempts;

typedef struct {
  aq_item_rec *recs;          /* index = id; recs[0] unused */
  double *priorities;         /* lower first; NULL unless with_priorities */
  int32_t *limit_keys;        /* index into the run's limit keys, 0 for none; NULL until needed */
  aq_item_attempts *attempts; /* NULL until needed */
  int32_t *reaped;            /* finalized ids Lua has not released yet (a stack) */
  int32_t nreaped;
  int32_t cap;       /* ids the records, side arrays and `reaped` have room for */
  int32_t next_id;   /* lowest id never used */
  int32_t free_head; /* first free id, 0 when none; a free record's parent links the next */
  int with_priorities;
  int has_side_arrays; /* any of priorities, limit_keys, attempts: a new item has entries to set */
} aq_items;

/* Makes an empty table for a run (with a priority per item when
 * with_priorities). Cannot fail: memory is taken at the first id. */
void items_init(aq_items *x, int with_priorities);
/* Frees everything; the table is then empty, as after items_init. */
void items_free(aq_items *x);

/* Doubles the room (records, side arrays, `reaped`) and returns the next new
 * id, or -1 out of memory (nothing changed). For items_new_id only. */
int32_t items_new_id_grown(aq_items *x);

/* A free id for a new item, or -1 out of memory. Its record (and side
 * entries) hold anything: the caller sets them. */
static inline int32_t items_new_id(aq_items *x) {
  if (x->free_head) {
    int32_t id = x->free_head;
    x->free_head = x->recs[id].parent;
    return id;
  }
  if (x->next_id < x->cap) return x->next_id++;
  return items_new_id_grown(x);
}

/* Makes id free at once (an item that never came to be, or was dropped):
 * its record must be FREE. */
static inline void items_recycle_id(aq_items *x, int32_t id) {
  x->recs[id].parent = x->free_head;
  x->free_head = id;
}

/* A finalized item (its record already FREE): its id waits for Lua to release
 * the item table. Cannot fail: room is reserved. */
static inline void items_reaped_push(aq_items *x, int32_t id) { x->reaped[x->nreaped++] = id; }

/* Takes a reaped id, now free again, into *id. Returns 0 when there is none. */
static inline int items_reaped_pop(aq_items *x, int32_t *id) {
  if (x->nreaped == 0) return 0;
  *id = x->reaped[--x->nreaped];
  items_recycle_id(x, *id);
  return 1;
}

/* --- the fields kept apart --- */

/* Makes the limit_keys / attempts side array (see above). Returns 0, or -1
 * out of memory (nothing changed). */
int items_make_limit_keys(aq_items *x);
int items_make_attempts(aq_items *x);

static inline double items_priority(const aq_items *x, int32_t id) { return x->priorities ? x->priorities[id] : 0; }

static inline int32_t items_limit_key(const aq_items *x, int32_t id) { return x->limit_keys ? x->limit_keys[id] : 0; }

/* The states in which an item's process has started (or, restored open, ran
 * before the restart), as bits: FREE, OPEN, HOOK_QUEUED, HOOK_RUNNING, RUNNING. */
#define AQ_ITEM_STARTED_STATES                                                                          \
  ((1u << AQ_ITEM_FREE) | (1u << AQ_ITEM_OPEN) | (1u << AQ_ITEM_HOOK_QUEUED) | (1u << AQ_ITEM_HOOK_RUNNING) | \
   (1u << AQ_ITEM_RUNNING))

/* Process() calls of item `id` started so far. */
static inline int32_t items_attempts(const aq_items *x, int32_t id) {
  if (x->attempts) return x->attempts[id].started;
  return (AQ_ITEM_STARTED_STATES >> x->recs[id].state) & 1;
}

/* Process() calls item `id` may have (1 + retries). */
static inline int32_t items_max_attempts(const aq_items *x, int32_t id) {
  return x->attempts ? x->attempts[id].allowed : 1;
}

/* Counts a start of item `id`'s process(). Returns 1 when it is the first. */
static inline int items_attempt_starts(aq_items *x, int32_t id) {
  return x->attempts ? x->attempts[id].started++ == 0 : 1;
}

/* items_set_extras when an entry is to be set (sched_items.c). */
int items_set_side_entries(aq_items *x, int32_t id, double priority, int32_t limit_key, int32_t max_attempts);

/* Gives a new item (its record set) its priority, limit key and attempts
 * allowed, none started, making the side arrays it needs. Returns 0, or -1
 * out of memory (the side entries of `id` unset; a side array made stays,
 * with defaults). */
static inline int items_set_extras(aq_items *x, int32_t id, double priority, int32_t limit_key, int32_t max_attempts) {
  /* the hot path: a plain item in a run without side arrays has nothing to set */
  if (!x->has_side_arrays && limit_key == 0 && max_attempts == 1) return 0;
  return items_set_side_entries(x, id, priority, limit_key, max_attempts);
}

/* A restored item already used `n` attempts. Returns 0, or -1 out of memory
 * (nothing changed). */
static inline int items_set_attempts(aq_items *x, int32_t id, int32_t n) {
  if (!x->attempts && items_make_attempts(x) != 0) return -1;
  x->attempts[id].started = (uint16_t)n;
  return 0;
}

#endif
