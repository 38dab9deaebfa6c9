/*
 * url.h — the private header of aqueue.url_core: URLs parsed, built and
 * joined by libcurl's URL API (curl_url), with RFC 3986's reference
 * resolution where curl 7.88 departs from it. A loadable module on the
 * public API (aqueue.h) and libcurl only; lua/aqueue/url.lua gives it its
 * friendly shape.
 *
 * The files, one job each:
 *   url_module.c  the Lua functions (join, parse, build, encode, decode),
 *                 the failures they return, luaopen
 *   url_text.c    the text of URLs before and after curl: scheme detection,
 *                 percent-encoding what curl would refuse or encode on its
 *                 own terms, RFC 3986's remove_dot_segments
 *
 * Ownership: every function of the module shares one url_handles, a userdata
 * that is an upvalue of each function: its CURLU handles live as long as the
 * module's Lua state does (its __gc cleans them up). The functions never
 * yield, so a Lua state (the engine's, or a work thread's own) uses its
 * handles from one thread at a time.
 */
#ifndef AQ_URL_H
#define AQ_URL_H

#include <stddef.h>

#include <curl/curl.h>
#include <lua.h>

typedef struct {
  CURLU *scratch;  /* parse and build: cleared before each use */
  CURLU *base;     /* join: the last base, parsed; NULL until one parsed */
  char *base_text; /* that base as given (malloc'd), to know when it changes */
  size_t base_len;
} url_handles;

/* The length of the scheme of s ("http" of "http:..."), RFC 3986 3.1:
 * ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) followed by ":". 0 when s has
 * none (a relative reference). */
size_t url_scheme_len(const char *s, size_t n);

/* Where the authority of s ends when s starts with "scheme://" or "//" (at
 * its first "/", "?" or "#" after that, or n); 0 when s has no authority. */
size_t url_authority_end(const char *s, size_t n);

/* s as curl is to read it: spaces and bytes >= 0x80 after the authority
 * percent-encoded (the host keeps its UTF-8 for IDN). Returns s itself when
 * nothing needs encoding, else the encoded copy pushed onto L's stack (a
 * Lua string: nothing to free; raises only when Lua is out of memory). */
const char *url_encode_loose(lua_State *L, const char *s, size_t n, size_t from);

/* Whether the reference s is an absolute path ("/a/b?q") that curl would
 * resolve against any base to "scheme://authority" + s, unchanged: only
 * characters a URL holds as they are (no "%", no "#", no space, no
 * non-ASCII byte), no dot segment in its path, no empty query ("/a?"), and
 * not "//" (a network-path reference). The joins of a crawl are mostly such links. */
int url_is_plain_path(const char *s, size_t n);

/* The length of the "scheme://authority" that starts the URL s, when curl
 * would read s and write that part unchanged: "http" or "https", a host
 * of letters, digits, "-" and "." (no user, no IPv6, no percent-encoding), a
 * port of digits without a leading 0, and after them only characters a URL
 * holds as they are, "#" and "%". 0 for any other URL (curl is asked then).
 * Joined to such a base, a plain path is that part + the path. */
size_t url_plain_origin_len(const char *s, size_t n);

/* RFC 3986 5.2.4's remove_dot_segments on p[0..n), in place. Returns the new
 * length (never longer). */
size_t url_remove_dot_segments(char *p, size_t n);

#endif
