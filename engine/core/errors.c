/*
 * errors.c — the codes of I/O failures. Every yielding binding reports an I/O
 * failure the same way, as three values: nil, "CODE: message", "CODE". This
 * file holds the one list of the codes the built-in bindings return (README
 * "I/O failures" documents each, and tests/spec/errors_spec.lua checks that
 * README's table and this list agree), the functions of aqueue.h that push
 * that shape, and the Lua module "aqueue.errors" (code -> description), read
 * from the same list: nothing about the codes is copied into Lua.
 *
 * Codes are libuv's error names where libuv has one (the system's errno
 * names, EAI_* for name resolution), with libuv's description; aqueue's own
 * codes, for failures no errno describes, are the AQ_E* of aqueue.h.
 */
#include <stdarg.h>
#include <string.h>

#include <lauxlib.h>

#include "aqueue.h"
#include "errors.h"

typedef struct {
  const char *code;
  int uv;           /* libuv's error number, or 0 for aqueue's own codes */
  const char *text; /* the description of aqueue's own codes */
} error_code;

#define UV_CODE(name) {#name, UV_##name, NULL}

static const error_code codes[] = {
    /* files (fs, exec's program, http's output file) */
    UV_CODE(ENOENT), UV_CODE(EACCES), UV_CODE(EPERM), UV_CODE(EEXIST), UV_CODE(ENOTDIR),
    UV_CODE(EISDIR), UV_CODE(ENOTEMPTY), UV_CODE(ENOSPC), UV_CODE(EROFS), UV_CODE(EXDEV),
    UV_CODE(ELOOP), UV_CODE(ENAMETOOLONG), UV_CODE(EMFILE), UV_CODE(EIO), UV_CODE(ENOMEM),
    /* the network (http) and time limits (http, exec) */
    UV_CODE(ECONNREFUSED), UV_CODE(ECONNRESET), UV_CODE(ENOTCONN), UV_CODE(EHOSTUNREACH), UV_CODE(ENETUNREACH),
    UV_CODE(ETIMEDOUT), UV_CODE(EAI_NONAME), UV_CODE(EPROTONOSUPPORT), UV_CODE(EPROTO),
    UV_CODE(EINVAL), UV_CODE(EFBIG),
    /* aqueue's own */
    {AQ_ECERT, 0, "TLS certificate not trusted"},
    {AQ_ETLS, 0, "TLS failure"},
    {AQ_EREDIRECTS, 0, "too many redirects"},
    {AQ_EHTTP, 0, "HTTP transfer failed"},
    {AQ_EWORK, 0, "the work function failed"},
    {AQ_EREDIS, 0, "the Redis server answered with an error"},
    {AQ_EAUTH, 0, "the Redis server refused the password"},
    {AQ_EAQRUN, 0, "the shared run in Redis cannot be used"},
    {AQ_EJSON, 0, "the body is not valid JSON"},
};

#define NCODES (sizeof codes / sizeof codes[0])

static const char *describe(const error_code *c) { return c->uv ? uv_strerror(c->uv) : c->text; }

const char *aq_error_text(const char *code) {
  for (size_t i = 0; i < NCODES; i++)
    if (strcmp(codes[i].code, code) == 0) return describe(&codes[i]);
  return NULL;
}

/* Pushes nil, "CODE: <fmt...>", "CODE" onto L. */
static void push_failure(lua_State *L, const char *code, const char *fmt, va_list ap) {
  lua_pushnil(L);
  lua_pushstring(L, code);
  lua_pushliteral(L, ": ");
  lua_pushvfstring(L, fmt, ap);
  lua_concat(L, 3);
  lua_pushstring(L, code);
}

int aq_push_failure(lua_State *L, const char *code, const char *fmt, ...) {
  luaL_checkstack(L, 5, "no stack left for an error");
  va_list ap;
  va_start(ap, fmt);
  push_failure(L, code, fmt, ap);
  va_end(ap);
  return 3;
}

void aq_task_resume_failure(aq_task *task, const char *code, const char *fmt, ...) {
  lua_State *co = aq_task_state(task);
  lua_checkstack(co, 5); /* a waiting task's stack has LUA_MINSTACK free: this only grows it */
  va_list ap;
  va_start(ap, fmt);
  push_failure(co, code, fmt, ap);
  va_end(ap);
  aq_task_resume(task, 3);
}

/* require("aqueue.errors") -> { CODE = "description", ... }: every code the
 * built-in bindings return. */
int aq_open_errors(lua_State *L) {
  lua_createtable(L, 0, (int)NCODES);
  for (size_t i = 0; i < NCODES; i++) {
    lua_pushstring(L, describe(&codes[i]));
    lua_setfield(L, -2, codes[i].code);
  }
  return 1;
}
