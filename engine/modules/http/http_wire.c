/*
 * http_wire.c — plain-HTTP GET and HEAD without curl: connections of its
 * own on the engine's loop (uv_tcp_t), kept alive and reused, one request on
 * each at a time.
 *
 * Why: on a local server curl's work per transfer (the URL parsed again, the
 * request printed, the connection cache searched, the headers stored) was 81 %
 * of a request's instructions, and a bare C loop of curl's multi interface on
 * libuv (scripts/bench/curl_loop.c) reached only 0.3-0.4x of wrk on one
 * thread. Here a request is its bytes (http_target.c) written with one
 * uv_try_write (a few together while the loop thread is busy: send_request
 * says why), and its response read as it arrives (http_reader.c). What
 * crawls fetch goes here: GET and HEAD of http:// URLs without a proxy, a
 * CA file or a cookie jar (the body to memory or to an output file).
 * Everything else, and a redirect to anything but plain HTTP, stays with
 * curl (http_request.c decides), and a request reads the same either way:
 * the same response fields, curl's error codes and words, curl's URL
 * normalization.
 *
 * Connections: a host's idle ones wait in its entry of the per-host gate
 * (http_hosts.c, which admits at most max_per_host requests to a host, so a
 * host never has more connections than that) and in the multi's list of
 * idle ones, the least recently used first. At most max_connections are open
 * at once: a request that needs a new one then closes the oldest idle one,
 * or waits in the multi's queue, first come first served. A reused
 * connection that the server closed before answering is left for another
 * (curl does the same), as many times as there are such connections. An idle
 * connection keeps reading, so a server's close is seen when it comes.
 *
 * Ownership: a connection is made by the request that needs it and lives
 * until its handle's close callback; it belongs to the multi (counted in
 * http_multi.closing, so the multi outlives it) and serves one request at a
 * time (http_conn.req, http_req.conn). Everything runs on the loop thread;
 * only getaddrinfo runs on libuv's thread pool.
 */
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

struct http_conn {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_getaddrinfo_t resolve;
  uv_write_t write;
  http_multi *m;
  http_host *host;                  /* NULL once closing */
  http_req *req;                    /* the request on it; NULL when idle or closing */
  http_conn *idle_prev, *idle_next; /* its host's idle list */
  http_conn *lru_prev, *lru_next;   /* the multi's idle list */
  http_conn *send_prev, *send_next; /* the multi's list of requests to write */
  struct addrinfo *addrs, *addr;    /* a resolved name's addresses, and the one tried */
  http_reader reader;
  aq_buf unsent;                    /* what uv_try_write left of a request, for uv_write */
  uint64_t connect_start_ns;
  unsigned tcp_open : 1;    /* tcp initialized and not yet closing */
  unsigned tcp_closing : 1; /* its close callback is to come */
  unsigned resolving : 1;   /* getaddrinfo in flight */
  unsigned idle : 1;
  unsigned reused : 1;     /* it served a request before this one */
  unsigned got_bytes : 1;  /* this request has received something */
  unsigned writing : 1;    /* a uv_write of `unsent` is in flight */
  unsigned discard : 1;    /* this response is a redirect's: its body is skipped */
  unsigned closing : 1;    /* done with: freed once nothing is in flight */
  unsigned to_send : 1;    /* on the multi's send list */
};

/* --- the idle lists --- */

static void idle_remove(http_conn *c) {
  http_multi *m = c->m;
  http_conn **head = http_host_idle(c->host);
  if (c->idle_prev) c->idle_prev->idle_next = c->idle_next;
  else *head = c->idle_next;
  if (c->idle_next) c->idle_next->idle_prev = c->idle_prev;
  if (c->lru_prev) c->lru_prev->lru_next = c->lru_next;
  else m->lru_head = c->lru_next;
  if (c->lru_next) c->lru_next->lru_prev = c->lru_prev;
  else m->lru_tail = c->lru_prev;
  c->idle_prev = c->idle_next = c->lru_prev = c->lru_next = NULL;
  c->idle = 0;
}

