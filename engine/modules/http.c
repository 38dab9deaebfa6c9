/*
 * http.c — aqueue.http_core: HTTP(S) requests on libcurl's multi-socket API,
 * driven by the engine's libuv loop. lua/aqueue/http.lua checks the arguments
 * and gives the module its friendly shape; this file trusts little of it and
 * checks types again.
 *
 * The driver: one curl multi handle per engine (struct http_multi), created by
 * the first request or configure() and released by an engine close hook. curl
 * says which sockets to watch (on_curl_socket: one uv_poll_t per socket) and
 * when to be called back (on_curl_timer: one uv_timer_t); libuv reports what
 * happened (on_poll, on_timer -> curl_multi_socket_action), and collect_done()
 * picks up finished transfers. Nothing blocks the loop and this file starts no
 * thread. (curl runs getaddrinfo on a thread of its own for host names that are
 * neither IP literals nor "localhost"; it signals the loop through a socket.)
 * Connections stay in the multi's cache between requests and are reused, and
 * so are easy handles (a pool of EASY_POOL). The poll handles and the timer
 * never keep the loop alive; one idle uv_async_t does, while transfers run.
 *
 * A request (struct http_req) per yielding call. The body goes to memory or,
 * with `output`, to "<path>.part" through uv_fs_* on the thread pool, one write
 * at a time; the transfer pauses while more than SINK_HIGH bytes wait. When the
 * transfer succeeded the part file is renamed over the path; when it failed or
 * was cancelled, the part file is removed, so the path never holds a partial
 * body (and a file that was already there is kept).
 *
 * Ownership: l_request allocates the request; this file owns it until
 * free_req(). Exactly one of finish() (the task resumes with the response or
 * nil, err, code) or cancel_request() (the engine cancelled the task) ends the
 * task's part. After a cancel the request may outlive the task while a
 * uv_fs request is in flight (those cannot be recalled): the fs callback then
 * closes and removes the part file and frees it.
 */
#include <dlfcn.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <lauxlib.h>

#include "aqueue.h"

#define DEFAULT_MAX_TOTAL 100 /* connections, all hosts together */
#define DEFAULT_MAX_HOST 16   /* connections to one host */
#define MAX_REDIRECTS 20
#define SINK_HIGH (1024 * 1024) /* bytes waiting for the output file before pausing */
#define DEADLINE_GRACE_MS 20    /* the deadline timer lets curl's own timeout go first */

#define STR_(x) #x
#define STR(x) STR_(x)
#define USER_AGENT                                                                        \
  "aqueue/" STR(AQUEUE_VERSION_MAJOR) "." STR(AQUEUE_VERSION_MINOR) "." STR(AQUEUE_VERSION_PATCH)

/* ---------------------------------------------------------------------------
 * A growable byte buffer. */

typedef struct {
  char *data;
  size_t len, cap;
} bytes;

