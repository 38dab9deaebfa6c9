/*
 * test_item_queue.c — unit tests of aq_item_queue (engine/store/item_queue.h):
 * LIFO, FIFO (ring wraparound across growth), PRIORITY (lower first, ties in
 * push order), empty pops, randomized runs against a reference model, and
 * free/reinit. Prints one line per check and a count; exits 1 on a failure.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item_queue.h"
#include "check.h"


static const char *order_name(aq_order o) {
  switch (o) {
  case AQ_ORDER_LIFO: return "LIFO";
  case AQ_ORDER_FIFO: return "FIFO";
  case AQ_ORDER_PRIORITY: return "PRIORITY";
  }
  return "?";
}

static int peek_mismatches = 0; /* peeks that named another id than the pop after them */

/* Pops every id into out (at most max); returns how many came. Each pop is
 * preceded by a peek, which must name the same id. */
static size_t drain(aq_item_queue *q, int32_t *out, size_t max) {
  size_t n = 0;
  int32_t id, peeked = 0;
  while (n < max) {
    int has = aq_item_queue_peek(q, &peeked, NULL);
    if (!aq_item_queue_pop(q, &id)) {
      if (has) peek_mismatches++;
      break;
    }
    if (!has || peeked != id) peek_mismatches++;
    out[n++] = id;
  }
  return n;
}

/* Checks that the queue yields exactly `want` (n ids) and is then empty. */
static void expect_drain(aq_item_queue *q, const int32_t *want, size_t n, const char *what) {
  int32_t *got = malloc((n + 1) * sizeof *got);
  if (!got) {
    check(0, "%s: out of memory in the test", what);
    return;
  }
  size_t len_before = aq_item_queue_len(q);
  size_t m = drain(q, got, n + 1);
  size_t first_bad = n;
  for (size_t i = 0; i < n && i < m; i++)
    if (got[i] != want[i]) {
      first_bad = i;
      break;
    }
  if (m != n) {
    check(0, "%s: expected %zu ids, got %zu (len said %zu)", what, n, m, len_before);
  } else if (first_bad < n) {
    check(0, "%s: at position %zu expected id %" PRId32 ", got %" PRId32, what, first_bad, want[first_bad],
          got[first_bad]);
  } else {
    check(len_before == n, "%s: %zu ids in the expected order (len was %zu)", what, n, len_before);
  }
  int32_t id = 12345;
  check(aq_item_queue_pop(q, &id) == 0 && aq_item_queue_len(q) == 0, "%s: empty afterwards (pop returns 0, len 0)",
        what);
  free(got);
}

/* --- empty queues --- */

static void test_empty(void) {
  aq_order orders[] = {AQ_ORDER_LIFO, AQ_ORDER_FIFO, AQ_ORDER_PRIORITY};
  for (size_t k = 0; k < 3; k++) {
    aq_item_queue q;
    aq_item_queue_init(&q, orders[k]);
    int32_t id = -7;
    check(aq_item_queue_len(&q) == 0, "%s: a new queue has len 0", order_name(orders[k]));
    check(aq_item_queue_pop(&q, &id) == 0, "%s: pop on a new queue returns 0", order_name(orders[k]));
    check(aq_item_queue_pop(&q, &id) == 0 && aq_item_queue_len(&q) == 0,
          "%s: popping an empty queue again still returns 0 and len stays 0", order_name(orders[k]));
    check(aq_item_queue_push(&q, 42, 1.5) == 0 && aq_item_queue_len(&q) == 1, "%s: one push gives len 1",
          order_name(orders[k]));
    int r = aq_item_queue_pop(&q, &id);
    check(r == 1 && id == 42, "%s: pop returns 1 and the pushed id 42 (got %d, id %" PRId32 ")",
          order_name(orders[k]), r, id);
    check(aq_item_queue_pop(&q, &id) == 0 && aq_item_queue_len(&q) == 0,
          "%s: pop after taking the only id returns 0", order_name(orders[k]));
    aq_item_queue_free(&q);
    /* freeing an unused queue, twice, is fine */
    aq_item_queue q2;
    aq_item_queue_init(&q2, orders[k]);
    aq_item_queue_free(&q2);
    aq_item_queue_free(&q2);
    check(aq_item_queue_len(&q2) == 0 && aq_item_queue_pop(&q2, &id) == 0,
          "%s: free of a never-used queue (twice) leaves it empty", order_name(orders[k]));
  }
}

