/*
 * fs.c — the C half of aqueue.fs ("aqueue.fs_core"): files and directories on
 * libuv's uv_fs_* requests, which run the system calls on the thread pool so
 * the loop never blocks. lua/aqueue/fs.lua gives them their public shape (and
 * mkdir's `parents` option). Written against the public API (aqueue.h) only.
 *
 * Every function yields its task and returns, luv style:
 *   success       the value (data, true, a stat table, a list of names)
 *   I/O failure   nil, "ENOENT: no such file or directory: <path>", "ENOENT"
 * and raises on misuse (a path or data that is not a string — a number is
 * not taken for one — or a path that holds a zero byte).
 *
 * Ownership: an fs_call (its uv_fs_t, path copies, data buffer and any file it
 * opened) belongs to this file from the binding until fs_call_free, reached
 * from the callback of its last request, or at once when its first request
 * cannot even start (then nothing yields). One operation may chain several
 * requests (open -> read... -> close), reusing the same uv_fs_t.
 *
 * Cancellation: the cancel hook forgets the task (c->task = NULL) and asks
 * uv_cancel to drop the pending request. A request still waiting for a pool
 * thread is dropped and its callback runs with UV_ECANCELED; a request already
 * running on a pool thread cannot be stopped: it finishes normally. Either way
 * the callback still runs, sees that the task is gone, closes the file if one
 * is open, and frees the call without resuming anything.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "aqueue.h"
#include "builtin.h"

typedef enum { FS_READ, FS_WRITE, FS_APPEND, FS_STAT, FS_LSTAT, FS_LIST, FS_MKDIR, FS_REMOVE, FS_RENAME } fs_op;

/* A read starts with a buffer of the file's size (plus one byte, so the read
 * that meets the end needs no growth), and at least this much for files that
 * report no size (/proc, pipes). */
#define READ_MIN_CHUNK (64 * 1024)

typedef struct {
  uv_fs_t req;     /* reused by each step of the operation */
  aq_task *task;   /* NULL once the task was cancelled: never resume then */
  fs_op op;
  uv_file fd;      /* the open file, -1 when none */
  int err;         /* the first failure (a negative uv error), 0 when none */
  char *path;      /* owned copies, for the requests and the error message */
  char *path2;     /* rename's target */
  char *data;      /* read: the buffer filled so far; write: a copy of the data */
  size_t len;      /* read: bytes read; write: bytes of data */
  size_t cap;      /* read: size of data */
  size_t done;     /* write: bytes written */
  uv_stat_t st;    /* stat, lstat: the answer */
} fs_call;

static void fs_call_free(fs_call *c) {
  free(c->path);
  free(c->path2);
  free(c->data);
  free(c);
}

/* --- results --- */

static const char *type_name(uint64_t mode) {
  if (S_ISREG(mode)) return "file";
  if (S_ISDIR(mode)) return "directory";
  if (S_ISLNK(mode)) return "link";
  return "other";
}

static void set_stat_field(lua_State *L, const char *key, double value) {
  lua_pushnumber(L, value);
  lua_setfield(L, -2, key);
}

static double seconds(uv_timespec_t ts) { return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9; }

static void push_stat(lua_State *L, const uv_stat_t *st) {
  lua_createtable(L, 0, 12);
  lua_pushstring(L, type_name(st->st_mode));
  lua_setfield(L, -2, "type");
  set_stat_field(L, "size", (double)st->st_size);
  set_stat_field(L, "mode", (double)(st->st_mode & 07777)); /* permission bits; the kind is `type` */
  set_stat_field(L, "mtime", seconds(st->st_mtim));
  set_stat_field(L, "atime", seconds(st->st_atim));
  set_stat_field(L, "ctime", seconds(st->st_ctim));
  set_stat_field(L, "uid", (double)st->st_uid);
  set_stat_field(L, "gid", (double)st->st_gid);
  set_stat_field(L, "nlink", (double)st->st_nlink);
  set_stat_field(L, "ino", (double)st->st_ino);
  set_stat_field(L, "dev", (double)st->st_dev);
  set_stat_field(L, "blocks", (double)st->st_blocks);
}