/* Appends n bytes. Returns 0, or -1 when out of memory (b is unchanged). */
static int bytes_append(bytes *b, const char *p, size_t n) {
  if (n > b->cap - b->len) {
    size_t cap = b->cap ? b->cap : 16384;
    while (cap - b->len < n) {
      if (cap > SIZE_MAX / 2) return -1;
      cap *= 2;
    }
    char *data = realloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static void bytes_free(bytes *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* ---------------------------------------------------------------------------
 * The multi handle and its libuv driver. */

typedef struct http_sock http_sock;

#define EASY_POOL 64 /* idle easy handles kept for the next requests */

typedef struct {
  CURLM *multi;
  uv_loop_t *loop;
  uv_timer_t timer;     /* curl's timeout */
  uv_async_t keepalive; /* referenced while transfers run, never sent */
  http_sock **socks;    /* by fd: every poll handle made, watching or parked */
  size_t socks_len;
  int active;  /* transfers in the multi */
  int closing; /* handles of the struct still closing */
  CURL *pool[EASY_POOL];
  int npool;
} http_multi;

/* A socket curl asked us to watch. curl stops watching a connection's socket
 * at the end of each transfer and asks again for the next one on the same
 * connection: the handle is then stopped and kept (parked) under its fd for
 * that, which saves a malloc, an ioctl and most epoll_ctl calls per request.
 * A parked handle whose socket curl has closed does no harm: a stopped poll
 * watches nothing, the kernel drops a closed fd from epoll, and when the fd
 * number comes back for another curl socket the handle serves that one.
 * Handles close with the multi; their close callback frees them. */
struct http_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  http_multi *m;
};

/* The module's per-engine state: a Lua userdata in the registry, so it lives
 * until lua_close, which comes after the close hook. */
typedef struct {
  http_multi *m; /* NULL until first used, and again once the engine closed it */
  int closed;
  long max_total, max_host;
} http_state;

static char state_key; /* its address is the registry key of the http_state */

static void collect_done(http_multi *m);

static void on_poll(uv_poll_t *poll, int status, int events) {
  http_sock *s = poll->data;
  http_multi *m = s->m;
  int flags = 0;
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  int running;
  curl_multi_socket_action(m->multi, s->fd, flags, &running);
  collect_done(m);
}

/* The handle for fd: the parked one, or a new one. NULL when out of memory
 * or when libuv refuses the fd. */
static http_sock *sock_for(http_multi *m, curl_socket_t fd) {
  if (fd < 0) return NULL;
  if ((size_t)fd < m->socks_len && m->socks[fd]) return m->socks[fd];
  if ((size_t)fd >= m->socks_len) {
    size_t len = m->socks_len ? m->socks_len : 64;
    while (len <= (size_t)fd) len *= 2;
    http_sock **socks = realloc(m->socks, len * sizeof *socks);
    if (!socks) return NULL;
    memset(socks + m->socks_len, 0, (len - m->socks_len) * sizeof *socks);
    m->socks = socks;
    m->socks_len = len;
  }
  http_sock *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  if (uv_poll_init_socket(m->loop, &s->poll, fd) != 0) {
    free(s);
    return NULL;
  }
  uv_unref((uv_handle_t *)&s->poll); /* the loop stays alive by m->keepalive */
  s->poll.data = s;
  s->fd = fd;
  s->m = m;
  m->socks[fd] = s;
  return s;
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching socket fd. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)easy;
  http_multi *m = userp;
  http_sock *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      curl_multi_assign(m->multi, fd, NULL);
      uv_poll_stop(&s->poll); /* parked: curl closes the socket, or asks again */
    }
    return 0;
  }
  if (!s) {
    s = sock_for(m, fd);
    if (!s) return -1;
    curl_multi_assign(m->multi, fd, s);
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

static void on_sock_closed(uv_handle_t *handle) { free(handle->data); }

static void on_timer(uv_timer_t *timer) {
  http_multi *m = timer->data;
  int running;
  curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  collect_done(m);
}

/* CURLMOPT_TIMERFUNCTION: call curl back in timeout_ms (-1: never). curl may
 * not be called from here, so 0 ms also goes through the timer. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  http_multi *m = userp;
  if (timeout_ms < 0) uv_timer_stop(&m->timer);
  else aq_timer_start(&m->timer, on_timer, (double)timeout_ms / 1000.0);
  return 0;
}

static void set_limits(http_multi *m, const http_state *st) {
  curl_multi_setopt(m->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, st->max_total);
  curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, st->max_host);
  /* Keep as many idle connections as may be open at once (0: curl's default). */
  curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, st->max_total);
}

/* The multi handle of the engine, created on first use. Raises on failure. */
static http_multi *get_multi(lua_State *L, http_state *st) {
  if (st->m) return st->m;
  if (st->closed) {
    luaL_error(L, "aqueue.http: the engine is shutting down");
    return NULL;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    luaL_error(L, "aqueue.http: libcurl failed to initialize");
    return NULL;
  }
  http_multi *m = calloc(1, sizeof *m);
  CURLM *multi = m ? curl_multi_init() : NULL;
  uv_loop_t *loop = aq_engine_loop(aq_engine_from_lua(L));
  if (!multi || uv_async_init(loop, &m->keepalive, NULL) != 0) {
    if (multi) curl_multi_cleanup(multi);
    free(m);
    curl_global_cleanup();
    luaL_error(L, "aqueue.http: out of memory");
    return NULL;
  }
  m->multi = multi;
  m->loop = loop;
  m->keepalive.data = m;
  uv_unref((uv_handle_t *)&m->keepalive);
  uv_timer_init(loop, &m->timer);
  m->timer.data = m;
  uv_unref((uv_handle_t *)&m->timer);
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, m);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, m);
  set_limits(m, st);
  st->m = m;
  return m;
}