static void idle_add(http_conn *c) {
  http_multi *m = c->m;
  http_conn **head = http_host_idle(c->host);
  c->idle_prev = NULL;
  c->idle_next = *head;
  if (*head) (*head)->idle_prev = c;
  *head = c;
  c->lru_next = NULL;
  c->lru_prev = m->lru_tail;
  if (m->lru_tail) m->lru_tail->lru_next = c;
  else m->lru_head = c;
  m->lru_tail = c;
  c->idle = 1;
  c->reused = 1;
}

/* --- the queue under max_connections --- */

static void queue_add(http_req *r) {
  http_multi *m = r->m;
  r->wait_prev = m->queue_tail;
  r->wait_next = NULL;
  if (m->queue_tail) m->queue_tail->wait_next = r;
  else m->queue_head = r;
  m->queue_tail = r;
  r->wire_waiting = 1;
}

static void queue_remove(http_req *r) {
  http_multi *m = r->m;
  if (r->wait_prev) r->wait_prev->wait_next = r->wait_next;
  else m->queue_head = r->wait_next;
  if (r->wait_next) r->wait_next->wait_prev = r->wait_prev;
  else m->queue_tail = r->wait_prev;
  r->wait_prev = r->wait_next = NULL;
  r->wire_waiting = 0;
}

/* --- the requests waiting to be written (send_request) --- */

/* Requests written at once when this many wait (send_request says why). */
#define SEND_BATCH 4
/* How often, in ms of the loop's clock, send_request looks again at how busy
 * the loop has been, and the share of that time (1/n) it may have waited in
 * epoll_wait and still count as busy. */
#define BUSY_WINDOW_MS 10
#define BUSY_MAX_IDLE_SHARE 10

/* Whether the loop thread has been busy nearly all the time of the last
 * window: it waited for events (libuv's idle-time metric, which
 * http_multi.c turns on) for under a tenth of it. */
static int loop_busy(http_multi *m) {
  uint64_t now = uv_now(m->loop);
  if (now - m->busy_since_ms >= BUSY_WINDOW_MS) {
    uint64_t idle_ns = uv_metrics_idle_time(m->loop);
    uint64_t window_ns = (now - m->busy_since_ms) * 1000000;
    m->busy = (idle_ns - m->busy_idle_ns) * BUSY_MAX_IDLE_SHARE < window_ns;
    m->busy_since_ms = now;
    m->busy_idle_ns = idle_ns;
  }
  return m->busy;
}

static void sends_add(http_conn *c) {
  http_multi *m = c->m;
  m->send_count++;
  c->send_prev = m->send_tail;
  c->send_next = NULL;
  if (m->send_tail) m->send_tail->send_next = c;
  else m->send_head = c;
  m->send_tail = c;
  c->to_send = 1;
}

static void sends_remove(http_conn *c) {
  http_multi *m = c->m;
  m->send_count--;
  if (c->send_prev) c->send_prev->send_next = c->send_next;
  else m->send_head = c->send_next;
  if (c->send_next) c->send_next->send_prev = c->send_prev;
  else m->send_tail = c->send_prev;
  c->send_prev = c->send_next = NULL;
  c->to_send = 0;
}

/* --- connections --- */

static void free_conn(http_conn *c) {
  http_multi *m = c->m;
  http_reader_free(&c->reader);
  aq_buf_free(&c->unsent);
  if (c->addrs) uv_freeaddrinfo(c->addrs);
  free(c);
  http_multi_unref(m);
}

static void connect_next(http_conn *c);

static void on_tcp_closed(uv_handle_t *handle) {
  http_conn *c = handle->data;
  c->tcp_closing = 0;
  if (c->closing) free_conn(c);
  else connect_next(c); /* closed after a failed connect: the next address */
}

/* Done with c: it serves nothing more and is freed once nothing of it is in
 * flight. Its slot under max_connections is free at once. */
static void close_conn(http_conn *c) {
  if (c->closing) return;
  if (c->idle) idle_remove(c);
  if (c->to_send) sends_remove(c);
  c->closing = 1;
  c->req = NULL;
  c->m->wire_open--;
  http_host_conns(&c->m->hosts, c->host, -1);
  c->host = NULL;
  if (c->resolving) {
    uv_cancel((uv_req_t *)&c->resolve); /* its callback frees c */
  } else if (c->tcp_open) {
    c->tcp_open = 0;
    c->tcp_closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
  } else if (!c->tcp_closing) {
    free_conn(c);
  }
}

