/*
 * http.h — the private header of aqueue.http_core (HTTP(S) on libcurl's
 * multi-socket API, driven by the engine's libuv loop, and plain-HTTP GET and
 * HEAD on connections of its own). Built as a loadable module on the public
 * API only (aqueue.h), libcurl, zlib and libbrotlidec.
 *
 * The files, one job each:
 *   http_module.c    the Lua functions: request(), configure(), luaopen
 *   http_options.c   reading and checking request()'s options table
 *   http_multi.c     the curl multi handle on libuv: sockets, timer, finished
 *                    transfers, the pool of easy handles, the per-engine state
 *   http_hosts.c     the per-host gate: plain-HTTP requests over max_per_host
 *                    wait there, in order, rather than in curl; and the
 *                    hosts' idle connections of http_wire.c
 *   http_wire.c      plain-HTTP GET and HEAD without curl: connections of
 *                    its own on libuv, kept alive and reused
 *   http_target.c    its URL reading and its requests' bytes
 *   http_reader.c    its response reader: status, headers, body framing
 *   http_decode.c    its Content-Encoding decoders (gzip, deflate, br)
 *   http_request.c   one request's life: which way it goes (curl or
 *                    http_wire.c), its easy handle, start, the body
 *                    callback, the deadline, redirects off the wire, cancel,
 *                    the end
 *   http_output.c    the output= file: "<path>.part" written through uv_fs,
 *                    renamed into place or removed
 *   http_cookies.c   a session's cookie jar (a curl share), counted
 *   http_response.c  what the task resumes with: the response table
 *   http_errors.c    or the failure: nil, "CODE: message", "CODE"
 *
 * Layers: http_module.c on top; http_request.c drives a request and calls
 * http_output.c, http_hosts.c, http_multi.c, http_target.c, http_wire.c,
 * http_response.c and http_errors.c, none of which calls it back by name: the multi and the wire
 * end a transfer through the callback of its http_transfer, the output file
 * reports each step through the callback given to http_output_begin (as libuv
 * calls its users back). http_multi.c closes the wire's idle connections;
 * http_wire.c reads with http_reader.c and http_decode.c and keeps bodies
 * through http_output.c.
 *
 * Ownership: l_request allocates the request; it belongs to http_request.c
 * until http_request_free(). Exactly one of the end of the transfer (the task
 * resumes with the response or nil, err, code) or the engine's cancel (the
 * task is gone) ends the task's part. After a cancel the request may outlive
 * the task while a uv_fs request is in flight (those cannot be recalled): the
 * fs callback then closes and removes the part file and frees it.
 *
 * Threads: everything runs on the loop thread. (curl runs getaddrinfo on a
 * thread of its own for host names that are neither IP literals nor
 * "localhost"; it signals the loop through a socket. http_wire.c runs it on
 * libuv's thread pool, for any name that is not an address.)
 */
#ifndef AQ_HTTP_H
#define AQ_HTTP_H

#include <stdint.h>
#include <stdlib.h>

#include <curl/curl.h>
#include <lua.h>

#include "aqueue.h"

#define HTTP_DEFAULT_MAX_TOTAL 100 /* connections, all hosts together */
#define HTTP_DEFAULT_MAX_HOST 16   /* connections to one host */
#define HTTP_EASY_POOL 64          /* idle easy handles kept for the next requests */

#define HTTP_STR_(x) #x
#define HTTP_STR(x) HTTP_STR_(x)
#define HTTP_USER_AGENT                                                                   \
  "aqueue/" HTTP_STR(AQUEUE_VERSION_MAJOR) "." HTTP_STR(AQUEUE_VERSION_MINOR) "." HTTP_STR(AQUEUE_VERSION_PATCH)

/* --- the multi handle and its libuv driver (http_multi.c) --- */

typedef struct http_sock http_sock;
typedef struct http_host http_host;
typedef struct http_req http_req;
typedef struct http_conn http_conn;

/* The hosts with plain-HTTP transfers running or waiting (http_hosts.c). */
typedef struct {
  http_host **buckets;
  size_t nbuckets, count;
} http_hosts;

