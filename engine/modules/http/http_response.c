/*
 * http_response.c — what the waiting task resumes with once its request is
 * over: the response { status, headers, body, url, elapsed } (no body with
 * output), or the failure (http_errors.c).
 *
 * The headers are made into a table when first read (res.headers): until
 * then the response keeps the raw lines the header callback gathered
 * (http_request.c). Building the table for every response, read or not,
 * was a tenth of a small request's CPU (curl_easy_nextheader walking curl's
 * header store, a lower-cased copy of each name, a table). The response's
 * metatable (HTTP_RESPONSE_MT) does it, and finds the methods aqueue.http
 * puts in its methods table (res:json(), res:html(), res:links()).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include "http.h"

/* A header line's end, without its CR LF and trailing blanks. */
static const char *trim_end(const char *start, const char *end) {
  while (end > start && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
  return end;
}

/* Pushes the table of a raw header block (http_req.head: the lines of the
 * last response after its status line): lower-case names, values without
 * the blanks around them, repeated headers joined with ", ", a folded line
 * (one that starts with a blank) added to the header before it after a
 * space, lines without a colon left out. */
static void push_header_table(lua_State *L, const char *raw, size_t len) {
  lua_createtable(L, 0, 8); /* (a server's usual few, without rehashing as they come) */
  int table = lua_gettop(L);
  int last = 0; /* stack index of the last header's name, 0 before the first */
  const char *p = raw, *end = raw + len;
  char small[128];
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *next = eol ? eol + 1 : end;
    const char *stop = trim_end(p, eol ? eol : end);
    if (*p == ' ' || *p == '\t') { /* a folded line: more of the last value */
      while (p < stop && (*p == ' ' || *p == '\t')) p++;
      if (last && p < stop) {
        lua_pushvalue(L, last);
        lua_pushvalue(L, last);
        lua_rawget(L, table);
        lua_pushliteral(L, " ");
        lua_pushlstring(L, p, (size_t)(stop - p));
        lua_concat(L, 3);
        lua_rawset(L, table);
      }
      p = next;
      continue;
    }
    const char *colon = memchr(p, ':', (size_t)(stop - p));
    if (!colon || colon == p) {
      p = next;
      continue;
    }
    size_t n = (size_t)(colon - p);
    char *name = n < sizeof small ? small : malloc(n);
    if (!name) luaL_error(L, "aqueue.http: out of memory");
    for (size_t i = 0; i < n; i++) name[i] = (char)tolower((unsigned char)p[i]);
    lua_settop(L, table);
    lua_pushlstring(L, name, n);
    if (name != small) free(name);
    last = lua_gettop(L);
    const char *value = colon + 1;
    while (value < stop && (*value == ' ' || *value == '\t')) value++;
    lua_pushvalue(L, last);
    lua_pushvalue(L, last);
    lua_rawget(L, table);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushlstring(L, value, (size_t)(stop - value));
    } else {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, value, (size_t)(stop - value));
      lua_concat(L, 3);
    }
    lua_rawset(L, table);
    p = next;
  }
  lua_settop(L, table);
}

int http_response_header(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t want_len;
  const char *want = luaL_checklstring(L, 2, &want_len);
  lua_pushliteral(L, HTTP_RAW_HEADERS);
  lua_rawget(L, 1);
  if (lua_type(L, -1) != LUA_TSTRING) { /* the table is made (or this is no response): read it */
    lua_getfield(L, 1, "headers");
    if (!lua_istable(L, -1)) return 0;
    lua_pushvalue(L, 2);
    lua_gettable(L, -2);
    return 1;
  }
  size_t len;
  const char *p = lua_tolstring(L, -1, &len), *end = p + len;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int found = 0, in_it = 0; /* a value seen; the last line was the wanted header's */
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *next = eol ? eol + 1 : end;
    const char *stop = trim_end(p, eol ? eol : end);
    if (*p == ' ' || *p == '\t') { /* folded: more of the last value */
      while (p < stop && (*p == ' ' || *p == '\t')) p++;
      if (in_it && p < stop) {
        luaL_addchar(&b, ' ');
        luaL_addlstring(&b, p, (size_t)(stop - p));
      }
      p = next;
      continue;
    }
    const char *colon = memchr(p, ':', (size_t)(stop - p));
    in_it = colon && (size_t)(colon - p) == want_len && strncasecmp(p, want, want_len) == 0;
    if (in_it) {
      const char *value = colon + 1;
      while (value < stop && (*value == ' ' || *value == '\t')) value++;
      if (found) luaL_addlstring(&b, ", ", 2);
      luaL_addlstring(&b, value, (size_t)(stop - value));
      found = 1;
    }
    p = next;
  }
  luaL_pushresult(&b);
  if (!found) lua_pushnil(L);
  return 1;
}

int http_response_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "headers") == 0) {
    lua_pushliteral(L, HTTP_RAW_HEADERS);
    lua_rawget(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t len;
      const char *raw = lua_tolstring(L, -1, &len);
      push_header_table(L, raw, len);
      lua_pushliteral(L, "headers");
      lua_pushvalue(L, -2);
      lua_rawset(L, 1);
      lua_pushliteral(L, HTTP_RAW_HEADERS);
      lua_pushnil(L);
      lua_rawset(L, 1);
      return 1;
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1)); /* a method (aqueue.http fills the table), or nil */
  return 1;
}

/* The HTTP version of the last response: "1.1", "2", ... */
static const char *http_version(const http_req *r) {
  if (!r->easy) return r->minor == 1 ? "1.1" : "1.0"; /* http_wire.c's */
  long v = 0;
  curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &v);
  switch (v) {
  case CURL_HTTP_VERSION_1_0:
    return "1.0";
  case CURL_HTTP_VERSION_1_1:
    return "1.1";
  case CURL_HTTP_VERSION_2_0:
    return "2";
  case CURL_HTTP_VERSION_3:
    return "3";
  default:
    return "?";
  }
}

/* Pushes the response table of a transfer that succeeded. */
static void push_response(lua_State *T, http_req *r) {
  lua_checkstack(T, 8);
  lua_createtable(T, 0, 6);
  long status = r->status; /* http_wire.c's; curl keeps its own */
  if (r->easy) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  lua_pushinteger(T, status);
  lua_setfield(T, -2, "status");
  lua_pushstring(T, http_version(r));
  lua_setfield(T, -2, "http_version");
  lua_pushlstring(T, r->head.data ? r->head.data : "", r->head.len); /* headers: read when asked for */
  lua_setfield(T, -2, HTTP_RAW_HEADERS);
  if (!r->path) {
    lua_pushlstring(T, r->body.data ? r->body.data : "", r->body.len);
    lua_setfield(T, -2, "body");
  }
  char *url = r->eff_url;
  if (r->easy) curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
  lua_pushstring(T, url ? url : "");
  lua_setfield(T, -2, "url");
  lua_pushnumber(T, (double)(uv_hrtime() - r->start_ns) / 1e9);
  lua_setfield(T, -2, "elapsed");
  luaL_getmetatable(T, HTTP_RESPONSE_MT);
  lua_setmetatable(T, -2);
}

void http_response_resume(http_req *r) {
  aq_task *task = r->task;
  r->task = NULL;
  if (r->code != CURLE_OK && !(r->code == CURLE_WRITE_ERROR && r->fs_error)) {
    http_resume_curl_failure(r, task);
  } else if (r->fs_error) {
    http_resume_fs_failure(r, task);
  } else {
    push_response(aq_task_state(task), r);
    aq_task_resume(task, 1);
  }
}
