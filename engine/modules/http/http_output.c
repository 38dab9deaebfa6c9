/*
 * http_output.c — request{ output = path }: the body goes to "<path>.part"
 * on the thread pool, which is renamed over the path when the transfer
 * succeeded; when it failed or was cancelled, the part file is removed, so
 * the path never holds a partial body (and a file that was already there is
 * kept).
 *
 * A body of up to HTTP_OUTPUT_AT_ONCE bytes waits in memory and is written
 * after the transfer in one job of the pool: open, write, close, rename. A
 * crawl's images are such bodies, and each step on the pool costs the loop a
 * wake-up both ways (saving the crawl benchmark's 4000 images step by step
 * cost a fifth of its time). A longer body is streamed: the part file opens
 * once that many bytes are in, then gets one uv_fs_write at a time while the
 * transfer goes on, and the transfer pauses while more than HTTP_SINK_HIGH
 * bytes wait (curl's, or http_wire.c's reading; http_request.c resumes it).
 *
 * One uv_fs_t (r->fs) or uv_work_t (r->work) per request in flight at a time
 * (r->fs_busy); every step ends in on_fs or after_at_once, which hand the
 * request back to its owner (r->output_step). The pool's job reads only the
 * request's paths and pending bytes, which nothing changes while it runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "http.h"

static void set_fs_error(http_req *r, int err, const char *what) {
  if (r->fs_error) return;
  r->fs_error = err;
  r->fs_what = what;
}

static void on_fs(uv_fs_t *fs);

static int has_unwritten(const http_req *r) {
  return r->pending.len > 0 || r->inflight_off < r->inflight.len;
}

/* Hands the next received bytes to a write, when there are some. */
static void write_received(http_req *r) {
  if (r->inflight_off == r->inflight.len) {
    if (r->pending.len == 0) return;
    aq_buf t = r->inflight; /* swap: the emptied buffer receives the next bytes */
    r->inflight = r->pending;
    r->pending = t;
    r->pending.len = 0;
    r->inflight_off = 0;
  }
  uv_buf_t buf = uv_buf_init(r->inflight.data + r->inflight_off,
                             (unsigned int)(r->inflight.len - r->inflight_off));
  int err = uv_fs_write(r->loop, &r->fs, r->fd, &buf, 1, r->offset, on_fs);
  if (err) set_fs_error(r, err, "write");
  else r->fs_busy = 1;
}

static void fs_close(http_req *r) {
  int err = uv_fs_close(r->loop, &r->fs, r->fd, on_fs);
  if (!err) {
    r->fs_busy = 1;
    return;
  }
  set_fs_error(r, err, "close");
  r->fd = -1;
}

static void fs_rename(http_req *r) {
  int err = uv_fs_rename(r->loop, &r->fs, r->part, r->path, on_fs);
  if (err) set_fs_error(r, err, "rename");
  else r->fs_busy = 1;
}

static void fs_unlink(http_req *r) {
  if (uv_fs_unlink(r->loop, &r->fs, r->part, on_fs) == 0) r->fs_busy = 1;
  else r->part_exists = 0; /* nothing more can be done about it */
}

static void on_fs(uv_fs_t *fs) {
  http_req *r = fs->data;
  ssize_t result = fs->result;
  uv_fs_type type = fs->fs_type;
  uv_fs_req_cleanup(fs);
  r->fs_busy = 0;
  switch (type) {
  case UV_FS_OPEN:
    if (result < 0) {
      set_fs_error(r, (int)result, "open"); /* the transfer fails at its next bytes */
    } else {
      r->fd = (uv_file)result;
      r->part_exists = 1;
    }
    break;
  case UV_FS_WRITE:
    if (result <= 0) {
      set_fs_error(r, result < 0 ? (int)result : UV_EIO, "write");
    } else {
      r->inflight_off += (size_t)result;
      r->offset += result;
      if (r->inflight_off == r->inflight.len) r->inflight.len = r->inflight_off = 0;
    }
    break;
  case UV_FS_CLOSE:
    r->fd = -1;
    if (result < 0) set_fs_error(r, (int)result, "close");
    break;
  case UV_FS_RENAME:
    if (result < 0) set_fs_error(r, (int)result, "rename");
    else r->part_exists = 0;
    break;
  case UV_FS_UNLINK:
    r->part_exists = 0;
    break;
  default:
    break;
  }
  r->output_step(r);
}

void http_output_begin(http_req *r, http_output_cb step) { r->output_step = step; }

/* Opens the part file for streaming. */
static void open_part(http_req *r) {
  r->streamed = 1;
  int err = uv_fs_open(r->loop, &r->fs, r->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666, on_fs);
  if (err) set_fs_error(r, err, "open");
  else r->fs_busy = 1;
}

