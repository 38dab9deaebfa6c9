/*
 * feed_file.c — the C half of aqueue.feed ("aqueue.feed_file"): an output
 * file that only grows by whole lines. lua/aqueue/feed.lua formats the
 * records and decides when a line is appended; this file owns the descriptor.
 *
 *   feed_file.open(path)  -> a file, or nil, "ENOENT: ...: path", "ENOENT"
 *   f:append(data)        -> true, or nil, err, code
 *   f:size()              -> the file's size in bytes, or nil, err, code
 *   f:truncate(n)         -> true, or nil, err, code (cuts the file back to n bytes)
 *   f:close()             -> closes it (again: nothing); also done when collected
 *
 * The file is opened O_APPEND, so each append is one write(2) at the file's
 * end: a line is never interleaved with another process's appends, and a
 * line is never split by another task's (nothing yields in between). A short
 * write (a full disk) is retried for the rest; when that fails the file may
 * end with a partial line, which the state file's protocol cuts off on the
 * next start (lua/aqueue/feed_outbox.lua).
 *
 * The calls are synchronous on the loop thread (libuv's uv_fs_* without a
 * callback): an append of a line to the page cache costs microseconds, less
 * than a hand-off to the thread pool, and keeping it synchronous is what lets
 * feed.lua append and record the file's size with no task running between.
 *
 * Ownership: the userdata holds the descriptor (-1 once closed); close and
 * __gc release it. Misuse (not a string, a closed file) raises.
 */
#include <fcntl.h>
#include <string.h>

#include <lauxlib.h>

#include "aqueue.h"
#include "builtin.h"

#define FEED_FILE_MT "aqueue.feed_file"

typedef struct {
  uv_file fd; /* -1 once closed */
  char path[];
} feed_file;

static uv_loop_t *loop_of(lua_State *L) { return aq_engine_loop(aq_engine_from_lua(L)); }

static int failure(lua_State *L, int err, const feed_file *f) {
  return aq_push_failure(L, uv_err_name(err), "%s: %s", uv_strerror(err), f->path);
}

static feed_file *check_open(lua_State *L) {
  feed_file *f = luaL_checkudata(L, 1, FEED_FILE_MT);
  if (f->fd < 0) luaL_error(L, "feed file %s is closed", f->path);
  return f;
}

static int l_open(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  if (strlen(path) != len) return luaL_argerror(L, 1, "path holds a zero byte");
  feed_file *f = lua_newuserdata(L, sizeof *f + len + 1);
  f->fd = -1;
  memcpy(f->path, path, len + 1);
  luaL_getmetatable(L, FEED_FILE_MT);
  lua_setmetatable(L, -2);
  uv_fs_t req;
  int fd = uv_fs_open(loop_of(L), &req, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0) return failure(L, fd, f);
  f->fd = fd;
  return 1;
}

static int l_append(lua_State *L) {
  feed_file *f = check_open(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  while (len > 0) {
    uv_fs_t req;
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_fs_write(loop_of(L), &req, f->fd, &buf, 1, -1, NULL);
    uv_fs_req_cleanup(&req);
    if (n < 0) return failure(L, n, f);
    data += n;
    len -= (size_t)n;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_size(lua_State *L) {
  feed_file *f = check_open(L);
  uv_fs_t req;
  int rc = uv_fs_fstat(loop_of(L), &req, f->fd, NULL);
  double size = (double)req.statbuf.st_size;
  uv_fs_req_cleanup(&req);
  if (rc < 0) return failure(L, rc, f);
  lua_pushnumber(L, size);
  return 1;
}

static int l_truncate(lua_State *L) {
  feed_file *f = check_open(L);
  lua_Number n = luaL_checknumber(L, 2);
  if (!(n >= 0) || n != (lua_Number)(int64_t)n) return luaL_argerror(L, 2, "a size in bytes expected");
  uv_fs_t req;
  int rc = uv_fs_ftruncate(loop_of(L), &req, f->fd, (int64_t)n, NULL);
  uv_fs_req_cleanup(&req);
  if (rc < 0) return failure(L, rc, f);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_close(lua_State *L) {
  feed_file *f = luaL_checkudata(L, 1, FEED_FILE_MT);
  if (f->fd >= 0) {
    uv_fs_t req;
    uv_fs_close(loop_of(L), &req, f->fd, NULL);
    uv_fs_req_cleanup(&req);
    f->fd = -1;
  }
  return 0;
}

int aq_open_feed_file(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"append", l_append}, {"size", l_size}, {"truncate", l_truncate}, {"close", l_close}, {NULL, NULL}};
  luaL_newmetatable(L, FEED_FILE_MT);
  lua_newtable(L);
  luaL_register(L, NULL, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_close);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "open");
  return 1;
}
