/*
 * url_module.c — aqueue.url_core, the Lua side: join, parse, build, encode,
 * decode on libcurl's URL API. lua/aqueue/url.lua checks the arguments
 * (raising on misuse) and adds url.query; the files and who owns what:
 * url.h.
 *
 * A URL curl refuses is no misuse but bad data (a crawl meets plenty): the
 * functions return nil, "EINVAL: invalid argument: <url> (<curl's reason>)",
 * "EINVAL", the shape of every I/O failure (README "I/O failures"), and the
 * code http gives a malformed URL.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include "aqueue.h"
#include "url.h"

#define URL_HANDLES_MT "aqueue.url_core.handles"
#define URL_SHOWN_MAX 200 /* bytes of a URL an error message quotes */

/* Flags of every curl_url_set: any scheme is a URL (a crawl meets ftp: and
 * itms-apps: links; http is only one of them). */
#define URL_SET_FLAGS CURLU_NON_SUPPORT_SCHEME

static url_handles *handles_of(lua_State *L) {
  return (url_handles *)lua_touserdata(L, lua_upvalueindex(1));
}

/* The text of a URL for a message: at most URL_SHOWN_MAX bytes of it ("" for
 * the empty one), pushed onto the stack. */
static const char *shown(lua_State *L, const char *s, size_t n) {
  if (n == 0) {
    lua_pushliteral(L, "\"\"");
  } else if (n <= URL_SHOWN_MAX) {
    lua_pushlstring(L, s, n);
  } else {
    lua_pushlstring(L, s, URL_SHOWN_MAX);
    lua_pushfstring(L, "... (%d bytes)", (int)n);
    lua_concat(L, 2);
  }
  return lua_tostring(L, -1);
}

static const char *reason(CURLUcode rc) { return curl_url_strerror(rc); }

/* nil, "EINVAL: invalid argument: <what><url><after> (<reason>)", "EINVAL" (ENOMEM
 * when curl ran out of memory). */
static int fail(lua_State *L, CURLUcode rc, const char *what, const char *url, size_t n, const char *after) {
  const char *code = rc == CURLUE_OUT_OF_MEMORY ? "ENOMEM" : "EINVAL";
  const char *text = shown(L, url, n);
  return aq_push_failure(L, code, "%s: %s%s%s (%s)", aq_error_text(code), what, text, after, reason(rc));
}

/* A NUL byte would end the URL early for curl: refused like curl's own reasons. */
static int fail_nul(lua_State *L, const char *what, const char *url) {
  const char *text = shown(L, url, strlen(url));
  return aq_push_failure(L, "EINVAL", "%s: %s%s (a NUL byte in the URL)", aq_error_text("EINVAL"), what, text);
}

/* Sets h to the absolute URL s (h cleared first). */
static CURLUcode set_absolute(lua_State *L, CURLU *h, const char *s, size_t n) {
  curl_url_set(h, CURLUPART_URL, NULL, 0);
  const char *fixed = url_encode_loose(L, s, n, url_authority_end(s, n));
  CURLUcode rc = curl_url_set(h, CURLUPART_URL, fixed, URL_SET_FLAGS);
  if (fixed != s) lua_pop(L, 1);
  return rc;
}

/* Pushes the whole URL of h, or returns curl's error. */
static CURLUcode push_url(lua_State *L, CURLU *h) {
  char *out = NULL;
  CURLUcode rc = curl_url_get(h, CURLUPART_URL, &out, 0);
  if (rc != CURLUE_OK) return rc;
  lua_pushstring(L, out);
  curl_free(out);
  return CURLUE_OK;
}

/* The base of a join, parsed: kept from the last join when it is the same
 * text (a crawl joins every link of a page to the page's URL). */
