/*
 * timer_start.c — aq_timer_start (aqueue.h): a libuv timer that never fires
 * before the time asked. Used by modules, core.suspend and the scheduler's
 * timeouts; it knows only libuv.
 */
#include <math.h>

#include "aqueue.h"

/* A libuv timer fires once the loop's clock (hrtime in whole milliseconds,
 * read at the start of a loop turn) reaches start + timeout, where start is
 * that clock when the timer was started. Update the clock (tasks may have run
 * since the turn began), then add the fraction of a millisecond its rounding
 * down dropped: the timer then fires no earlier than `seconds` after now. */
int aq_timer_start(uv_timer_t *timer, uv_timer_cb cb, double seconds) {
  uv_loop_t *loop = timer->loop;
  uv_update_time(loop);
  uint64_t ms = 0;
  if (seconds > 0) {
    double dropped_ms = (double)uv_hrtime() / 1e6 - (double)uv_now(loop);
    if (dropped_ms < 0) dropped_ms = 0;
    double total = ceil(seconds * 1000.0 + dropped_ms);
    ms = total >= 1e15 ? (uint64_t)1e15 : (uint64_t)total;
  }
  return uv_timer_start(timer, cb, ms, 0);
}