/* Both handles inside the struct must be closed before it is freed. */
static void on_multi_handle_closed(uv_handle_t *handle) {
  http_multi *m = handle->data;
  if (--m->closing == 0) free(m);
}

/* The engine's close hook: every task was cancelled, so no transfer is left
 * in the multi. Closes the cached connections, then every uv handle; the
 * last close callback frees the struct. */
static void on_engine_close(aq_engine *engine, void *data) {
  (void)engine;
  http_state *st = data;
  http_multi *m = st->m;
  st->m = NULL;
  st->closed = 1;
  if (!m) return;
  for (int i = 0; i < m->npool; i++) curl_easy_cleanup(m->pool[i]);
  m->npool = 0;
  curl_multi_cleanup(m->multi); /* may still call on_curl_socket / on_curl_timer */
  m->multi = NULL;
  for (size_t fd = 0; fd < m->socks_len; fd++)
    if (m->socks[fd]) uv_close((uv_handle_t *)&m->socks[fd]->poll, on_sock_closed);
  free(m->socks);
  m->socks = NULL;
  m->socks_len = 0;
  m->closing = 2;
  uv_close((uv_handle_t *)&m->keepalive, on_multi_handle_closed);
  uv_close((uv_handle_t *)&m->timer, on_multi_handle_closed);
  curl_global_cleanup();
}

/* The module's state for the engine running L, created on first use. */
static http_state *get_state(lua_State *L) {
  lua_pushlightuserdata(L, &state_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  http_state *st = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (st) return st;
  st = lua_newuserdata(L, sizeof *st);
  memset(st, 0, sizeof *st);
  st->max_total = DEFAULT_MAX_TOTAL;
  st->max_host = DEFAULT_MAX_HOST;
  if (aq_engine_on_close(aq_engine_from_lua(L), on_engine_close, st) != 0) {
    luaL_error(L, "aqueue.http: out of memory");
    return NULL;
  }
  lua_pushlightuserdata(L, &state_key);
  lua_insert(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);
  return st;
}

/* ---------------------------------------------------------------------------
 * One request. */

typedef struct {
  CURL *easy;
  http_multi *m;
  uv_loop_t *loop;
  aq_task *task; /* NULL once resumed or cancelled */
  struct curl_slist *headers;
  char *url;            /* a copy, for error messages */
  uv_timer_t *deadline; /* with a timeout, until the transfer is over */
  uint64_t start_ns;
  char errbuf[CURL_ERROR_SIZE]; /* this request's alone: a pooled easy handle must not show an earlier request's words */
  CURLcode code;      /* the transfer's outcome, once done */
  unsigned in_multi : 1;
  unsigned done : 1;      /* the transfer is over (or never started) */
  unsigned cancelled : 1; /* the task is gone */
  unsigned paused : 1;    /* the body callback asked curl to pause */
  bytes body;             /* the response body, without output */
  /* With output: */
  char *path, *part; /* NULL without output */
  uv_fs_t fs;
  unsigned fs_busy : 1;     /* fs is in flight */
  unsigned part_exists : 1; /* the part file was created and not removed/renamed */
  uv_file fd;               /* -1 when not open */
  bytes pending;            /* received, not yet handed to a write */
  bytes inflight;           /* being written, from inflight_off */
  size_t inflight_off;
  int64_t offset;      /* of the next write in the file */
  int fs_error;        /* the first libuv error of the output file, or 0 */
  const char *fs_what; /* what failed: "open", "write", ... */
} http_req;

static void advance(http_req *r);

static void on_deadline_closed(uv_handle_t *handle) { free(handle); }

static void deadline_close(http_req *r) {
  if (!r->deadline) return;
  uv_close((uv_handle_t *)r->deadline, on_deadline_closed);
  r->deadline = NULL;
}

/* Frees the request. Its easy handle goes back to the pool when it ran to
 * the end (a cancelled request has none left). */
static void free_req(http_req *r) {
  if (r->easy) {
    http_multi *m = r->m;
    if (m->npool < EASY_POOL) {
      curl_easy_reset(r->easy); /* options only: caches and connections stay */
      m->pool[m->npool++] = r->easy;
    } else {
      curl_easy_cleanup(r->easy);
    }
  }
  deadline_close(r);
  curl_slist_free_all(r->headers);
  free(r->url);
  bytes_free(&r->body);
  bytes_free(&r->pending);
  bytes_free(&r->inflight);
  free(r->path);
  free(r->part);
  free(r);
}

/* The loop stays alive while transfers run, and only then: idle connections
 * in the cache must not keep the engine from seeing that nothing is left. */
static void multi_remove(http_req *r) {
  http_multi *m = r->m;
  curl_multi_remove_handle(m->multi, r->easy);
  r->in_multi = 0;
  deadline_close(r);
  if (--m->active == 0) uv_unref((uv_handle_t *)&m->keepalive);
}

/* Starts the transfer. Returns 0, or a CURLMcode. */
static int multi_add(http_req *r) {
  http_multi *m = r->m;
  CURLMcode rc = curl_multi_add_handle(m->multi, r->easy);
  if (rc != CURLM_OK) return rc;
  r->in_multi = 1;
  if (m->active++ == 0) uv_ref((uv_handle_t *)&m->keepalive);
  return 0;
}

static void collect_done(http_multi *m) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(m->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL *easy = msg->easy_handle;
    CURLcode code = msg->data.result; /* msg dies with the removal */
    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    http_req *r = (http_req *)priv;
    multi_remove(r);
    r->done = 1;
    r->code = code;
    advance(r);
  }
}

