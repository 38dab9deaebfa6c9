/* item_queue.c — stack, ring and heap behind aq_item_queue (see item_queue.h). */
#include "item_queue.h"

#include <stdlib.h>
#include <string.h>

void aq_item_queue_init(aq_item_queue *q, aq_order order) {
  memset(q, 0, sizeof *q);
  q->order = order;
}

void aq_item_queue_free(aq_item_queue *q) {
  free(q->ids);
  free(q->heap);
  aq_item_queue_init(q, q->order);
}

/* Doubles the buffer in place (realloc: a large buffer is remapped, not
 * copied, and old and new never take memory at once). A ring that wraps past
 * its end is then unwrapped: its wrapped front part, the newest ids, moves
 * from the start of the buffer to just after the old end, where the doubled
 * buffer always has room for it. */
static int grow(aq_item_queue *q) {
  size_t old_cap = q->cap;
  size_t cap = old_cap ? old_cap * 2 : 64;
  if (q->order == AQ_ORDER_PRIORITY) {
    aq_heap_entry *heap = realloc(q->heap, cap * sizeof *heap);
    if (!heap) return -1;
    q->heap = heap;
  } else {
    int32_t *ids = realloc(q->ids, cap * sizeof *ids);
    if (!ids) return -1;
    q->ids = ids;
    if (q->order == AQ_ORDER_FIFO && q->head + q->len > old_cap)
      memcpy(ids + old_cap, ids, (q->head + q->len - old_cap) * sizeof *ids);
  }
  q->cap = cap;
  return 0;
}

/* Heap order: lower priority first, then earlier arrival. */
static int heap_before(const aq_heap_entry *a, const aq_heap_entry *b) {
  if (a->priority != b->priority) return a->priority < b->priority;
  return a->seq < b->seq;
}

/* A 4-ary heap: half the depth of a binary one, and the four children of a
 * node are neighbours in memory, so a million queued items cost about ten
 * cache misses per operation instead of twenty. */
#define HEAP_ARITY 4

static void heap_push(aq_item_queue *q, int32_t id, double priority) {
  aq_heap_entry e = {priority, q->seq++, id};
  size_t i = q->len++;
  while (i > 0) {
    size_t parent = (i - 1) / HEAP_ARITY;
    if (!heap_before(&e, &q->heap[parent])) break;
    q->heap[i] = q->heap[parent];
    i = parent;
  }
  q->heap[i] = e;
}

static int32_t heap_pop(aq_item_queue *q) {
  int32_t top = q->heap[0].id;
  aq_heap_entry last = q->heap[--q->len];
  size_t i = 0;
  for (;;) {
    size_t first = HEAP_ARITY * i + 1;
    if (first >= q->len) break;
    size_t end = first + HEAP_ARITY < q->len ? first + HEAP_ARITY : q->len;
    size_t child = first;
    for (size_t c = first + 1; c < end; c++)
      if (heap_before(&q->heap[c], &q->heap[child])) child = c;
    if (!heap_before(&q->heap[child], &last)) break;
    q->heap[i] = q->heap[child];
    i = child;
  }
  if (q->len > 0) q->heap[i] = last;
  return top;
}

int aq_item_queue_reserve(aq_item_queue *q, size_t n) {
  while (q->cap < n)
    if (grow(q) != 0) return -1;
  return 0;
}

int aq_item_queue_push(aq_item_queue *q, int32_t id, double priority) {
  if (q->len == q->cap && grow(q) != 0) return -1;
  switch (q->order) {
  case AQ_ORDER_PRIORITY: heap_push(q, id, priority); break;
  case AQ_ORDER_FIFO: q->ids[(q->head + q->len++) % q->cap] = id; break;
  case AQ_ORDER_LIFO: q->ids[q->len++] = id; break;
  }
  return 0;
}

int aq_item_queue_pop(aq_item_queue *q, int32_t *id) {
  if (q->len == 0) return 0;
  switch (q->order) {
  case AQ_ORDER_PRIORITY: *id = heap_pop(q); break;
  case AQ_ORDER_FIFO:
    *id = q->ids[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    break;
  case AQ_ORDER_LIFO: *id = q->ids[--q->len]; break;
  }
  return 1;
}

int aq_item_queue_peek(const aq_item_queue *q, int32_t *id, double *priority) {
  if (q->len == 0) return 0;
  switch (q->order) {
  case AQ_ORDER_PRIORITY:
    *id = q->heap[0].id;
    if (priority) *priority = q->heap[0].priority;
    break;
  case AQ_ORDER_FIFO: *id = q->ids[q->head]; break;
  case AQ_ORDER_LIFO: *id = q->ids[q->len - 1]; break;
  }
  return 1;
}
