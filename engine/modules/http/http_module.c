/*
 * http_module.c — aqueue.http_core, the Lua side: request() and
 * configure(). This folder is built as its own loadable module (see
 * CMakeLists.txt), so libcurl is loaded only by scripts that use HTTP; the
 * files and who owns what: http.h.
 */
#include <math.h>
#include <time.h>

#include <lauxlib.h>

#include "http.h"

/* request{ method =, url =, headers = { "Name: value", ... }, body =, timeout =,
 * max_body =, follow_redirects =, output =, ca_file =, proxy =, cookie_jar = } (checked and normalized by aqueue.http):
 * yields until the response is in, then returns { status, headers, body, url,
 * elapsed } (no body with output), or nil, err, code. Raises on misuse. */
static int l_request(lua_State *L) {
  aq_task *task = aq_task_current(L);
  int top = lua_gettop(L);
  http_options o;
  http_options_read(L, &o);
  http_multi *m = http_multi_get(L, http_state_get(L));
  http_req *r;
  int rc = http_request_new(L, m, &o, &r);
  if (rc == HTTP_NEW_NO_MEMORY) return luaL_error(L, "aqueue.http: out of memory");
  if (rc == HTTP_NEW_BAD_URL) {
    lua_settop(L, top);
    return aq_push_failure(L, "EINVAL", "%s: %s (%s)", aq_error_text("EINVAL"), o.url,
                           curl_easy_strerror(CURLE_URL_MALFORMAT));
  }
  int err = http_request_start(r);
  if (err != 0) {
    http_request_free(r);
    lua_settop(L, top);
    const char *code = err == CURLM_OUT_OF_MEMORY ? "ENOMEM" : AQ_EHTTP;
    return aq_push_failure(L, code, "%s: %s (%s)", aq_error_text(code), o.url, curl_multi_strerror((CURLMcode)err));
  }
  lua_settop(L, top);
  return http_request_wait(L, r, task);
}

/* configure(max_total, max_host): sets the connection caps (nil keeps one;
 * 0 means no limit); returns both as they now are. */
static int l_configure(lua_State *L) {
  http_state *st = http_state_get(L);
  for (int i = 1; i <= 2; i++) {
    if (lua_isnoneornil(L, i)) continue;
    lua_Number n = luaL_checknumber(L, i);
    if (!(n >= 0 && n <= 1e9) || n != floor(n))
      return luaL_argerror(L, i, "a whole number from 0 (no limit) to 1e9 expected");
    if (i == 1) st->max_total = (long)n;
    else st->max_host = (long)n;
  }
  if (st->m) http_multi_set_limits(st->m, st);
  lua_pushinteger(L, st->max_total);
  lua_pushinteger(L, st->max_host);
  return 2;
}

/* parse_date(text): the seconds since the epoch of an HTTP-date (curl_getdate
 * reads the three forms of RFC 9110 5.6.7), or nil. */
static int l_parse_date(lua_State *L) {
  time_t t = curl_getdate(luaL_checkstring(L, 1), NULL);
  if (t == -1) return 0;
  lua_pushnumber(L, (lua_Number)t);
  return 1;
}

/* require("aqueue.http_core"). */


AQ_EXPORT int luaopen_aqueue_http_core(lua_State *L) {
  AQ_MODULE_CHECK(L, "aqueue.http_core");
  /* loaded until the process ends: unloading curl's TLS libraries would
   * leave what they allocated at load time looking leaked */
  aq_module_keep_loaded((const void *)luaopen_aqueue_http_core);
  static const luaL_Reg functions[] = {
      {"request", l_request},
      {"configure", l_configure},
      {"parse_date", l_parse_date},
      {"cookie_jar", http_cookies_new},
      {"header", http_response_header},
      {NULL, NULL},
  };
  lua_newtable(L);
  luaL_register(L, NULL, functions);
  /* the responses' metatable: headers on first use, then the methods that
   * aqueue.http puts in core.response_methods */
  luaL_newmetatable(L, HTTP_RESPONSE_MT);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "response_methods");
  lua_pushcclosure(L, http_response_index, 1);
  lua_setfield(L, -2, "__index");
  lua_setfield(L, -2, "response_metatable");
  lua_pushstring(L, curl_version());
  lua_setfield(L, -2, "curl_version");
  return 1;
}
