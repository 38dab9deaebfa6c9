/*
 * sched_delays.h — entries that wait for a time: an item's `delay`, a retry's
 * backoff, a limit key's next start (its rate).
 *
 * Entries (item ids, or -key for a limit key's wake-up: the scheduler's
 * encoding, never read here) are in one heap ordered by due time, hrtime in
 * milliseconds (sched_now_ms), with one uv timer armed for the first. When
 * entries come due, `due` is called for each in due-time order (equal times
 * in the order they were added), then `after` once. It knows libuv and the
 * item queue only, so tests/c/test_sched_delays.c runs it on a bare loop.
 */
#ifndef AQ_SCHED_DELAYS_H
#define AQ_SCHED_DELAYS_H

#include <stdint.h>
#include <uv.h>

#include "item_queue.h"

typedef struct {
  aq_item_queue queue;  /* entries by due time (hrtime ms) */
  uv_timer_t timer;     /* fires at the first due time */
  int stopped;          /* a graceful stop: nothing comes due any more */
  void (*due)(void *data, int32_t entry); /* an entry's time has come (it is out of the heap) */
  void (*after)(void *data);              /* after the entries that came due at once */
  void *data;
} aq_delays;

/* The current hrtime in milliseconds: the clock of every due time. */
double sched_now_ms(void);

/* Sets the heap up and initializes its timer on `loop`. */
void delays_init(aq_delays *dl, uv_loop_t *loop, void (*due)(void *data, int32_t entry),
                 void (*after)(void *data), void *data);
/* Adds `entry`, due at hrtime `due_ms`. Returns 0, or -1 out of memory. */
int delays_add(aq_delays *dl, int32_t entry, double due_ms);
/* Takes any one entry out (graceful stop). Returns 1, or 0 when none is left. */
int delays_pop(aq_delays *dl, int32_t *entry);
/* Entries waiting. */
static inline size_t delays_len(const aq_delays *dl) { return aq_item_queue_len(&dl->queue); }
/* Nothing comes due from now on (the entries stay, to be dropped) / again. */
void delays_stop(aq_delays *dl);
void delays_restart(aq_delays *dl);
/* Frees the entries (the heap may be used again). */
void delays_clear(aq_delays *dl);
/* Closes the timer (for good). */
void delays_close(aq_delays *dl);

#endif