/* Pushes nil, "ENAME: message: path", "ENAME" (aq_push_failure's shape),
 * with the path (both paths for rename) so that a log line says which file. */
static int push_fs_failure(lua_State *L, const fs_call *c) {
  if (c->path2)
    return aq_push_failure(L, uv_err_name(c->err), "%s: %s -> %s", uv_strerror(c->err), c->path, c->path2);
  return aq_push_failure(L, uv_err_name(c->err), "%s: %s", uv_strerror(c->err), c->path);
}

/* Pushes the operation's results onto L and returns how many. */
static int push_fs_results(lua_State *L, fs_call *c) {
  if (c->err < 0) return push_fs_failure(L, c);
  switch (c->op) {
  case FS_READ:
    lua_pushlstring(L, c->data ? c->data : "", c->len);
    break;
  case FS_STAT:
  case FS_LSTAT:
    push_stat(L, &c->st);
    break;
  case FS_LIST:
    break; /* pushed by on_scandir, which owns the entries */
  default:
    lua_pushboolean(L, 1);
  }
  return 1;
}

/* The end of every operation: resume the task (unless it was cancelled) and
 * free the call. The file, if any, is closed by now. */
static void complete(fs_call *c) {
  if (c->task) {
    aq_task *task = c->task;
    aq_task_resume(task, push_fs_results(aq_task_state(task), c));
  }
  fs_call_free(c);
}

/* --- closing: the last step of read, write and append --- */

static void on_close(uv_fs_t *req) {
  fs_call *c = req->data;
  /* A failed close can be the first report of a failed write (NFS, quotas). */
  if (req->result < 0 && c->err == 0) c->err = (int)req->result;
  uv_fs_req_cleanup(req);
  complete(c);
}

/* Closes the open file, if any, then completes. */
static void finish(fs_call *c) {
  if (c->fd < 0) {
    complete(c);
    return;
  }
  uv_file fd = c->fd;
  c->fd = -1;
  int r = uv_fs_close(c->req.loop, &c->req, fd, on_close);
  if (r < 0) { /* the callback will not run */
    if (c->err == 0) c->err = r;
    complete(c);
  }
}

/* Records a failure (the first one wins) and finishes. */
static void fail(fs_call *c, int err) {
  if (c->err == 0) c->err = err;
  finish(c);
}

/* The end of a step of read, write or append: cleans the request up for the
 * next step and sets *result to the step's. Returns the call to go on with,
 * or NULL when the operation ended here (the call is then finished): the task
 * is gone (cancelled: just close and free) or the step failed. */
static fs_call *step_done(uv_fs_t *req, ssize_t *result) {
  fs_call *c = req->data;
  *result = req->result;
  uv_fs_req_cleanup(req);
  if (!c->task) finish(c);
  else if (*result < 0) fail(c, (int)*result);
  else return c;
  return NULL;
}

/* The open of read, write or append is done: step_done, the file (when it
 * opened) being the call's from now on, for finish to close. */
static fs_call *open_done(uv_fs_t *req) {
  fs_call *c = req->data;
  if (req->result >= 0) c->fd = (uv_file)req->result;
  ssize_t result;
  return step_done(req, &result);
}

/* The length of one read or write: uv_buf_t holds an unsigned int, and Linux
 * moves at most about 2 GB per call anyway. */
static unsigned int chunk(size_t n) { return n > 0x40000000 ? 0x40000000u : (unsigned int)n; }

/* --- read: open -> fstat -> read until EOF -> close --- */

static void read_next(fs_call *c);

static void on_read(uv_fs_t *req) {
  ssize_t n;
  fs_call *c = step_done(req, &n);
  if (!c) return;
  if (n == 0) { /* end of file: the data is complete */
    finish(c);
    return;
  }
  c->len += (size_t)n;
  read_next(c);
}

