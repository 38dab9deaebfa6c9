/*
 * open_handles.h — the handles still open when the engine closes its loop.
 *
 * engine_destroy closes every handle the engine owns (the driver, the signal
 * handles, the display's and the scheduler's timers), and each binding closes
 * its own, in its cancel hooks, its close hooks or its __gc. A handle still
 * open after that is a leak: some owner forgot it. It is reported, one line
 * each, never hidden:
 *   aqueue: handle left open at exit: timer 0x6020000001d0 (active, referenced)
 * and in an ASan build followed by where its memory was allocated (its owner).
 * Then it is closed all the same, so the loop closes and the process exits as
 * it would have.
 *
 * Strict close (libuv's own test discipline: a test fails when its loop does
 * not close cleanly): with AQUEUE_STRICT_CLOSE=1 in the environment (the test
 * suite sets it for every run), or in a Debug build (AQUEUE_DEBUG) unless
 * AQUEUE_STRICT_CLOSE=0, a leftover handle or a loop that will not close makes
 * aqueue-run exit with AQ_EXIT_LEFT_OPEN.
 */
#ifndef AQ_OPEN_HANDLES_H
#define AQ_OPEN_HANDLES_H

#include <uv.h>

/* The exit status of a run whose loop did not close cleanly, in strict close
 * (70: EX_SOFTWARE, an internal error). */
enum { AQ_EXIT_LEFT_OPEN = 70 };

/* 1 when strict close is on (see above), 0 otherwise. */
int open_handles_strict(void);

/* Reports each handle of `loop` not already closing, closes it, runs the loop
 * until their close callbacks have run, then closes the loop (reporting it
 * when it still refuses). Returns how many problems were found: 0 means the
 * loop closed cleanly with nothing left open. */
int open_handles_close_loop(uv_loop_t *loop);

#endif
