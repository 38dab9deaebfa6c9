/*
 * http_options.c — request()'s options table, read and checked.
 * lua/aqueue/http.lua checks the arguments and gives the module its friendly
 * shape; this file trusts little of it and checks types again.
 */
#include <string.h>

#include <lauxlib.h>

#include "http.h"

/* A field of the options table at index 1: a value of type `type` or nil
 * (when `required` is 0). Leaves it on the stack. Raises otherwise. */
static int check_field(lua_State *L, const char *field, int type, int required) {
  lua_getfield(L, 1, field);
  int t = lua_type(L, -1);
  if (t == type || (t == LUA_TNIL && !required)) return t;
  return luaL_error(L, "aqueue.http_core.request: field '%s' must be a %s, got %s", field,
                    lua_typename(L, type), lua_typename(L, t));
}

/* headers = { "Name: value", ... }: a list of strings, or nil. */
static void read_headers(lua_State *L, http_options *o) {
  o->headers_idx = check_field(L, "headers", LUA_TTABLE, 0) == LUA_TNIL ? 0 : lua_gettop(L);
  o->nheaders = o->headers_idx ? lua_objlen(L, o->headers_idx) : 0;
  for (size_t i = 1; i <= o->nheaders; i++) {
    lua_rawgeti(L, o->headers_idx, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "aqueue.http_core.request: headers[%d] must be a string", (int)i);
    lua_pop(L, 1);
  }
}

void http_options_read(lua_State *L, http_options *o) {
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(o, 0, sizeof *o);
  check_field(L, "method", LUA_TSTRING, 1);
  o->method = lua_tostring(L, -1);
  check_field(L, "url", LUA_TSTRING, 1);
  o->url = lua_tolstring(L, -1, &o->url_len);
  read_headers(L, o);
  if (check_field(L, "body", LUA_TSTRING, 0) != LUA_TNIL) o->body = lua_tolstring(L, -1, &o->body_len);
  if (check_field(L, "timeout", LUA_TNUMBER, 0) != LUA_TNIL) {
    o->timeout = lua_tonumber(L, -1);
    if (!(o->timeout > 0)) luaL_error(L, "aqueue.http_core.request: timeout must be positive");
  }
  if (check_field(L, "max_body", LUA_TNUMBER, 0) != LUA_TNIL) {
    o->max_body = lua_tonumber(L, -1);
    if (!(o->max_body >= 1 && o->max_body <= 9e15))
      luaL_error(L, "aqueue.http_core.request: max_body must be a number of bytes from 1");
  }
  if (check_field(L, "ca_file", LUA_TSTRING, 0) != LUA_TNIL) o->ca_file = lua_tostring(L, -1);
  if (check_field(L, "proxy", LUA_TSTRING, 0) != LUA_TNIL) o->proxy = lua_tostring(L, -1);
  if (check_field(L, "cookie_jar", LUA_TUSERDATA, 0) != LUA_TNIL) o->jar = http_cookies_check(L, -1);
  o->follow_redirects = check_field(L, "follow_redirects", LUA_TBOOLEAN, 0) == LUA_TNIL || lua_toboolean(L, -1);
  if (check_field(L, "output", LUA_TSTRING, 0) != LUA_TNIL) {
    o->output = lua_tolstring(L, -1, &o->output_len);
    if (o->output_len == 0 || strlen(o->output) != o->output_len)
      luaL_error(L, "aqueue.http_core.request: output must be a file path");
  }
}