/* The request's timeout passed and curl has not ended the transfer: curl 7.88
 * does not time out a transfer that waits for a free connection (over the
 * max_connections / max_per_host caps). End it here, as curl would. */
static void on_deadline(uv_timer_t *timer) {
  http_req *r = timer->data;
  if (!r->in_multi) return;
  curl_off_t connect = 0, lookup = 0;
  curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T, &connect);
  curl_easy_getinfo(r->easy, CURLINFO_NAMELOOKUP_TIME_T, &lookup);
  multi_remove(r);
  r->done = 1;
  r->code = CURLE_OPERATION_TIMEDOUT;
  snprintf(r->errbuf, sizeof r->errbuf, "Operation timed out after %llu milliseconds%s",
           (unsigned long long)((uv_hrtime() - r->start_ns) / 1000000),
           connect == 0 && lookup == 0 ? " waiting for a free connection" : "");
  advance(r);
}

/* --- the output file ------------------------------------------------------ */

static void set_fs_error(http_req *r, int err, const char *what) {
  if (r->fs_error) return;
  r->fs_error = err;
  r->fs_what = what;
}

static void on_fs(uv_fs_t *fs);

/* Hands the next received bytes to a write, when there are some. */
static void write_next(http_req *r) {
  if (r->inflight_off == r->inflight.len) {
    if (r->pending.len == 0) return;
    bytes t = r->inflight; /* swap: the emptied buffer receives the next bytes */
    r->inflight = r->pending;
    r->pending = t;
    r->pending.len = 0;
    r->inflight_off = 0;
  }
  uv_buf_t buf = uv_buf_init(r->inflight.data + r->inflight_off,
                             (unsigned int)(r->inflight.len - r->inflight_off));
  int err = uv_fs_write(r->loop, &r->fs, r->fd, &buf, 1, r->offset, on_fs);
  if (err) set_fs_error(r, err, "write");
  else r->fs_busy = 1;
}

static void fs_close(http_req *r) {
  int err = uv_fs_close(r->loop, &r->fs, r->fd, on_fs);
  if (!err) {
    r->fs_busy = 1;
    return;
  }
  set_fs_error(r, err, "close");
  r->fd = -1;
}

static void fs_rename(http_req *r) {
  int err = uv_fs_rename(r->loop, &r->fs, r->part, r->path, on_fs);
  if (err) set_fs_error(r, err, "rename");
  else r->fs_busy = 1;
}

static void fs_unlink(http_req *r) {
  if (uv_fs_unlink(r->loop, &r->fs, r->part, on_fs) == 0) r->fs_busy = 1;
  else r->part_exists = 0; /* nothing more can be done about it */
}

static int start_transfer(http_req *r);