/* Moves the file on after new bytes: opens it once the body is too long to
 * wait for the end, or writes to it when it is open. */
static void after_bytes(http_req *r) {
  if (r->fs_busy) return;
  if (r->fd >= 0) write_received(r);
  else if (!r->streamed && r->pending.len > HTTP_OUTPUT_AT_ONCE) open_part(r);
}

size_t http_output_take(http_req *r, char *data, size_t n) {
  if (r->fs_error) return 0; /* curl fails the transfer */
  if (r->pending.len >= HTTP_SINK_HIGH) {
    r->paused = 1; /* curl keeps these bytes and offers them again */
    return CURL_WRITEFUNC_PAUSE;
  }
  aq_buf_add(&r->pending, data, n);
  if (r->pending.failed) return 0;
  after_bytes(r);
  return n;
}

int http_output_keep(http_req *r, const char *data, size_t n) {
  if (r->fs_error) return -1;
  aq_buf_add(&r->pending, data, n);
  if (r->pending.failed) return -1;
  after_bytes(r);
  if (r->pending.len >= HTTP_SINK_HIGH) r->paused = 1;
  return 0;
}

/* --- a short body, in one job of the pool --- */

/* On a thread of the pool: the part file made, written, closed and renamed
 * into place. The outcome goes to r->at_once_error (a libuv error) and
 * r->at_once_what (the step that failed); r->at_once_part says the part file
 * is left to remove. */
static void write_at_once(uv_work_t *work) {
  http_req *r = work->data;
  r->at_once_part = 0;
  int fd = open(r->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    r->at_once_error = uv_translate_sys_error(errno);
    r->at_once_what = "open";
    return;
  }
  r->at_once_part = 1;
  size_t off = 0;
  while (off < r->pending.len) {
    ssize_t n = write(fd, r->pending.data + off, r->pending.len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      r->at_once_error = n < 0 ? uv_translate_sys_error(errno) : UV_EIO;
      r->at_once_what = "write";
      close(fd);
      return;
    }
    off += (size_t)n;
  }
  if (close(fd) != 0) {
    r->at_once_error = uv_translate_sys_error(errno);
    r->at_once_what = "close";
    return;
  }
  if (rename(r->part, r->path) != 0) {
    r->at_once_error = uv_translate_sys_error(errno);
    r->at_once_what = "rename";
    return;
  }
  r->at_once_part = 0;
}

static void after_at_once(uv_work_t *work, int status) {
  http_req *r = work->data;
  r->fs_busy = 0;
  r->at_once_done = 1;
  if (status < 0) set_fs_error(r, status, "write");
  else if (r->at_once_error) set_fs_error(r, r->at_once_error, r->at_once_what);
  r->part_exists = r->at_once_part;
  r->output_step(r);
}

static void start_at_once(http_req *r) {
  r->work.data = r;
  r->at_once_error = 0;
  int err = uv_queue_work(r->loop, &r->work, write_at_once, after_at_once);
  if (err) set_fs_error(r, err, "write");
  else r->fs_busy = 1;
}

int http_output_can_take(const http_req *r) { return r->fs_error || r->pending.len < HTTP_SINK_HIGH; }

/* The transfer is over (or the task cancelled): the last bytes are written
 * (when it succeeded), the file closed, then renamed into place or removed.
 * Returns 1 while a step is in flight. */
static int settle(http_req *r) {
  int ok = !r->cancelled && r->code == CURLE_OK && !r->fs_error;
  if (ok && !r->streamed && !r->at_once_done) { /* the whole body waited */
    start_at_once(r);
    if (r->fs_busy) return 1;
  }
  ok = !r->cancelled && r->code == CURLE_OK && !r->fs_error;
  if (ok && r->fd >= 0 && has_unwritten(r)) {
    write_received(r);
    if (r->fs_busy) return 1;
  }
  if (r->fd >= 0) {
    fs_close(r);
    if (r->fs_busy) return 1;
  }
  ok = !r->cancelled && r->code == CURLE_OK && !r->fs_error;
  if (ok && r->part_exists) {
    fs_rename(r);
    if (r->fs_busy) return 1;
  }
  if (r->part_exists) {
    fs_unlink(r);
    if (r->fs_busy) return 1;
  }
  return 0;
}

int http_output_advance(http_req *r) {
  if (r->done || r->cancelled) return settle(r);
  /* the transfer runs */
  if (!r->fs_error && r->fd >= 0 && has_unwritten(r)) write_received(r);
  else if (!r->fs_error) after_bytes(r);
  return 1;
}