static CURLUcode base_of(lua_State *L, url_handles *u, const char *s, size_t n) {
  if (u->base_text && u->base_len == n && memcmp(u->base_text, s, n) == 0) return CURLUE_OK;
  free(u->base_text);
  u->base_text = NULL;
  if (!u->base && !(u->base = curl_url())) return CURLUE_OUT_OF_MEMORY;
  CURLUcode rc = set_absolute(L, u->base, s, n);
  if (rc != CURLUE_OK) return rc;
  if (!(u->base_text = malloc(n + 1))) return CURLUE_OUT_OF_MEMORY;
  memcpy(u->base_text, s, n + 1);
  u->base_len = n;
  return CURLUE_OK;
}

/* A reference with a scheme but no "//" ("mailto:a@b", "urn:x", "g:h"): RFC
 * 3986 5.2.2 makes it the target itself, its path without dot segments.
 * curl's URL API refuses them (it holds URLs with an authority only). */
static void push_opaque(lua_State *L, const char *s, size_t n, size_t scheme_len) {
  size_t path_start = scheme_len + 1, path_end = path_start;
  while (path_end < n && s[path_end] != '?' && s[path_end] != '#') path_end++;
  char *path = lua_newuserdata(L, path_end - path_start + 1); /* a scratch copy the GC frees */
  memcpy(path, s + path_start, path_end - path_start);
  size_t path_len = url_remove_dot_segments(path, path_end - path_start);
  lua_pushlstring(L, s, path_start);
  lua_pushlstring(L, path, path_len);
  lua_pushlstring(L, s + path_end, n - path_end);
  lua_concat(L, 3);
  lua_remove(L, -2); /* the scratch copy */
}

/* Pushes the URL that the reference ref (of no scheme) refers to from the
 * page at base, or returns curl's error (the stack as it was), setting
 * *bad_base when it is the base that curl refused. origin_len: the base's
 * url_plain_origin_len, or 0 to ask curl for every reference (the specs
 * compare both): a plain path (url_is_plain_path) joined to a plain base is
 * the base's "scheme://authority" + ref, without curl (what curl writes). */
static CURLUcode join_to_base(lua_State *L, url_handles *u, const char *base, size_t blen, size_t origin_len,
                              const char *ref, size_t rlen, int *bad_base) {
  if (origin_len > 0 && url_is_plain_path(ref, rlen)) {
    char joined[512]; /* (a common link: one string made, not a buffer's pieces) */
    if (origin_len + rlen <= sizeof joined) {
      memcpy(joined, base, origin_len);
      memcpy(joined + origin_len, ref, rlen);
      lua_pushlstring(L, joined, origin_len + rlen);
      return CURLUE_OK;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, base, origin_len);
    luaL_addlstring(&b, ref, rlen);
    luaL_pushresult(&b);
    return CURLUE_OK;
  }
  int top = lua_gettop(L);
  CURLUcode rc = strlen(base) != blen ? CURLUE_MALFORMED_INPUT : base_of(L, u, base, blen);
  if (rc != CURLUE_OK) {
    *bad_base = 1;
    lua_settop(L, top);
    return rc;
  }
  CURLU *h = curl_url_dup(u->base);
  if (!h) return CURLUE_OUT_OF_MEMORY;
  if (rlen == 0) {
    /* RFC 3986 5.2.2: the empty reference is the base without its fragment
     * (curl drops the last path segment and the query too). */
    rc = curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0);
  } else if (ref[0] == '#') {
    /* RFC 3986 5.2.2: a reference of only a fragment keeps the base's path
     * and query (curl drops the last segment and the query). */
    rc = curl_url_set(h, CURLUPART_FRAGMENT, url_encode_loose(L, ref + 1, rlen - 1, 0), 0);
  } else {
    rc = curl_url_set(h, CURLUPART_URL, url_encode_loose(L, ref, rlen, url_authority_end(ref, rlen)), URL_SET_FLAGS);
  }
  lua_settop(L, top); /* an encoded copy, if any: curl has its own */
  if (rc == CURLUE_OK) rc = push_url(L, h);
  curl_url_cleanup(h);
  return rc;
}