static void on_fs(uv_fs_t *fs) {
  http_req *r = fs->data;
  ssize_t result = fs->result;
  uv_fs_type type = fs->fs_type;
  uv_fs_req_cleanup(fs);
  r->fs_busy = 0;
  switch (type) {
  case UV_FS_OPEN:
    if (result < 0) {
      set_fs_error(r, (int)result, "open");
      r->done = 1;
    } else {
      r->fd = (uv_file)result;
      r->part_exists = 1;
      if (!r->cancelled && start_transfer(r) == 0) return;
    }
    break;
  case UV_FS_WRITE:
    if (result <= 0) {
      set_fs_error(r, result < 0 ? (int)result : UV_EIO, "write");
    } else {
      r->inflight_off += (size_t)result;
      r->offset += result;
      if (r->inflight_off == r->inflight.len) r->inflight.len = r->inflight_off = 0;
    }
    break;
  case UV_FS_CLOSE:
    r->fd = -1;
    if (result < 0) set_fs_error(r, (int)result, "close");
    break;
  case UV_FS_RENAME:
    if (result < 0) set_fs_error(r, (int)result, "rename");
    else r->part_exists = 0;
    break;
  case UV_FS_UNLINK:
    r->part_exists = 0;
    break;
  default:
    break;
  }
  advance(r);
}

static int has_unwritten(const http_req *r) {
  return r->pending.len > 0 || r->inflight_off < r->inflight.len;
}

/* --- the outcome ----------------------------------------------------------- */

/* The code of a failed transfer (README "I/O failures"). CURLINFO_OS_ERRNO
 * is read for a failed connect only: curl sets it then and keeps it in the
 * easy handle, which the pool reuses, so for any other failure it may be an
 * earlier request's (a timeout would say "connection refused"). */
static const char *failure_code(const http_req *r) {
  switch (r->code) {
  case CURLE_COULDNT_CONNECT: {
    long os_errno = 0;
    curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
    if (os_errno == EHOSTUNREACH) return "EHOSTUNREACH";
    if (os_errno == ENETUNREACH) return "ENETUNREACH";
    if (os_errno == ETIMEDOUT) return "ETIMEDOUT";
    return "ECONNREFUSED";
  }
  case CURLE_OPERATION_TIMEDOUT:
    return "ETIMEDOUT";
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return "EAI_NONAME";
  case CURLE_UNSUPPORTED_PROTOCOL:
    return "EPROTONOSUPPORT";
  case CURLE_URL_MALFORMAT:
    return "EINVAL";
  case CURLE_TOO_MANY_REDIRECTS:
    return AQ_EREDIRECTS;
  case CURLE_PEER_FAILED_VERIFICATION: /* also CURLE_SSL_CACERT */
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_ISSUER_ERROR:
    return AQ_ECERT;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_SHUTDOWN_FAILED:
  case CURLE_SSL_CLIENTCERT:
  case CURLE_USE_SSL_FAILED:
    return AQ_ETLS;
  case CURLE_SEND_ERROR: /* the connection broke, or ended before the whole response */
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
    return "ECONNRESET";
  case CURLE_WEIRD_SERVER_REPLY: /* the server does not speak valid HTTP */
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_BAD_CONTENT_ENCODING:
    return "EPROTO";
  case CURLE_OUT_OF_MEMORY:
  case CURLE_WRITE_ERROR: /* on_body refuses bytes when out of memory (a file error is the fs's) */
    return "ENOMEM";
  default:
    return AQ_EHTTP;
  }
}

/* The URL a failure is about: where the transfer was when it failed (after
 * redirects), else the one asked for. */
static const char *failure_url(const http_req *r) {
  char *url = NULL;
  if (r->easy) curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
  return url && url[0] ? url : r->url;
}

/* Resumes the task with nil, "CODE: description: url (curl's words)", CODE.
 * curl's words are its error code's text and, when it wrote one, the
 * request's own error buffer. */
static void resume_curl_failure(http_req *r, aq_task *task) {
  const char *code = failure_code(r);
  const char *what = curl_easy_strerror(r->code);
  char *detail = r->errbuf;
  size_t n = strlen(detail);
  while (n > 0 && (detail[n - 1] == '\n' || detail[n - 1] == '\r')) detail[--n] = '\0';
  const char *sep = ": ";
  if (n == 0) sep = detail = "";
  else if (strstr(detail, what)) what = sep = "";
  const char *desc = aq_error_text(code); /* every code above has one */
  aq_task_resume_failure(task, code, "%s: %s (%s%s%s)", desc ? desc : "failed", failure_url(r), what, sep, detail);
}