static void acquire(http_req *r, int queued_before);

/* Starts the requests waiting for a connection, as far as the cap allows. */
static void kick(http_multi *m) {
  if (m->kicking) return; /* acquire may end a request, whose task may come back here */
  m->kicking = 1;
  while (m->queue_head && (m->max_total <= 0 || m->wire_open < m->max_total || m->lru_head)) {
    http_req *r = m->queue_head;
    queue_remove(r);
    acquire(r, 1);
  }
  m->kicking = 0;
}

/* Ends request r with curl's code and words (printf's format): off its
 * connection (closed), then its end through the transfer callback. */
static void end_request(http_req *r, CURLcode code, const char *fmt, ...) AQ_PRINTF(3, 4);
static void end_request(http_req *r, CURLcode code, const char *fmt, ...) {
  if (r->conn) {
    http_conn *c = r->conn;
    r->conn = NULL;
    c->req = NULL;
    close_conn(c);
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->errbuf, sizeof r->errbuf, fmt, ap);
  va_end(ap);
  r->transfer.over(r->transfer.data, code);
}

/* The connection of c's request ended, or a write on it failed, before any
 * answer, on a connection that had served others: the server closed it
 * while it was idle, so the request tries another. Returns 1 when it does. */
static int retry_elsewhere(http_conn *c) {
  if (!c->reused || c->got_bytes) return 0;
  http_req *r = c->req;
  r->conn = NULL;
  c->req = NULL;
  close_conn(c);
  acquire(r, 1);
  return 1;
}

static void on_written(uv_write_t *w, int status) {
  http_conn *c = w->data;
  c->writing = 0;
  if (status >= 0 || !c->req) return;
  if (retry_elsewhere(c)) return;
  end_request(c->req, CURLE_SEND_ERROR, "Send failure: %s", uv_strerror(status));
}

/* Writes the request of c: in one go when the socket takes it all, as it
 * nearly always does. */
static void write_request(http_conn *c) {
  http_req *r = c->req;
  uv_buf_t buf = uv_buf_init(r->out.data, (unsigned)r->out.len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
  if (n == (int)buf.len) return;
  if (n < 0 && n != UV_EAGAIN) {
    if (retry_elsewhere(c)) return;
    end_request(r, CURLE_SEND_ERROR, "Send failure: %s", uv_strerror(n));
    return;
  }
  if (n < 0) n = 0;
  aq_buf_reset(&c->unsent); /* the connection's own copy: the request may end before the write */
  aq_buf_add(&c->unsent, buf.base + n, buf.len - (size_t)n);
  if (c->unsent.failed) {
    end_request(r, CURLE_OUT_OF_MEMORY, "out of memory");
    return;
  }
  buf = uv_buf_init(c->unsent.data, (unsigned)c->unsent.len);
  c->write.data = c;
  int rc = uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, on_written);
  if (rc != 0) end_request(r, CURLE_SEND_ERROR, "Send failure: %s", uv_strerror(rc));
  else c->writing = 1;
}

/* Writes the requests waiting on the send list, in the order they were made. */
static void write_sends(http_multi *m) {
  http_conn *c;
  while ((c = m->send_head)) { /* (a failed write may retry elsewhere: added here, written now) */
    sends_remove(c);
    write_request(c);
  }
}

/* The loop's prepare phase: its turn's tasks have run. */
static void on_flush(uv_prepare_t *handle) {
  write_sends(handle->data);
  uv_prepare_stop(handle);
}

/* Sends c's request: at once, or, while the loop thread is busy all the
 * time, with the others made in the same turn of the loop, at its end (the
 * multi's flush handle) or once SEND_BATCH wait. A request written the
 * moment its task made it woke the server for itself alone: a crawl's tasks
 * make their requests tens of microseconds apart, a server with one worker
 * such as nginx slept in between, and waking it (an inter-processor
 * interrupt, in sock_def_readable, expensive in a VM) was a tenth of the
 * loop thread's time. Written a few together, they wake it once. Only a
 * few, and only when the loop is the bottleneck: a request that waits for
 * others is late by their tasks' time, which a crawl against a slow server
 * felt (20 ms per response, 100 workers: 4 at once cost 1.7 % of its rate,
 * 8 cost 3 %, a whole turn 7 %) and which saves nothing when the loop has
 * time to spare. Measured on the 20k-page site (scripts/bench/crawl.lua's),
 * medians of interleaved runs: the toolkit crawl at 100 connections 2.97 s
 * -> 2.24 s, its kernel time halved. */
