/*
 * sched_delays.c — the heap of entries waiting for a time (sched_delays.h).
 */
#include <math.h>

#include "sched_delays.h"

double sched_now_ms(void) { return (double)uv_hrtime() / 1e6; }

static void on_delay_timer(uv_timer_t *timer);

void delays_init(aq_delays *dl, uv_loop_t *loop, void (*due)(void *data, int32_t entry),
                 void (*after)(void *data), void *data) {
  aq_item_queue_init(&dl->queue, AQ_ORDER_PRIORITY);
  uv_timer_init(loop, &dl->timer);
  dl->timer.data = dl;
  dl->stopped = 0;
  dl->due = due;
  dl->after = after;
  dl->data = data;
}

/* Arms the timer for the first due entry (or stops it). A libuv timer fires
 * once the loop's clock (hrtime in whole milliseconds, read at the start of
 * the iteration, so never ahead of hrtime) reaches its start + timeout:
 * counting from that clock, the timer never fires before the entry is due. */
static void arm(aq_delays *dl) {
  int32_t entry;
  double due;
  if (dl->stopped || !aq_item_queue_peek(&dl->queue, &entry, &due)) {
    uv_timer_stop(&dl->timer);
    return;
  }
  double wait = due - (double)uv_now(dl->timer.loop);
  uint64_t ms = wait > 0 ? (uint64_t)ceil(wait) : 0;
  uv_timer_start(&dl->timer, on_delay_timer, ms, 0);
}

int delays_add(aq_delays *dl, int32_t entry, double due_ms) {
  int32_t first;
  double first_due;
  int was_first = !aq_item_queue_peek(&dl->queue, &first, &first_due) || due_ms < first_due;
  if (aq_item_queue_push(&dl->queue, entry, due_ms) != 0) return -1;
  if (was_first) arm(dl);
  return 0;
}

static void on_delay_timer(uv_timer_t *timer) {
  aq_delays *dl = timer->data;
  double now = sched_now_ms();
  int32_t entry;
  double due;
  while (!dl->stopped && aq_item_queue_peek(&dl->queue, &entry, &due) && due <= now) {
    aq_item_queue_pop(&dl->queue, &entry);
    dl->due(dl->data, entry);
  }
  arm(dl);
  dl->after(dl->data);
}

int delays_pop(aq_delays *dl, int32_t *entry) { return aq_item_queue_pop(&dl->queue, entry); }

void delays_stop(aq_delays *dl) {
  dl->stopped = 1;
  uv_timer_stop(&dl->timer);
}

void delays_restart(aq_delays *dl) {
  dl->stopped = 0;
  arm(dl);
}

void delays_clear(aq_delays *dl) {
  aq_item_queue_free(&dl->queue);
  aq_item_queue_init(&dl->queue, AQ_ORDER_PRIORITY);
}

void delays_close(aq_delays *dl) {
  if (!uv_is_closing((uv_handle_t *)&dl->timer)) uv_close((uv_handle_t *)&dl->timer, NULL);
}
