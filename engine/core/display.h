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

#include <stdint.h>
#include <uv.h>

#include "aqueue.h"

typedef struct aq_engine aq_engine;

typedef enum {
  AQ_PROGRESS_AUTO = 0, /* tty when stderr is a terminal, else plain */
  AQ_PROGRESS_TTY,
  AQ_PROGRESS_PLAIN,
  AQ_PROGRESS_JSON,
  AQ_PROGRESS_NONE
} aq_progress;

/* Printed lines kept while the terminal does not take output; beyond this the
 * loop waits for the terminal. */
#define AQ_DISPLAY_PENDING_MAX (1024 * 1024)

/* The last failures of a run, for the final summary. */
#define AQ_DISPLAY_KEPT_FAILURES 5

typedef struct {
  aq_progress mode;      /* of the current run; NONE between runs */
  int fd;                /* the display's terminal: stderr (size, isatty) */
  int wfd;               /* where it writes during a run: its own non-blocking
                          * descriptor of stderr's file, else fd (blocking) */
  aq_buf outq;           /* bytes accepted, not yet taken by wfd, from outq_off */
  size_t outq_off;
  int out_broken;        /* wfd failed (EPIPE, EIO): output is dropped */
  int mid_line;          /* plain/json: the text queued last has no newline yet */
  int color, utf8;
  int cols, rows;        /* terminal size, kept current by SIGWINCH */
  int route_stdout;      /* stdout is stderr's terminal or pipe: print goes through the display */
  uv_timer_t timer;
  uv_signal_t winch;
  int handles_closed;

  aq_buf frame;          /* the panel as last drawn (tty) */
  aq_buf next;           /* the panel being built */
  aq_buf raw;            /* the panel before its lines are clipped to the width */
  aq_buf out;            /* bytes for the next write() */
  aq_buf pending;        /* whole lines waiting to go above the panel */
  aq_buf partial[3];     /* per stream (1 stdout, 2 stderr): text before its newline */
  int panel_lines;       /* lines of the panel on screen, 0 when none */
  int cursor_hidden;
  int final_frame;       /* the frame being rendered is the run's last one */
  unsigned spin;         /* spinner phase, one step per tick */

  int64_t eta_total;     /* the overall total, unchanged since eta_total_ns: */
  uint64_t eta_total_ns; /* the ETA is exact once it has not grown for a while */
  char **key_names;      /* this run's limit keys by id: Item:limit_key() values */
  int32_t key_names_cap;

  double rate;           /* smoothed items/s of the overall figure */
  int64_t rate_done;     /* overall done at the last rate sample */
  uint64_t rate_ns;      /* time of the last rate sample */

  char *failures[AQ_DISPLAY_KEPT_FAILURES]; /* ring of "Class:phase: message" */
  int64_t failures_total;
  char *last_error;      /* the latest failure or failed attempt, for the panel */
} aq_display;

/* Parses a --progress / run_queue{progress=} name; -1 when unknown. */
int display_parse_mode(const char *name);
extern const char *const aq_progress_names[];

void display_init(aq_engine *E);
/* Restores the terminal and closes the display's handles. Idempotent. */
void display_close(aq_engine *E);
/* Shows the cursor and resets the attributes when the panel hid it: for a
 * process about to _exit (the watchdog). Async-signal-safe, from any thread. */
void display_restore_terminal(void);

/* A run starts/ends. `mode` may be AUTO. `why` (or NULL) says why the run
 * ended early; the final summary is printed here. */
void display_run_started(aq_engine *E, aq_progress mode);
void display_run_finished(aq_engine *E, const char *why);

/* Text for the user on stream 1 (stdout) or 2 (stderr). While a tty panel is
 * shown on that terminal, whole lines go above the panel (the rest waits for
 * its newline); in plain and json modes the text is queued as it is, in order
 * with the progress lines; otherwise it is written straight to the stream. */
void display_output(aq_engine *E, int stream, const char *text, size_t len);

/* True while print/io.write to `stream` must go through display_output. */
int display_routes(aq_engine *E, int stream);

/* Writes what is pending above the panel and redraws it (tty). Called by the
 * driver after running tasks, so printed lines appear at once. */
void display_flush(aq_engine *E);

/* A failed item or hook, for the final summary (and the panel's last error). */
void display_note_failure(aq_engine *E, const char *text, size_t len);
/* A failed attempt that will be retried: the panel's last error. */
void display_note_error(aq_engine *E, const char *text, size_t len);

/* The ETA counts as exact (no "~") once the overall total has not grown for
 * this long. */
#define AQ_DISPLAY_ETA_STABLE_S 3.0
/* True when the ETA is exact: nothing left, or a total that stopped growing. */
int display_eta_stable(aq_engine *E, int64_t done, int64_t total);

/* aq__display_key_name, called through the FFI, is declared in core_ffi.h. */
/* The name of limit key `key`, or NULL. */
const char *display_key_name(aq_engine *E, int32_t key);

/* --- rendering (display_render.c) --- */
/* The tty panel into d->next; returns its number of lines. */
int render_panel(aq_engine *E, aq_display *d);
/* One plain progress line (no newline) into b. */
void render_plain(aq_engine *E, aq_display *d, aq_buf *b);
/* One JSON object (no newline) into b; `final` adds the summary figures. */
void render_json(aq_engine *E, aq_display *d, aq_buf *b, int final, const char *why);
/* The final summary: a line, then up to AQ_DISPLAY_KEPT_FAILURES failures. */
void render_summary(aq_engine *E, aq_display *d, aq_buf *b, const char *why);

#endif