/* --- LIFO --- */

static void test_lifo(void) {
  aq_item_queue q;
  aq_item_queue_init(&q, AQ_ORDER_LIFO);
  int32_t want[5] = {5, 4, 3, 2, 1};
  for (int32_t i = 1; i <= 5; i++) aq_item_queue_push(&q, i, (double)(10 - i));
  expect_drain(&q, want, 5, "LIFO: 1..5 come back 5..1 (priorities ignored)");

  /* interleaved: push 1 2 3, pop (3), push 4 5, pop all -> 5 4 2 1 */
  int32_t id = 0;
  aq_item_queue_push(&q, 1, 0);
  aq_item_queue_push(&q, 2, 0);
  aq_item_queue_push(&q, 3, 0);
  int r = aq_item_queue_pop(&q, &id);
  check(r == 1 && id == 3, "LIFO interleaved: first pop is 3 (got %d, id %" PRId32 ")", r, id);
  aq_item_queue_push(&q, 4, 0);
  aq_item_queue_push(&q, 5, 0);
  int32_t want2[4] = {5, 4, 2, 1};
  expect_drain(&q, want2, 4, "LIFO interleaved: then 5 4 2 1");

  /* growth well past the first buffer, with extreme ids */
  enum { N = 100000 };
  int32_t *w = malloc(N * sizeof *w);
  int ok = 1;
  for (int32_t i = 0; i < N; i++) {
    int32_t v = i == 0 ? INT32_MIN : i == 1 ? INT32_MAX : i == 2 ? -1 : i * 7 - 3;
    ok &= aq_item_queue_push(&q, v, 0) == 0;
    w[N - 1 - i] = v;
  }
  check(ok && aq_item_queue_len(&q) == N, "LIFO: %d pushes succeed across growth, len %zu", N,
        aq_item_queue_len(&q));
  expect_drain(&q, w, N, "LIFO: 100000 ids (incl. INT32_MIN, INT32_MAX, -1) come back newest first");
  free(w);
  aq_item_queue_free(&q);
}

/* --- FIFO --- */

static void test_fifo_basic(void) {
  aq_item_queue q;
  aq_item_queue_init(&q, AQ_ORDER_FIFO);
  int32_t want[5] = {1, 2, 3, 4, 5};
  for (int32_t i = 1; i <= 5; i++) aq_item_queue_push(&q, i, (double)(10 - i));
  expect_drain(&q, want, 5, "FIFO: 1..5 come back 1..5 (priorities ignored)");

  int32_t id = 0;
  aq_item_queue_push(&q, 1, 0);
  aq_item_queue_push(&q, 2, 0);
  aq_item_queue_push(&q, 3, 0);
  int r = aq_item_queue_pop(&q, &id);
  check(r == 1 && id == 1, "FIFO interleaved: first pop is 1 (got %d, id %" PRId32 ")", r, id);
  aq_item_queue_push(&q, 4, 0);
  aq_item_queue_push(&q, 5, 0);
  int32_t want2[4] = {2, 3, 4, 5};
  expect_drain(&q, want2, 4, "FIFO interleaved: then 2 3 4 5");
  aq_item_queue_free(&q);
}

/* The ring wraps and is then grown while wrapped: for each buffer size the
 * head is moved well into the buffer, the ring is filled so that it wraps
 * past the end, and one more push forces growth. Every id must come out in
 * push order. The buffer size is not part of the interface, so the test
 * tries many head offsets and fill levels (it covers every offset of the
 * first buffers whatever their capacity). */