/* Pushes the absolute URL of a reference with a scheme (RFC 3986 5.2.2: the
 * target itself, whatever the base; curl refuses "g:h" and "http:g", which
 * have no "//"), or returns curl's error (the stack as it was). */
static CURLUcode push_absolute(lua_State *L, url_handles *u, const char *ref, size_t rlen, size_t scheme_len) {
  if (url_authority_end(ref, rlen) == 0) {
    push_opaque(L, ref, rlen, scheme_len);
    return CURLUE_OK;
  }
  int top = lua_gettop(L);
  CURLUcode rc = set_absolute(L, u->scratch, ref, rlen);
  if (rc == CURLUE_OK) rc = push_url(L, u->scratch);
  if (rc != CURLUE_OK) lua_settop(L, top);
  return rc;
}

/* join(base, ref): the URL ref refers to from the page at base (RFC 3986
 * section 5.2), or nil, err, code. */
static int join(lua_State *L, int shortcut) {
  url_handles *u = handles_of(L);
  size_t blen, rlen;
  const char *base = luaL_checklstring(L, 1, &blen);
  const char *ref = luaL_checklstring(L, 2, &rlen);
  if (strlen(ref) != rlen) return fail_nul(L, "", ref);
  size_t scheme_len = url_scheme_len(ref, rlen);
  if (scheme_len > 0) {
    CURLUcode rc = push_absolute(L, u, ref, rlen, scheme_len);
    return rc == CURLUE_OK ? 1 : fail(L, rc, "", ref, rlen, "");
  }
  if (strlen(base) != blen) return fail_nul(L, "base ", base);
  int bad_base = 0;
  size_t origin_len = shortcut ? url_plain_origin_len(base, blen) : 0;
  CURLUcode rc = join_to_base(L, u, base, blen, origin_len, ref, rlen, &bad_base);
  if (bad_base) return fail(L, rc, "base ", base, blen, "");
  if (rc != CURLUE_OK) {
    const char *b = shown(L, base, blen);
    lua_pushfstring(L, " joined to %s", b);
    return fail(L, rc, "", ref, rlen, lua_tostring(L, -1));
  }
  return 1;
}

static int l_join(lua_State *L) { return join(L, 1); }

/* join_through_curl(base, ref): join without the plain-path shortcut, for
 * the specs that check the shortcut gives what curl gives. */
static int l_join_through_curl(lua_State *L) { return join(L, 0); }

/* HTML's whitespace (the HTML standard's ASCII whitespace), which browsers
 * strip from both ends of an href. */
static int is_html_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

/* The schemes of the links a crawl follows, as Scrapy's LinkExtractor keeps
 * them (no mailto:, javascript:, tel:, data:). */
static int is_web_scheme(const char *s, size_t scheme_len) {
  static const char *const kept[] = {"http", "https", "ftp", "file"};
  for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
    if (strlen(kept[i]) == scheme_len && strncasecmp(s, kept[i], scheme_len) == 0) return 1;
  return 0;
}

/* The links already in absolute_links's result, to drop repeats. Strings are
 * interned (one string object per content, its bytes at one address while
 * the result holds it), so a repeat is the same pointer: a page's handful of
 * links are compared in place; past SEEN_INLINE they go to a table (made
 * at the first link past them, with the ones before). */
#define SEEN_INLINE 32
typedef struct {
  const char *at[SEEN_INLINE];
  int count;
  int table; /* stack index of the table, 0 while none */
} seen_links;

