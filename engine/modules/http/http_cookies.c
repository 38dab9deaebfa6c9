/*
 * http_cookies.c — the cookie jar of a session (http.session{ cookies =
 * true }): a curl share handle holding CURL_LOCK_DATA_COOKIE, behind a Lua
 * userdata. Every request given the jar sends its cookies and keeps the
 * ones it receives. (Everything runs on the loop thread: the share needs no
 * lock functions.)
 *
 * Ownership: the jar is counted. Its userdata holds one reference, each
 * request using it another, from http_cookies_attach to http_cookies_detach;
 * the last release cleans up the share (curl refuses to clean up a share an
 * easy handle still uses, and a request may outlive its session object).
 */
#include <stdlib.h>

#include <lauxlib.h>

#include "http.h"

#define HTTP_JAR_MT "aqueue.http_core.cookie_jar"

struct http_jar {
  CURLSH *share;
  int refs;
};

static void jar_release(http_jar *j) {
  if (--j->refs > 0) return;
  curl_share_cleanup(j->share);
  free(j);
}

static int jar_gc(lua_State *L) {
  http_jar **ud = luaL_checkudata(L, 1, HTTP_JAR_MT);
  if (*ud) jar_release(*ud);
  *ud = NULL;
  return 0;
}

int http_cookies_new(lua_State *L) {
  http_multi_get(L, http_state_get(L)); /* curl initialized, or a clear error */
  http_jar **ud = lua_newuserdata(L, sizeof *ud);
  *ud = NULL;
  if (luaL_newmetatable(L, HTTP_JAR_MT)) {
    lua_pushcfunction(L, jar_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  http_jar *j = malloc(sizeof *j);
  CURLSH *share = j ? curl_share_init() : NULL;
  if (!share || curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE) != CURLSHE_OK) {
    if (share) curl_share_cleanup(share);
    free(j);
    return luaL_error(L, "aqueue.http: out of memory");
  }
  j->share = share;
  j->refs = 1;
  *ud = j;
  return 1;
}

http_jar *http_cookies_check(lua_State *L, int idx) {
  http_jar **ud = luaL_checkudata(L, idx, HTTP_JAR_MT);
  if (!*ud) luaL_error(L, "aqueue.http: the cookie jar is gone");
  return *ud;
}

void http_cookies_attach(http_req *r, http_jar *j) {
  r->jar = j;
  j->refs++;
  curl_easy_setopt(r->easy, CURLOPT_SHARE, j->share);
  curl_easy_setopt(r->easy, CURLOPT_COOKIEFILE, ""); /* the cookie engine on, reading no file */
}

void http_cookies_detach(http_req *r) {
  if (!r->jar) return;
  /* A pooled easy handle keeps its share and its list of cookie files
   * through curl_easy_reset: it must not carry the session's cookies into
   * the next, unrelated request, nor keep the list (it would leak). NULL
   * cookie files drop the list and turn the engine off, leaving a shared
   * jar's cookies alone; then the share goes. */
  if (r->easy) {
    curl_easy_setopt(r->easy, CURLOPT_COOKIEFILE, NULL);
    curl_easy_setopt(r->easy, CURLOPT_SHARE, NULL);
  }
  jar_release(r->jar);
  r->jar = NULL;
}