static void test_fifo_wraparound(void) {
  int failures = 0;
  size_t cases = 0;
  for (size_t fill = 1; fill <= 300; fill += (fill < 140 ? 1 : 7)) {
    for (size_t offset = 0; offset <= 300; offset += (offset < 140 ? 1 : 11)) {
      aq_item_queue q;
      aq_item_queue_init(&q, AQ_ORDER_FIFO);
      int32_t next_in = 0, next_out = 0, id;
      /* move head: push and pop `offset` ids one at a time, keeping 1 queued */
      aq_item_queue_push(&q, next_in++, 0);
      for (size_t i = 0; i < offset; i++) {
        aq_item_queue_push(&q, next_in++, 0);
        if (!aq_item_queue_pop(&q, &id) || id != next_out++) failures++;
      }
      /* fill: the ring wraps (and grows, possibly several times, while wrapped) */
      for (size_t i = 0; i < fill; i++) {
        if (aq_item_queue_push(&q, next_in++, 0) != 0) failures++;
        /* every third push also pops, so head keeps moving during growth */
        if (i % 3 == 2) {
          if (!aq_item_queue_pop(&q, &id) || id != next_out++) failures++;
        }
      }
      if (aq_item_queue_len(&q) != (size_t)(next_in - next_out)) failures++;
      while (aq_item_queue_pop(&q, &id))
        if (id != next_out++) failures++;
      if (next_out != next_in || aq_item_queue_len(&q) != 0) failures++;
      aq_item_queue_free(&q);
      cases++;
    }
  }
  check(failures == 0, "FIFO: ring wraparound with growth while wrapped, %zu head-offset/fill cases, %d mismatches",
        cases, failures);

  /* One explicit scenario on the first buffer: 40 in/out moves head to 40,
   * then 100 pushes wrap around and grow, then everything in push order. */
  aq_item_queue q;
  aq_item_queue_init(&q, AQ_ORDER_FIFO);
  int32_t id;
  for (int32_t i = 0; i < 50; i++) aq_item_queue_push(&q, i, 0);
  int bad = 0;
  for (int32_t i = 0; i < 40; i++)
    if (!aq_item_queue_pop(&q, &id) || id != i) bad++;
  check(bad == 0 && aq_item_queue_len(&q) == 10, "FIFO: 50 pushed, first 40 popped in order, 10 left");
  for (int32_t i = 50; i < 150; i++) aq_item_queue_push(&q, i, 0);
  int32_t want[110];
  for (int32_t i = 0; i < 110; i++) want[i] = 40 + i;
  expect_drain(&q, want, 110, "FIFO: after head moved to 40 and 100 more pushes (wrap + grow): 40..149 in order");

  /* drained to empty with head in the middle, then reused */
  for (int32_t i = 0; i < 30; i++) aq_item_queue_push(&q, 1000 + i, 0);
  int32_t want2[30];
  for (int32_t i = 0; i < 30; i++) want2[i] = 1000 + i;
  expect_drain(&q, want2, 30, "FIFO: emptied with head mid-buffer, then reused: order kept");
  aq_item_queue_free(&q);
}

/* --- PRIORITY --- */

static void test_priority(void) {
  aq_item_queue q;
  aq_item_queue_init(&q, AQ_ORDER_PRIORITY);

  /* lower first */
  double p1[] = {5, 1, 4, 2, 3};
  for (int32_t i = 0; i < 5; i++) aq_item_queue_push(&q, (int32_t)(10 + i), p1[i]);
  int32_t want1[] = {11, 13, 14, 12, 10};
  expect_drain(&q, want1, 5, "PRIORITY: lower priority first (5 1 4 2 3 -> 1 2 3 4 5)");

  /* equal priorities in push order */
  for (int32_t i = 0; i < 100; i++) aq_item_queue_push(&q, i, 7.0);
  int32_t want2[100];
  for (int32_t i = 0; i < 100; i++) want2[i] = i;
  expect_drain(&q, want2, 100, "PRIORITY: 100 equal priorities come back in push order");

  /* negative, fractional, infinities, and -0.0 equal to 0.0 */
  struct {
    int32_t id;
    double p;
  } in[] = {{1, 0.0}, {2, -1.5}, {3, 0.25}, {4, -0.0}, {5, -1e9}, {6, 0.2500001}, {7, -1.5},
            {8, INFINITY}, {9, -INFINITY}, {10, 0.0}, {11, -0.000001}, {12, 1e-300}, {13, 3.0}};
  for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) aq_item_queue_push(&q, in[i].id, in[i].p);
  int32_t want3[] = {9, 5, 2, 7, 11, 1, 4, 10, 12, 3, 6, 13, 8};
  expect_drain(&q, want3, 13,
               "PRIORITY: negative, fractional, +-inf; -0.0 ties with 0.0 in push order");

  /* interleaved: pops between pushes, ties keep arrival order across pops */
  int32_t id;
  aq_item_queue_push(&q, 1, 2.0);
  aq_item_queue_push(&q, 2, 1.0);
  aq_item_queue_push(&q, 3, 2.0);
  int r = aq_item_queue_pop(&q, &id);
  check(r == 1 && id == 2, "PRIORITY interleaved: 1.0 first (got %d, id %" PRId32 ")", r, id);
  aq_item_queue_push(&q, 4, 2.0);
  aq_item_queue_push(&q, 5, 0.5);
  aq_item_queue_push(&q, 6, 2.0);
  int32_t want4[] = {5, 1, 3, 4, 6};
  expect_drain(&q, want4, 5, "PRIORITY interleaved: then 0.5, and the 2.0s in arrival order 1 3 4 6");

  /* descending pushes past several growths */
  enum { N = 50000 };
  int32_t *w = malloc(N * sizeof *w);
  for (int32_t i = 0; i < N; i++) aq_item_queue_push(&q, i, (double)(N - i) / 4.0);
  for (int32_t i = 0; i < N; i++) w[i] = N - 1 - i;
  expect_drain(&q, w, N, "PRIORITY: 50000 descending fractional priorities come back ascending");
  free(w);
  aq_item_queue_free(&q);
}