/* Resumes the task with the output file's failure: "ENOSPC: cannot write
 * output file x.part: no space left on device". */
static void resume_fs_failure(http_req *r, aq_task *task) {
  const char *code = uv_err_name(r->fs_error);
  if (strcmp(r->fs_what, "rename") == 0)
    aq_task_resume_failure(task, code, "cannot rename %s to %s: %s", r->part, r->path, uv_strerror(r->fs_error));
  else
    aq_task_resume_failure(task, code, "cannot %s output file %s: %s", r->fs_what, r->path, uv_strerror(r->fs_error));
}

/* Pushes the response headers of the last response (after redirects) as a
 * table with lower-case keys, repeated headers joined with ", ". */
static void push_headers(lua_State *T, CURL *easy) {
  lua_newtable(T);
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

/* The task resumes with the response, or with nil, err, code; frees the request. */
static void finish(http_req *r) {
  aq_task *task = r->task;
  r->task = NULL;
  if (r->code != CURLE_OK && !(r->code == CURLE_WRITE_ERROR && r->fs_error)) {
    resume_curl_failure(r, task);
  } else if (r->fs_error) {
    resume_fs_failure(r, task);
  } else {
    lua_State *T = aq_task_state(task);
    lua_checkstack(T, 8);
    lua_createtable(T, 0, 5);
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    lua_pushinteger(T, status);
    lua_setfield(T, -2, "status");
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
    aq_task_resume(task, 1);
  }
  free_req(r);
}

/* Moves the request on after any event: a write or other fs step done, the
 * transfer done, the task cancelled. Ends with finish() or free_req() once
 * nothing is in flight. */
static void advance(http_req *r) {
  if (r->fs_busy) return;
  if (r->path && !r->done && !r->cancelled) { /* the transfer runs */
    if (!r->fs_error && has_unwritten(r)) write_next(r);
    if (r->paused && (r->fs_error || r->pending.len < SINK_HIGH)) {
      r->paused = 0;
      curl_easy_pause(r->easy, CURLPAUSE_CONT); /* may call on_body at once */
    }
    return;
  }
  if (r->path) {
    int ok = !r->cancelled && r->code == CURLE_OK && !r->fs_error;
    if (ok && has_unwritten(r)) {
      write_next(r);
      if (r->fs_busy) return;
    }
    if (r->fd >= 0) {
      fs_close(r);
      if (r->fs_busy) return;
    }
    ok = !r->cancelled && r->code == CURLE_OK && !r->fs_error;
    if (ok && r->part_exists) {
      fs_rename(r);
      if (r->fs_busy) return;
    }
    if (r->part_exists) {
      fs_unlink(r);
      if (r->fs_busy) return;
    }
  }
  if (r->cancelled) free_req(r);
  else finish(r);
}

/* The engine cancelled the task: stop the transfer; the request is freed now,
 * or by the fs callback when a file operation is in flight. */
static void cancel_request(aq_task *task, void *data) {
  (void)task;
  http_req *r = data;
  r->task = NULL;
  r->cancelled = 1;
  if (r->in_multi) multi_remove(r);
  deadline_close(r);
  /* The easy handle goes now: the request may outlive the engine's curl (a
   * file operation in flight), and curl_global_cleanup may come first. */
  curl_easy_cleanup(r->easy);
  r->easy = NULL;
  advance(r);
}

/* CURLOPT_WRITEFUNCTION: the body, to memory or to the output file. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userp) {
  http_req *r = userp;
  size_t n = size * nmemb;
  if (!r->path) return bytes_append(&r->body, data, n) == 0 ? n : 0;
  if (r->fs_error) return 0; /* curl fails the transfer */
  if (r->pending.len >= SINK_HIGH) {
    r->paused = 1; /* curl keeps these bytes and offers them again */
    return CURL_WRITEFUNC_PAUSE;
  }
  if (bytes_append(&r->pending, data, n) != 0) return 0;
  if (!r->fs_busy) write_next(r);
  return n;
}

/* Adds the transfer to the multi. Returns 0; or -1 after marking the request
 * done with an error (the caller then advances it). */
