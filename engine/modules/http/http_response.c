/*
 * http_response.c — what the waiting task resumes with once its request is
 * over: the response { status, headers, body, url, elapsed } (no body with
 * output), or the failure (http_errors.c).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

/* Pushes the response headers of the last response (after redirects) as a
 * table with lower-case keys, repeated headers joined with ", ". */
static void push_headers(lua_State *T, CURL *easy) {
  lua_createtable(T, 0, 8); /* (a server's usual few, without rehashing as they come) */
  char small[128];
  struct curl_header *h, *prev = NULL;
  while ((h = curl_easy_nextheader(easy, CURLH_HEADER, -1, prev))) {
    prev = h;
    size_t n = strlen(h->name);
    char *name = n < sizeof small ? small : malloc(n + 1);
    if (!name) continue;
    for (size_t i = 0; i < n; i++) name[i] = (char)tolower((unsigned char)h->name[i]);
    lua_pushlstring(T, name, n);
    if (name != small) free(name);
    lua_pushvalue(T, -1);
    lua_rawget(T, -3);
    if (lua_isnil(T, -1)) {
      lua_pop(T, 1);
      lua_pushstring(T, h->value);
    } else {
      lua_pushliteral(T, ", ");
      lua_pushstring(T, h->value);
      lua_concat(T, 3);
    }
    lua_rawset(T, -3);
  }
}

/* The HTTP version of the last response: "1.1", "2", ... */
static const char *http_version(CURL *easy) {
  long v = 0;
  curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &v);
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
  long status = 0;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  lua_pushinteger(T, status);
  lua_setfield(T, -2, "status");
  lua_pushstring(T, http_version(r->easy));
  lua_setfield(T, -2, "http_version");
  push_headers(T, r->easy);
  lua_setfield(T, -2, "headers");
  if (!r->path) {
    lua_pushlstring(T, r->body.data ? r->body.data : "", r->body.len);
    lua_setfield(T, -2, "body");
  }
  char *url = NULL;
  curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
  lua_pushstring(T, url ? url : "");
  lua_setfield(T, -2, "url");
  lua_pushnumber(T, (double)(uv_hrtime() - r->start_ns) / 1e9);
  lua_setfield(T, -2, "elapsed");
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
