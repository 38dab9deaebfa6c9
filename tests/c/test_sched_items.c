/*
 * test_sched_items.c — unit tests of the item records (engine/core/sched_items.h)
 * on their own: ids handed out, freed, reaped and reused; the side arrays made
 * at first need (limit keys, attempts) giving the items made before them their
 * defaults; growth; and allocation failures, which must leave the table as it
 * was. The test is linked with --wrap=malloc,calloc,realloc: the wrappers below
 * fail the Nth allocation when asked to.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sched_items.h"

/* --- allocation failure injection --- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

static int fail_in = 0; /* > 0: the allocation that many calls from now fails */

static int should_fail(void) {
  return fail_in > 0 && --fail_in == 0;
}

void *__wrap_malloc(size_t size) { return should_fail() ? NULL : __real_malloc(size); }
void *__wrap_calloc(size_t n, size_t size) { return should_fail() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t size) { return should_fail() ? NULL : __real_realloc(p, size); }

/* --- helpers --- */

/* A new item as the scheduler makes one (sched_items.h: record, then its
 * extras): returns its id, or -1 with the id given back, as the scheduler's
 * new_item does. */
static int32_t add_item(aq_items *x, uint8_t state, double priority, int32_t limit_key, int32_t max_attempts) {
  int32_t id = items_new_id(x);
  if (id < 0) return -1;
  x->recs[id] = (aq_item_rec){.parent = 0, .pending = 1, .class_id = 0, .flags = 0, .state = AQ_ITEM_FREE};
  if (items_set_extras(x, id, priority, limit_key, max_attempts) != 0) {
    items_recycle_id(x, id);
    return -1;
  }
  x->recs[id].state = state;
  return id;
}

/* A plain item: no key, no retries. */
static int32_t add_plain(aq_items *x, uint8_t state) { return add_item(x, state, 0, 0, 1); }

/* --- tests --- */

static void test_ids(void) {
  aq_items x;
  items_init(&x, 0);
  check(x.cap == 0 && x.recs == NULL, "a new table holds no memory");
  int ok = 1;
  for (int32_t want = 1; want <= 3000; want++) ok &= add_plain(&x, AQ_ITEM_QUEUED) == want;
  check(ok, "ids are handed out 1, 2, 3, ... across growth");
  check(x.cap == 4096, "the room doubles from 1024: 4096 for 3000 ids (got %d)", (int)x.cap);
  check(x.limit_keys == NULL && x.attempts == NULL && x.priorities == NULL,
        "plain items make no side array");

  /* a finalized item: its id waits in `reaped` and is not reused before Lua releases it */
  x.recs[7].state = AQ_ITEM_FREE;
  items_reaped_push(&x, 7);
  check(add_plain(&x, AQ_ITEM_QUEUED) == 3001, "a reaped id is not reused before it is released");
  int32_t id = 0;
  check(items_reaped_pop(&x, &id) && id == 7 && x.nreaped == 0, "the reaped id comes back out (7)");
  check(!items_reaped_pop(&x, &id), "then none is left");
  check(add_plain(&x, AQ_ITEM_QUEUED) == 7, "once released, the id is reused first");

  /* dropped items: their ids come back at once, the last freed first */
  x.recs[20].state = x.recs[30].state = AQ_ITEM_FREE;
  items_recycle_id(&x, 20);
  items_recycle_id(&x, 30);
  check(add_plain(&x, AQ_ITEM_QUEUED) == 30 && add_plain(&x, AQ_ITEM_QUEUED) == 20 &&
            add_plain(&x, AQ_ITEM_QUEUED) == 3002,
        "recycled ids are reused (30, 20) before new ones (3002)");
  items_free(&x);
  check(x.cap == 0 && x.recs == NULL && x.next_id == 1, "freed: empty again");
}

static void test_defaults_without_side_arrays(void) {
  aq_items x;
  items_init(&x, 0);
  int32_t queued = add_plain(&x, AQ_ITEM_QUEUED), running = add_plain(&x, AQ_ITEM_RUNNING);
  int32_t delayed = add_plain(&x, AQ_ITEM_DELAYED), held = add_plain(&x, AQ_ITEM_HELD);
  int32_t open = add_plain(&x, AQ_ITEM_OPEN), hook = add_plain(&x, AQ_ITEM_HOOK_RUNNING);
  check(items_limit_key(&x, queued) == 0 && items_max_attempts(&x, running) == 1 && items_priority(&x, held) == 0,
        "without side arrays: limit key 0, one attempt allowed, priority 0");
  check(items_attempts(&x, queued) == 0 && items_attempts(&x, delayed) == 0 && items_attempts(&x, held) == 0,
        "items waiting to start have started no attempt");
  check(items_attempts(&x, running) == 1 && items_attempts(&x, open) == 1 && items_attempts(&x, hook) == 1,
        "items running or past their process have started one");
  check(items_attempt_starts(&x, queued) && items_attempt_starts(&x, queued),
        "without the attempts array every start is a first one (no item can retry)");
  check(x.attempts == NULL, "counting starts makes no array");
  items_free(&x);
}