static int start_transfer(http_req *r) {
  int rc = multi_add(r);
  if (rc == 0) return 0;
  r->done = 1;
  r->code = CURLE_FAILED_INIT;
  snprintf(r->errbuf, sizeof r->errbuf, "%s", curl_multi_strerror((CURLMcode)rc));
  return -1;
}

/* ---------------------------------------------------------------------------
 * Lua functions. */

/* A field of the options table at index 1: a value of type `type` or nil
 * (when `required` is 0). Leaves it on the stack. Raises otherwise. */
static int check_field(lua_State *L, const char *field, int type, int required) {
  lua_getfield(L, 1, field);
  int t = lua_type(L, -1);
  if (t == type || (t == LUA_TNIL && !required)) return t;
  return luaL_error(L, "aqueue.http_core.request: field '%s' must be a %s, got %s", field,
                    lua_typename(L, type), lua_typename(L, t));
}

static void set_method(CURL *easy, const char *method, const char *body, size_t body_len) {
  if (!body && strcmp(method, "GET") == 0) {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    return;
  }
  if (!body && strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    return;
  }
  if (body || strcmp(method, "POST") == 0) {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, body ? body : "");
  }
  if (strcmp(method, "POST") != 0) curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
}

/* request{ method =, url =, headers = { "Name: value", ... }, body =, timeout =,
 * follow_redirects =, output = } (checked and normalized by aqueue.http):
 * yields until the response is in, then returns { status, headers, body, url,
 * elapsed } (no body with output), or nil, err, code. Raises on misuse. */
static int l_request(lua_State *L) {
  aq_task *task = aq_task_current(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  int top = lua_gettop(L);
  check_field(L, "method", LUA_TSTRING, 1);
  const char *method = lua_tostring(L, -1);
  check_field(L, "url", LUA_TSTRING, 1);
  size_t url_len;
  const char *url = lua_tolstring(L, -1, &url_len);
  int headers_idx = check_field(L, "headers", LUA_TTABLE, 0) == LUA_TNIL ? 0 : lua_gettop(L);
  size_t nheaders = headers_idx ? lua_objlen(L, headers_idx) : 0;
  for (size_t i = 1; i <= nheaders; i++) {
    lua_rawgeti(L, headers_idx, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "aqueue.http_core.request: headers[%d] must be a string", (int)i);
    lua_pop(L, 1);
  }
  size_t body_len = 0;
  const char *body = check_field(L, "body", LUA_TSTRING, 0) == LUA_TNIL ? NULL : lua_tolstring(L, -1, &body_len);
  double timeout = 0;
  if (check_field(L, "timeout", LUA_TNUMBER, 0) != LUA_TNIL) {
    timeout = lua_tonumber(L, -1);
    if (!(timeout > 0)) return luaL_error(L, "aqueue.http_core.request: timeout must be positive");
  }
  int follow = check_field(L, "follow_redirects", LUA_TBOOLEAN, 0) == LUA_TNIL || lua_toboolean(L, -1);
  size_t output_len = 0;
  const char *output = check_field(L, "output", LUA_TSTRING, 0) == LUA_TNIL ? NULL : lua_tolstring(L, -1, &output_len);
  if (output && (output_len == 0 || strlen(output) != output_len))
    return luaL_error(L, "aqueue.http_core.request: output must be a file path");

  http_multi *m = get_multi(L, get_state(L));
  http_req *r = calloc(1, sizeof *r);
  if (!r) return luaL_error(L, "aqueue.http: out of memory");
  r->m = m;
  r->loop = m->loop;
  r->fd = -1;
  r->fs.data = r;
  r->start_ns = uv_hrtime();
  r->easy = m->npool > 0 ? m->pool[--m->npool] : curl_easy_init();
  r->url = malloc(url_len + 1);
  if (!r->easy || !r->url) goto oom;
  memcpy(r->url, url, url_len + 1);
  for (size_t i = 1; i <= nheaders; i++) {
    lua_rawgeti(L, headers_idx, (int)i);
    struct curl_slist *list = curl_slist_append(r->headers, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!list) goto oom;
    r->headers = list;
  }
  if (output) {
    r->path = strdup(output);
    r->part = malloc(output_len + sizeof ".part");
    if (!r->path || !r->part) goto oom;
    memcpy(r->part, output, output_len);
    memcpy(r->part + output_len, ".part", sizeof ".part");
  }

  CURL *easy = r->easy;
  curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)r);
  r->errbuf[0] = '\0'; /* curl writes it only when the transfer fails */
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
  /* Removing a transfer whose name is still being resolved must not wait for
   * curl's resolver thread: it finishes and frees itself on its own. */
  curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