static void send_request(http_conn *c) {
  http_reader_start(&c->reader, c->req->head_only);
  c->got_bytes = 0;
  c->discard = 0;
  http_multi *m = c->m;
  sends_add(c);
  if (m->send_count >= SEND_BATCH || !loop_busy(m)) write_sends(m);
  else uv_prepare_start(&m->flush, on_flush);
}

/* --- the response --- */

/* A header's value in a header block, or NULL. */
static const char *find_header(const char *lines, size_t len, const char *name, size_t *vlen) {
  size_t n = strlen(name);
  const char *end = lines + len;
  for (const char *p = lines; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl ? nl : end;
    if ((size_t)(stop - p) > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
      const char *v = p + n + 1;
      while (v < stop && (*v == ' ' || *v == '\t')) v++;
      while (stop > v && (stop[-1] == '\r' || stop[-1] == ' ' || stop[-1] == '\t')) stop--;
      *vlen = (size_t)(stop - v);
      return v;
    }
    p = nl ? nl + 1 : end;
  }
  return NULL;
}

/* Where a redirect's Location leads from the request's URL, as curl
 * resolves it (malloc'd), or NULL. */
static char *resolve_location(const char *base, const char *loc, size_t len) {
  char *rel = malloc(len + 1), *out = NULL;
  CURLU *u = rel ? curl_url() : NULL;
  if (u) {
    memcpy(rel, loc, len);
    rel[len] = '\0';
    unsigned flags = CURLU_URLENCODE | CURLU_ALLOW_SPACE | CURLU_NON_SUPPORT_SCHEME;
    if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, rel, flags) == CURLUE_OK && curl_url_get(u, CURLUPART_URL, &out, 0) == CURLUE_OK) {
      char *copy = strdup(out);
      curl_free(out);
      out = copy;
    } else {
      out = NULL;
    }
  }
  curl_url_cleanup(u);
  free(rel);
  return out;
}

static int on_head(void *ud, http_reader *rd, const char *lines, size_t len) {
  http_conn *c = ud;
  http_req *r = c->req;
  r->status = rd->status;
  r->minor = rd->minor;
  aq_buf_reset(&r->head);
  aq_buf_add(&r->head, lines, len);
  if (r->head.failed) return http_reader_fail(rd, CURLE_OUT_OF_MEMORY, "out of memory");
  int s = rd->status;
  size_t vlen;
  const char *v;
  if (r->follow && (s == 301 || s == 302 || s == 303 || s == 307 || s == 308) &&
      (v = find_header(lines, len, "location", &vlen)) && vlen > 0) {
    r->redirect_to = resolve_location(r->eff_url, v, vlen);
    if (r->redirect_to) {
      c->discard = 1;
      return 0;
    }
  }
  if (r->max_body > 0 && rd->content_length > (int64_t)r->max_body)
    return http_reader_fail(rd, CURLE_FILESIZE_EXCEEDED, "Maximum file size exceeded");
  if (r->head_only || !(v = find_header(lines, len, "content-encoding", &vlen))) return 0;
  int rc = http_decoder_new(v, vlen, &r->decoder);
  if (rc == -1)
    return http_reader_fail(rd, CURLE_BAD_CONTENT_ENCODING,
                        "Unrecognized content encoding type. aqueue understands gzip, deflate, br content encodings.");
  return rc == 0 ? 0 : http_reader_fail(rd, CURLE_OUT_OF_MEMORY, "out of memory");
}

/* Keeps n decoded body bytes (0), or refuses them (-1): past max_body, or
 * out of memory. */
