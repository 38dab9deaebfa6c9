/*
 * item_queue.h — the items waiting for a worker, taken in one of three orders.
 *
 *   LIFO      a stack: the newest item first (depth-first through the item tree)
 *   FIFO      a ring buffer: the oldest item first (breadth-first)
 *   PRIORITY  a 4-ary heap on (priority, arrival): the lowest priority first, and
 *             among equal priorities the one enqueued first
 *
 * push and pop are O(1) for LIFO and FIFO (amortized, the buffer doubles when
 * full) and O(log n) for PRIORITY. The queue holds item ids only; it owns its
 * buffer and nothing else.
 */
#ifndef AQ_ITEM_QUEUE_H
#define AQ_ITEM_QUEUE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { AQ_ORDER_LIFO = 0, AQ_ORDER_FIFO = 1, AQ_ORDER_PRIORITY = 2 } aq_order;

typedef struct {
  double priority;
  uint64_t seq; /* arrival number: keeps equal priorities first-in first-out */
  int32_t id;
} aq_heap_entry;

typedef struct {
  aq_order order;
  size_t len;
  size_t cap;
  size_t head;    /* FIFO: index of the oldest id in the ring */
  uint64_t seq;   /* PRIORITY: next arrival number */
  int32_t *ids;   /* LIFO and FIFO */
  aq_heap_entry *heap; /* PRIORITY */
} aq_item_queue;

/* Makes an empty queue. Cannot fail: memory is taken at the first push. */
void aq_item_queue_init(aq_item_queue *q, aq_order order);

/* Frees the queue's buffer; the queue is then empty and may be reused. */
void aq_item_queue_free(aq_item_queue *q);

/* Adds an id (priority is used by PRIORITY only). Returns 0, or -1 when memory
 * runs out (the queue is then unchanged). */
int aq_item_queue_push(aq_item_queue *q, int32_t id, double priority);

/* Makes room for n ids in all, so that pushes up to that length cannot fail.
 * Returns 0, or -1 when memory runs out (the queue is then unchanged). */
int aq_item_queue_reserve(aq_item_queue *q, size_t n);

/* Takes the next id into *id. Returns 1, or 0 when the queue is empty. */
int aq_item_queue_pop(aq_item_queue *q, int32_t *id);

/* The id that pop would take next, without taking it, into *id (and, for
 * PRIORITY, its priority into *priority when not NULL). Returns 1, or 0 when
 * the queue is empty. */
int aq_item_queue_peek(const aq_item_queue *q, int32_t *id, double *priority);

static inline size_t aq_item_queue_len(const aq_item_queue *q) { return q->len; }

#endif
