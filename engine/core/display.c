/*
 * display.c — the display's life: choosing the mode, the tick timer, terminal
 * size, lines printed above the panel, the final summary, and giving the
 * terminal back (see display.h). What a frame looks like is display_render.c.
 *
 * tty writes: every change to the screen is built in d->out and written with
 * one write(). The panel ends without a newline, so the cursor sits at the end
 * of its last line; to replace it we go to column 0, up panel_lines-1 lines
 * and clear to the end of the screen.
 *
 * Output never blocks the loop (see display.h): everything goes through
 * output_push into `outq`, written as far as the terminal takes it. A frame is
 * built only when `outq` is empty, so a frame cut short is finished before the
 * next one starts, and frames are dropped while the terminal is behind;
 * printed lines wait in `pending` (tty) or `outq` (plain, json), in order.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "display.h"
#include "display_render.h"
#include "test_knobs.h"

#define TTY_TICK_MS 100
/* Longest limit key name kept. */
#define KEY_NAME_MAX 200
/* Printed lines are written at the latest when this much is pending (tty). */
#define PENDING_LIMIT (64 * 1024)

const char *const aq_progress_names[] = {"auto", "tty", "plain", "json", "none", NULL};

int display_parse_mode(const char *name) {
  for (int i = 0; aq_progress_names[i]; i++)
    if (strcmp(name, aq_progress_names[i]) == 0) return i;
  return -1;
}

/* --- the terminal --- */

static const char SHOW_CURSOR[] = "\033[?25h";
static const char HIDE_CURSOR[] = "\033[?25l";

/* Set while the cursor is hidden, for the atexit fallback: a path that calls
 * exit() without going through the engine still gets its cursor back. */
static _Atomic int cursor_hidden_fd = -1; /* atomic: also read by the watchdog thread */

void display_restore_terminal(void) {
  static const char restore[] = "\033[0m\033[?25h\n";
  int fd = cursor_hidden_fd;
  if (fd >= 0) {
    ssize_t n = write(fd, restore, sizeof restore - 1);
    (void)n;
  }
}

static void restore_cursor_at_exit(void) {
  if (cursor_hidden_fd >= 0) {
    ssize_t n = write(cursor_hidden_fd, SHOW_CURSOR, sizeof SHOW_CURSOR - 1);
    (void)n;
  }
}

/* Writes all of data to fd, waiting for a non-blocking fd that is full: for
 * the paths that must write (the run's last frame and summary, the cursor at
 * exit, output while no run shows the display). Gives up on a write error. */
static void write_wait(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, -1) < 0 && errno != EINTR) return;
        continue;
      }
      return;
    }
    data += n;
    len -= (size_t)n;
  }
}

/* --- output that never blocks the loop --- */

/* Same file for both descriptors: the same terminal, or the same pipe. */
static int same_stream(int a, int b) {
  struct stat sa, sb;
  if (fstat(a, &sa) != 0 || fstat(b, &sb) != 0) return 0;
  if (S_ISCHR(sa.st_mode) && S_ISCHR(sb.st_mode)) return sa.st_rdev == sb.st_rdev;
  if (S_ISFIFO(sa.st_mode) && S_ISFIFO(sb.st_mode)) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  return 0;
}

/* Opens the display's own descriptor of stderr's file, non-blocking, for the
 * run: a full terminal or pipe then fails a write with EAGAIN instead of
 * stopping the loop. It is a new open file description, so the O_NONBLOCK
 * flag is ours alone: the shell, and the script's stdout (often stderr's
 * description), never see it, and nothing has to be restored at exit. Only
 * terminals and pipes are reopened (the files that can be full); a regular
 * file (reopening would lose its offset) or what cannot be reopened (a
 * socket, no /proc) is written through stderr itself. */
