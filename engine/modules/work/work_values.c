/*
 * work_values.c — encoding and decoding the plain values that cross between
 * the loop thread and a pool thread (format and rules: work_values.h).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "work_values.h"

enum { TAG_NIL, TAG_FALSE, TAG_TRUE, TAG_NUMBER, TAG_STRING, TAG_TABLE };

static void put_tag(aq_buf *b, unsigned char tag) { aq_buf_add(b, (const char *)&tag, 1); }

static int is_identifier(const char *s, size_t len) {
  if (len == 0 || len > 40 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return 1;
}

/* Puts the key at stack index k in front of e->where (".name", "[3]",
 * "[\"a b\"]"). A path too long to fit keeps its innermost part. */
static void prepend_key(work_encoder *e, int k) {
  char seg[64];
  lua_State *L = e->L;
  switch (lua_type(L, k)) {
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, k, &len);
    if (is_identifier(s, len)) snprintf(seg, sizeof seg, ".%s", s);
    else snprintf(seg, sizeof seg, "[\"%.*s%s\"]", len > 24 ? 24 : (int)len, s, len > 24 ? "..." : "");
    break;
  }
  case LUA_TNUMBER: snprintf(seg, sizeof seg, "[%.14g]", lua_tonumber(L, k)); break;
  case LUA_TBOOLEAN: snprintf(seg, sizeof seg, "[%s]", lua_toboolean(L, k) ? "true" : "false"); break;
  default: snprintf(seg, sizeof seg, "[<%s>]", lua_typename(L, lua_type(L, k))); break;
  }
  size_t n = strlen(seg), have = strlen(e->where);
  if (n + have >= sizeof e->where) return;
  memmove(e->where + n, e->where, have + 1);
  memcpy(e->where, seg, n);
}

/* Encodes the table at idx: its array part 1..#t by index, then every other
 * pair. Returns 0, or -1 with e->what / e->where set. */
static int work_encode_table(work_encoder *e, int idx) {
  lua_State *L = e->L;
  const void *self = lua_topointer(L, idx);
  for (int i = 0; i < e->depth; i++) {
    if (e->path[i] == self) {
      snprintf(e->what, sizeof e->what, "a table that contains itself (a cycle)");
      return -1;
    }
  }
  if (e->depth == WORK_MAX_DEPTH) {
    snprintf(e->what, sizeof e->what, "tables nested more than %d deep", WORK_MAX_DEPTH);
    return -1;
  }
  e->path[e->depth++] = self;
  size_t narr = lua_objlen(L, idx);
  if (narr > INT_MAX) narr = 0; /* then all pairs go the general way */
  put_tag(e->out, TAG_TABLE);
  work_put_u32(e->out, (uint32_t)narr);
  size_t nhash_at = e->out->len;
  work_put_u32(e->out, 0); /* patched below */
  for (size_t i = 1; i <= narr; i++) {
    lua_rawgeti(L, idx, (int)i);
    int rc = work_encode_value(e, lua_gettop(L));
    if (rc != 0) {
      lua_pushnumber(L, (lua_Number)i);
      prepend_key(e, -1);
      lua_pop(L, 2);
      return -1;
    }
    lua_pop(L, 1);
  }
  uint32_t nhash = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int k = lua_gettop(L) - 1;
    if (lua_type(L, k) == LUA_TNUMBER) {
      lua_Number n = lua_tonumber(L, k);
      if (n >= 1 && n <= (lua_Number)narr && n == (lua_Number)(size_t)n) {
        lua_pop(L, 1); /* already sent as the array part */
        continue;
      }
    }
    if (work_encode_value(e, k) != 0) {
      e->in_key = 1;
      lua_pop(L, 2);
      return -1;
    }
    if (work_encode_value(e, k + 1) != 0) {
      prepend_key(e, k);
      lua_pop(L, 2);
      return -1;
    }
    nhash++;
    lua_pop(L, 1);
  }
  if (!e->out->failed) memcpy(e->out->data + nhash_at, &nhash, sizeof nhash);
  e->depth--;
  return 0;
}

