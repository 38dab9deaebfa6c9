/*
 * http_hosts.c — the per-host gate: requests to a plain-HTTP host that
 * already has max_per_host transfers running wait here, in order, instead of
 * in curl.
 *
 * Why: curl 7.88 parks a transfer over CURLMOPT_MAX_HOST_CONNECTIONS in its
 * pending list, but only after setting it up for a connection (the URL
 * parsed and rebuilt, the connection cache searched), and it does all of
 * that again each time the transfer is woken to try for a freed connection.
 * 100 tasks on 16 connections to one host spent 34k instructions a request
 * in curl_url_get alone, against 9k with no transfer pending.
 *
 * Only plain http:// is gated: there a transfer needs a connection of its
 * own, so counting the host's transfers counts its connections, and the cap
 * means what it says. Over https curl may multiplex many transfers on one
 * HTTP/2 connection, which a count of transfers would throttle, so those are
 * left to curl's own cap (which stays set as well), and so are requests with
 * a proxy option. A transfer counts against the host of its URL until it
 * ends, even after a redirect elsewhere, and through a proxy curl takes from
 * the environment (http_proxy): at most max_per_host requests to one site
 * are in flight then too. (A redirect that http_wire.c read is followed from
 * http_request.c: the request leaves its host and goes through the gate of
 * the next one.)
 *
 * An entry also holds its host's connections of http_wire.c (counted, and
 * the idle ones listed), which serve plain-HTTP GET and HEAD without curl.
 *
 * Ownership: a host entry is made by the first request that needs it and
 * freed once it has no running transfer, no waiting request and no
 * connection; a request holds its entry (http_req.host) from admission or
 * queueing until http_host_leave, a connection from its opening to its
 * close. The entries belong to the multi (http_multi.hosts).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

struct http_host {
  http_host *next; /* in its bucket */
  long running;    /* this host's transfers running, in curl or on the wire */
  http_req *head, *tail; /* waiting, the oldest first */
  long conns;            /* http_wire.c's connections to it, open or opening */
  http_conn *idle;       /* those of them idle, the most recently used first */
  size_t len;
  char key[]; /* "host:port" in lower case */
};

size_t http_host_key(const char *url, char *key, size_t size) {
  if (strncasecmp(url, "http://", 7) != 0) return 0;
  const char *start = url + 7, *end = start + strcspn(start, "/?#");
  const char *at = memchr(start, '@', (size_t)(end - start));
  while (at) { /* the authority after any user:password@ */
    start = at + 1;
    at = memchr(start, '@', (size_t)(end - start));
  }
  size_t n = (size_t)(end - start);
  if (n >= 3 && memcmp(end - 3, ":80", 3) == 0) n -= 3; /* the default port, as curl counts it */
  if (n == 0 || n >= size) return 0;
  for (size_t i = 0; i < n; i++) key[i] = (char)tolower((unsigned char)start[i]);
  key[n] = '\0';
  return n;
}

static size_t hash(const char *s, size_t n) {
  size_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* Doubles the buckets once there are as many entries. Returns 0, or -1 when
 * out of memory (the table stays as it was, only slower). */
static int grow(http_hosts *t) {
  size_t n = t->nbuckets ? t->nbuckets * 2 : 64;
  http_host **b = calloc(n, sizeof *b);
  if (!b) return -1;
  for (size_t i = 0; i < t->nbuckets; i++) {
    http_host *h = t->buckets[i];
    while (h) {
      http_host *next = h->next;
      size_t j = hash(h->key, h->len) & (n - 1);
      h->next = b[j];
      b[j] = h;
      h = next;
    }
  }
  free(t->buckets);
  t->buckets = b;
  t->nbuckets = n;
  return 0;
}

http_host *http_host_get(http_hosts *t, const char *key, size_t len) {
  if (t->count >= t->nbuckets && grow(t) != 0 && t->nbuckets == 0) return NULL;
  size_t i = hash(key, len) & (t->nbuckets - 1);
  for (http_host *h = t->buckets[i]; h; h = h->next)
    if (h->len == len && memcmp(h->key, key, len) == 0) return h;
  http_host *h = calloc(1, sizeof *h + len + 1);
  if (!h) return NULL;
  memcpy(h->key, key, len + 1);
  h->len = len;
  h->next = t->buckets[i];
  t->buckets[i] = h;
  t->count++;
  return h;
}

/* Frees h when nothing refers to it any more. */
static void drop_if_idle(http_hosts *t, http_host *h) {
  if (h->running > 0 || h->head || h->conns > 0) return;
  http_host **p = &t->buckets[hash(h->key, h->len) & (t->nbuckets - 1)];
  while (*p != h) p = &(*p)->next;
  *p = h->next;
  t->count--;
  free(h);
}

int http_host_admit(http_host *h, http_req *r, long cap) {
  r->host = h;
  if (cap > 0 && (h->running >= cap || h->head)) { /* behind those waiting already */
    r->wait_prev = h->tail;
    r->wait_next = NULL;
    if (h->tail) h->tail->wait_next = r;
    else h->head = r;
    h->tail = r;
    r->waiting = 1;
    return 0;
  }
  h->running++;
  return 1;
}

void http_host_leave(http_req *r) {
  http_host *h = r->host;
  r->host = NULL;
  if (!r->waiting) {
    h->running--;
    return;
  }
  if (r->wait_prev) r->wait_prev->wait_next = r->wait_next;
  else h->head = r->wait_next;
  if (r->wait_next) r->wait_next->wait_prev = r->wait_prev;
  else h->tail = r->wait_prev;
  r->waiting = 0;
}

http_req *http_host_next(http_hosts *t, http_host *h, long cap) {
  http_req *next = h->head;
  if (!next || (cap > 0 && h->running >= cap)) {
    drop_if_idle(t, h);
    return NULL;
  }
  h->head = next->wait_next;
  if (h->head) h->head->wait_prev = NULL;
  else h->tail = NULL;
  next->waiting = 0;
  h->running++;
  return next;
}

http_conn **http_host_idle(http_host *h) { return &h->idle; }

void http_host_conns(http_hosts *t, http_host *h, int delta) {
  h->conns += delta;
  drop_if_idle(t, h);
}

void http_hosts_free(http_hosts *t) {
  for (size_t i = 0; i < t->nbuckets; i++) {
    http_host *h = t->buckets[i];
    while (h) {
      http_host *next = h->next;
      free(h);
      h = next;
    }
  }
  free(t->buckets);
  t->buckets = NULL;
  t->nbuckets = t->count = 0;
}
