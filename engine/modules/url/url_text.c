/*
 * url_text.c — the text of URLs around curl's URL API: what curl does not
 * do (or does its own way) and RFC 3986 asks for. Pure string work, no curl
 * handle.
 */
#include <string.h>

#include <lauxlib.h>

#include "url.h"

static int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

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

/* The bytes of a plain path (url_is_plain_path): RFC 3986's unreserved and
 * sub-delims, ":", "@", "/" and "?". The marks are a table: every byte of
 * every link a page resolves is looked at here, and strchr on their list
 * cost 27 instructions a byte. */
static const unsigned char plain_marks[128] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['!'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1,
    ['*'] = 1, ['+'] = 1, [','] = 1, [';'] = 1, ['='] = 1, [':'] = 1, ['@'] = 1, ['/'] = 1, ['?'] = 1,
};
static int is_plain(unsigned char c) { return is_alpha(c) || is_digit(c) || (c < 128 && plain_marks[c]); }

int url_is_plain_path(const char *s, size_t n) {
  if (n == 0 || s[0] != '/' || (n > 1 && s[1] == '/')) return 0;
  int in_path = 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!is_plain(c)) return 0;
    if (c == '?' && in_path) {
      if (i + 1 == n) return 0; /* an empty query: curl leaves the "?" out */
      in_path = 0;
    }
    if (in_path && c == '/' && i + 1 < n && s[i + 1] == '.') {
      /* "/." or "/.." as a whole segment */
      size_t j = i + 2;
      if (j < n && s[j] == '.') j++;
      if (j == n || s[j] == '/' || s[j] == '?') return 0;
    }
  }
  return 1;
}

/* Whether curl writes the host h[0..n) as it is. curl reads a host whose
 * every dot-separated part starts with a digit as an IPv4 address ("127.1",
 * "0x7f.0.0.1", "010.0.0.1") and writes it as four decimal numbers; so such
 * a host is plain only when it is written that way already. */
static int plain_host(const char *h, size_t n) {
  int numeric = 1;
  for (size_t i = 0; i < n && numeric; i++)
    if ((i == 0 || h[i - 1] == '.') && !is_digit((unsigned char)h[i])) numeric = 0;
  if (!numeric) return 1;
  int parts = 0;
  for (size_t i = 0; i < n;) {
    size_t start = i;
    long value = 0;
    while (i < n && is_digit((unsigned char)h[i]) && i - start < 4) value = value * 10 + (h[i++] - '0');
    if (i == start || i - start > 3 || value > 255 || (h[start] == '0' && i - start > 1)) return 0;
    parts++;
    if (i < n && h[i] != '.') return 0;
    if (i < n) i++;
    if (i == n && h[n - 1] == '.') return 0;
  }
  return parts == 4;
}

size_t url_plain_origin_len(const char *s, size_t n) {
  size_t i;
  if (n >= 7 && memcmp(s, "http://", 7) == 0) i = 7;
  else if (n >= 8 && memcmp(s, "https://", 8) == 0) i = 8;
  else return 0; /* curl has rules of its own for file: and others */
  size_t host = i;
  while (i < n && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]) || s[i] == '-' || s[i] == '.'))
    i++;
  if (i == host || s[host] == '.' || s[host] == '-' || !plain_host(s + host, i - host)) return 0;
  if (i < n && s[i] == ':') {
    size_t port = ++i;
    while (i < n && is_digit((unsigned char)s[i])) i++;
    if (i == port || i - port > 5 || s[port] == '0') return 0;
    long value = 0;
    for (size_t k = port; k < i; k++) value = value * 10 + (s[k] - '0');
    if (value > 65535) return 0;
  }
  size_t origin_end = i;
  if (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#') return 0;
  for (; i < n; i++)
    if (!is_plain((unsigned char)s[i]) && s[i] != '#' && s[i] != '%') return 0;
  return origin_end;
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
