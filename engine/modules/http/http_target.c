/*
 * http_target.c — for http_wire.c, where a plain-HTTP request goes and what
 * it sends: its URL read as curl reads it (curl's URL API, or for the common
 * URL a reading of its own that gives the same), and the request's bytes
 * with curl's headers and curl's spellings of the caller's ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

/* What http_wire.c offers: the codings http_decode.c reads. */
#define ACCEPT_ENCODING "gzip, deflate, br"

/* The part of u, or NULL (curl's error: none). */
static char *url_part(CURLU *u, CURLUPart part, unsigned flags) {
  char *s = NULL;
  if (curl_url_get(u, part, &s, flags) != CURLUE_OK) return NULL;
  return s;
}

/* "Basic " and the base64 of user ":" password (RFC 7617), malloc'd: what
 * curl sends for credentials in the URL. */
static char *basic_auth(const char *user, const char *password) {
  static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t ul = strlen(user), pl = password ? strlen(password) : 0, n = ul + 1 + pl;
  unsigned char *plain = malloc(n + 1);
  char *out = malloc(6 + (n + 2) / 3 * 4 + 1);
  if (!plain || !out) {
    free(plain);
    free(out);
    return NULL;
  }
  memcpy(plain, user, ul);
  plain[ul] = ':';
  if (pl) memcpy(plain + ul + 1, password, pl);
  char *o = out + 6;
  memcpy(out, "Basic ", 6);
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)plain[i] << 16 | (i + 1 < n ? (unsigned)plain[i + 1] << 8 : 0) | (i + 2 < n ? plain[i + 2] : 0);
    *o++ = digits[v >> 18 & 63];
    *o++ = digits[v >> 12 & 63];
    *o++ = i + 1 < n ? digits[v >> 6 & 63] : '=';
    *o++ = i + 2 < n ? digits[v & 63] : '=';
  }
  *o = '\0';
  free(plain);
  return out;
}

/* Characters curl's URL API keeps as they are in a path or a query. */
static int plain_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("-._~!$&'()*+,;=:@/?", c));
}

static int hex_digit(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Is [s, end) a dotted quad as curl writes one (0-255, no leading zeros)? */
static int canonical_ipv4(const char *s, const char *end) {
  int parts = 0;
  while (s < end) {
    const char *start = s;
    int v = 0;
    while (s < end && *s >= '0' && *s <= '9' && s - start < 3) v = v * 10 + (*s++ - '0');
    if (s == start || v > 255 || (s - start > 1 && *start == '0')) return 0;
    parts++;
    if (s < end && *s++ != '.') return 0;
    if (s == end && end[-1] == '.') return 0;
  }
  return parts == 4;
}

/* The common URL, fast: http:// (any case), a host of letters, digits, dots
 * and dashes (or a dotted quad), a port other than 80, a path and query of
 * characters curl keeps as they are, without "." or ".." segments, user or
 * fragment, not ending in an empty query. For these curl's URL API only
 * lower-cases the scheme and adds a "/" for an empty path, which is all done here; it cost 9k instructions a
 * request, a quarter of one. Returns 1 with t and *eff_url filled, else 0. */
static int simple_target(const char *url, http_target *t, char **eff_url) {
  if (strncasecmp(url, "http://", 7) != 0) return 0;
  const char *host = url + 7, *p = host;
  while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
         (*p == '.' && p > host && p[-1] != '.'))
    p++;
  const char *host_end = p;
  size_t hlen = (size_t)(host_end - host);
  if (hlen == 0 || hlen >= sizeof t->host || host_end[-1] == '.') return 0;
  const char *last_label = host_end;
  while (last_label > host && last_label[-1] != '.') last_label--;
  if (*last_label >= '0' && *last_label <= '9' && !canonical_ipv4(host, host_end)) return 0; /* curl rewrites 127.1 */
  int port = 80;
  if (*p == ':') {
    const char *digits = ++p;
    port = 0;
    while (*p >= '0' && *p <= '9' && p - digits < 5) port = port * 10 + (*p++ - '0');
    if (p == digits || *digits == '0' || port > 65535 || port == 80) return 0;
  }
  if (*p != '/' && *p != '?' && *p != '\0') return 0;
  const char *path = p;
  for (; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '%') {
      if (!hex_digit((unsigned char)p[1]) || !hex_digit((unsigned char)p[2])) return 0;
      p += 2;
    } else if (!plain_char(c)) {
      return 0; /* a fragment, a space, a quote, anything curl would refuse or encode */
    } else if (c == '/' && p[1] == '.' && (p[2] == '/' || p[2] == '?' || p[2] == '\0' ||
                                          (p[2] == '.' && (p[3] == '/' || p[3] == '?' || p[3] == '\0')))) {
      if (!memchr(path, '?', (size_t)(p - path))) return 0; /* a dot segment (in the query it stays) */
    }
  }
  if (p[-1] == '?' && !memchr(path, '?', (size_t)(p - 1 - path))) return 0; /* an empty query: curl drops it */
  size_t plen = (size_t)(p - path), alen = (size_t)(path - host);
  int slash = *path != '/'; /* an empty path is "/" */
  char *whole = malloc(7 + alen + slash + plen + 1);
  char *target = malloc(slash + plen + 1);
  if (!whole || !target) {
    free(whole);
    free(target);
    return 0;
  }
  memcpy(whole, "http://", 7);
  memcpy(whole + 7, host, alen);
  if (slash) whole[7 + alen] = '/';
  memcpy(whole + 7 + alen + slash, path, plen + 1);
  memcpy(target, whole + 7 + alen, slash + plen + 1);
  memcpy(t->host, host, hlen);
  t->host[hlen] = '\0';
  snprintf(t->port, sizeof t->port, "%hu", (unsigned short)port);
  memcpy(t->authority, host, alen); /* (alen < 256 + 6: the port's five digits and ':') */
  t->authority[alen] = '\0';
  t->path = target;
  *eff_url = whole;
  return 1;
}

