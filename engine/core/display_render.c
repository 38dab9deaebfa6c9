/*
 * display_render.c — what the display shows: the tty panel, the plain line,
 * the JSON object and the final summary, each built into a buffer from the
 * scheduler's figures (display.c decides when and where they are written).
 *
 * The panel:
 *    Workers  2/3 busy
 *      1 ⠋ Page  GET http://127.0.0.1:8080/a.html             0.4s
 *      2 ⠙ Image  saving img/1.png                             1.2s
 *      3 · idle
 *    Queue         queued  running retrying     done   failed  max queued
 *      Page            12        1        2       40        1          30
 *    Overall ━━━━━━━━━━━───────  41/93  44%  12.3/s  0:04  ETA 0:04  failed 1  retried 3
 *    Last error  Page:process failed (attempt 1 of 3), retrying in 0.4 s: HTTP 503
 * A worker on a retry shows "(attempt 2/3)" after the class. "queued" counts
 * every item waiting to start (delayed, held by limits, in backoff too),
 * "retrying" those waiting out a retry's backoff. While workers are idle, the
 * header says what waiting items wait for:
 *    Workers  1/3 busy  idle: 4 delayed, 12 waiting for rate (host a), 2 backing off
 * The ETA reads "~0:04" (an estimate) while the total has grown in the last
 * 3 s (AQ_DISPLAY_ETA_STABLE_MS). The run's final frame has no worker rows.
 * Every line fits in the terminal's width minus one column (so no terminal
 * wraps it), counted in display columns (text_width.h), and the panel in its
 * height minus one line.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "display_render.h"
#include "text_width.h"

/* --- text that fits --- */

/* Appends text cut to `cols` display columns (text_width.h: wide characters
 * take two, control characters become spaces, invalid UTF-8 U+FFFD); a cut
 * text ends with an ellipsis. Returns the columns used. */
static int put_clipped(aq_buf *b, const char *s, size_t len, int cols, int utf8) {
  return tw_put_clipped(b, s, len, cols, utf8);
}

static void put_spaces(aq_buf *b, int n) {
  for (; n > 0; n--) aq_buf_add(b, " ", 1);
}

/* "3.4s", "42s", "3:07", "1:02:03" */
static int fmt_duration(char *out, size_t size, double seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 10) return snprintf(out, size, "%.1fs", seconds);
  long s = (long)seconds;
  if (s < 60) return snprintf(out, size, "%lds", s);
  if (s < 3600) return snprintf(out, size, "%ld:%02ld", s / 60, s % 60);
  return snprintf(out, size, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
}

/* "950", "12.3k", "4.56M" */
static int fmt_rate(char *out, size_t size, double rate) {
  if (rate < 1000) return snprintf(out, size, rate < 10 ? "%.1f" : "%.0f", rate);
  if (rate < 1e6) return snprintf(out, size, "%.1fk", rate / 1e3);
  return snprintf(out, size, "%.2fM", rate / 1e6);
}

/* --- shared figures --- */

typedef struct {
  int64_t done, total;
  double percent, elapsed, rate, eta; /* eta < 0: unknown */
  int eta_stable; /* the total has stopped growing: the ETA is not just an estimate */
} overall_figures;

/* True when the ETA is exact: nothing left, or a total that stopped growing. */
static int eta_stable(const aq_display *d, int64_t done, int64_t total) {
  if (done >= total) return 1; /* nothing left */
  return d->eta_total == total && uv_hrtime() - d->eta_total_ns >= d->eta_stable_ns;
}

/* The name of limit key `key`, or NULL. */
static const char *key_name(const aq_display *d, int32_t key) {
  return key > 0 && key < d->key_names_cap ? d->key_names[key] : NULL;
}

