/*
 * cmod.c — an aqueue C module, built against the installed aqueue.h alone.
 * It shows the two shapes of a yielding function:
 *
 *   cmod.compress_file(path [, level]) -> compressed bytes, original size
 *       Reads and zlib-compresses a file on the thread pool (aq_task_work):
 *       the task waits, the loop goes on. An unreadable file gives
 *       nil, "ENOENT: cannot open x: no such file or directory", "ENOENT".
 *   cmod.wait_change(path [, timeout]) -> "change" | "rename", or
 *       nil, "ETIMEDOUT: nothing changed in time", "ETIMEDOUT"
 *       Waits for a file to change, on libuv handles of its own (a uv_fs_event
 *       and a uv_timer) and aq_task_yield with a cancel hook.
 *
 * and two plain functions: cmod.uncompress(bytes, size) and cmod.cancels()
 * (how many waits were cancelled: the tests check the cancel hook runs once).
 *
 * Ownership, as aqueue.h lays down: a function owns what it started until
 * either its completion resumes the task or the engine calls its cancel hook;
 * exactly one of the two happens.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <aqueue.h>
#include <lauxlib.h>
#include <zlib.h>

/* --- compress_file: work on the thread pool --- */

typedef struct {
  char *path;
  int level;
  /* results, written by the pool thread */
  unsigned char *out;
  uLong out_len, in_len;
  int err;          /* a libuv error (a negative errno), 0 when none */
  const char *what; /* the step that failed: "cannot open", ... */
} compress_job;

/* Records a failure of the step `what` (on the pool thread). */
static void compress_fail(compress_job *job, const char *what, int err) {
  job->err = err;
  job->what = what;
}

static void compress_job_free(compress_job *job) {
  free(job->path);
  free(job->out);
  free(job);
}

/* On a pool thread: no Lua, no loop. */
static void compress_work(void *data) {
  compress_job *job = data;
  FILE *f = fopen(job->path, "rb");
  if (!f) {
    compress_fail(job, "cannot open", uv_translate_sys_error(errno));
    return;
  }
  unsigned char *in = NULL;
  size_t len = 0, cap = 0, n;
  do {
    if (len == cap) {
      cap = cap ? cap * 2 : 65536;
      unsigned char *bigger = realloc(in, cap);
      if (!bigger) {
        compress_fail(job, "cannot read", UV_ENOMEM);
        free(in);
        fclose(f);
        return;
      }
      in = bigger;
    }
    n = fread(in + len, 1, cap - len, f);
    len += n;
  } while (n > 0);
  if (ferror(f)) compress_fail(job, "cannot read", uv_translate_sys_error(errno));
  fclose(f);
  if (!job->err) {
    job->out_len = compressBound(len);
    job->out = malloc(job->out_len ? job->out_len : 1);
    if (!job->out || compress2(job->out, &job->out_len, in, len, job->level) != Z_OK)
      compress_fail(job, "cannot compress", job->out ? UV_EINVAL : UV_ENOMEM);
    job->in_len = len;
  }
  free(in);
}

/* On the loop thread: the results, or nothing when the task was cancelled. */
static int compress_after(lua_State *L, void *data) {
  compress_job *job = data;
  int n = 0;
  if (L && job->err) {
    n = aq_push_failure(L, uv_err_name(job->err), "%s %s: %s", job->what, job->path, uv_strerror(job->err));
  } else if (L) {
    lua_pushlstring(L, (const char *)job->out, job->out_len);
    lua_pushnumber(L, (lua_Number)job->in_len);
    n = 2;
  }
  compress_job_free(job);
  return n;
}

static int l_compress_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int level = (int)luaL_optinteger(L, 2, Z_DEFAULT_COMPRESSION);
  if (level < -1 || level > 9) return luaL_argerror(L, 2, "a level from 0 to 9");
  aq_task_current(L); /* raises unless called from an engine task: before allocating */
  compress_job *job = calloc(1, sizeof *job);
  if (!job || !(job->path = strdup(path))) {
    free(job);
    return luaL_error(L, "out of memory");
  }
  job->level = level;
  return aq_task_work(L, compress_work, compress_after, job);
}

static int l_uncompress(lua_State *L) {
  size_t len;
  const char *in = luaL_checklstring(L, 1, &len);
  uLongf size = (uLongf)luaL_checknumber(L, 2);
  unsigned char *out = malloc(size ? size : 1);
  if (!out) return luaL_error(L, "out of memory");
  int rc = uncompress(out, &size, (const unsigned char *)in, len);
  if (rc != Z_OK) {
    free(out);
    return luaL_error(L, "uncompress: %s", zError(rc));
  }
  lua_pushlstring(L, (const char *)out, size);
  free(out);
  return 1;
}

/* --- wait_change: a uv handle of our own --- */

static int cancels; /* waits ended by the engine's cancel hook */

typedef struct {
  uv_fs_event_t event;
  uv_timer_t timer;
  aq_task *task;
  int open_handles; /* freed when both are closed */
} change_wait;

static void on_wait_closed(uv_handle_t *h) {
  change_wait *w = h->data;
  if (--w->open_handles == 0) free(w);
}

static void close_wait(change_wait *w) {
  uv_close((uv_handle_t *)&w->event, on_wait_closed);
  uv_close((uv_handle_t *)&w->timer, on_wait_closed);
}

static void on_change(uv_fs_event_t *event, const char *filename, int events, int status) {
  change_wait *w = event->data;
  (void)filename;
  lua_State *co = aq_task_state(w->task);
  if (status < 0) {
    aq_task_resume_failure(w->task, uv_err_name(status), "%s", uv_strerror(status));
  } else {
    lua_pushstring(co, (events & UV_RENAME) ? "rename" : "change");
    aq_task_resume(w->task, 1);
  }
  close_wait(w);
}

static void on_timeout(uv_timer_t *timer) {
  change_wait *w = timer->data;
  aq_task_resume_failure(w->task, "ETIMEDOUT", "nothing changed in time");
  close_wait(w);
}

/* The task was cancelled: close what we started; never touch the task. */
static void cancel_wait(aq_task *task, void *data) {
  (void)task;
  cancels++;
  close_wait(data);
}

static int l_wait_change(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  double timeout = luaL_optnumber(L, 2, -1);
  aq_task *task = aq_task_current(L);
  uv_loop_t *loop = aq_engine_loop(aq_engine_from_lua(L));
  change_wait *w = calloc(1, sizeof *w);
  if (!w) return luaL_error(L, "out of memory");
  w->task = task;
  w->event.data = w->timer.data = w;
  uv_fs_event_init(loop, &w->event);
  uv_timer_init(loop, &w->timer);
  w->open_handles = 2;
  int err = uv_fs_event_start(&w->event, on_change, path, 0);
  if (err) {
    close_wait(w);
    return aq_push_failure(L, uv_err_name(err), "cannot watch %s: %s", path, uv_strerror(err));
  }
  if (timeout >= 0) aq_timer_start(&w->timer, on_timeout, timeout); /* from now, never early */
  return aq_task_yield(L, cancel_wait, w);
}

static int l_cancels(lua_State *L) {
  lua_pushinteger(L, cancels);
  return 1;
}

AQ_EXPORT int luaopen_cmod(lua_State *L) {
  AQ_MODULE_CHECK(L, "cmod");
  static const luaL_Reg functions[] = {
      {"compress_file", l_compress_file},
      {"uncompress", l_uncompress},
      {"wait_change", l_wait_change},
      {"cancels", l_cancels},
      {NULL, NULL},
  };
  lua_newtable(L);
  luaL_register(L, NULL, functions);
  return 1;
}