/* --- randomized runs against a reference model --- */

static uint64_t rng_state;
static uint64_t rng(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

typedef struct {
  int32_t id;
  double priority;
  uint64_t seq;
} model_entry;

/* The reference: a plain array. LIFO takes the last, FIFO the first,
 * PRIORITY the minimum by (priority, seq) by a linear scan. */
typedef struct {
  model_entry *v;
  size_t len, cap, head; /* head: FIFO consumed prefix */
  uint64_t seq;
} model;

static void model_push(model *m, int32_t id, double p) {
  if (m->len == m->cap) {
    /* compact the consumed prefix before growing */
    if (m->head > 0) {
      memmove(m->v, m->v + m->head, (m->len - m->head) * sizeof *m->v);
      m->len -= m->head;
      m->head = 0;
    }
    if (m->len == m->cap) {
      m->cap = m->cap ? m->cap * 2 : 256;
      m->v = realloc(m->v, m->cap * sizeof *m->v);
      if (!m->v) abort();
    }
  }
  m->v[m->len++] = (model_entry){id, p, m->seq++};
}

static size_t model_size(const model *m) { return m->len - m->head; }

static int model_pop(model *m, aq_order order, int32_t *id) {
  if (model_size(m) == 0) return 0;
  if (order == AQ_ORDER_LIFO) {
    *id = m->v[--m->len].id;
  } else if (order == AQ_ORDER_FIFO) {
    *id = m->v[m->head++].id;
  } else {
    size_t best = m->head;
    for (size_t i = m->head + 1; i < m->len; i++) {
      const model_entry *a = &m->v[i], *b = &m->v[best];
      if (a->priority < b->priority || (a->priority == b->priority && a->seq < b->seq)) best = i;
    }
    *id = m->v[best].id;
    m->v[best] = m->v[--m->len];
    /* order in the array does not matter for PRIORITY: seq decides ties */
  }
  return 1;
}

static double random_priority(void) {
  switch (rng() % 4) {
  case 0: return (double)(int)(rng() % 5) - 2.0;            /* few values: many ties */
  case 1: return ((double)(rng() % 2001) - 1000.0) / 8.0;  /* fractional, negative */
  case 2: return 0.0;
  default: return ((double)(int64_t)(rng() % 2000001) - 1000000.0) * 1e-3;
  }
}

static void test_random(aq_order order, uint64_t seed, long ops, unsigned push_bias) {
  aq_item_queue q;
  model m = {0};
  aq_item_queue_init(&q, order);
  rng_state = seed;
  long mismatches = 0, pops = 0, pushes = 0;
  size_t max_len = 0;
  int32_t next_id = 1;
  long first_bad = -1;
  for (long op = 0; op < ops; op++) {
    /* phases: mostly pushing, then mostly popping, so the size swings widely
     * (growth, wraparound, emptying) */
    unsigned bias = ((op / 20000) % 2 == 0) ? push_bias : 100 - push_bias;
    if (rng() % 100 < bias) {
      double p = random_priority();
      int32_t id = next_id++;
      if (aq_item_queue_push(&q, id, p) != 0) mismatches++;
      model_push(&m, id, p);
      pushes++;
    } else {
      int32_t got = 0, want = 0;
      int rg = aq_item_queue_pop(&q, &got);
      int rw = model_pop(&m, order, &want);
      pops++;
      if (rg != rw || (rw && got != want)) {
        if (first_bad < 0) first_bad = op;
        mismatches++;
      }
    }
    if (aq_item_queue_len(&q) != model_size(&m)) {
      if (first_bad < 0) first_bad = op;
      mismatches++;
    }
    if (model_size(&m) > max_len) max_len = model_size(&m);
  }
  /* drain the rest */
  int32_t got, want;
  while (model_pop(&m, order, &want)) {
    if (!aq_item_queue_pop(&q, &got) || got != want) mismatches++;
  }
  if (aq_item_queue_pop(&q, &got) != 0) mismatches++;
  if (mismatches == 0)
    check(1, "%s: randomized run, seed %" PRIu64 ", %ld ops (%ld pushes, %ld pops, max len %zu) match the reference model",
          order_name(order), seed, ops, pushes, pops, max_len);
  else
    check(0, "%s: randomized run, seed %" PRIu64 ", %ld ops: %ld mismatches against the reference model, the first at op %ld",
          order_name(order), seed, ops, mismatches, first_bad);
  aq_item_queue_free(&q);
  free(m.v);
}

/* --- free and reinit --- */

static void test_free_reinit(void) {
  aq_order orders[] = {AQ_ORDER_LIFO, AQ_ORDER_FIFO, AQ_ORDER_PRIORITY};
  for (size_t k = 0; k < 3; k++) {
    aq_order o = orders[k];
    aq_item_queue q;
    aq_item_queue_init(&q, o);
    int32_t id;
    /* fill past growth, move FIFO head, then free while non-empty */
    for (int32_t i = 0; i < 1000; i++) aq_item_queue_push(&q, i, (double)(i % 7));
    for (int i = 0; i < 10; i++) aq_item_queue_pop(&q, &id);
    aq_item_queue_free(&q);
    check(aq_item_queue_len(&q) == 0 && aq_item_queue_pop(&q, &id) == 0,
          "%s: free of a non-empty queue leaves it empty (len 0, pop returns 0)", order_name(o));
    check(q.order == o, "%s: free keeps the queue's order", order_name(o));

    /* reuse after free: same order semantics, from a clean state */
    int32_t want[4];
    aq_item_queue_push(&q, 1, 2.0);
    aq_item_queue_push(&q, 2, 1.0);
    aq_item_queue_push(&q, 3, 2.0);
    aq_item_queue_push(&q, 4, 1.0);
    if (o == AQ_ORDER_LIFO) {
      int32_t w[] = {4, 3, 2, 1};
      memcpy(want, w, sizeof want);
    } else if (o == AQ_ORDER_FIFO) {
      int32_t w[] = {1, 2, 3, 4};
      memcpy(want, w, sizeof want);
    } else {
      int32_t w[] = {2, 4, 1, 3};
      memcpy(want, w, sizeof want);
    }
    char what[96];
    snprintf(what, sizeof what, "%s: reused after free, order still right", order_name(o));
    expect_drain(&q, want, 4, what);

    /* many free/reuse cycles (a leak or stale head would show under ASan or here) */
    int bad = 0;
    for (int cycle = 0; cycle < 200; cycle++) {
      int n = 1 + cycle * 3;
      for (int i = 0; i < n; i++) aq_item_queue_push(&q, i, (double)i);
      for (int i = 0; i < cycle; i++)
        if (aq_item_queue_pop(&q, &id) != 1) bad++;
      if (aq_item_queue_len(&q) != (size_t)(n - cycle)) bad++;
      aq_item_queue_free(&q);
      if (aq_item_queue_len(&q) != 0 || aq_item_queue_pop(&q, &id) != 0) bad++;
    }
    check(bad == 0, "%s: 200 fill/partial-pop/free cycles keep len right and end empty", order_name(o));

    /* reinit with another order after free */
    aq_order other = orders[(k + 1) % 3];
    aq_item_queue_free(&q);
    aq_item_queue_init(&q, other);
    aq_item_queue_push(&q, 1, 1.0);
    aq_item_queue_push(&q, 2, 0.0);
    aq_item_queue_push(&q, 3, 2.0);
    int32_t want2[3];
    if (other == AQ_ORDER_LIFO) {
      int32_t w[] = {3, 2, 1};
      memcpy(want2, w, sizeof want2);
    } else if (other == AQ_ORDER_FIFO) {
      int32_t w[] = {1, 2, 3};
      memcpy(want2, w, sizeof want2);
    } else {
      int32_t w[] = {2, 1, 3};
      memcpy(want2, w, sizeof want2);
    }
    snprintf(what, sizeof what, "%s freed, re-initialized as %s: %s order", order_name(o), order_name(other),
             order_name(other));
    expect_drain(&q, want2, 3, what);
    aq_item_queue_free(&q);
  }

  /* the priority arrival counter: ties after a free still come in push order */
  aq_item_queue q;
  aq_item_queue_init(&q, AQ_ORDER_PRIORITY);
  for (int32_t i = 0; i < 70; i++) aq_item_queue_push(&q, i, 1.0);
  aq_item_queue_free(&q);
  for (int32_t i = 0; i < 5; i++) aq_item_queue_push(&q, 100 + i, 1.0);
  int32_t want[] = {100, 101, 102, 103, 104};
  expect_drain(&q, want, 5, "PRIORITY: after free, equal priorities are again in push order");
  aq_item_queue_free(&q);
}

/* --- reserve: room taken in advance, pushes then keep the order --- */

static void test_reserve(void) {
  aq_order orders[] = {AQ_ORDER_LIFO, AQ_ORDER_FIFO, AQ_ORDER_PRIORITY};
  for (size_t k = 0; k < 3; k++) {
    aq_order o = orders[k];
    aq_item_queue q;
    aq_item_queue_init(&q, o);
    int32_t id;
    /* a FIFO whose ring has wrapped: reserving must keep the oldest first */
    for (int32_t i = 1; i <= 60; i++) aq_item_queue_push(&q, i, 1.0);
    for (int i = 0; i < 50; i++) aq_item_queue_pop(&q, &id);
    for (int32_t i = 61; i <= 100; i++) aq_item_queue_push(&q, i, 1.0);
    size_t cap_before = q.cap;
    check(aq_item_queue_reserve(&q, 1000) == 0 && q.cap >= 1000, "%s: reserve(1000) makes room for 1000",
          order_name(o));
    check(aq_item_queue_reserve(&q, 10) == 0 && q.cap >= 1000 && cap_before < 1000,
          "%s: reserve below the capacity changes nothing", order_name(o));
    size_t cap = q.cap;
    for (int32_t i = 101; i <= 1050; i++) aq_item_queue_push(&q, i, 1.0);
    check(q.cap == cap, "%s: pushes up to the reserved length do not grow the buffer", order_name(o));
    int bad = 0;
    for (int32_t n = 0; n < 1000; n++) {
      /* LIFO kept 1..10 under 61..1050; the others hold 51..1050 oldest first */
      int32_t want = o != AQ_ORDER_LIFO ? 51 + n : n < 990 ? 1050 - n : 1000 - n;
      if (aq_item_queue_pop(&q, &id) != 1 || id != want) bad++;
    }
    check(bad == 0 && aq_item_queue_len(&q) == 0, "%s: every id comes back, in the queue's order", order_name(o));
    aq_item_queue_free(&q);
  }
}

int main(void) {
  test_empty();
  test_reserve();
  test_lifo();
  test_fifo_basic();
  test_fifo_wraparound();
  test_priority();

  const aq_order orders[] = {AQ_ORDER_LIFO, AQ_ORDER_FIFO, AQ_ORDER_PRIORITY};
  const uint64_t seeds[] = {0x9E3779B97F4A7C15ULL, 12345, 0xDEADBEEFULL};
  for (size_t k = 0; k < 3; k++) {
    for (size_t s = 0; s < 3; s++) {
      /* LIFO and FIFO are cheap: long runs; the PRIORITY model scans linearly */
      long ops = orders[k] == AQ_ORDER_PRIORITY ? 60000 : 300000;
      test_random(orders[k], seeds[s], ops, s == 2 ? 75 : 60);
    }
  }

  test_free_reinit();
  check(peek_mismatches == 0, "peek names the id the next pop takes, in every drain above (%d mismatches)",
        peek_mismatches);

  return check_summary();
}