/* Reads into the free end of the buffer, doubling it when full: the file may
 * be longer than fstat said (it grows, or it is in /proc). */
static void read_next(fs_call *c) {
  if (c->len == c->cap) {
    size_t cap = c->cap * 2;
    char *data = cap > c->cap ? realloc(c->data, cap) : NULL;
    if (!data) {
      fail(c, UV_ENOMEM);
      return;
    }
    c->data = data;
    c->cap = cap;
  }
  uv_buf_t buf = uv_buf_init(c->data + c->len, chunk(c->cap - c->len));
  int r = uv_fs_read(c->req.loop, &c->req, c->fd, &buf, 1, -1, on_read);
  if (r < 0) fail(c, r);
}

static void on_read_fstat(uv_fs_t *req) {
  uint64_t size = req->statbuf.st_size;
  ssize_t result;
  fs_call *c = step_done(req, &result);
  if (!c) return;
  size_t cap = size < READ_MIN_CHUNK ? READ_MIN_CHUNK : (size_t)size + 1;
  if ((uint64_t)cap <= size) { /* larger than memory can hold */
    fail(c, UV_ENOMEM);
    return;
  }
  c->data = malloc(cap);
  if (!c->data) {
    fail(c, UV_ENOMEM);
    return;
  }
  c->cap = cap;
  read_next(c);
}

static void on_read_open(uv_fs_t *req) {
  fs_call *c = open_done(req);
  if (!c) return;
  int r = uv_fs_fstat(req->loop, req, c->fd, on_read_fstat);
  if (r < 0) fail(c, r);
}

/* --- write and append: open -> write until all is written -> close --- */

static void write_next(fs_call *c);

static void on_write(uv_fs_t *req) {
  ssize_t n;
  fs_call *c = step_done(req, &n);
  if (!c) return;
  c->done += (size_t)n;
  write_next(c);
}

/* A write may be short (signals, quotas, pipes): go on from where it ended. */
static void write_next(fs_call *c) {
  if (c->done == c->len) {
    finish(c);
    return;
  }
  size_t left = c->len - c->done;
  uv_buf_t buf = uv_buf_init(c->data + c->done, chunk(left));
  int r = uv_fs_write(c->req.loop, &c->req, c->fd, &buf, 1, -1, on_write);
  if (r < 0) fail(c, r);
}

static void on_write_open(uv_fs_t *req) {
  fs_call *c = open_done(req);
  if (!c) return;
  write_next(c);
}

/* --- one-request operations --- */

static void on_done(uv_fs_t *req) {
  fs_call *c = req->data;
  if (req->result < 0) c->err = (int)req->result;
  else if (c->op == FS_STAT || c->op == FS_LSTAT) c->st = req->statbuf;
  uv_fs_req_cleanup(req);
  complete(c);
}

/* Pushes the names of the directory in the order the system gives them
 * (scandir leaves out "." and ".."; fs.lua sorts). Each uv_fs_scandir_next
 * frees the previous entry, so names go into Lua strings right away. */
static void push_names(lua_State *L, uv_fs_t *req) {
  lua_createtable(L, (int)req->result, 0);
  uv_dirent_t ent;
  for (int i = 1; uv_fs_scandir_next(req, &ent) == 0; i++) {
    lua_pushstring(L, ent.name);
    lua_rawseti(L, -2, i);
  }
}

static void on_scandir(uv_fs_t *req) {
  fs_call *c = req->data;
  if (req->result < 0) c->err = (int)req->result;
  else if (c->task) push_names(aq_task_state(c->task), req);
  uv_fs_req_cleanup(req);
  complete(c);
}

/* remove: unlink, and when the path is a directory (Linux says EISDIR, POSIX
 * EPERM), rmdir. When rmdir says it was no directory after all, the unlink's
 * error is the true one. */
