/*
 * display_state.h — what the live display (display.h) keeps: its mode, its
 * terminal, its output queue and the figures it smooths. Written by display.c
 * (when and where output goes), read by display_render.c (what a frame
 * says); the two share it through this header.
 */
#ifndef AQ_DISPLAY_STATE_H
#define AQ_DISPLAY_STATE_H

#include <stdint.h>
#include <uv.h>

#include "aqueue.h"
#include "scheduler.h"

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

/* The figures of a run shared by several processes (--redis), all of them
 * together, as its store counts them: given by the backend a few times a
 * second (display_set_shared_run). */
typedef struct {
  int known;             /* given at least once in this run */
  int64_t processes, queued, running, done, failed;
  double rate;           /* smoothed items/s of the whole run (done and failed) */
  int64_t rate_finished; /* done + failed at the last figures */
  uint64_t rate_ns;      /* time of the last figures */
} aq_shared_run_figures;

typedef struct {
  uv_loop_t *loop;       /* its handles' loop */
  const aq_sched *sched; /* whose figures it shows; never changed here */
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
  uint64_t eta_total_ns; /* the ETA is exact once it has not grown for eta_stable_ns */
  uint64_t eta_stable_ns;  /* AQ_DISPLAY_ETA_STABLE_MS, or its test knob (test_knobs.h) */
  uint64_t plain_tick_ms;  /* the plain / json progress line's period: the */
  uint64_t json_tick_ms;   /* defaults below, or their test knobs */
  char **key_names;      /* this run's limit keys by id: Item:limit_key() values (display_set_key_name) */
  int32_t key_names_cap;

  double rate;           /* smoothed items/s of the overall figure */
  int64_t rate_done;     /* overall done at the last rate sample */
  uint64_t rate_ns;      /* time of the last rate sample */

  char *failures[AQ_DISPLAY_KEPT_FAILURES]; /* ring of "Class:phase: message" */
  int64_t failures_total;
  char *last_error;      /* the latest failure or failed attempt, for the panel */
  aq_shared_run_figures shared; /* the whole run's, when it is shared (--redis) */
} aq_display;

/* The ETA counts as exact (no "~") once the overall total has not grown for
 * this long. */
#define AQ_DISPLAY_ETA_STABLE_MS 3000
/* How often a plain or json progress line is written. */
#define AQ_DISPLAY_PLAIN_TICK_MS 2000
#define AQ_DISPLAY_JSON_TICK_MS 1000

#endif