typedef struct {
  CURLM *multi;
  uv_loop_t *loop;
  uv_timer_t timer;     /* curl's timeout */
  uv_async_t keepalive; /* referenced while transfers run, never sent */
  uv_prepare_t flush;   /* writes the requests held for the turn's end (http_wire.c) */
  http_sock **socks;    /* by fd: every poll handle made, watching or parked */
  size_t socks_len;
  int active;  /* transfers in the multi */
  int closing; /* handles of the struct still closing */
  CURL *pool[HTTP_EASY_POOL];
  unsigned char pool_ready[HTTP_EASY_POOL]; /* the handle kept its options (not reset) */
  int npool;
  http_hosts hosts; /* the per-host gate */
  long max_host;    /* its cap: max_per_host, 0 for none */
  /* http_wire.c's connections: */
  long max_total;           /* max_connections for them (curl counts its own), 0 for none */
  long wire_open;           /* open or opening */
  http_conn *lru_head, *lru_tail; /* the idle ones, the least recently used first */
  http_req *queue_head, *queue_tail; /* requests waiting for a connection under max_total */
  http_conn *send_head, *send_tail;  /* connections whose request waits to be written */
  int send_count;                    /* how many */
  uint64_t busy_since_ms, busy_idle_ns; /* the window of http_wire.c's loop_busy: its start, */
  int busy;                             /* the loop's idle time then, and the last answer */
  int wire_off;             /* a proxy from the environment: every request goes to curl */
  int kicking;              /* the queue is being served (http_wire.c) */
  int shutting;             /* the engine closed it: freed once `closing` is 0 */
  char read_buf[65536];     /* what a read hands over (used up within its callback) */
} http_multi;

/* The module's per-engine state (aq_module_state: it lives until lua_close,
 * which comes after the engine's close hook). */
typedef struct {
  http_multi *m; /* NULL until first used, and again once the engine closed it */
  int closed;
  int made; /* the caps below hold their defaults or what configure() set */
  long max_total, max_host;
} http_state;

/* The module's state for the engine running L, created on first use. Raises
 * when out of memory. */
http_state *http_state_get(lua_State *L);

/* The multi handle of the engine, created on first use. Raises on failure
 * (also once the engine is closing). */
http_multi *http_multi_get(lua_State *L, http_state *st);

/* Applies st's connection caps to the multi. */
void http_multi_set_limits(http_multi *m, const http_state *st);

/* What the multi knows of a transfer: its easy handle's CURLOPT_PRIVATE
 * points here, and when curl ends the transfer the multi calls
 * over(data, curl's outcome) (from a libuv callback, never from inside
 * http_multi_add or http_multi_remove). Owned by whoever added the transfer. */
typedef void (*http_transfer_over_cb)(void *data, CURLcode code);
typedef struct {
  http_transfer_over_cb over;
  void *data;
} http_transfer;

/* Starts the transfer of `easy` (whose CURLINFO_PRIVATE is its http_transfer).
 * While transfers run, and only then, the loop stays alive. Returns CURLM_OK
 * or curl's error. */
CURLMcode http_multi_add(http_multi *m, CURL *easy);
void http_multi_remove(http_multi *m, CURL *easy);

/* An easy handle for a new request: an idle one from the pool, or a new one
 * (NULL when out of memory). *ready: it kept the options every request sets
 * alike (http_request.c), so only the others need setting. */
CURL *http_easy_take(http_multi *m, int *ready);
/* Takes back the easy handle of a request that ran to the end, kept for the
 * next (its caches and connections stay) or cleaned up: as it is when ready
 * (its request set nothing the next would have to undo), else reset. */
void http_easy_give_back(http_multi *m, CURL *easy, int ready);

/* A transfer of curl's or of http_wire.c's started (+1) or ended (-1): the
 * loop stays alive while any runs, and only then. (Inline, as libuv's
 * handle counts are: http_multi.c and http_wire.c both keep them.) */
static inline void http_multi_busy(http_multi *m, int delta) {
  int was = m->active;
  m->active += delta;
  if (was == 0 && m->active > 0) uv_ref((uv_handle_t *)&m->keepalive);
  else if (was > 0 && m->active == 0) uv_unref((uv_handle_t *)&m->keepalive);
}

/* The multi's count of things that will call back (handles closing,
 * connections alive) went down by one: frees it when it was the last after
 * the engine's close. */
static inline void http_multi_unref(http_multi *m) {
  if (--m->closing == 0 && m->shutting) free(m);
}

/* --- one request (http_request.c) --- */

typedef struct http_jar http_jar;

/* request()'s options, as read from its table (http_options.c). The strings
 * belong to the Lua values, kept on the stack until the request is set up. */
typedef struct {
  const char *method;
  const char *url;
  size_t url_len;
  int headers_idx; /* stack index of the list of "Name: value" strings, 0 for none */
  size_t nheaders;
  const char *body; /* NULL for none */
  size_t body_len;
  double timeout; /* seconds, 0 for none */
  double max_body; /* bytes, 0 for no limit */
  int follow_redirects;
  const char *output; /* NULL: the body goes to memory */
  size_t output_len;
  const char *ca_file; /* NULL: the system's CAs */
  const char *proxy;   /* NULL: none (or curl's from the environment) */
  http_jar *jar;       /* NULL: no cookies */
} http_options;

