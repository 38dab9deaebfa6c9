/*
 * http_options.c — request()'s options table, read and checked.
 * lua/aqueue/http.lua checks the arguments and gives the module its friendly
 * shape; this file trusts little of it and checks types again.
 */
#include <string.h>

#include <lauxlib.h>

#include "http.h"

/* The options a request reads, and the type each must have. */
enum option { OPT_METHOD, OPT_URL, OPT_HEADERS, OPT_BODY, OPT_TIMEOUT, OPT_MAX_BODY, OPT_CA_FILE,
              OPT_PROXY, OPT_COOKIE_JAR, OPT_FOLLOW_REDIRECTS, OPT_OUTPUT, OPT_COUNT };
static const struct {
  const char *name;
  size_t len;
  int type;
} options[OPT_COUNT] = {
    [OPT_METHOD] = {"method", 6, LUA_TSTRING},
    [OPT_URL] = {"url", 3, LUA_TSTRING},
    [OPT_HEADERS] = {"headers", 7, LUA_TTABLE},
    [OPT_BODY] = {"body", 4, LUA_TSTRING},
    [OPT_TIMEOUT] = {"timeout", 7, LUA_TNUMBER},
    [OPT_MAX_BODY] = {"max_body", 8, LUA_TNUMBER},
    [OPT_CA_FILE] = {"ca_file", 7, LUA_TSTRING},
    [OPT_PROXY] = {"proxy", 5, LUA_TSTRING},
    [OPT_COOKIE_JAR] = {"cookie_jar", 10, LUA_TUSERDATA},
    [OPT_FOLLOW_REDIRECTS] = {"follow_redirects", 16, LUA_TBOOLEAN},
    [OPT_OUTPUT] = {"output", 6, LUA_TSTRING},
};

static int wrong_type(lua_State *L, int opt, int t) {
  return luaL_error(L, "aqueue.http_core.request: field '%s' must be a %s, got %s", options[opt].name,
                    lua_typename(L, options[opt].type), lua_typename(L, t));
}

/* Which option a key names, or -1. */
static int option_of(lua_State *L, int key) {
  if (lua_type(L, key) != LUA_TSTRING) return -1;
  size_t len;
  const char *name = lua_tolstring(L, key, &len);
  for (int i = 0; i < OPT_COUNT; i++)
    if (options[i].len == len && memcmp(options[i].name, name, len) == 0) return i;
  return -1;
}

/* The option at the top of the stack, checked, into o. */
static void read_option(lua_State *L, int opt, http_options *o) {
  int t = lua_type(L, -1);
  if (t != options[opt].type) wrong_type(L, opt, t);
  switch (opt) {
  case OPT_METHOD: o->method = lua_tostring(L, -1); break;
  case OPT_URL: o->url = lua_tolstring(L, -1, &o->url_len); break;
  case OPT_HEADERS: o->nheaders = lua_objlen(L, -1); break; /* (its stack slot: see below) */
  case OPT_BODY: o->body = lua_tolstring(L, -1, &o->body_len); break;
  case OPT_TIMEOUT:
    o->timeout = lua_tonumber(L, -1);
    if (!(o->timeout > 0)) luaL_error(L, "aqueue.http_core.request: timeout must be positive");
    break;
  case OPT_MAX_BODY:
    o->max_body = lua_tonumber(L, -1);
    if (!(o->max_body >= 1 && o->max_body <= 9e15))
      luaL_error(L, "aqueue.http_core.request: max_body must be a number of bytes from 1");
    break;
  case OPT_CA_FILE: o->ca_file = lua_tostring(L, -1); break;
  case OPT_PROXY: o->proxy = lua_tostring(L, -1); break;
  case OPT_COOKIE_JAR: o->jar = http_cookies_check(L, -1); break;
  case OPT_FOLLOW_REDIRECTS: o->follow_redirects = lua_toboolean(L, -1); break;
  case OPT_OUTPUT:
    o->output = lua_tolstring(L, -1, &o->output_len);
    if (o->output_len == 0 || strlen(o->output) != o->output_len)
      luaL_error(L, "aqueue.http_core.request: output must be a file path");
    break;
  }
}

/* headers = { "Name: value", ... }: a list of strings. */
static void check_headers(lua_State *L, const http_options *o) {
  for (size_t i = 1; i <= o->nheaders; i++) {
    lua_rawgeti(L, o->headers_idx, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "aqueue.http_core.request: headers[%d] must be a string", (int)i);
    lua_pop(L, 1);
  }
}

/* One pass over the table's fields: a request sets a few of the eleven, and
 * looking each one up by name cost 13 % of a request's instructions. The
 * strings stay the table's, which is on the stack until the request is set
 * up; the headers' list is pushed, for its stack index. */
void http_options_read(lua_State *L, http_options *o) {
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(o, 0, sizeof *o);
  o->follow_redirects = 1;
  int has_headers = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    int opt = option_of(L, -2);
    if (opt >= 0) {
      read_option(L, opt, o);
      if (opt == OPT_HEADERS) has_headers = 1;
    }
    lua_pop(L, 1);
  }
  if (!o->method) wrong_type(L, OPT_METHOD, LUA_TNIL);
  if (!o->url) wrong_type(L, OPT_URL, LUA_TNIL);
  if (has_headers) {
    lua_getfield(L, 1, "headers");
    o->headers_idx = lua_gettop(L);
    check_headers(L, o);
  }
}