#endif
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, ""); /* every decoding curl has */
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
  curl_easy_setopt(easy, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, USER_AGENT);
  long timeout_ms = 0;
  if (timeout > 0) {
    double ms = ceil(timeout * 1000.0);
    timeout_ms = ms >= 1e12 ? (long)1e12 : (long)ms;
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    r->deadline = malloc(sizeof *r->deadline);
    if (!r->deadline) goto oom;
    uv_timer_init(r->loop, r->deadline);
    r->deadline->data = r;
    uv_unref((uv_handle_t *)r->deadline);
  }
  if (r->headers) curl_easy_setopt(easy, CURLOPT_HTTPHEADER, r->headers);
  set_method(easy, method, body, body_len);
  if (strlen(url) != url_len || curl_easy_setopt(easy, CURLOPT_URL, url) != CURLE_OK) {
    free_req(r);
    lua_settop(L, top);
    return aq_push_failure(L, "EINVAL", "%s: %s (%s)", aq_error_text("EINVAL"), url, curl_easy_strerror(CURLE_URL_MALFORMAT));
  }

  int err;
  if (output) {
    err = uv_fs_open(r->loop, &r->fs, r->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666, on_fs);
    if (err == 0) r->fs_busy = 1;
  } else {
    err = multi_add(r);
  }
  if (err != 0) {
    free_req(r);
    lua_settop(L, top);
    if (output)
      return aq_push_failure(L, uv_err_name(err), "cannot open output file %s: %s", output, uv_strerror(err));
    const char *code = err == CURLM_OUT_OF_MEMORY ? "ENOMEM" : AQ_EHTTP;
    return aq_push_failure(L, code, "%s: %s (%s)", aq_error_text(code), url, curl_multi_strerror((CURLMcode)err));
  }
  r->task = task;
  if (r->deadline) aq_timer_start(r->deadline, on_deadline, timeout + DEADLINE_GRACE_MS / 1000.0);
  lua_settop(L, top);
  return aq_task_yield(L, cancel_request, r);

oom:
  free_req(r);
  return luaL_error(L, "aqueue.http: out of memory");
}

/* configure(max_total, max_host): sets the connection caps (nil keeps one;
 * 0 means no limit); returns both as they now are. */
static int l_configure(lua_State *L) {
  http_state *st = get_state(L);
  for (int i = 1; i <= 2; i++) {
    if (lua_isnoneornil(L, i)) continue;
    lua_Number n = luaL_checknumber(L, i);
    if (!(n >= 0 && n <= 1e9) || n != floor(n))
      return luaL_argerror(L, i, "a whole number from 0 (no limit) to 1e9 expected");
    if (i == 1) st->max_total = (long)n;
    else st->max_host = (long)n;
  }
  if (st->m) set_limits(st->m, st);
  lua_pushinteger(L, st->max_total);
  lua_pushinteger(L, st->max_host);
  return 2;
}

/* require("aqueue.http_core"): this file is built as its own loadable
 * module (see CMakeLists.txt), so libcurl is loaded only by scripts that use
 * HTTP. */
AQ_EXPORT int luaopen_aqueue_http_core(lua_State *L);

/* Keeps this module (and libcurl with the libraries it pulls in) loaded until
 * the process ends: Lua unloads C modules when the state closes, and
 * unloading TLS and Kerberos libraries after curl_global_cleanup leaves what
 * they allocated once at load time looking leaked. */
static void pin_module(void) {
  Dl_info info;
  if (dladdr((void *)luaopen_aqueue_http_core, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

AQ_EXPORT int luaopen_aqueue_http_core(lua_State *L) {
  AQ_MODULE_CHECK(L, "aqueue.http_core");
  pin_module();
  static const luaL_Reg functions[] = {
      {"request", l_request},
      {"configure", l_configure},
      {NULL, NULL},
  };
  lua_newtable(L);
  luaL_register(L, NULL, functions);
  lua_pushstring(L, curl_version());
  lua_setfield(L, -2, "curl_version");
  return 1;
}