static int keep(void *ud, const char *data, size_t n) {
  http_req *r = ud;
  r->received += (curl_off_t)n;
  if (r->max_body > 0 && r->received > r->max_body) {
    r->too_big = 1;
    return -1;
  }
  if (r->path) return http_output_keep(r, data, n);
  aq_buf_add(&r->body, data, n);
  return r->body.failed ? -1 : 0;
}

static int on_body(void *ud, const char *data, size_t n) {
  http_conn *c = ud;
  http_req *r = c->req;
  if (c->discard) return 0;
  int rc = r->decoder ? http_decoder_run(r->decoder, data, n, keep, r) : keep(r, data, n);
  if (rc == 0) return 0;
  if (rc == -1 && r->decoder) /* (a refusal by keep is -2 from the decoder) */
    return http_reader_fail(&c->reader, CURLE_BAD_CONTENT_ENCODING, "Error while processing content unencoding");
  return http_reader_fail(&c->reader, CURLE_WRITE_ERROR, "Failure writing output to destination");
}

static const http_reader_calls reader_calls = { on_head, on_body };

/* The response on c is complete: c goes idle (or closes), then the request ends. */
static void complete(http_conn *c, int reusable) {
  http_req *r = c->req;
  r->conn = NULL;
  c->req = NULL;
  int unsent = c->to_send; /* (the server spoke out of turn, before the request went) */
  if (unsent) sends_remove(c);
  if (reusable && !c->writing && !unsent) idle_add(c); /* (answered before it was all sent: not reused) */
  else close_conn(c);
  r->transfer.over(r->transfer.data, CURLE_OK);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  http_conn *c = handle->data;
  *buf = uv_buf_init(c->m->read_buf, sizeof c->m->read_buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  http_conn *c = stream->data;
  if (nread == 0 || c->closing) return;
  http_req *r = c->req;
  if (!r) { /* idle: the server closed it (or spoke out of turn) */
    http_multi *m = c->m;
    close_conn(c);
    kick(m);
    return;
  }
  if (nread < 0) {
    if (retry_elsewhere(c)) return;
    if (nread == UV_EOF) {
      if (http_reader_eof(&c->reader) == 0) complete(c, 0);
      else end_request(r, c->reader.code, "%s", c->reader.words);
      return;
    }
    end_request(r, CURLE_RECV_ERROR, "Recv failure: %s", uv_strerror((int)nread));
    return;
  }
  c->got_bytes = 1;
  long used = http_reader_feed(&c->reader, buf->base, (size_t)nread, &reader_calls, c);
  if (used < 0) {
    end_request(r, c->reader.code, "%s", c->reader.words);
    return;
  }
  if (http_reader_done(&c->reader)) complete(c, c->reader.keep_alive && used == nread);
  else if (r->paused) uv_read_stop(stream); /* until the output file catches up */
}

void http_wire_resume(http_req *r) {
  if (r->conn) uv_read_start((uv_stream_t *)&r->conn->tcp, on_alloc, on_read);
}

static void on_connected(uv_connect_t *req, int status) {
  http_conn *c = req->data;
  if (c->closing) return;
  if (status < 0) {
    c->req->os_errno = -status;
    if (c->addr && c->addr->ai_next) { /* another address of the name */
      c->addr = c->addr->ai_next;
      c->tcp_open = 0;
      c->tcp_closing = 1;
      uv_close((uv_handle_t *)&c->tcp, on_tcp_closed); /* then connect_next */
      return;
    }
    http_req *r = c->req;
    /* curl's words; the system's error is in the code (failure_code reads os_errno) */
    end_request(r, CURLE_COULDNT_CONNECT, "Failed to connect to %s port %s after %llu ms: %s", r->target.host,
                r->target.port, (unsigned long long)((uv_hrtime() - c->connect_start_ns) / 1000000),
                curl_easy_strerror(CURLE_COULDNT_CONNECT));
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  send_request(c);
}

/* Connects to c->addr, or to the request's numeric host. */
static void connect_next(http_conn *c) {
  http_req *r = c->req;
  struct sockaddr_storage numeric;
  const struct sockaddr *sa = c->addr ? c->addr->ai_addr : (const struct sockaddr *)&numeric;
  if (!c->addr) {
    int port = atoi(r->target.port);
    if (uv_ip4_addr(r->target.host, port, (struct sockaddr_in *)&numeric) != 0 &&
        uv_ip6_addr(r->target.host, port, (struct sockaddr_in6 *)&numeric) != 0) {
      end_request(r, CURLE_COULDNT_RESOLVE_HOST, "Could not resolve host: %s", r->target.host);
      return;
    }
  }
  int rc = uv_tcp_init(c->m->loop, &c->tcp);
  if (rc == 0) {
    c->tcp_open = 1;
    c->tcp.data = c;
    uv_unref((uv_handle_t *)&c->tcp); /* the loop stays alive by the multi's keepalive */
    uv_tcp_nodelay(&c->tcp, 1);       /* as curl: a request goes out in one piece anyway */
    c->connect.data = c;
    rc = uv_tcp_connect(&c->connect, &c->tcp, sa, on_connected);
  }
  if (rc != 0) {
    r->os_errno = -rc;
    end_request(r, CURLE_COULDNT_CONNECT, "Failed to connect to %s port %s: %s", r->target.host, r->target.port,
                uv_strerror(rc));
  }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  http_conn *c = req->data;
  c->resolving = 0;
  if (c->closing) {
    if (res) uv_freeaddrinfo(res);
    free_conn(c);
    return;
  }
  if (status < 0 || !res) {
    end_request(c->req, CURLE_COULDNT_RESOLVE_HOST, "Could not resolve host: %s", c->req->target.host);
    return;
  }
  c->addrs = c->addr = res;
  connect_next(c);
}

/* A new connection for r: resolved first unless its host is an address. */
static void open_conn(http_req *r) {
  http_multi *m = r->m;
  http_conn *c = calloc(1, sizeof *c);
  if (!c) {
    end_request(r, CURLE_OUT_OF_MEMORY, "out of memory");
    return;
  }
  m->closing++; /* the multi outlives its connections */
  m->wire_open++;
  c->m = m;
  c->host = r->host;
  http_host_conns(&m->hosts, c->host, +1);
  c->req = r;
  r->conn = c;
  c->connect_start_ns = uv_hrtime();
  unsigned char addr[16];
  if (uv_inet_pton(AF_INET, r->target.host, addr) == 0 || uv_inet_pton(AF_INET6, r->target.host, addr) == 0) {
    connect_next(c);
    return;
  }
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  c->resolve.data = c;
  c->resolving = 1;
  int rc = uv_getaddrinfo(m->loop, &c->resolve, on_resolved, r->target.host, r->target.port, &hints);
  if (rc != 0) {
    c->resolving = 0;
    end_request(r, CURLE_COULDNT_RESOLVE_HOST, "Could not resolve host: %s (%s)", r->target.host, uv_strerror(rc));
  }
}

/* Puts r on a connection: its host's idle one, a new one, or, under
 * max_connections, the queue (behind those waiting already, unless r was
 * one of them). */
static void acquire(http_req *r, int queued_before) {
  http_multi *m = r->m;
  http_conn *c = *http_host_idle(r->host);
  if (c) {
    idle_remove(c);
    c->req = r;
    r->conn = c;
    send_request(c);
    return;
  }
  if (m->max_total > 0 && (m->wire_open >= m->max_total || (m->queue_head && !queued_before))) {
    if (!m->lru_head || (m->queue_head && !queued_before)) {
      queue_add(r);
      return;
    }
    close_conn(m->lru_head); /* the oldest idle connection makes room */
  }
  open_conn(r);
}

void http_wire_start(http_req *r) {
  http_multi *m = r->m;
  r->in_wire = 1;
  http_multi_busy(m, +1);
  acquire(r, 0);
}

void http_wire_stop(http_req *r) {
  if (!r->in_wire) return;
  http_multi *m = r->m;
  if (r->wire_waiting) queue_remove(r);
  if (r->conn) {
    http_conn *c = r->conn;
    r->conn = NULL;
    c->req = NULL;
    close_conn(c);
  }
  r->in_wire = 0;
  http_multi_busy(m, -1);
  kick(m);
}

void http_wire_close_idle(http_multi *m, long keep) {
  while (m->lru_head && m->wire_open > keep) close_conn(m->lru_head);
}