static overall_figures overall(aq_display *d) {
  const aq_sched *s = d->sched;
  overall_figures f;
  if (s->overall_total > 0) { /* only the track_overall items */
    f.done = s->overall_done;
    f.total = s->overall_total;
  } else {
    f.done = s->processed + s->failed;
    f.total = s->enqueued;
  }
  f.percent = f.total > 0 ? 100.0 * (double)f.done / (double)f.total : 0;
  f.elapsed = (double)(uv_hrtime() - s->started_ns) / 1e9;
  f.rate = d->rate;
  f.eta = f.rate > 0 && f.total > f.done ? (double)(f.total - f.done) / f.rate : (f.total == f.done ? 0 : -1);
  f.eta_stable = eta_stable(d, f.done, f.total);
  return f;
}

/* "4.3s", "~4.3s" while the total still grows (an estimate), "?" unknown. */
static void fmt_eta(char *out, size_t size, const overall_figures *f) {
  if (f->eta < 0) {
    snprintf(out, size, "?");
    return;
  }
  int n = f->eta_stable ? 0 : snprintf(out, size, "~");
  fmt_duration(out + n, size - (size_t)n, f->eta);
}

/* Why idle workers are idle: the items that wait to start, by what they wait
 * for. Read from the scheduler (never changed here). */
typedef struct {
  int64_t delayed;     /* their `delay` runs */
  int64_t backing_off; /* a retry's backoff runs */
  int64_t rate;        /* held by a limit key's rate */
  int64_t per_key;     /* held by a limit key's per_key (as many running as allowed) */
  int32_t rate_key, per_key_key; /* the key holding the most of them, 0 none */
  int32_t rate_keys, per_key_keys; /* how many keys hold them */
} waiting_figures;

static waiting_figures waiting(const aq_display *d) {
  const aq_sched *s = d->sched;
  waiting_figures w;
  memset(&w, 0, sizeof w);
  for (int32_t i = 0; i < s->nclasses; i++) w.backing_off += s->classes[i].retrying;
  w.delayed = (int64_t)delays_len(&s->delays) - s->key_wakes - w.backing_off;
  if (w.delayed < 0) w.delayed = 0;
  int64_t most_rate = 0, most_per_key = 0;
  for (int32_t key = 1; key < s->limits.nkeys; key++) {
    const aq_limit_key *k = &s->limits.keys[key];
    int64_t held = (int64_t)aq_item_queue_len(&k->waiting);
    if (held == 0) continue;
    if (k->running >= k->per_key) {
      w.per_key += held;
      w.per_key_keys++;
      if (held > most_per_key) most_per_key = held, w.per_key_key = key;
    } else if (k->interval_ms > 0) {
      w.rate += held;
      w.rate_keys++;
      if (held > most_rate) most_rate = held, w.rate_key = key;
    } /* else its tokens are queued: they start as soon as a worker is free */
  }
  return w;
}

/* "(host x)" or "(host x +2 keys)": the busiest key of a kind, cut to fit. */
static int put_key(const aq_display *d, int utf8, aq_buf *b, int32_t key, int32_t keys, int cols) {
  const char *name = key_name(d, key);
  if (!name || cols < 4) return 0;
  char more[32] = "";
  int more_len = keys > 1 ? snprintf(more, sizeof more, " +%d keys", keys - 1) : 0;
  aq_buf_puts(b, " (");
  int w = 2 + tw_put_clipped(b, name, strlen(name), cols - 3 - more_len, utf8);
  aq_buf_add(b, more, (size_t)more_len);
  aq_buf_puts(b, ")");
  return w + more_len + 1;
}

/* "12 delayed, 40 waiting for rate (host x), 3 backing off", cut to `cols`
 * columns (key names as UTF-8 when `utf8`, else ASCII); nothing when no item
 * waits for any of these. Returns the columns. */