/* Whether the string at the top of the stack was seen; if not, it is now. */
static int seen_before(lua_State *L, seen_links *s, int table_index) {
  const char *link = lua_tostring(L, -1);
  if (!s->table) {
    for (int i = 0; i < s->count; i++)
      if (s->at[i] == link) return 1;
    if (s->count < SEEN_INLINE) {
      s->at[s->count++] = link;
      return 0;
    }
    lua_createtable(L, 0, 2 * SEEN_INLINE);
    lua_replace(L, table_index);
    s->table = table_index;
    for (int i = 0; i < s->count; i++) {
      lua_pushstring(L, s->at[i]); /* (the same string object) */
      lua_pushboolean(L, 1);
      lua_rawset(L, table_index);
    }
  }
  lua_pushvalue(L, -1);
  lua_rawget(L, s->table);
  int seen = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (!seen) {
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, s->table);
  }
  return seen;
}

/* absolute_links(base, refs): the links of a page (doc:links()) from the
 * raw values of their href or src attributes: each stripped of HTML
 * whitespace and of its fragment, resolved against base (nil: only
 * references with a scheme are kept), kept when its scheme is http, https,
 * ftp or file, each URL once, in order. A reference that cannot be resolved
 * is left out. */
static int l_absolute_links(lua_State *L) {
  url_handles *u = handles_of(L);
  size_t blen = 0;
  const char *base = luaL_optlstring(L, 1, NULL, &blen);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)lua_objlen(L, 2);
  lua_settop(L, 2);
  lua_createtable(L, n, 0); /* 3: the links */
  lua_pushnil(L);           /* 4: the table of seen_links, once made */
  seen_links seen = { .count = 0, .table = 0 };
  int bad_base = 0; /* set by the first reference that needed the base, when curl refused it */
  size_t origin_len = base ? url_plain_origin_len(base, blen) : 0;
  int count = 0;
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    size_t rlen;
    const char *ref = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &rlen) : NULL;
    if (ref) {
      size_t whole = rlen;
      const char *start = ref;
      while (rlen > 0 && is_html_space(ref[0])) ref++, rlen--;
      while (rlen > 0 && is_html_space(ref[rlen - 1])) rlen--;
      const char *hash = memchr(ref, '#', rlen);
      if (hash) rlen = (size_t)(hash - ref);
      if (memchr(ref, '\0', rlen)) {
        ref = NULL;
      } else if (ref != start || rlen != whole) {
        lua_pushlstring(L, ref, rlen); /* curl reads up to a NUL */
        ref = lua_tostring(L, -1);
      }
    }
    CURLUcode rc = CURLUE_MALFORMED_INPUT;
    size_t scheme_len = ref ? url_scheme_len(ref, rlen) : 0;
    if (scheme_len > 0) rc = push_absolute(L, u, ref, rlen, scheme_len);
    else if (ref && base && !bad_base) rc = join_to_base(L, u, base, blen, origin_len, ref, rlen, &bad_base);
    if (rc == CURLUE_OK) {
      size_t len;
      const char *link = lua_tolstring(L, -1, &len);
      if (is_web_scheme(link, url_scheme_len(link, len)) && !seen_before(L, &seen, 4)) {
        lua_pushvalue(L, -1);
        lua_rawseti(L, 3, ++count);
      }
    }
    lua_settop(L, 4);
  }
  lua_settop(L, 3);
  return 1;
}

/* origin_and_target(u) -> "scheme://authority" as u writes it, and u's path
 * and query without the fragment ("/" for none), when u needs no parsing to
 * tell them: an http(s) URL of url_plain_origin_len whose path and query are
 * url_is_plain_path's (what url.parse would give back). Nothing for any
 * other URL. aqueue.robots asks it for every request of a run with robots =
 * true: the patterns it took cost 4-5k instructions a request. */
static int l_origin_and_target(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  size_t origin = url_plain_origin_len(s, n);
  if (origin == 0) return 0;
  const char *hash = memchr(s + origin, '#', n - origin);
  size_t end = hash ? (size_t)(hash - s) : n;
  if (end > origin && !url_is_plain_path(s + origin, end - origin)) return 0;
  lua_pushlstring(L, s, origin);
  if (end == origin) lua_pushliteral(L, "/");
  else lua_pushlstring(L, s + origin, end - origin);
  return 2;
}