int work_encode_value(work_encoder *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
  case LUA_TNIL: put_tag(e->out, TAG_NIL); return 0;
  case LUA_TBOOLEAN: put_tag(e->out, lua_toboolean(L, idx) ? TAG_TRUE : TAG_FALSE); return 0;
  case LUA_TNUMBER: {
    double d = lua_tonumber(L, idx);
    put_tag(e->out, TAG_NUMBER);
    aq_buf_add(e->out, (const char *)&d, sizeof d);
    return 0;
  }
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    put_tag(e->out, TAG_STRING);
    work_put_u64(e->out, len);
    aq_buf_add(e->out, s, len);
    return 0;
  }
  case LUA_TTABLE: return work_encode_table(e, idx);
  default: {
    const char *type = lua_typename(L, lua_type(L, idx));
    snprintf(e->what, sizeof e->what, "a %s", type);
    return -1;
  }
  }
}

void work_describe_failure(const work_encoder *e, char *msg, size_t size, const char *kind, int n,
                           const char *direction) {
  if (e->where[0])
    snprintf(msg, size,
             "fn's %s #%d holds %s%s at %s; only nil, boolean, number, string and tables of "
             "those can cross %s a pool thread",
             kind, n, e->what, e->in_key ? " used as a key" : "", e->where, direction);
  else
    snprintf(msg, size,
             "fn's %s #%d %s %s%s; only nil, boolean, number, string and tables of those "
             "can cross %s a pool thread",
             kind, n, e->in_key ? "holds" : "is", e->what, e->in_key ? " used as a key" : "",
             direction);
}

void work_read_bytes(lua_State *L, work_reader *r, void *out, size_t n) {
  if ((size_t)(r->end - r->p) < n) luaL_error(L, "aqueue.work: internal error: truncated value");
  memcpy(out, r->p, n);
  r->p += n;
}

uint32_t work_read_u32(lua_State *L, work_reader *r) {
  uint32_t v;
  work_read_bytes(L, r, &v, sizeof v);
  return v;
}

void work_decode_value(lua_State *L, work_reader *r, int depth) {
  unsigned char tag;
  work_read_bytes(L, r, &tag, 1);
  luaL_checkstack(L, 3, "aqueue.work: values nested too deep");
  switch (tag) {
  case TAG_NIL: lua_pushnil(L); return;
  case TAG_FALSE: lua_pushboolean(L, 0); return;
  case TAG_TRUE: lua_pushboolean(L, 1); return;
  case TAG_NUMBER: {
    double d;
    work_read_bytes(L, r, &d, sizeof d);
    lua_pushnumber(L, d);
    return;
  }
  case TAG_STRING: {
    uint64_t len;
    work_read_bytes(L, r, &len, sizeof len);
    if ((uint64_t)(r->end - r->p) < len) luaL_error(L, "aqueue.work: internal error: truncated string");
    lua_pushlstring(L, r->p, (size_t)len);
    r->p += len;
    return;
  }
  case TAG_TABLE: {
    if (depth >= WORK_MAX_DEPTH) luaL_error(L, "aqueue.work: internal error: tables too deep");
    uint32_t narr = work_read_u32(L, r), nhash = work_read_u32(L, r);
    /* the sizes are hints: cap them so a bad count cannot ask for gigabytes */
    size_t left = (size_t)(r->end - r->p);
    lua_createtable(L, narr <= left ? (int)narr : 0, nhash <= left / 2 ? (int)nhash : 0);
    for (uint32_t i = 1; i <= narr; i++) {
      work_decode_value(L, r, depth + 1);
      lua_rawseti(L, -2, (int)i);
    }
    for (uint32_t i = 0; i < nhash; i++) {
      work_decode_value(L, r, depth + 1);
      work_decode_value(L, r, depth + 1);
      lua_rawset(L, -3);
    }
    return;
  }
  default: luaL_error(L, "aqueue.work: internal error: bad value tag %d", (int)tag);
  }
}