static void test_late_limit_keys(void) {
  aq_items x;
  items_init(&x, 0);
  for (int i = 0; i < 1500; i++) add_plain(&x, i % 2 ? AQ_ITEM_QUEUED : AQ_ITEM_RUNNING);
  int32_t keyed = add_item(&x, AQ_ITEM_HELD, 0, 7, 1);
  check(keyed == 1501 && x.limit_keys != NULL, "the first item with a key makes the limit keys");
  int zeros = 1;
  for (int32_t id = 1; id < keyed; id++) zeros &= items_limit_key(&x, id) == 0;
  check(zeros, "the 1500 items made before keep no key");
  check(items_limit_key(&x, keyed) == 7, "the new item has its key (7)");
  check(x.attempts == NULL, "keys alone make no attempts array");
  /* growth carries the keys along; later items get theirs, 0 included */
  int ok = 1;
  for (int32_t i = 0; i < 5000; i++) {
    int32_t id = add_item(&x, AQ_ITEM_QUEUED, 0, i % 3, 1);
    ok &= id > 0 && items_limit_key(&x, id) == i % 3;
  }
  for (int32_t i = 0; i < 5000; i++) ok &= items_limit_key(&x, keyed + 1 + i) == i % 3;
  check(ok && x.cap == 8192, "5000 more items across growth to 8192 keep their keys (0, 1, 2, ...)");
  check(items_limit_key(&x, keyed) == 7 && items_limit_key(&x, 1) == 0, "and so do the earlier ones");
  items_free(&x);
}

static void test_late_attempts(void) {
  aq_items x;
  items_init(&x, 0);
  uint8_t states[] = {AQ_ITEM_QUEUED, AQ_ITEM_RUNNING, AQ_ITEM_DELAYED, AQ_ITEM_HELD,
                      AQ_ITEM_OPEN,   AQ_ITEM_HOOK_QUEUED, AQ_ITEM_HOOK_RUNNING};
  int32_t before[7];
  for (int i = 0; i < 7; i++) before[i] = add_plain(&x, states[i]);
  int32_t retrying = add_item(&x, AQ_ITEM_QUEUED, 0, 0, 3);
  check(x.attempts != NULL && x.limit_keys == NULL, "the first item that may retry makes the attempts");
  int ok = 1;
  for (int i = 0; i < 7; i++) {
    int waiting = states[i] == AQ_ITEM_QUEUED || states[i] == AQ_ITEM_DELAYED || states[i] == AQ_ITEM_HELD;
    ok &= items_attempts(&x, before[i]) == (waiting ? 0 : 1) && items_max_attempts(&x, before[i]) == 1;
  }
  check(ok, "the items made before keep what they had: one attempt allowed, started once past waiting");
  check(items_attempts(&x, retrying) == 0 && items_max_attempts(&x, retrying) == 3,
        "the new item: none started, 3 allowed");
  check(items_attempt_starts(&x, retrying) && !items_attempt_starts(&x, retrying) && items_attempts(&x, retrying) == 2,
        "with the array, the first start is told apart from a retry's (2 started)");
  check(items_attempt_starts(&x, before[0]) && items_attempts(&x, before[0]) == 1,
        "an item queued before the array starts its first attempt");
  int32_t plain = add_plain(&x, AQ_ITEM_QUEUED);
  check(items_attempts(&x, plain) == 0 && items_max_attempts(&x, plain) == 1,
        "a plain item made after gets none started, one allowed");
  /* growth carries the attempts along */
  for (int32_t i = 0; i < 3000; i++) add_item(&x, AQ_ITEM_QUEUED, 0, 0, 1 + i % 5);
  ok = 1;
  for (int32_t i = 0; i < 3000; i++) ok &= items_max_attempts(&x, plain + 1 + i) == 1 + i % 5;
  check(ok && items_attempts(&x, retrying) == 2 && items_max_attempts(&x, retrying) == 3,
        "3000 more items across growth keep their attempts allowed, and the earlier ones theirs");
  items_free(&x);

  /* a restored item with attempts used makes the array too */
  items_init(&x, 0);
  int32_t running = add_plain(&x, AQ_ITEM_RUNNING);
  int32_t restored = add_plain(&x, AQ_ITEM_QUEUED);
  check(items_set_attempts(&x, restored, 4) == 0 && x.attempts != NULL, "restoring attempts makes the array");
  check(items_attempts(&x, restored) == 4 && items_max_attempts(&x, restored) == 1 &&
            items_attempts(&x, running) == 1,
        "the restored item has 4 started; the running one keeps 1");
  items_free(&x);
}

