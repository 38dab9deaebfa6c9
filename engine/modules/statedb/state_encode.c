/*
 * state_encode.c — Lua values to JSON for the state file, the store and the
 * disk queue: state_encode_item() (an item's row, statedb.add_item) and
 * statedb.encode(value).
 *
 * Written here rather than with lua-cjson's encoder because what goes into a
 * state file must come back exactly: numbers keep all 17 digits, and what JSON
 * cannot hold is refused with the path of the offending field instead of being
 * changed on the way (a table mixing list and string keys, a sparse list, a
 * function, an object with a metatable, NaN, a cycle). Reading back uses
 * lua-cjson's decoder.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "aqueue.h"

#define MAX_DEPTH 64

typedef struct {
  aq_buf out;
  char problem[256]; /* what cannot be saved, set on failure */
  char path[256];    /* where: "url", "tags[3]", "meta.size" */
} encoder;

static void add_string(aq_buf *b, const char *s, size_t len) {
  aq_buf_reserve(b, len + 2);
  aq_buf_add(b, "\"", 1);
  size_t start = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    aq_buf_add(b, s + start, i - start);
    start = i + 1;
    if (c == '"') aq_buf_add(b, "\\\"", 2);
    else if (c == '\\') aq_buf_add(b, "\\\\", 2);
    else if (c == '\n') aq_buf_add(b, "\\n", 2);
    else if (c == '\t') aq_buf_add(b, "\\t", 2);
    else aq_buf_printf(b, "\\u%04x", c);
  }
  aq_buf_add(b, s + start, len - start);
  aq_buf_add(b, "\"", 1);
}

/* Whole numbers are most numbers: written without printf's float path. */
static void add_integer(aq_buf *b, int64_t v) {
  char digits[24], *p = digits + sizeof digits;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--p = '-';
  aq_buf_add(b, p, (size_t)(digits + sizeof digits - p));
}

/* The value cannot be saved: keeps why (for the message). Returns -1. */
static int refuse(encoder *e, const char *what) {
  snprintf(e->problem, sizeof e->problem, "%s", what);
  return -1;
}

/* Appends ".key" or "[n]" to the path while a field is encoded. */
static size_t path_push_key(encoder *e, const char *key, size_t len) {
  size_t at = strlen(e->path);
  snprintf(e->path + at, sizeof e->path - at, "%s%.*s", at ? "." : "", (int)len, key);
  return at;
}

static size_t path_push_index(encoder *e, lua_Number n) {
  size_t at = strlen(e->path);
  snprintf(e->path + at, sizeof e->path - at, "[%.0f]", n);
  return at;
}

static int encode_value(lua_State *L, encoder *e, int idx, int depth);

/* Encodes the value on top of the stack, a field of a table at `depth`
 * whose name path_push_* appended to the path at `at`, and pops it. On
 * success the name is taken off the path again; on failure the path names
 * the field that cannot be saved. Returns 0 or -1. */
static int encode_field(lua_State *L, encoder *e, size_t at, int depth) {
  int rc = encode_value(L, e, lua_gettop(L), depth + 1);
  lua_pop(L, 1);
  if (rc == 0) e->path[at] = '\0';
  return rc;
}

/* The table at idx: a list 1..n, or a table with string keys only. */
static int encode_table(lua_State *L, encoder *e, int idx, int depth) {
  if (depth > MAX_DEPTH) return refuse(e, "nests too deeply (a table that contains itself?)");
  if (lua_getmetatable(L, idx)) {
    lua_pop(L, 1);
    return refuse(e, "is an object with a metatable (only plain tables can be saved)");
  }
  size_t n = lua_objlen(L, idx);
  size_t count = 0, strings = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    count++;
    if (lua_type(L, -2) == LUA_TSTRING) strings++;
    lua_pop(L, 1);
  }
  if (count > 0 && strings == count) {
    aq_buf_add(&e->out, "{", 1);
    int first = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      size_t klen;
      const char *k = lua_tolstring(L, -2, &klen);
      if (!first) aq_buf_add(&e->out, ",", 1);
      first = 0;
      add_string(&e->out, k, klen);
      aq_buf_add(&e->out, ":", 1);
      if (encode_field(L, e, path_push_key(e, k, klen), depth) != 0) {
        lua_pop(L, 1); /* the key: lua_next stops here */
        return -1;
      }
    }
    aq_buf_add(&e->out, "}", 1);
    return 0;
  }
  if (count != n) return refuse(e, "mixes list entries with other keys, or is a list with holes (JSON cannot hold it)");
  aq_buf_add(&e->out, "[", 1);
  for (size_t i = 1; i <= n; i++) {
    if (i > 1) aq_buf_add(&e->out, ",", 1);
    lua_rawgeti(L, idx, (int)i);
    if (encode_field(L, e, path_push_index(e, (lua_Number)i), depth) != 0) return -1;
  }
  aq_buf_add(&e->out, "]", 1);
  return 0;
}