/* The parts of a URL, in the order parse returns them and build takes them. */
static const struct {
  const char *name;
  CURLUPart part;
} PARTS[] = {
    {"scheme", CURLUPART_SCHEME}, {"user", CURLUPART_USER},   {"password", CURLUPART_PASSWORD},
    {"host", CURLUPART_HOST},     {"port", CURLUPART_PORT},   {"path", CURLUPART_PATH},
    {"query", CURLUPART_QUERY},   {"fragment", CURLUPART_FRAGMENT},
};
#define NPARTS (sizeof PARTS / sizeof PARTS[0])

/* parse(url): { scheme, user, password, host, port (a number), path, query,
 * fragment } as they are written in the URL (percent-encoded; absent parts
 * nil), or nil, err, code. */
static int l_parse(lua_State *L) {
  url_handles *u = handles_of(L);
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  if (strlen(s) != n) return fail_nul(L, "", s);
  CURLUcode rc = set_absolute(L, u->scratch, s, n);
  if (rc != CURLUE_OK) return fail(L, rc, "", s, n, "");
  lua_createtable(L, 0, NPARTS);
  for (size_t i = 0; i < NPARTS; i++) {
    char *part = NULL;
    if (curl_url_get(u->scratch, PARTS[i].part, &part, 0) != CURLUE_OK) continue; /* absent */
    if (PARTS[i].part == CURLUPART_QUERY && part[0] == '\0') {
      curl_free(part); /* "?" alone: curl leaves it out of the URLs it writes */
      continue;
    }
    if (PARTS[i].part == CURLUPART_PORT) lua_pushnumber(L, strtol(part, NULL, 10));
    else lua_pushstring(L, part);
    curl_free(part);
    lua_setfield(L, -2, PARTS[i].name);
  }
  return 1;
}

/* Adds part i of build's arguments (when it is given) to b, between
 * `before` and `after`. */
static void add_part(lua_State *L, luaL_Buffer *b, int i, const char *before, const char *after) {
  const char *s = lua_tostring(L, i);
  if (!s) return;
  luaL_addstring(b, before);
  luaL_addstring(b, s);
  luaL_addstring(b, after);
}

/* build(scheme, user, password, host, port, path, query, fragment): each a
 * string or nil (port as digits), written as they are in a URL; spaces and
 * non-ASCII bytes get percent-encoded. Returns the URL, or nil, err, code.
 * Each part goes through curl's setter first, to name the part curl refuses;
 * the URL is then the parts' text read by curl as a whole, which keeps them
 * as written (the setters would rewrite "%3D" as "%3d"). */
static int l_build(lua_State *L) {
  url_handles *u = handles_of(L);
  lua_settop(L, (int)NPARTS);
  curl_url_set(u->scratch, CURLUPART_URL, NULL, 0);
  for (size_t i = 0; i < NPARTS; i++) {
    int idx = (int)i + 1;
    if (lua_isnil(L, idx)) continue;
    size_t n;
    const char *s = luaL_checklstring(L, idx, &n);
    if (strlen(s) != n) {
      lua_pushfstring(L, "url part %s = ", PARTS[i].name);
      return fail_nul(L, lua_tostring(L, -1), s);
    }
    int plain = PARTS[i].part == CURLUPART_SCHEME || PARTS[i].part == CURLUPART_HOST ||
                PARTS[i].part == CURLUPART_PORT;
    const char *value = plain ? s : url_encode_loose(L, s, n, 0);
    if (value != s) lua_replace(L, idx); /* the text below holds the encoded part */
    CURLUcode rc = curl_url_set(u->scratch, PARTS[i].part, value, URL_SET_FLAGS);
    if (rc != CURLUE_OK) {
      lua_pushfstring(L, "url part %s = ", PARTS[i].name);
      return fail(L, rc, lua_tostring(L, -1), s, n, "");
    }
  }
  char *whole = NULL; /* curl's verdict on the parts together: a scheme, a host */
  CURLUcode rc = curl_url_get(u->scratch, CURLUPART_URL, &whole, 0);
  curl_free(whole);
  if (rc != CURLUE_OK)
    return aq_push_failure(L, "EINVAL", "%s: cannot build a URL of these parts (%s)", aq_error_text("EINVAL"),
                           reason(rc));
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  add_part(L, &b, 1, "", "://");
  add_part(L, &b, 2, "", lua_isnil(L, 3) ? "@" : "");
  add_part(L, &b, 3, ":", "@");
  add_part(L, &b, 4, "", "");
  add_part(L, &b, 5, ":", "");
  const char *path = lua_tostring(L, 6);
  add_part(L, &b, 6, path && path[0] != '/' ? "/" : "", "");
  add_part(L, &b, 7, "?", "");
  add_part(L, &b, 8, "#", "");
  luaL_pushresult(&b);
  size_t n;
  const char *text = lua_tolstring(L, -1, &n);
  rc = set_absolute(L, u->scratch, text, n);
  if (rc == CURLUE_OK) rc = push_url(L, u->scratch);
  return rc == CURLUE_OK ? 1 : fail(L, rc, "", text, n, "");
}