static void test_priorities(void) {
  aq_items x;
  items_init(&x, 1);
  int ok = 1;
  for (int32_t i = 1; i <= 2000; i++) ok &= add_item(&x, AQ_ITEM_QUEUED, i * 0.5, 0, 1) == i;
  for (int32_t i = 1; i <= 2000; i++) ok &= items_priority(&x, i) == i * 0.5;
  check(ok && x.priorities != NULL, "with priorities: each item keeps its own across growth");
  items_free(&x);
  check(x.with_priorities == 1, "freeing keeps the order's choice");
}

/* Fails, one by one, each allocation a step makes; after each failure the
 * table must be as before the step, and the step must then succeed. */
static void test_allocation_failure(void) {
  aq_items x;
  /* the first id: records, reaped, priorities */
  for (int n = 1; n <= 3; n++) {
    items_init(&x, 1);
    fail_in = n;
    int32_t id = add_plain(&x, AQ_ITEM_QUEUED);
    check(id == -1 && x.cap == 0 && x.recs == NULL && x.reaped == NULL && x.priorities == NULL && x.next_id == 1,
          "first id, allocation %d fails: -1, nothing held", n);
    fail_in = 0;
    check(add_plain(&x, AQ_ITEM_QUEUED) == 1, "then the first id is 1");
    items_free(&x);
  }

  /* growth with every side array made: each of the five reallocs fails once */
  for (int n = 1; n <= 5; n++) {
    items_init(&x, 1);
    add_item(&x, AQ_ITEM_QUEUED, 2.5, 9, 4);
    while (x.next_id < x.cap) add_plain(&x, AQ_ITEM_QUEUED);
    int32_t cap = x.cap, next = x.next_id;
    fail_in = n;
    int32_t id = add_plain(&x, AQ_ITEM_QUEUED);
    fail_in = 0;
    check(id == -1 && x.cap == cap && x.next_id == next && x.free_head == 0,
          "growth, allocation %d of 5 fails: -1, room and ids unchanged", n);
    check(items_priority(&x, 1) == 2.5 && items_limit_key(&x, 1) == 9 && items_max_attempts(&x, 1) == 4,
          "the items held keep their fields");
    check(add_plain(&x, AQ_ITEM_QUEUED) == next && x.cap == 2 * cap, "then the id comes, the room doubled");
    items_free(&x);
  }

  /* making a side array fails: the item does not come, its id is free again */
  items_init(&x, 0);
  add_plain(&x, AQ_ITEM_RUNNING);
  add_plain(&x, AQ_ITEM_QUEUED);
  fail_in = 1;
  check(add_item(&x, AQ_ITEM_QUEUED, 0, 5, 1) == -1 && x.limit_keys == NULL,
        "the limit keys cannot be made: -1, no array");
  fail_in = 1;
  check(add_item(&x, AQ_ITEM_QUEUED, 0, 0, 2) == -1 && x.attempts == NULL, "the attempts cannot be made: -1, no array");
  fail_in = 1;
  check(items_set_attempts(&x, 2, 3) == -1 && x.attempts == NULL && items_attempts(&x, 2) == 0,
        "restoring attempts cannot make the array: -1, the item unchanged");
  fail_in = 0;
  check(items_attempts(&x, 1) == 1 && items_max_attempts(&x, 1) == 1 && items_limit_key(&x, 1) == 0,
        "the items held keep their defaults");
  check(add_item(&x, AQ_ITEM_QUEUED, 0, 5, 2) == 3 && x.next_id == 4,
        "then the item comes with the id given back (3), no id lost");
  check(items_limit_key(&x, 3) == 5 && items_max_attempts(&x, 3) == 2 && items_attempts(&x, 1) == 1,
        "with its key and attempts; the earlier ones kept theirs");
  items_free(&x);
}

int main(void) {
  test_ids();
  test_defaults_without_side_arrays();
  test_late_limit_keys();
  test_late_attempts();
  test_priorities();
  test_allocation_failure();
  return check_summary();
}
