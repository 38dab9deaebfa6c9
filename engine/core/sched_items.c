/*
 * sched_items.c — growing the item records and making their side arrays
 * (see sched_items.h).
 */
#include <stdlib.h>
#include <string.h>

#include "sched_items.h"

/* The first room, in ids: the records of a small run fit in a page or two. */
#define FIRST_CAP 1024

void items_init(aq_items *x, int with_priorities) {
  memset(x, 0, sizeof *x);
  x->next_id = 1;
  x->with_priorities = with_priorities;
}

void items_free(aq_items *x) {
  free(x->recs);
  free(x->priorities);
  free(x->limit_keys);
  free(x->attempts);
  free(x->reaped);
  items_init(x, x->with_priorities);
}

/* Reallocates *p, an array of `size`-byte entries, to `cap` entries; the
 * entries added are left as they are (untouched memory stays unresident).
 * Returns 0, or -1 out of memory (*p unchanged). NULL stays NULL: a side
 * array not made yet is not made by growing. */
static int grow_array(void **p, size_t size, int32_t cap) {
  if (!*p) return 0;
  void *grown = realloc(*p, (size_t)cap * size);
  if (!grown) return -1;
  *p = grown;
  return 0;
}

/* Makes `reaped` room for `cap` ids. A new buffer, into which only the ids
 * held are copied: realloc would copy the whole old buffer, making resident
 * the room never used (while items are only being queued, none is). Returns
 * 0, or -1 out of memory (unchanged). */
static int grow_reaped(aq_items *x, int32_t cap) {
  int32_t *reaped = malloc((size_t)cap * sizeof *reaped);
  if (!reaped) return -1;
  memcpy(reaped, x->reaped, (size_t)x->nreaped * sizeof *reaped);
  free(x->reaped);
  x->reaped = reaped;
  return 0;
}

int32_t items_new_id_grown(aq_items *x) {
  if (x->cap > INT32_MAX / 2) return -1;
  int32_t cap = x->cap ? x->cap * 2 : FIRST_CAP;
  if (!x->recs) {
    /* the first id: the arrays every run has are made here */
    x->recs = malloc((size_t)cap * sizeof *x->recs);
    x->reaped = malloc((size_t)cap * sizeof *x->reaped);
    x->priorities = x->with_priorities ? malloc((size_t)cap * sizeof *x->priorities) : NULL;
    if (!x->recs || !x->reaped || (x->with_priorities && !x->priorities)) {
      items_free(x);
      return -1;
    }
    x->has_side_arrays = x->with_priorities;
  } else if (grow_array((void **)&x->recs, sizeof *x->recs, cap) != 0 ||
             grow_reaped(x, cap) != 0 ||
             grow_array((void **)&x->priorities, sizeof *x->priorities, cap) != 0 ||
             grow_array((void **)&x->limit_keys, sizeof *x->limit_keys, cap) != 0 ||
             grow_array((void **)&x->attempts, sizeof *x->attempts, cap) != 0) {
    /* the arrays grown so far keep their room: harmless, cap tells what all have */
    return -1;
  }
  x->cap = cap;
  return x->next_id++;
}

/* Both are made once an id exists (cap > 0): the caller's item needs them. */

int items_make_limit_keys(aq_items *x) {
  /* no item had a key: all are 0 (ids from next_id on are set when used) */
  int32_t *keys = calloc((size_t)x->cap, sizeof *keys);
  if (!keys) return -1;
  x->limit_keys = keys;
  x->has_side_arrays = 1;
  return 0;
}

int items_make_attempts(aq_items *x) {
  aq_item_attempts *a = malloc((size_t)x->cap * sizeof *a);
  if (!a) return -1;
  /* no item could retry: one attempt allowed, started once its process started */
  a[0] = (aq_item_attempts){.started = 0, .allowed = 1}; /* no item */
  for (int32_t id = 1; id < x->next_id; id++)
    a[id] = (aq_item_attempts){.started = (uint16_t)items_attempts(x, id), .allowed = 1};
  x->attempts = a;
  x->has_side_arrays = 1;
  return 0;
}

int items_set_side_entries(aq_items *x, int32_t id, double priority, int32_t limit_key, int32_t max_attempts) {
  if (x->priorities) x->priorities[id] = priority;
  if (limit_key && !x->limit_keys && items_make_limit_keys(x) != 0) return -1;
  if (x->limit_keys) x->limit_keys[id] = limit_key;
  if (max_attempts != 1 && !x->attempts && items_make_attempts(x) != 0) return -1;
  if (x->attempts) x->attempts[id] = (aq_item_attempts){.started = 0, .allowed = (uint16_t)max_attempts};
  return 0;
}