/* Called by http_output.c when a step of the output file (open, write,
 * close, rename, remove, or all of them in one job) is done. */
typedef void (*http_output_cb)(http_req *r);

typedef struct http_decoder http_decoder;

/* A plain-HTTP URL's parts for http_wire.c (http_target_read). */
typedef struct {
  char host[256];     /* for connecting: a name, or an address without brackets */
  char port[8];       /* "80" unless given */
  char authority[272]; /* the Host header: host[:port] as the URL has it */
  char *path;          /* path and query, malloc'd */
  char *auth;          /* "Basic ..." for a user in the URL, malloc'd; or NULL */
} http_target;

/* Reads a response for http_wire.c (http_reader.c). */
typedef struct {
  int state, status, minor;
  int head_only;             /* the request was HEAD: no body */
  int keep_alive;            /* the connection may serve another request */
  int64_t content_length;    /* -1 when the body is not framed by one */
  int64_t left;              /* of the body or of the chunk being read */
  aq_buf line;               /* an unfinished head or line */
  CURLcode code;             /* the failure, with curl's code */
  char words[96];            /* and words */
} http_reader;

struct http_req {
  CURL *easy;
  http_transfer transfer; /* what the multi calls back when curl ends it */
  http_multi *m;
  uv_loop_t *loop;
  aq_task *task; /* NULL once resumed or cancelled */
  struct curl_slist *headers;
  http_jar *jar; /* a reference to the session's cookie jar, or NULL */
  char *url;            /* a copy, for error messages */
  uv_timer_t *deadline; /* with a timeout, until the transfer is over */
  double timeout;       /* seconds, 0 for none */
  uint64_t start_ns;
  char errbuf[CURL_ERROR_SIZE]; /* this request's alone: a pooled easy handle must not show an earlier request's words */
  CURLcode code;      /* the transfer's outcome, once done */
  unsigned in_multi : 1;
  unsigned done : 1;      /* the transfer is over (or never started) */
  unsigned cancelled : 1; /* the task is gone */
  unsigned paused : 1;    /* the body callback asked curl to pause */
  unsigned too_big : 1;   /* the body went over max_body: the transfer was failed */
  unsigned easy_ready : 1; /* easy has the fixed options; and, once set up, may go back unreset */
  unsigned waiting : 1;   /* in its host's queue (http_hosts.c), not in the multi */
  char host_key[272];     /* a plain-HTTP URL's "host:port" (http_host_key), "" when not gated */
  size_t host_key_len;
  http_host *host;           /* counted by, or waiting at, this host; NULL when neither */
  http_req *wait_prev, *wait_next; /* its host's queue, while waiting */
  /* Served by http_wire.c rather than curl (plain-HTTP GET and HEAD): */
  unsigned wire : 1;         /* its URL is http_wire.c's: no easy handle */
  unsigned in_wire : 1;      /* on a connection, or waiting for one */
  unsigned wire_waiting : 1; /* in the multi's queue for a connection (max_connections) */
  unsigned head_only : 1;    /* HEAD: no body follows the headers */
  unsigned follow : 1;       /* follow_redirects */
  http_conn *conn;           /* the connection it is on, NULL when none */
  http_target target;        /* where it goes (its URL's parts) */
  aq_buf out;                /* the request's bytes */
  char *eff_url;             /* its URL as curl writes it, after redirects */
  char *redirect_to;         /* set at the end of a redirect to follow: where */
  int redirects;             /* followed so far */
  int os_errno;              /* a failed connect's */
  int status;                /* of the response */
  int minor;                 /* its HTTP/1.minor */
  http_decoder *decoder;     /* of its Content-Encoding, NULL for none */
  curl_off_t max_body;    /* bytes, 0 for no limit */
  curl_off_t received;    /* body bytes handed over by curl (decoded) */
  aq_buf body;            /* the response body, without output */
  aq_buf head;            /* the header lines of the last response, after its status line */
  unsigned head_open : 1; /* between a status line and the blank line that ends its headers */
  /* With output (http_output.c): */
  char *path, *part; /* NULL without output */
  uv_fs_t fs;
  uv_work_t work;             /* a short body's one job (http_output.c) */
  int at_once_error;          /* its outcome, written by the pool's thread: a libuv error, */
  const char *at_once_what;   /* the step that failed, */
  int at_once_part;           /* and whether the part file is left */
  unsigned at_once_done : 1;  /* (the loop's) the job ran */
  unsigned streamed : 1;      /* the body outgrew the job: the part file was opened for it */
  http_output_cb output_step; /* called after every file operation */
  unsigned fs_busy : 1;     /* fs is in flight */
  unsigned part_exists : 1; /* the part file was created and not removed/renamed */
  uv_file fd;               /* -1 when not open */
  aq_buf pending;           /* received, not yet handed to a write */
  aq_buf inflight;          /* being written, from inflight_off */
  size_t inflight_off;
  int64_t offset;      /* of the next write in the file */
  int fs_error;        /* the first libuv error of the output file, or 0 */
  const char *fs_what; /* what failed: "open", "write", ... */
};

