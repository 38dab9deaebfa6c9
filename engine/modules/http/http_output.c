/*
 * http_output.c — request{ output = path }: the body goes to "<path>.part"
 * through uv_fs_* on the thread pool, one write at a time, while curl keeps
 * receiving; the transfer pauses while more than HTTP_SINK_HIGH bytes wait
 * (curl's, or http_wire.c's reading; http_request.c resumes it).
 * When the transfer succeeded the part file is renamed over the path; when it
 * failed or was cancelled, the part file is removed, so the path never holds
 * a partial body (and a file that was already there is kept).
 *
 * One uv_fs_t per request (r->fs, r->fs_busy while in flight); every fs step
 * ends in on_fs, which hands the request back to its owner (r->output_step).
 */
#include <fcntl.h>
#include <string.h>

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
      set_fs_error(r, (int)result, "open");
      r->done = 1;
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

int http_output_open(http_req *r, http_output_cb step) {
  r->output_step = step;
  int err = uv_fs_open(r->loop, &r->fs, r->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666, on_fs);
  if (err == 0) r->fs_busy = 1;
  return err;
}

size_t http_output_take(http_req *r, char *data, size_t n) {
  if (r->fs_error) return 0; /* curl fails the transfer */
  if (r->pending.len >= HTTP_SINK_HIGH) {
    r->paused = 1; /* curl keeps these bytes and offers them again */
    return CURL_WRITEFUNC_PAUSE;
  }
  aq_buf_add(&r->pending, data, n);
  if (r->pending.failed) return 0;
  if (!r->fs_busy) write_received(r);
  return n;
}

int http_output_keep(http_req *r, const char *data, size_t n) {
  if (r->fs_error) return -1;
  aq_buf_add(&r->pending, data, n);
  if (r->pending.failed) return -1;
  if (!r->fs_busy) write_received(r);
  if (r->pending.len >= HTTP_SINK_HIGH) r->paused = 1;
  return 0;
}

int http_output_can_take(const http_req *r) { return r->fs_error || r->pending.len < HTTP_SINK_HIGH; }

/* The transfer is over (or the task cancelled): the last bytes are written
 * (when it succeeded), the file closed, then renamed into place or removed.
 * Returns 1 while a step is in flight. */
static int settle(http_req *r) {
  int ok = !r->cancelled && r->code == CURLE_OK && !r->fs_error;
  if (ok && has_unwritten(r)) {
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
  if (!r->fs_error && has_unwritten(r)) write_received(r);
  return 1;
}