/* encode(s): s with every byte but RFC 3986's unreserved ones (ALPHA DIGIT
 * "-" "." "_" "~") percent-encoded. */
static int l_encode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  if (n > (size_t)INT_MAX / 3) return luaL_argerror(L, 1, "too long to encode");
  char *out = curl_easy_escape(NULL, s, (int)n);
  if (!out) return luaL_error(L, "aqueue.url.encode: out of memory");
  lua_pushstring(L, out);
  curl_free(out);
  return 1;
}

/* decode(s): s with every "%XX" replaced by its byte ("+" stays "+"; a "%"
 * not followed by two hex digits stays as it is). */
static int l_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  if (n > (size_t)INT_MAX) return luaL_argerror(L, 1, "too long to decode");
  int len = 0;
  char *out = curl_easy_unescape(NULL, s, (int)n, &len);
  if (!out) return luaL_error(L, "aqueue.url.decode: out of memory");
  lua_pushlstring(L, out, (size_t)len);
  curl_free(out);
  return 1;
}

static int handles_gc(lua_State *L) {
  url_handles *u = (url_handles *)luaL_checkudata(L, 1, URL_HANDLES_MT);
  curl_url_cleanup(u->scratch); /* NULL-safe */
  curl_url_cleanup(u->base);
  free(u->base_text);
  memset(u, 0, sizeof *u);
  return 0;
}



/* require("aqueue.url_core"). */
AQ_EXPORT int luaopen_aqueue_url_core(lua_State *L) {
  AQ_MODULE_CHECK(L, "aqueue.url_core");
  /* loaded until the process ends: unloading curl's TLS libraries would
   * leave what they allocated at load time looking leaked */
  aq_module_keep_loaded((const void *)luaopen_aqueue_url_core);
  static const luaL_Reg functions[] = {
      {"join", l_join},
      {"join_through_curl", l_join_through_curl},
      {"absolute_links", l_absolute_links},
      {"origin_and_target", l_origin_and_target},
      {"parse", l_parse},
      {"build", l_build},
      {"encode", l_encode},
      {"decode", l_decode},
      {NULL, NULL},
  };
  lua_newtable(L);
  url_handles *u = (url_handles *)lua_newuserdata(L, sizeof *u);
  memset(u, 0, sizeof *u);
  luaL_newmetatable(L, URL_HANDLES_MT);
  lua_pushcfunction(L, handles_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if (!(u->scratch = curl_url())) return luaL_error(L, "aqueue.url_core: out of memory");
  for (const luaL_Reg *f = functions; f->name; f++) {
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -3, f->name);
  }
  lua_pop(L, 1);
  return 1;
}