/* Reads and checks request()'s options table at index 1 into o, leaving its
 * values on the stack. Raises on misuse. */
void http_options_read(lua_State *L, http_options *o);

/* Outcomes of http_request_new. */
enum { HTTP_NEW_OK = 0, HTTP_NEW_NO_MEMORY = -1, HTTP_NEW_BAD_URL = -2 };

/* Makes the request of options o, its easy handle set up. Returns
 * HTTP_NEW_OK with *out set, or an error (nothing is left allocated then). */
int http_request_new(lua_State *L, http_multi *m, const http_options *o, http_req **out);

/* Starts the request's transfer (its output file, if any, is made as the
 * body arrives). Returns 0, or a CURLMcode: then the request is to be freed
 * and nothing started. */
int http_request_start(http_req *r);

/* The running task waits for the response (use as `return ...`). */
int http_request_wait(lua_State *L, http_req *r, aq_task *task);

/* Frees the request; its easy handle goes back to the pool when it ran to the
 * end (a cancelled request has none left). */
void http_request_free(http_req *r);

/* --- the per-host gate (http_hosts.c) --- */

/* Writes the gate's key of url ("host:port" in lower case, without a port of
 * 80) to key and returns its length; 0 when url is not plain http:// (or the
 * key does not fit in size). */
size_t http_host_key(const char *url, char *key, size_t size);

/* The entry of a key, made when new; NULL when out of memory. */
http_host *http_host_get(http_hosts *t, const char *key, size_t len);

/* Request r goes to host h under the cap (0: none): returns 1 when it may
 * start now (counted as running), 0 when it waits, behind any request
 * waiting already. Either way r->host is h until http_host_leave. */
int http_host_admit(http_host *h, http_req *r, long cap);

/* Request r is done with its host: its transfer ended, or it stopped
 * waiting. Follow with http_host_next until it returns NULL. */
void http_host_leave(http_req *r);

/* The oldest request waiting at h, now counted as running, when the cap
 * allows one more; else NULL, and h is freed if nothing refers to it. */
http_req *http_host_next(http_hosts *t, http_host *h, long cap);

/* Frees every entry (the multi's close). */
void http_hosts_free(http_hosts *t);

/* An idle connection of the host, the most recently used first; the host
 * keeps the entry while it has connections (http_host_conns). */
http_conn **http_host_idle(http_host *h);
/* Counts a connection of the host opened (+1) or closed (-1); the entry is
 * freed when nothing refers to it any more. */
void http_host_conns(http_hosts *t, http_host *h, int delta);

/* --- plain HTTP without curl (http_target.c, http_wire.c, http_reader.c, http_decode.c) --- */

/* Fills t from url when http_wire.c can serve it: http:// with a host of
 * ASCII (a user and password in it become Basic authorization, as curl
 * sends them); writes the URL as curl would to *eff_url
 * (malloc'd). Returns 0, or -1 (curl serves it then). */
int http_target_read(const char *url, http_target *t, char **eff_url);

/* Makes r->out, the request's bytes, from r->target, the method and the
 * "Name: value" header lines (curl's spellings: "Name:" drops a header the
 * request would send, "Name;" sends it empty). Returns 0, or -1 when out of memory. */
int http_target_request(http_req *r);

/* Starts r (admitted by its host) on an idle connection or a new one, or
 * queues it under max_connections; its end comes through r->transfer.over. */
void http_wire_start(http_req *r);

/* Reads again for r after its output file caught up (r->paused). */
void http_wire_resume(http_req *r);

/* Stops r: off its connection (closed: a response cut short cannot be
 * reused) or out of the queue. */
void http_wire_stop(http_req *r);

/* Closes idle connections, the least recently used first, until at most
 * `keep` are open (0: every idle one, at the engine's close). */
void http_wire_close_idle(http_multi *m, long keep);