static int encode_value(lua_State *L, encoder *e, int idx, int depth) {
  switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
      aq_buf_puts(&e->out, lua_toboolean(L, idx) ? "true" : "false");
      return 0;
    case LUA_TNUMBER: {
      lua_Number x = lua_tonumber(L, idx);
      if (!isfinite(x)) return refuse(e, "is not a finite number (JSON cannot hold it)");
      if (x == floor(x) && fabs(x) < 1e15) add_integer(&e->out, (int64_t)x);
      else aq_buf_printf(&e->out, "%.17g", x);
      return 0;
    }
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      add_string(&e->out, s, len);
      return 0;
    }
    case LUA_TTABLE:
      luaL_checkstack(L, 4, "nests too deeply");
      return encode_table(L, e, idx, depth);
    default: {
      char what[64];
      snprintf(what, sizeof what, "is a %s", luaL_typename(L, idx));
      return refuse(e, what);
    }
  }
}

static encoder enc; /* loop thread only */

static int encoded(lua_State *L, int rc) {
  if (enc.out.failed) return luaL_error(L, "out of memory");
  if (rc == 0) {
    lua_pushlstring(L, enc.out.data, enc.out.len);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, enc.problem);
  lua_pushstring(L, enc.path);
  return 3;
}

/* The JSON of the fields of the item table at idx, leaving out what the
 * engine sets on items (`parent`, `_aq_*`): a pointer into a buffer reused by
 * the next call, or NULL with *problem and *field set. */
const char *state_encode_item(lua_State *L, int idx, size_t *len, const char **problem, const char **field) {
  aq_buf_reset(&enc.out);
  enc.path[0] = '\0';
  aq_buf_add(&enc.out, "{", 1);
  int first = 1, rc = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      snprintf(enc.path, sizeof enc.path, "?");
      rc = refuse(&enc, "an item's fields must have string names");
      break;
    }
    size_t klen;
    const char *k = lua_tolstring(L, -2, &klen);
    if ((klen == 6 && memcmp(k, "parent", 6) == 0) || (klen >= 4 && memcmp(k, "_aq_", 4) == 0)) {
      lua_pop(L, 1);
      continue;
    }
    if (!first) aq_buf_add(&enc.out, ",", 1);
    first = 0;
    add_string(&enc.out, k, klen);
    aq_buf_add(&enc.out, ":", 1);
    snprintf(enc.path, sizeof enc.path, "%.*s", (int)klen, k);
    rc = encode_value(L, &enc, lua_gettop(L), 1);
    if (rc != 0) {
      lua_pop(L, 2);
      break;
    }
    lua_pop(L, 1);
  }
  aq_buf_add(&enc.out, "}", 1);
  if (enc.out.failed) luaL_error(L, "out of memory");
  if (rc != 0) {
    *problem = enc.problem;
    *field = enc.path;
    return NULL;
  }
  *len = enc.out.len;
  return enc.out.data;
}

/* statedb.encode(value) -> JSON, or nil, problem, where ("" for the value itself). */
static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  aq_buf_reset(&enc.out);
  enc.path[0] = '\0';
  return encoded(L, encode_value(L, &enc, 1, 0));
}

void state_encode_register(lua_State *L) {
  lua_pushcfunction(L, l_encode);
  lua_setfield(L, -2, "encode");
}

void state_encode_free(void) { aq_buf_free(&enc.out); }