static void on_rmdir(uv_fs_t *req) {
  fs_call *c = req->data;
  if (req->result == 0) c->err = 0;
  else if (req->result != UV_ENOTDIR) c->err = (int)req->result;
  uv_fs_req_cleanup(req);
  complete(c);
}

static void on_unlink(uv_fs_t *req) {
  fs_call *c = req->data;
  ssize_t result = req->result;
  uv_fs_req_cleanup(req);
  if (result < 0) c->err = (int)result;
  if (c->task && (result == UV_EISDIR || result == UV_EPERM)) {
    if (uv_fs_rmdir(req->loop, req, c->path, on_rmdir) == 0) return;
  }
  complete(c);
}

/* --- the bindings --- */

static const char *const op_names[] = {"read", "write", "append", "stat", "lstat", "list", "mkdir", "remove", "rename"};

/* Raises "<caller's file:line:> bad argument #arg to 'aqueue.fs.<op>' (what)":
 * the functions are called from Lua directly, so level 2 is the caller. */
static void arg_error(lua_State *L, fs_op op, int arg, const char *what) {
  luaL_where(L, 2);
  lua_pushfstring(L, "bad argument #%d to 'aqueue.fs.%s' (%s)", arg, op_names[op], what);
  lua_concat(L, 2);
  lua_error(L);
}

/* The string at arg, which must be a string: not a number either, which
 * luaL_checkstring would quietly turn into a file name ("42"). Raises. */
static const char *check_string(lua_State *L, fs_op op, int arg, size_t *len) {
  if (lua_type(L, arg) != LUA_TSTRING) {
    char what[64];
    snprintf(what, sizeof what, "string expected, got %s", luaL_typename(L, arg));
    arg_error(L, op, arg, what);
  }
  return lua_tolstring(L, arg, len);
}

static const char *check_path(lua_State *L, fs_op op, int arg) {
  size_t len;
  const char *path = check_string(L, op, arg, &len);
  if (strlen(path) != len) arg_error(L, op, arg, "path contains a zero byte");
  return path;
}

static char *copy(const char *s, size_t len) {
  char *p = malloc(len + 1);
  if (p) {
    memcpy(p, s, len);
    p[len] = '\0';
  }
  return p;
}

static void cancel_fs(aq_task *task, void *data) {
  (void)task;
  fs_call *c = data;
  c->task = NULL;
  /* Fails with UV_EBUSY when the request already runs on a pool thread: then
   * it finishes by itself and its callback frees the call. */
  uv_cancel((uv_req_t *)&c->req);
}

/* Allocates a call for op on the path at argument 1 (and the path at 2 for
 * rename). Raises on misuse or when out of memory. */
static fs_call *new_call(lua_State *L, aq_task *task, fs_op op) {
  const char *path = check_path(L, op, 1);
  const char *path2 = op == FS_RENAME ? check_path(L, op, 2) : NULL;
  fs_call *c = calloc(1, sizeof *c);
  if (!c) luaL_error(L, "out of memory");
  c->task = task;
  c->op = op;
  c->fd = -1;
  c->path = copy(path, strlen(path));
  c->path2 = path2 ? copy(path2, strlen(path2)) : NULL;
  c->req.data = c;
  if (!c->path || (path2 && !c->path2)) {
    fs_call_free(c);
    luaL_error(L, "out of memory");
  }
  return c;
}

/* The common tail: r is what starting the first request returned. When it
 * failed, its callback will never run: answer at once, without yielding. */
static int started(lua_State *L, fs_call *c, int r) {
  if (r < 0) {
    c->err = r;
    c->task = NULL;
    int n = push_fs_results(L, c);
    fs_call_free(c);
    return n;
  }
  return aq_task_yield(L, cancel_fs, c);
}