static void output_open(aq_display *d) {
  d->wfd = d->fd;
  d->out_broken = 0;
  d->mid_line = 0;
  struct stat st;
  if (fstat(d->fd, &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) return;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", d->fd);
  int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return;
  if (!same_stream(fd, d->fd)) {
    close(fd);
    return;
  }
  d->wfd = fd;
}

static int output_waiting(const aq_display *d) { return d->outq.len > d->outq_off; }

static void output_clear(aq_display *d) {
  aq_buf_reset(&d->outq);
  d->outq_off = 0;
}

/* Writes as much of outq as the terminal takes now. Returns 1 when all of it
 * is written (or dropped, once the terminal is gone), 0 when some waits. */
static int output_flush(aq_display *d) {
  while (d->outq_off < d->outq.len) {
    ssize_t n = write(d->wfd, d->outq.data + d->outq_off, d->outq.len - d->outq_off);
    if (n > 0) {
      d->outq_off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    d->out_broken = 1; /* EPIPE, EIO: nobody will see more output */
    break;
  }
  output_clear(d);
  return 1;
}

/* Waits until the terminal has taken all of outq. */
static void output_drain(aq_display *d) {
  if (output_waiting(d) && !d->out_broken)
    write_wait(d->wfd, d->outq.data + d->outq_off, d->outq.len - d->outq_off);
  output_clear(d);
}

/* Queues bytes for the terminal after those already waiting, and writes what
 * it takes now. Out of memory, it waits for the terminal instead. */
static void output_push(aq_display *d, const char *data, size_t len) {
  if (d->out_broken || len == 0) return;
  if (d->outq_off > 0 && d->outq_off >= d->outq.len / 2) { /* keep the buffer from creeping */
    memmove(d->outq.data, d->outq.data + d->outq_off, d->outq.len - d->outq_off);
    d->outq.len -= d->outq_off;
    d->outq_off = 0;
  }
  aq_buf_add(&d->outq, data, len);
  if (d->outq.failed) {
    d->outq.failed = 0;
    output_drain(d);
    write_wait(d->wfd, data, len);
    return;
  }
  output_flush(d);
}

/* The end of a run: everything queued reaches the terminal, then the run's
 * descriptor is closed. */
static void output_close(aq_display *d) {
  output_drain(d);
  if (d->wfd != d->fd) close(d->wfd);
  d->wfd = d->fd;
}

static void query_size(aq_display *d) {
  struct winsize ws;
  if (ioctl(d->fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
    d->cols = ws.ws_col;
    d->rows = ws.ws_row;
  } else {
    d->cols = 80;
    d->rows = 24;
  }
}

static int env_says_utf8(void) {
  const char *vars[] = {"LC_ALL", "LC_CTYPE", "LANG"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
    const char *v = getenv(vars[i]);
    if (v && *v) return strcasestr(v, "utf-8") != NULL || strcasestr(v, "utf8") != NULL;
  }
  return 0;
}

/* True when fd a and fd b are the same terminal device. */
static int same_terminal(int a, int b) { return isatty(a) && isatty(b) && same_stream(a, b); }

/* Moves the cursor to the start of the panel and clears it from the screen. */
static void erase_panel(aq_display *d, aq_buf *b) {
  if (d->panel_lines == 0) return;
  aq_buf_puts(b, "\r");
  if (d->panel_lines > 1) aq_buf_printf(b, "\033[%dA", d->panel_lines - 1);
  aq_buf_puts(b, "\033[J");
  d->panel_lines = 0;
}

/* --- figures that change with time --- */

static void update_rate(aq_display *d) {
  const aq_sched *s = d->sched;
  int64_t done = s->overall_total > 0 ? s->overall_done : s->processed + s->failed;
  int64_t total = s->overall_total > 0 ? s->overall_total : s->enqueued;
  uint64_t now = uv_hrtime();
  if (total != d->eta_total || d->eta_total_ns == 0) {
    d->eta_total = total;
    d->eta_total_ns = now;
  }
  if (d->rate_ns == 0) {
    d->rate_ns = now;
    d->rate_done = done;
    return;
  }
  double dt = (double)(now - d->rate_ns) / 1e9;
  if (dt < 0.05) return;
  double instant = (double)(done - d->rate_done) / dt;
  /* An exponential average over about 2 s: steady, yet follows real changes. */
  double alpha = 1.0 - exp(-dt / 2.0);
  d->rate = d->rate == 0 ? instant : d->rate + alpha * (instant - d->rate);
  d->rate_ns = now;
  d->rate_done = done;
}

/* --- tty --- */

/* Redraws the panel (re-rendered when `render`), with pending lines above.
 * While the terminal has not taken the last frame, the new one is dropped
 * (printed lines wait in pending, up to AQ_DISPLAY_PENDING_MAX bytes). */
static void draw(aq_display *d, int render) {
  if (!output_flush(d)) {
    if (d->pending.len < AQ_DISPLAY_PENDING_MAX) return;
    output_drain(d); /* lines are never dropped: wait for the terminal */
  }
  int lines = d->panel_lines;
  if (render) {
    aq_buf_reset(&d->next);
    lines = render_panel(d);
    if (d->next.failed) return;
    if (d->pending.len == 0 && d->panel_lines > 0 && d->next.len == d->frame.len &&
        memcmp(d->next.data, d->frame.data, d->frame.len) == 0)
      return; /* nothing changed */
    aq_buf t = d->frame;
    d->frame = d->next;
    d->next = t;
  } else if (d->pending.len == 0) {
    return;
  }
  aq_buf_reset(&d->out);
  erase_panel(d, &d->out);
  aq_buf_add(&d->out, d->pending.data, d->pending.len);
  aq_buf_add(&d->out, d->frame.data, d->frame.len);
  /* The cursor waits at the start of the last line: whatever the terminal
   * echoes there (a ^C) overwrites the line instead of wrapping it onto a row
   * the next erase would not know about. */
  aq_buf_puts(&d->out, "\r");
  if (d->out.failed) return;
  output_push(d, d->out.data, d->out.len);
  d->panel_lines = lines > 0 ? lines : d->panel_lines;
  aq_buf_reset(&d->pending);
}

static void on_winch(uv_signal_t *handle, int signum) {
  (void)signum;
  aq_display *d = handle->data;
  query_size(d);
  /* After a resize nobody knows how many rows the old panel takes: terminals
   * re-wrap (tmux, VTE) or cut (xterm) its lines, and quick resizes arrive as
   * one signal. So scroll everything on the screen up into the terminal's
   * scrollback (the printed lines stay there) and draw the panel from the top
   * of a clean screen. */
  if (d->panel_lines > 0) {
    aq_buf_reset(&d->out);
    aq_buf_printf(&d->out, "\033[%d;1H", d->rows);
    for (int i = 0; i < d->rows; i++) aq_buf_puts(&d->out, "\n");
    aq_buf_puts(&d->out, "\033[H\033[J");
    if (!d->out.failed) output_push(d, d->out.data, d->out.len); /* after any frame still waiting */
    d->panel_lines = 0;
  }
  draw(d, 1);
}

static void on_tick(uv_timer_t *timer) {
  aq_display *d = timer->data;
  update_rate(d);
  switch (d->mode) {
  case AQ_PROGRESS_TTY:
    d->spin++;
    draw(d, 1);
    break;
  case AQ_PROGRESS_PLAIN:
  case AQ_PROGRESS_JSON:
    /* Dropped while the terminal is behind, or inside a printed line. */
    if (!output_flush(d) || d->mid_line) break;
    aq_buf_reset(&d->out);
    if (d->mode == AQ_PROGRESS_PLAIN) render_plain(d, &d->out);
    else render_json(d, &d->out, 0, NULL);
    aq_buf_puts(&d->out, "\n");
    if (!d->out.failed) output_push(d, d->out.data, d->out.len);
    break;
  default:
    break;
  }
}

/* --- life --- */

void display_init(aq_display *d, uv_loop_t *loop, const aq_sched *sched) {
  memset(d, 0, sizeof *d);
  d->loop = loop;
  d->sched = sched;
  d->fd = d->wfd = STDERR_FILENO;
  d->mode = AQ_PROGRESS_NONE;
  d->eta_stable_ns = aq__test_knob_ms(AQ_TEST_ETA_STABLE_MS, AQ_DISPLAY_ETA_STABLE_MS) * 1000000;
  d->plain_tick_ms = aq__test_knob_ms(AQ_TEST_PLAIN_TICK_MS, AQ_DISPLAY_PLAIN_TICK_MS);
  d->json_tick_ms = aq__test_knob_ms(AQ_TEST_JSON_TICK_MS, AQ_DISPLAY_JSON_TICK_MS);
  /* What the script prints to a pipe or a file shows up line by line, as it
   * would on a terminal, not in blocks at exit. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  uv_timer_init(loop, &d->timer);
  uv_signal_init(loop, &d->winch);
  d->timer.data = d->winch.data = d;
  /* Neither keeps the loop alive: a run whose tasks can never wake must
   * still end (and be reported). */
  uv_unref((uv_handle_t *)&d->timer);
  uv_unref((uv_handle_t *)&d->winch);
  static int registered;
  if (!registered) {
    registered = 1;
    atexit(restore_cursor_at_exit);
  }
}

static void free_failures(aq_display *d) {
  for (int i = 0; i < AQ_DISPLAY_KEPT_FAILURES; i++) {
    free(d->failures[i]);
    d->failures[i] = NULL;
  }
  d->failures_total = 0;
  free(d->last_error);
  d->last_error = NULL;
}

void display_run_started(aq_display *d, aq_progress mode) {
  const char *term = getenv("TERM");
  int dumb = term && strcmp(term, "dumb") == 0;
  if (mode == AQ_PROGRESS_AUTO) mode = isatty(d->fd) && !dumb ? AQ_PROGRESS_TTY : AQ_PROGRESS_PLAIN;
  d->mode = mode;
  d->rate = 0;
  d->rate_ns = 0;
  d->eta_total = 0;
  d->eta_total_ns = 0;
  d->spin = 0;
  d->shared = (aq_shared_run_figures){0};
  free_failures(d);
  update_rate(d);
  /* What stdio holds goes out before anything of the run. */
  fflush(stdout);
  fflush(stderr);
  if (mode != AQ_PROGRESS_NONE) output_open(d);
  uint64_t tick = 0;
  if (mode == AQ_PROGRESS_TTY) {
    query_size(d);
    d->color = !getenv("NO_COLOR") && !dumb;
    d->utf8 = env_says_utf8();
    d->route_stdout = same_terminal(STDOUT_FILENO, d->fd);
    output_push(d, HIDE_CURSOR, sizeof HIDE_CURSOR - 1);
    d->cursor_hidden = 1;
    cursor_hidden_fd = d->fd;
    uv_signal_start(&d->winch, on_winch, SIGWINCH);
    tick = TTY_TICK_MS;
  } else if (mode == AQ_PROGRESS_PLAIN || mode == AQ_PROGRESS_JSON) {
    /* The script's stdout in order with the progress lines when both go to
     * the same pipe or terminal. */
    d->route_stdout = d->wfd != d->fd && same_stream(STDOUT_FILENO, d->fd);
    tick = mode == AQ_PROGRESS_PLAIN ? d->plain_tick_ms : d->json_tick_ms;
  }
  if (tick) uv_timer_start(&d->timer, on_tick, tick, tick);
  if (mode == AQ_PROGRESS_TTY) draw(d, 1);
}

/* Moves unfinished lines (text without its newline yet) into pending. */
static void flush_partials(aq_display *d) {
  for (int s = 1; s <= 2; s++) {
    aq_buf *p = &d->partial[s];
    if (p->len == 0) continue;
    aq_buf_add(&d->pending, p->data, p->len);
    aq_buf_puts(&d->pending, "\n");
    aq_buf_reset(p);
  }
}

static void free_key_names(aq_display *d) {
  for (int32_t i = 0; i < d->key_names_cap; i++) free(d->key_names[i]);
  free(d->key_names);
  d->key_names = NULL;
  d->key_names_cap = 0;
}

void display_run_finished(aq_display *d, const char *why) {
  aq_progress mode = d->mode;
  uv_timer_stop(&d->timer);
  uv_signal_stop(&d->winch);
  update_rate(d);
  aq_buf_reset(&d->out);
  if (mode == AQ_PROGRESS_TTY) {
    flush_partials(d);
    aq_buf_reset(&d->next);
    d->final_frame = 1;
    int lines = render_panel(d);
    d->final_frame = 0;
    erase_panel(d, &d->out);
    aq_buf_add(&d->out, d->pending.data, d->pending.len);
    aq_buf_reset(&d->pending);
    if (lines > 0) aq_buf_add(&d->out, d->next.data, d->next.len);
    aq_buf_puts(&d->out, "\n");
    aq_buf_puts(&d->out, SHOW_CURSOR);
    d->cursor_hidden = 0;
    cursor_hidden_fd = -1;
    d->panel_lines = 0;
    aq_buf_reset(&d->frame);
  }
  d->mode = AQ_PROGRESS_NONE; /* from here on, output goes straight out */
  if (mode != AQ_PROGRESS_TTY && d->mid_line) aq_buf_puts(&d->out, "\n"); /* the summary starts a line */
  d->mid_line = 0;
  if (mode == AQ_PROGRESS_JSON) {
    render_json(d, &d->out, 1, why);
    aq_buf_puts(&d->out, "\n");
  } else if (mode != AQ_PROGRESS_NONE) {
    render_summary(d, &d->out, why);
  }
  /* The last frame and the summary are written whatever it takes: after what
   * is still queued, waiting for the terminal if need be. */
  if (!d->out.failed && d->out.len) output_push(d, d->out.data, d->out.len);
  output_close(d);
  free_key_names(d); /* the run's keys end with it */
}

void display_close(aq_display *d) {
  if (d->mode != AQ_PROGRESS_NONE) display_run_finished(d, NULL);
  if (d->cursor_hidden) {
    write_wait(d->fd, SHOW_CURSOR, sizeof SHOW_CURSOR - 1);
    d->cursor_hidden = 0;
    cursor_hidden_fd = -1;
  }
  if (!d->handles_closed) {
    d->handles_closed = 1;
    uv_close((uv_handle_t *)&d->timer, NULL);
    uv_close((uv_handle_t *)&d->winch, NULL);
  }
  aq_buf_free(&d->frame);
  aq_buf_free(&d->next);
  aq_buf_free(&d->raw);
  aq_buf_free(&d->out);
  aq_buf_free(&d->pending);
  aq_buf_free(&d->outq);
  for (int s = 0; s < 3; s++) aq_buf_free(&d->partial[s]);
  free_failures(d);
  free_key_names(d);
}

/* --- what the figures mean --- */

void display_set_key_name(aq_display *d, int32_t key, const char *name, size_t len) {
  if (key <= 0) return;
  if (key >= d->key_names_cap) {
    int32_t cap = d->key_names_cap ? d->key_names_cap : 16;
    while (cap <= key) cap *= 2;
    char **names = realloc(d->key_names, (size_t)cap * sizeof *names);
    if (!names) return;
    memset(names + d->key_names_cap, 0, (size_t)(cap - d->key_names_cap) * sizeof *names);
    d->key_names = names;
    d->key_names_cap = cap;
  }
  free(d->key_names[key]);
  d->key_names[key] = strndup(name, len < KEY_NAME_MAX ? len : KEY_NAME_MAX);
}

/* --- output --- */

int display_routes(aq_display *d, int stream) {
  int shown = d->mode == AQ_PROGRESS_TTY ||
              ((d->mode == AQ_PROGRESS_PLAIN || d->mode == AQ_PROGRESS_JSON) && d->wfd != d->fd);
  return shown && (stream == 2 || (stream == 1 && d->route_stdout));
}

void display_output(aq_display *d, int stream, const char *text, size_t len) {
  if (stream != 1) stream = 2;
  if (!display_routes(d, stream)) {
    if (stream == 1) {
      fwrite(text, 1, len, stdout); /* keeps order with the script's stdout */
      fflush(stdout);
    } else {
      write_wait(STDERR_FILENO, text, len);
    }
    return;
  }
  if (d->mode != AQ_PROGRESS_TTY) { /* plain, json: no panel to keep whole */
    if (d->outq.len - d->outq_off >= AQ_DISPLAY_PENDING_MAX) output_drain(d); /* never lost: wait */
    output_push(d, text, len);
    if (len > 0) d->mid_line = text[len - 1] != '\n';
    return;
  }
  /* Whole lines go to pending; the rest waits for its newline. */
  const char *end = text + len;
  const char *last_nl = NULL;
  for (const char *p = end; p > text; p--)
    if (p[-1] == '\n') {
      last_nl = p;
      break;
    }
  aq_buf *partial = &d->partial[stream];
  if (last_nl) {
    aq_buf_add(&d->pending, partial->data, partial->len);
    aq_buf_reset(partial);
    aq_buf_add(&d->pending, text, (size_t)(last_nl - text));
    aq_buf_add(partial, last_nl, (size_t)(end - last_nl));
  } else {
    aq_buf_add(partial, text, len);
  }
  if (partial->len >= PENDING_LIMIT) { /* a line that never ends: kept bounded, it goes above in pieces */
    aq_buf_add(&d->pending, partial->data, partial->len);
    aq_buf_puts(&d->pending, "\n");
    aq_buf_reset(partial);
  }
  if (d->pending.len >= PENDING_LIMIT) draw(d, 0);
}

void display_flush(aq_display *d) {
  if (d->mode == AQ_PROGRESS_TTY && d->pending.len > 0) draw(d, d->panel_lines == 0);
  else if (d->mode != AQ_PROGRESS_NONE && output_waiting(d)) output_flush(d);
}

/* The first line of text, at most 300 bytes, as a new string (NULL when out
 * of memory). */
static char *first_line(const char *text, size_t len) {
  const char *nl = memchr(text, '\n', len);
  if (nl) len = (size_t)(nl - text);
  if (len > 300) len = 300;
  return strndup(text, len);
}

void display_note_error(aq_display *d, const char *text, size_t len) {
  free(d->last_error);
  d->last_error = first_line(text, len);
}

void display_note_failure(aq_display *d, const char *text, size_t len) {
  int slot = (int)(d->failures_total % AQ_DISPLAY_KEPT_FAILURES);
  free(d->failures[slot]);
  d->failures[slot] = first_line(text, len);
  d->failures_total++;
  display_note_error(d, text, len);
}

/* The whole run's items/s: a moving average of the figures' steps, as the
 * overall rate's (update_rate) but from the store's counts. */
void display_set_shared_run(aq_display *d, int64_t processes, int64_t queued, int64_t running, int64_t done,
                            int64_t failed) {
  aq_shared_run_figures *f = &d->shared;
  uint64_t now = uv_hrtime();
  int64_t finished = done + failed;
  if (f->known && now > f->rate_ns) {
    double step = (double)(finished - f->rate_finished) / ((double)(now - f->rate_ns) / 1e9);
    f->rate = f->rate > 0 ? 0.7 * f->rate + 0.3 * step : step;
  }
  f->known = 1;
  f->processes = processes;
  f->queued = queued;
  f->running = running;
  f->done = done;
  f->failed = failed;
  f->rate_finished = finished;
  f->rate_ns = now;
}