static int put_waiting(const aq_display *d, int utf8, aq_buf *b, const waiting_figures *w, int cols) {
  int used = 0, parts = 0;
  char text[96];
  struct {
    int64_t n;
    const char *what;
    int32_t key, keys;
  } part[] = {{w->delayed, "delayed", 0, 0},
              {w->rate, "waiting for rate", w->rate_key, w->rate_keys},
              {w->per_key, "waiting for per_key", w->per_key_key, w->per_key_keys},
              {w->backing_off, "backing off", 0, 0}};
  for (size_t i = 0; i < sizeof part / sizeof *part; i++) {
    if (part[i].n <= 0) continue;
    int n = snprintf(text, sizeof text, "%s%lld %s", parts ? ", " : "", (long long)part[i].n, part[i].what);
    if (used + n > cols) break;
    aq_buf_add(b, text, (size_t)n);
    used += n;
    parts++;
    if (part[i].key) used += put_key(d, utf8, b, part[i].key, part[i].keys, cols - used);
  }
  return used;
}

/* What a worker is running: "Page", or "Page (after children)" for a hook. */
static const char *job_class(const aq_display *d, const aq_runner *t, int *is_hook) {
  const aq_sched *s = d->sched;
  int32_t job = t->job;
  *is_hook = !sched_job_is_process(job);
  int32_t id = sched_job_item(job);
  if (!job || id >= s->items.next_id) return "";
  return s->classes[s->items.recs[id].class_id].name;
}

/* A class had items in this run (the same rule as run_queue's summary). */
static int class_visible(const aq_class_stats *c) { return c->done + c->failed + c->queued + c->max_queued > 0; }

/* --- the tty panel --- */

#define C_RESET "\033[0m"
#define C_BOLD "\033[1m"
#define C_DIM "\033[2m"
#define C_RED "\033[31m"
#define C_GREEN "\033[32m"
#define C_CYAN "\033[36m"

static void color(aq_buf *b, aq_display *d, const char *code) {
  if (d->color) aq_buf_puts(b, code);
}

static void newline(aq_buf *b, int *lines) {
  aq_buf_puts(b, "\n");
  (*lines)++;
}

