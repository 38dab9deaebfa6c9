/*
 * display.h — the live progress display of a run (SPEC section 6).
 *
 * Modes:
 *   tty    a panel redrawn at most 10 times a second on stderr: worker rows,
 *          per-class queue rows, overall progress. Lines the script prints go
 *          above it, whole.
 *   plain  one summary line every 2 s (for logs and CI)
 *   json   one JSON object per line every second, with every figure
 *   none   nothing, not even the final summary
 * A final summary is printed in every mode but none.
 *
 * The display reads the scheduler's figures; it never changes them. It owns its
 * timer and SIGWINCH handles (closed by display_close) and the terminal state
 * it changes (the hidden cursor), which every exit path gives back.
 *
 * The display never blocks the loop on a terminal (or pipe) that does not take
 * output (display.c, "output"): during a run it writes through a descriptor of
 * its own, opened non-blocking on stderr's file, so stderr itself (shared with
 * the shell) never changes mode. What the terminal has not taken yet waits in
 * `outq`; while it waits, frames and progress lines are dropped, and printed
 * lines are kept (up to AQ_DISPLAY_PENDING_MAX bytes; beyond that the loop
 * waits for the terminal rather than lose them). The run's last frame and its
 * summary are always written, waiting for the terminal if need be.
 */
#ifndef AQ_DISPLAY_H
#define AQ_DISPLAY_H

#include "display_state.h"

/* Parses a --progress / run_queue{progress=} name; -1 when unknown. */
int display_parse_mode(const char *name);
extern const char *const aq_progress_names[];

/* Sets the display up on `loop`, showing the figures of `sched`. */
void display_init(aq_display *d, uv_loop_t *loop, const aq_sched *sched);
/* Restores the terminal and closes the display's handles. Idempotent. */
void display_close(aq_display *d);
/* Shows the cursor and resets the attributes when the panel hid it: for a
 * process about to _exit (the watchdog). Async-signal-safe, from any thread. */
void display_restore_terminal(void);

/* A run starts/ends. `mode` may be AUTO. `why` (or NULL) says why the run
 * ended early; the final summary is printed here. */
void display_run_started(aq_display *d, aq_progress mode);
void display_run_finished(aq_display *d, const char *why);

/* Text for the user on stream 1 (stdout) or 2 (stderr). While a tty panel is
 * shown on that terminal, whole lines go above the panel (the rest waits for
 * its newline); in plain and json modes the text is queued as it is, in order
 * with the progress lines; otherwise it is written straight to the stream. */
void display_output(aq_display *d, int stream, const char *text, size_t len);

/* True while print/io.write to `stream` must go through display_output. */
int display_routes(aq_display *d, int stream);

/* Writes what is pending above the panel and redraws it (tty). Called by the
 * driver after running tasks, so printed lines appear at once. */
void display_flush(aq_display *d);

/* A failed item or hook, for the final summary (and the panel's last error). */
void display_note_failure(aq_display *d, const char *text, size_t len);
/* A failed attempt that will be retried: the panel's last error. */
void display_note_error(aq_display *d, const char *text, size_t len);

/* The name of limit key `key` (its Item:limit_key() value as text), for the
 * idle workers' "waiting for rate (name)". Called through the FFI by
 * run_queue when it makes a key (aq__display_key_name); kept until the run
 * ends. Out of memory, the key stays unnamed. */
void display_set_key_name(aq_display *d, int32_t key, const char *name, size_t len);

/* The latest figures of the whole run when several processes share it
 * (--redis): processes alive, items queued, running, done, failed in all of
 * them. Called through the FFI by the run's backend (aq__display_shared_run);
 * the panel, the plain line and the JSON show them from then on. */
void display_set_shared_run(aq_display *d, int64_t processes, int64_t queued, int64_t running, int64_t done,
                            int64_t failed);

#endif