/* fs_core.read(path) -> the whole file as a string */
static int l_read(lua_State *L) {
  aq_task *task = aq_task_current(L);
  fs_call *c = new_call(L, task, FS_READ);
  return started(L, c, uv_fs_open(aq_engine_loop(aq_engine_from_lua(L)), &c->req, c->path, O_RDONLY | O_CLOEXEC, 0, on_read_open));
}

/* write(path, data) and append(path, data) -> true. The data is copied: the
 * Lua string may be collected while a pool thread still writes it (after a
 * cancel, nothing of Lua may be touched any more). */
static int write_or_append(lua_State *L, fs_op op) {
  aq_task *task = aq_task_current(L);
  size_t len;
  check_path(L, op, 1); /* the arguments in order: a bad path is #1 */
  const char *data = check_string(L, op, 2, &len);
  fs_call *c = new_call(L, task, op);
  c->data = malloc(len ? len : 1);
  if (!c->data) {
    fs_call_free(c);
    return luaL_error(L, "out of memory");
  }
  memcpy(c->data, data, len);
  c->len = len;
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (op == FS_APPEND ? O_APPEND : O_TRUNC);
  return started(L, c, uv_fs_open(aq_engine_loop(aq_engine_from_lua(L)), &c->req, c->path, flags, 0666, on_write_open));
}

static int l_write(lua_State *L) { return write_or_append(L, FS_WRITE); }
static int l_append(lua_State *L) { return write_or_append(L, FS_APPEND); }

/* stat(path) follows symbolic links; lstat(path) describes the link itself. */
static int stat_common(lua_State *L, fs_op op) {
  aq_task *task = aq_task_current(L);
  fs_call *c = new_call(L, task, op);
  uv_loop_t *loop = aq_engine_loop(aq_engine_from_lua(L));
  int r = op == FS_STAT ? uv_fs_stat(loop, &c->req, c->path, on_done) : uv_fs_lstat(loop, &c->req, c->path, on_done);
  return started(L, c, r);
}

static int l_stat(lua_State *L) { return stat_common(L, FS_STAT); }
static int l_lstat(lua_State *L) { return stat_common(L, FS_LSTAT); }

static int l_list(lua_State *L) {
  aq_task *task = aq_task_current(L);
  fs_call *c = new_call(L, task, FS_LIST);
  return started(L, c, uv_fs_scandir(aq_engine_loop(aq_engine_from_lua(L)), &c->req, c->path, 0, on_scandir));
}

/* mkdir(path) -> true: one directory (0777 less the umask); the parents
 * option lives in fs.lua. */
static int l_mkdir(lua_State *L) {
  aq_task *task = aq_task_current(L);
  fs_call *c = new_call(L, task, FS_MKDIR);
  return started(L, c, uv_fs_mkdir(aq_engine_loop(aq_engine_from_lua(L)), &c->req, c->path, 0777, on_done));
}

/* remove(path) -> true: a file, a link, or an empty directory. */
static int l_remove(lua_State *L) {
  aq_task *task = aq_task_current(L);
  fs_call *c = new_call(L, task, FS_REMOVE);
  return started(L, c, uv_fs_unlink(aq_engine_loop(aq_engine_from_lua(L)), &c->req, c->path, on_unlink));
}

static int l_rename(lua_State *L) {
  aq_task *task = aq_task_current(L);
  fs_call *c = new_call(L, task, FS_RENAME);
  return started(L, c, uv_fs_rename(aq_engine_loop(aq_engine_from_lua(L)), &c->req, c->path, c->path2, on_done));
}

int aq_open_fs(lua_State *L) {
  static const luaL_Reg functions[] = {
      {"read", l_read},   {"write", l_write}, {"append", l_append}, {"stat", l_stat},     {"lstat", l_lstat},
      {"list", l_list},   {"mkdir", l_mkdir}, {"remove", l_remove}, {"rename", l_rename}, {NULL, NULL},
  };
  lua_newtable(L);
  luaL_register(L, NULL, functions);
  return 1;
}