int http_target_read(const char *url, http_target *t, char **eff_url) {
  *eff_url = NULL;
  t->path = t->auth = NULL;
  if (simple_target(url, t, eff_url)) return 0;
  CURLU *u = curl_url();
  if (!u) return -1;
  char *scheme = NULL, *user = NULL, *password = NULL, *host = NULL, *port = NULL, *zone = NULL;
  char *path = NULL, *query = NULL, *whole = NULL;
  int rc = -1;
  if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) goto done;
  scheme = url_part(u, CURLUPART_SCHEME, 0);
  user = url_part(u, CURLUPART_USER, CURLU_URLDECODE);
  password = url_part(u, CURLUPART_PASSWORD, CURLU_URLDECODE);
  zone = url_part(u, CURLUPART_ZONEID, 0);
  host = url_part(u, CURLUPART_HOST, 0);
  port = url_part(u, CURLUPART_PORT, CURLU_NO_DEFAULT_PORT);
  path = url_part(u, CURLUPART_PATH, 0);
  query = url_part(u, CURLUPART_QUERY, 0);
  whole = url_part(u, CURLUPART_URL, 0);
  if (!scheme || strcmp(scheme, "http") != 0 || zone || !host || !path || !whole) goto done;
  if (user && !(t->auth = basic_auth(user, password))) goto done;
  for (const char *c = host; *c; c++)
    if ((unsigned char)*c >= 0x80 || *c <= ' ') goto done; /* (an IDN: curl converts it) */
  size_t hlen = strlen(host);
  const char *name = host;
  if (host[0] == '[') { /* an IPv6 address: connect without the brackets */
    name = host + 1;
    hlen -= 2;
  }
  if (hlen == 0 || hlen >= sizeof t->host) goto done;
  memcpy(t->host, name, hlen);
  t->host[hlen] = '\0';
  snprintf(t->port, sizeof t->port, "%s", port ? port : "80");
  int n = snprintf(t->authority, sizeof t->authority, "%s%s%s", host, port ? ":" : "", port ? port : "");
  if (n < 0 || (size_t)n >= sizeof t->authority) goto done;
  size_t plen = strlen(path), qlen = query ? strlen(query) : 0;
  t->path = malloc(plen + qlen + 2);
  if (!t->path) goto done;
  memcpy(t->path, path, plen);
  if (qlen > 0) { /* (an empty query is left out, as curl's URL leaves it) */
    t->path[plen] = '?';
    memcpy(t->path + plen + 1, query, qlen + 1);
  } else {
    t->path[plen] = '\0';
  }
  *eff_url = whole;
  whole = NULL;
  rc = 0;
done:
  if (rc != 0) {
    free(t->auth);
    free(t->path);
    t->auth = t->path = NULL;
  }
  curl_free(scheme);
  curl_free(user);
  curl_free(password);
  curl_free(zone);
  curl_free(host);
  curl_free(port);
  curl_free(path);
  curl_free(query);
  curl_free(whole);
  curl_url_cleanup(u);
  return rc;
}

/* The length of a header line's name (up to ':' or ';'). */
static size_t name_len(const char *line) { return strcspn(line, ":;"); }

/* Does one of the lines give a header named `name` (replacing or dropping
 * the request's own)? */
static int given(const struct curl_slist *lines, const char *name) {
  size_t n = strlen(name);
  for (const struct curl_slist *l = lines; l; l = l->next)
    if (name_len(l->data) == n && strncasecmp(l->data, name, n) == 0) return 1;
  return 0;
}

int http_target_request(http_req *r) {
  aq_buf *b = &r->out;
  aq_buf_reset(b);
  aq_buf_puts(b, r->head_only ? "HEAD " : "GET ");
  aq_buf_puts(b, r->target.path);
  aq_buf_puts(b, " HTTP/1.1\r\n");
  const struct curl_slist *lines = r->headers;
  if (!lines || !given(lines, "Host")) { /* (in pieces: printf cost 1.3k instructions of a 23k request) */
    aq_buf_puts(b, "Host: ");
    aq_buf_puts(b, r->target.authority);
    aq_buf_puts(b, "\r\n");
  }
  if (r->target.auth && (!lines || !given(lines, "Authorization"))) {
    aq_buf_puts(b, "Authorization: ");
    aq_buf_puts(b, r->target.auth);
    aq_buf_puts(b, "\r\n");
  }
  if (!lines || !given(lines, "User-Agent")) aq_buf_puts(b, "User-Agent: " HTTP_USER_AGENT "\r\n");
  if (!lines || !given(lines, "Accept")) aq_buf_puts(b, "Accept: */*\r\n");
  if (!lines || !given(lines, "Accept-Encoding")) aq_buf_puts(b, "Accept-Encoding: " ACCEPT_ENCODING "\r\n");
  for (const struct curl_slist *l = lines; l; l = l->next) {
    const char *line = l->data;
    size_t n = name_len(line);
    if (line[n] == ';' && line[n + 1] == '\0') { /* "Name;": sent empty */
      aq_buf_add(b, line, n);
      aq_buf_puts(b, ":\r\n");
      continue;
    }
    const char *v = line + n + (line[n] ? 1 : 0);
    while (*v == ' ' || *v == '\t') v++;
    if (*v == '\0') continue; /* "Name:": not sent */
    aq_buf_puts(b, line);
    aq_buf_puts(b, "\r\n");
  }
  aq_buf_puts(b, "\r\n");
  return b->failed ? -1 : 0;
}