static void worker_row(aq_display *d, aq_buf *b, int32_t slot, int id_width, int cols) {
  const aq_sched *s = d->sched;
  const aq_runner *t = s->slots[slot].runner;
  static const char *const spin_utf8[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
  static const char *const spin_ascii[] = {"|", "/", "-", "\\"};
  int used = 2 + id_width + 3;
  aq_buf_printf(b, "  %*d ", id_width, slot + 1);
  if (!t || !t->job) {
    color(b, d, C_DIM);
    aq_buf_puts(b, d->utf8 ? "·" : ".");
    aq_buf_puts(b, " idle");
    color(b, d, C_RESET);
    return;
  }
  color(b, d, C_CYAN);
  aq_buf_puts(b, d->utf8 ? spin_utf8[(d->spin + (unsigned)slot) % 10] : spin_ascii[(d->spin + (unsigned)slot) % 4]);
  color(b, d, C_RESET);
  aq_buf_puts(b, " ");
  char elapsed[32];
  int elapsed_len =
      fmt_duration(elapsed, sizeof elapsed, (double)(uv_now(d->loop) - s->slots[slot].started) / 1000.0);
  int room = cols - used - elapsed_len - 2;
  int is_hook;
  const char *cls = job_class(d, t, &is_hook);
  int w = put_clipped(b, cls, strlen(cls), room, d->utf8);
  if (is_hook) {
    w += put_clipped(b, " (after children)", 17, room - w, d->utf8);
  } else {
    int32_t id = sched_job_item(t->job);
    if (items_attempts(&s->items, id) > 1) {
      char attempt[48];
      int n = snprintf(attempt, sizeof attempt, " (attempt %d/%d)", (int)items_attempts(&s->items, id),
                       (int)items_max_attempts(&s->items, id));
      w += put_clipped(b, attempt, (size_t)n, room - w, d->utf8);
    }
  }
  if (t->desc_len > 0 && room - w > 3) {
    aq_buf_puts(b, "  ");
    w += 2 + put_clipped(b, t->desc, t->desc_len, room - w - 2, d->utf8);
  }
  put_spaces(b, room - w + 2);
  aq_buf_add(b, elapsed, (size_t)elapsed_len);
}

static void workers_section(aq_display *d, aq_buf *b, int budget, int cols, int *lines) {
  const aq_sched *s = d->sched;
  int32_t n = s->num_workers, busy = 0;
  for (int32_t i = 0; i < n; i++)
    if (s->slots[i].runner && s->slots[i].runner->job) busy++;
  color(b, d, C_BOLD);
  aq_buf_puts(b, " Workers");
  color(b, d, C_RESET);
  char head[64];
  int head_len = snprintf(head, sizeof head, "  %d/%d busy", busy, n);
  aq_buf_add(b, head, (size_t)head_len);
  if (busy < n && !d->final_frame) { /* idle workers: what the waiting items wait for */
    waiting_figures w = waiting(d);
    if (w.delayed + w.backing_off + w.rate + w.per_key > 0 && cols - 8 - head_len > 10) {
      color(b, d, C_DIM);
      aq_buf_puts(b, "  idle: ");
      put_waiting(d, d->utf8, b, &w, cols - 8 - head_len - 8);
      color(b, d, C_RESET);
    }
  }
  newline(b, lines);
  /* The final frame has no worker rows: every worker is idle by then, and
   * idle rows tell nothing. */
  if (d->final_frame) return;
  int id_width = snprintf(NULL, 0, "%d", n);
  int rows = n <= budget ? n : budget - 1; /* the last row says how many more */
  int shown = 0;
  /* Busy workers first, in slot order (rows stay put between frames), then
   * idle ones while there is room. */
  for (int pass = 0; pass < 2 && shown < rows; pass++)
    for (int32_t i = 0; i < n && shown < rows; i++) {
      int is_busy = s->slots[i].runner && s->slots[i].runner->job;
      if (is_busy != (pass == 0)) continue;
      worker_row(d, b, i, id_width, cols);
      newline(b, lines);
      shown++;
    }
  if (shown < n) {
    int busy_hidden = busy > shown ? busy - shown : 0;
    color(b, d, C_DIM);
    aq_buf_printf(b, "  +%d more (%d busy)", n - shown, busy_hidden);
    color(b, d, C_RESET);
    newline(b, lines);
  }
}

static void queue_section(aq_display *d, aq_buf *b, int budget, int cols, int *lines) {
  const aq_sched *s = d->sched;
  int name_width = 5, visible = 0;
  for (int32_t i = 0; i < s->nclasses; i++) {
    if (!class_visible(&s->classes[i])) continue;
    visible++;
    int w = tw_text_width(s->classes[i].name, strlen(s->classes[i].name), d->utf8);
    if (w > name_width) name_width = w;
  }
  int numbers = 6 * 9 + 3; /* six columns of nine, "max queued" is wider */
  if (name_width > cols - numbers - 3) name_width = cols - numbers - 3;
  if (name_width < 5) name_width = 5;
  color(b, d, C_BOLD);
  aq_buf_puts(b, " Queue");
  color(b, d, C_RESET);
  put_spaces(b, name_width - 3);
  aq_buf_puts(b, "   queued  running retrying     done   failed  max queued");
  newline(b, lines);
  int rows = visible <= budget ? visible : budget - 1;
  int shown = 0;
  for (int32_t i = 0; i < s->nclasses && shown < rows; i++) {
    aq_class_stats *c = &s->classes[i];
    if (!class_visible(c)) continue;
    aq_buf_puts(b, "   ");
    int w = put_clipped(b, c->name, strlen(c->name), name_width, d->utf8);
    put_spaces(b, name_width - w);
    aq_buf_printf(b, " %8lld %8lld %8lld %8lld ", (long long)c->queued, (long long)c->running, (long long)c->retrying,
               (long long)c->done);
    if (c->failed) color(b, d, C_RED);
    aq_buf_printf(b, "%8lld", (long long)c->failed);
    if (c->failed) color(b, d, C_RESET);
    aq_buf_printf(b, " %11lld", (long long)c->max_queued);
    newline(b, lines);
    shown++;
  }
  if (shown < visible) {
    color(b, d, C_DIM);
    aq_buf_printf(b, "   +%d more classes", visible - shown);
    color(b, d, C_RESET);
    newline(b, lines);
  }
}

/* The whole run's figures when several processes share it, in a line of
 * its own (the panel) or at the end of the plain line. */
static void shared_run_figures(const aq_display *d, aq_buf *b, const char *lead) {
  const aq_shared_run_figures *f = &d->shared;
  char rate[32];
  fmt_rate(rate, sizeof rate, f->rate);
  aq_buf_printf(b, "%sprocesses %lld  queued %lld  running %lld  done %lld  failed %lld  %s items/s", lead,
                (long long)f->processes, (long long)f->queued, (long long)f->running, (long long)f->done,
                (long long)f->failed, rate);
}

static void overall_line(aq_display *d, aq_buf *b, int cols) {
  const aq_sched *s = d->sched;
  overall_figures f = overall(d);
  char rate[32], elapsed[32], eta[32], right[256];
  fmt_rate(rate, sizeof rate, f.rate);
  fmt_duration(elapsed, sizeof elapsed, f.elapsed);
  fmt_eta(eta, sizeof eta, &f);
  int right_len = snprintf(right, sizeof right, "  %lld/%lld  %.0f%%  %s/s  %s  ETA %s  ", (long long)f.done,
                           (long long)f.total, f.percent, rate, elapsed, eta);
  char tail[96];
  int tail_len = snprintf(tail, sizeof tail, "failed %lld  retried %lld", (long long)s->failed, (long long)s->retried);
  color(b, d, C_BOLD);
  aq_buf_puts(b, " Overall ");
  color(b, d, C_RESET);
  int bar = cols - 9 - right_len - tail_len;
  if (bar >= 10) {
    if (bar > 60) bar = 60;
    int filled = f.total > 0 ? (int)((double)bar * (double)f.done / (double)f.total) : 0;
    if (filled > bar) filled = bar;
    color(b, d, C_GREEN);
    for (int i = 0; i < filled; i++) aq_buf_puts(b, d->utf8 ? "━" : "#");
    color(b, d, C_DIM);
    for (int i = filled; i < bar; i++) aq_buf_puts(b, d->utf8 ? "─" : "-");
    color(b, d, C_RESET);
    aq_buf_add(b, right, (size_t)right_len);
  } else {
    /* Too narrow for a bar: the figures, then the counts while they fit. */
    int w = put_clipped(b, right + 2, (size_t)right_len - 2, cols - 9, d->utf8);
    if (cols - 9 - w < tail_len) return;
  }
  if (s->failed) color(b, d, C_RED);
  aq_buf_add(b, tail, (size_t)tail_len);
  if (s->failed) color(b, d, C_RESET);
}

/* Copies the panel from `in` to `out` with every line cut at `cols` display
 * columns (escape sequences are kept, they take no room; a character is never
 * split): whatever a section wrote, no line can wrap, so the panel's line
 * count is its row count. */
static void clip_lines(const aq_buf *in, aq_buf *out, int cols) {
  int width = 0;
  const unsigned char *u = (const unsigned char *)in->data;
  for (size_t i = 0; i < in->len;) {
    char c = in->data[i];
    if (c == '\n') {
      width = 0;
      aq_buf_add(out, &c, 1);
      i++;
    } else if (c == '\033') {
      size_t j = i + 1;
      while (j < in->len && !((in->data[j] >= 'A' && in->data[j] <= 'Z') || (in->data[j] >= 'a' && in->data[j] <= 'z')))
        j++;
      j = j < in->len ? j + 1 : j;
      aq_buf_add(out, in->data + i, j - i);
      i = j;
    } else {
      uint32_t cp;
      size_t n = tw_decode(u + i, in->len - i, &cp);
      int w = tw_codepoint_width(cp);
      if (w < 0) w = 1;
      if (width + w <= cols) aq_buf_add(out, in->data + i, n);
      width += w;
      i += n;
    }
  }
}

int render_panel(aq_display *d) {
  const aq_sched *s = d->sched;
  if (!s->active) return 0;
  aq_buf *b = &d->raw;
  aq_buf_reset(b);
  int cols = d->cols - 1;
  int height = d->rows - 1;
  if (height < 5) height = 5;
  int visible = 0;
  for (int32_t i = 0; i < s->nclasses; i++)
    if (class_visible(&s->classes[i])) visible++;
  /* Classes get up to a quarter of the height, workers up to half; printed
   * lines keep the rest. */
  int class_budget = visible;
  if (class_budget > height / 4) class_budget = height / 4 > 1 ? height / 4 : 1;
  int error_line = d->last_error != NULL;
  int shared_line = d->shared.known;
  int worker_budget =
      height - 3 - error_line - shared_line - (class_budget < visible ? class_budget + 1 : class_budget);
  if (worker_budget > height / 2) worker_budget = height / 2;
  if (worker_budget < 2) worker_budget = 2;
  int lines = 0;
  workers_section(d, b, worker_budget, cols, &lines);
  queue_section(d, b, class_budget, cols, &lines);
  overall_line(d, b, cols);
  if (shared_line) {
    newline(b, &lines);
    color(b, d, C_BOLD);
    aq_buf_puts(b, " Whole run ");
    color(b, d, C_RESET);
    shared_run_figures(d, b, " ");
  }
  if (error_line) {
    newline(b, &lines);
    color(b, d, C_BOLD);
    aq_buf_puts(b, " Last error  ");
    color(b, d, C_RESET);
    color(b, d, C_RED);
    put_clipped(b, d->last_error, strlen(d->last_error), cols - 13, d->utf8);
    color(b, d, C_RESET);
  }
  clip_lines(b, &d->next, cols);
  if (b->failed) d->next.failed = 1;
  return lines + 1;
}

/* --- plain --- */

void render_plain(aq_display *d, aq_buf *b) {
  const aq_sched *s = d->sched;
  overall_figures f = overall(d);
  char rate[32], elapsed[32], eta[32];
  fmt_rate(rate, sizeof rate, f.rate);
  fmt_duration(elapsed, sizeof elapsed, f.elapsed);
  fmt_eta(eta, sizeof eta, &f);
  int64_t queued = sched_waiting(s);
  aq_buf_printf(b, "aqueue: %s  %lld/%lld (%.0f%%)  %s items/s  ETA %s  running %lld  queued %lld  failed %lld  retried %lld",
             elapsed, (long long)f.done, (long long)f.total, f.percent, rate, eta, (long long)s->running_jobs,
             (long long)queued, (long long)s->failed, (long long)s->retried);
  if (d->shared.known) shared_run_figures(d, b, "  whole run: ");
  if (s->running_jobs < s->num_workers) { /* idle workers: what the waiting items wait for */
    waiting_figures w = waiting(d);
    if (w.delayed + w.backing_off + w.rate + w.per_key > 0) {
      aq_buf_puts(b, "  idle: ");
      put_waiting(d, 1, b, &w, 1000); /* logs keep the key's text */
    }
  }
}

/* --- json --- */

/* A JSON string: quotes, backslashes and control characters escaped, bytes
 * that are not valid UTF-8 replaced by U+FFFD, so every line parses. */
static void json_string(aq_buf *b, const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;
  aq_buf_puts(b, "\"");
  for (size_t i = 0; i < len;) {
    unsigned char c = u[i];
    if (c == '"' || c == '\\') {
      aq_buf_add(b, "\\", 1);
      aq_buf_add(b, (const char *)&c, 1);
      i++;
    } else if (c < 0x20 || c == 0x7f) {
      aq_buf_printf(b, "\\u%04x", c);
      i++;
    } else if (c < 0x80) {
      aq_buf_add(b, (const char *)&c, 1);
      i++;
    } else {
      uint32_t cp;
      size_t n = tw_decode(u + i, len - i, &cp);
      if (cp == 0xfffd && n == 1) aq_buf_puts(b, "\\ufffd"); /* not valid UTF-8 */
      else aq_buf_add(b, s + i, n);
      i += n;
    }
  }
  aq_buf_puts(b, "\"");
}

/* At most this many worker rows in one JSON line (the busy ones). */
#define JSON_MAX_WORKER_ROWS 1000

void render_json(aq_display *d, aq_buf *b, int final, const char *why) {
  const aq_sched *s = d->sched;
  overall_figures f = overall(d);
  aq_buf_printf(b,
             "{\"type\":\"%s\",\"elapsed\":%.3f,\"processed\":%lld,\"failed\":%lld,\"hooks_failed\":%lld,\"retried\":%lld,"
             "\"cancelled\":%lld,\"not_started\":%lld,\"enqueued\":%lld,\"duplicates\":%lld,\"running\":%lld,"
             "\"queued\":%lld,"
             "\"overall\":{\"done\":%lld,\"total\":%lld,\"percent\":%.1f},\"rate\":%.2f,\"eta\":",
             final ? "summary" : "progress", f.elapsed, (long long)s->processed, (long long)s->failed,
             (long long)s->hooks_failed, (long long)s->retried, (long long)s->cancelled,
             (long long)(s->dropped + sched_waiting(s) * final), (long long)s->enqueued, (long long)s->duplicates,
             (long long)s->running_jobs, (long long)sched_waiting(s), (long long)f.done,
             (long long)f.total, f.percent, f.rate);
  if (f.eta >= 0) aq_buf_printf(b, "%.1f", f.eta);
  else aq_buf_puts(b, "null");
  aq_buf_printf(b, ",\"eta_stable\":%s", f.eta_stable ? "true" : "false");
  waiting_figures w = waiting(d);
  aq_buf_printf(b, ",\"waiting\":{\"delayed\":%lld,\"backing_off\":%lld,\"rate\":%lld,\"per_key\":%lld,\"rate_key\":",
             (long long)w.delayed, (long long)w.backing_off, (long long)w.rate, (long long)w.per_key);
  const char *key = key_name(d, w.rate_key);
  if (key) json_string(b, key, strlen(key));
  else aq_buf_puts(b, "null");
  aq_buf_puts(b, ",\"per_key_key\":");
  key = key_name(d, w.per_key_key);
  if (key) json_string(b, key, strlen(key));
  else aq_buf_puts(b, "null");
  aq_buf_puts(b, "}");
  int32_t busy = 0;
  for (int32_t i = 0; i < s->num_workers; i++)
    if (s->slots[i].runner && s->slots[i].runner->job) busy++;
  aq_buf_printf(b, ",\"workers\":{\"total\":%d,\"busy\":%d,\"rows\":[", s->num_workers, busy);
  int rows = 0;
  for (int32_t i = 0; i < s->num_workers && rows < JSON_MAX_WORKER_ROWS; i++) {
    const aq_runner *t = s->slots[i].runner;
    if (!t || !t->job) continue;
    int is_hook;
    const char *cls = job_class(d, t, &is_hook);
    aq_buf_printf(b, "%s{\"id\":%d,\"class\":", rows ? "," : "", i + 1);
    json_string(b, cls, strlen(cls));
    aq_buf_printf(b, ",\"hook\":%s,\"desc\":", is_hook ? "true" : "false");
    json_string(b, t->desc ? t->desc : "", t->desc_len);
    int attempt = is_hook ? 1 : (int)items_attempts(&s->items, sched_job_item(t->job));
    aq_buf_printf(b, ",\"attempt\":%d,\"elapsed\":%.1f}", attempt,
               (double)(uv_now(d->loop) - s->slots[i].started) / 1000.0);
    rows++;
  }
  aq_buf_puts(b, "]},\"classes\":{");
  int first = 1;
  for (int32_t i = 0; i < s->nclasses; i++) {
    aq_class_stats *c = &s->classes[i];
    if (!class_visible(c)) continue;
    if (!first) aq_buf_puts(b, ",");
    first = 0;
    json_string(b, c->name, strlen(c->name));
    aq_buf_printf(b,
               ":{\"queued\":%lld,\"running\":%lld,\"retrying\":%lld,\"done\":%lld,\"failed\":%lld,"
               "\"hooks_failed\":%lld,\"retried\":%lld,\"max_queued\":%lld}",
               (long long)c->queued, (long long)c->running, (long long)c->retrying, (long long)c->done,
               (long long)c->failed, (long long)c->hooks_failed, (long long)c->retried, (long long)c->max_queued);
  }
  aq_buf_puts(b, "}");
  if (d->shared.known) {
    const aq_shared_run_figures *r = &d->shared;
    aq_buf_printf(b,
                  ",\"run\":{\"processes\":%lld,\"queued\":%lld,\"running\":%lld,\"done\":%lld,\"failed\":%lld,"
                  "\"rate\":%.2f}",
                  (long long)r->processes, (long long)r->queued, (long long)r->running, (long long)r->done,
                  (long long)r->failed, r->rate);
  }
  if (final) {
    aq_buf_puts(b, ",\"why\":");
    if (why) json_string(b, why, strlen(why));
    else aq_buf_puts(b, "null");
    aq_buf_printf(b, ",\"errors_total\":%lld,\"errors\":[", (long long)d->failures_total);
    int64_t kept = d->failures_total < AQ_DISPLAY_KEPT_FAILURES ? d->failures_total : AQ_DISPLAY_KEPT_FAILURES;
    for (int64_t k = 0; k < kept; k++) {
      const char *text = d->failures[(d->failures_total - kept + k) % AQ_DISPLAY_KEPT_FAILURES];
      if (k) aq_buf_puts(b, ",");
      json_string(b, text ? text : "", text ? strlen(text) : 0);
    }
    aq_buf_puts(b, "]");
  }
  aq_buf_puts(b, "}");
}

/* --- the final summary --- */

void render_summary(aq_display *d, aq_buf *b, const char *why) {
  const aq_sched *s = d->sched;
  double elapsed = (double)(uv_hrtime() - s->started_ns) / 1e9;
  int64_t finished = s->processed + s->failed;
  int64_t not_started = s->dropped + sched_waiting(s);
  aq_buf_printf(b, "aqueue: %lld processed, %lld failed, %lld retried", (long long)s->processed, (long long)s->failed,
             (long long)s->retried);
  if (s->hooks_failed > 0) aq_buf_printf(b, ", %lld hook%s failed", (long long)s->hooks_failed, s->hooks_failed == 1 ? "" : "s");
  if (s->cancelled > 0) aq_buf_printf(b, ", %lld cancelled", (long long)s->cancelled);
  if (not_started > 0) aq_buf_printf(b, ", %lld not started", (long long)not_started);
  if (s->duplicates > 0) aq_buf_printf(b, ", %lld duplicates skipped", (long long)s->duplicates);
  aq_buf_printf(b, " in %.2f s (%.0f items/s)", elapsed, elapsed > 0 ? (double)finished / elapsed : 0.0);
  if (why) aq_buf_printf(b, ", %s", why);
  aq_buf_puts(b, "\n");
  int64_t kept = d->failures_total < AQ_DISPLAY_KEPT_FAILURES ? d->failures_total : AQ_DISPLAY_KEPT_FAILURES;
  for (int64_t k = 0; k < kept; k++) {
    const char *text = d->failures[(d->failures_total - kept + k) % AQ_DISPLAY_KEPT_FAILURES];
    aq_buf_printf(b, "  failed: %s\n", text ? text : "");
  }
  if (d->failures_total > kept)
    aq_buf_printf(b, "  ... and %lld earlier failure%s\n", (long long)(d->failures_total - kept),
               d->failures_total - kept == 1 ? "" : "s");
}
