/*
 * url_text.c — the text of URLs around curl's URL API: what curl does not
 * do (or does its own way) and RFC 3986 asks for. Pure string work, no curl
 * handle.
 */
#include <string.h>

#include <lauxlib.h>

#include "url.h"

static int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }

size_t url_scheme_len(const char *s, size_t n) {
  if (n == 0 || !is_alpha((unsigned char)s[0])) return 0;
  for (size_t i = 1; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ':') return i;
    if (!is_alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.') return 0;
  }
  return 0;
}

size_t url_authority_end(const char *s, size_t n) {
  size_t i = url_scheme_len(s, n);
  if (i > 0) i++; /* the ':' */
  if (n - i < 2 || s[i] != '/' || s[i + 1] != '/') return 0;
  for (i += 2; i < n; i++)
    if (s[i] == '/' || s[i] == '?' || s[i] == '#') break;
  return i;
}

static int needs_encoding(unsigned char c) { return c == ' ' || c >= 0x80; }

/* curl's URL API encodes spaces and non-ASCII bytes of a relative reference
 * on its own, but turns a space after the "?" into "+" (in the fragment too,
 * where "+" is no space), and refuses the same characters in an absolute
 * URL. Encoding them here first makes every URL come out the same way:
 * "%20", and upper-case hex digits as RFC 3986 2.1 asks (and url.encode,
 * curl_easy_escape, writes). */
const char *url_encode_loose(lua_State *L, const char *s, size_t n, size_t from) {
  size_t i = from;
  while (i < n && !needs_encoding((unsigned char)s[i])) i++;
  if (i == n) return s;
  static const char hex[] = "0123456789ABCDEF";
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, s, i);
  for (; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (needs_encoding(c)) {
      luaL_addchar(&b, '%');
      luaL_addchar(&b, hex[c >> 4]);
      luaL_addchar(&b, hex[c & 15]);
    } else {
      luaL_addchar(&b, (char)c);
    }
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* Removes the last segment written to out[0..*o) and the "/" before it. */
static void pop_segment(const char *out, size_t *o) {
  while (*o > 0 && out[*o - 1] != '/') (*o)--;
  if (*o > 0) (*o)--;
}

static int starts(const char *p, size_t i, size_t n, const char *with) {
  size_t k = strlen(with);
  return n - i >= k && memcmp(p + i, with, k) == 0;
}

static int is(const char *p, size_t i, size_t n, const char *whole) {
  return n - i == strlen(whole) && memcmp(p + i, whole, n - i) == 0;
}

/* The steps of RFC 3986 5.2.4 (A to E), reading the input at p+i and writing
 * the output at p (it never overtakes the input). Where the RFC replaces a
 * prefix by "/", the "/" is written over the prefix's last byte. */
size_t url_remove_dot_segments(char *p, size_t n) {
  size_t i = 0, o = 0;
  while (i < n) {
    if (starts(p, i, n, "../")) {
      i += 3; /* A */
    } else if (starts(p, i, n, "./")) {
      i += 2;
    } else if (starts(p, i, n, "/./")) {
      i += 2; /* B: "/./" -> "/" */
    } else if (is(p, i, n, "/.")) {
      p[++i] = '/';
    } else if (starts(p, i, n, "/../")) {
      i += 3; /* C: "/../" -> "/", dropping the last output segment */
      pop_segment(p, &o);
    } else if (is(p, i, n, "/..")) {
      i += 2;
      p[i] = '/';
      pop_segment(p, &o);
    } else if (is(p, i, n, ".") || is(p, i, n, "..")) {
      i = n; /* D */
    } else {
      /* E: the first segment (with its leading "/") moves to the output */
      do p[o++] = p[i++];
      while (i < n && p[i] != '/');
    }
  }
  return o;
}