typedef struct {
  /* The final response's head: lines are the header lines after the status
   * line. Returns 0, or -1 to stop (with the reader's code set). */
  int (*head)(void *ud, http_reader *rd, const char *lines, size_t len);
  int (*body)(void *ud, const char *data, size_t n); /* 0, or -1 to stop */
} http_reader_calls;

void http_reader_start(http_reader *rd, int head_only);
void http_reader_free(http_reader *rd);
/* Reads n more bytes. Returns how many it used (fewer than n only once the
 * response is complete), or -1 on failure (rd->code, rd->words). */
long http_reader_feed(http_reader *rd, const char *data, size_t n, const http_reader_calls *calls, void *ud);
int http_reader_done(const http_reader *rd);
/* Sets rd's failure (curl's code and words, for a callback that stops the
 * reading too) and returns -1. */
int http_reader_fail(http_reader *rd, CURLcode code, const char *words);
/* The connection ended: 0 when that completes the response, else -1 (rd->code). */
int http_reader_eof(http_reader *rd);

typedef int (*http_decoded_cb)(void *ud, const char *data, size_t n);
/* A decoder for a Content-Encoding value: 0 with *out (NULL for identity),
 * -1 for a coding it does not know, -2 out of memory. */
int http_decoder_new(const char *coding, size_t len, http_decoder **out);
/* Decodes n bytes to out. Returns 0, -1 for a corrupt stream, -2 when out
 * refused (or out of memory). */
int http_decoder_run(http_decoder *d, const char *in, size_t n, http_decoded_cb out, void *ud);
void http_decoder_free(http_decoder *d);

/* --- the output file (http_output.c) --- */

#define HTTP_SINK_HIGH (1024 * 1024) /* bytes waiting for the output file before pausing */
#define HTTP_OUTPUT_AT_ONCE (256 * 1024) /* a body up to this is written after the transfer, in one go */

/* The request has an output file: step(r) is called after every file
 * operation from now on (the part file opens once the body outgrows
 * HTTP_OUTPUT_AT_ONCE, or the whole body is written after the transfer). */
void http_output_begin(http_req *r, http_output_cb step);

/* Takes the body bytes curl hands over: kept for the next write, or refused
 * (CURL_WRITEFUNC_PAUSE) while HTTP_SINK_HIGH bytes wait. Returns what the
 * write callback returns. */
size_t http_output_take(http_req *r, char *data, size_t n);

/* Keeps the body bytes of http_wire.c, which cannot offer them again: 0, or
 * -1 when the file failed or memory ran out. Past HTTP_SINK_HIGH bytes
 * waiting it sets r->paused: the reading stops until http_output_can_take. */
int http_output_keep(http_req *r, const char *data, size_t n);

/* Are few enough bytes waiting for the file (or has it failed) that a
 * paused transfer may go on? */
int http_output_can_take(const http_req *r);

/* Moves the file on (writes while the transfer runs; then close, rename into
 * place or remove). Returns 1 while the request must wait (a file operation
 * in flight, or the transfer still running), 0 once the file is settled. */
int http_output_advance(http_req *r);

/* --- a session's cookie jar (http_cookies.c) --- */

/* cookie_jar(): a new jar, as a userdata (its __gc releases its reference).
 * Raises when out of memory. */
int http_cookies_new(lua_State *L);

/* The jar of the userdata at idx; raises for anything else. */
http_jar *http_cookies_check(lua_State *L, int idx);

/* Request r uses jar j: its easy handle shares j's cookies; r holds a
 * reference until http_cookies_detach (called by http_request_free). */
void http_cookies_attach(http_req *r, http_jar *j);
void http_cookies_detach(http_req *r);

/* --- the outcome (http_response.c, http_errors.c) --- */

/* The metatable of a response, and the field that holds its raw header lines
 * until res.headers is first read. */
#define HTTP_RESPONSE_MT "aqueue.http.response"
#define HTTP_RAW_HEADERS "_aq_raw_headers"

/* The response metatable's __index(res, key): "headers" made from the raw
 * lines on first use; else upvalue 1, the methods table. */
int http_response_index(lua_State *L);

/* header(res, name): one header's value as res.headers would give it (name
 * in lower case; repeated ones joined with ", ", folded lines unfolded), or
 * nil; read from the raw lines without making res.headers. */
int http_response_header(lua_State *L);

/* Resumes r->task with the response table, or with nil, err, code. */
void http_response_resume(http_req *r);

/* Resumes the task with nil, "CODE: description: url (curl's words)", CODE. */
void http_resume_curl_failure(http_req *r, aq_task *task);

/* Resumes the task with the output file's failure: "ENOSPC: cannot write
 * output file x.part: no space left on device". */
void http_resume_fs_failure(http_req *r, aq_task *task);

#endif
