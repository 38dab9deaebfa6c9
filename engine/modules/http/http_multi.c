/*
 * http_multi.c — the driver: one curl multi handle per engine, on the
 * engine's libuv loop.
 *
 * Created by the first request or configure() and released by an engine
 * close hook. curl says which sockets to watch (on_curl_socket: one uv_poll_t
 * per socket) and when to be called back (on_curl_timer: one uv_timer_t);
 * libuv reports what happened (on_poll, on_timer -> curl_multi_socket_action),
 * and collect_done() hands finished transfers to their requests. Nothing
 * blocks the loop and this file starts no thread. Connections stay in the
 * multi's cache between requests and are reused, and so are easy handles (a
 * pool of HTTP_EASY_POOL). The poll handles and the timer never keep the loop
 * alive; one idle uv_async_t does, while transfers run. The multi also holds
 * http_wire.c's flush handle (a uv_prepare_t, unreferenced too), made and
 * closed here with the others.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "http.h"

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

static char state_key; /* its address is the registry key of the http_state */

/* Hands every finished transfer to its owner. */
static void collect_done(http_multi *m) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(m->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURLcode code = msg->data.result; /* msg dies with the removal */
    char *priv = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    http_transfer *t = (http_transfer *)priv;
    t->over(t->data, code);
  }
}

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

void http_multi_set_limits(http_multi *m, const http_state *st) {
  m->max_host = st->max_host;
  m->max_total = st->max_total;
  if (m->max_total > 0) http_wire_close_idle(m, m->max_total); /* a lower cap holds at once */
  curl_multi_setopt(m->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, st->max_total);
  curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, st->max_host);
  /* Keep as many idle connections as may be open at once (0: curl's default). */
  curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, st->max_total);
}

/* Does the environment name a proxy that curl would use for http://?
 * (http_proxy, or all_proxy; curl reads the lower-case http_proxy only.)
 * Then every request goes to curl, which honours it and no_proxy. */
static int proxy_in_environment(void) {
  static const char *names[] = { "http_proxy", "all_proxy", "ALL_PROXY" };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *v = getenv(names[i]);
    if (v && v[0]) return 1;
  }
  return 0;
}

http_multi *http_multi_get(lua_State *L, http_state *st) {
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
  m->wire_off = proxy_in_environment();
  m->keepalive.data = m;
  uv_unref((uv_handle_t *)&m->keepalive);
  uv_timer_init(loop, &m->timer);
  m->timer.data = m;
  uv_unref((uv_handle_t *)&m->timer);
  /* The loop's time waiting for events, which http_wire.c reads (its only
   * cost: an epoll_wait without a timeout before each one that waits). */
  uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
  m->busy_since_ms = uv_now(loop);
  m->busy_idle_ns = uv_metrics_idle_time(loop);
  uv_prepare_init(loop, &m->flush);
  m->flush.data = m;
  uv_unref((uv_handle_t *)&m->flush);
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, m);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, m);
  http_multi_set_limits(m, st);
  st->m = m;
  return m;
}

/* The loop stays alive while transfers run, and only then: idle connections
 * in the cache must not keep the engine from seeing that nothing is left. */
CURLMcode http_multi_add(http_multi *m, CURL *easy) {
  CURLMcode rc = curl_multi_add_handle(m->multi, easy);
  if (rc != CURLM_OK) return rc;
  http_multi_busy(m, +1);
  return CURLM_OK;
}

void http_multi_remove(http_multi *m, CURL *easy) {
  curl_multi_remove_handle(m->multi, easy);
  http_multi_busy(m, -1);
}

CURL *http_easy_take(http_multi *m, int *ready) {
  if (m->npool == 0) {
    *ready = 0;
    return curl_easy_init();
  }
  m->npool--;
  *ready = m->pool_ready[m->npool];
  return m->pool[m->npool];
}

void http_easy_give_back(http_multi *m, CURL *easy, int ready) {
  if (m->npool < HTTP_EASY_POOL) {
    if (!ready) {
      curl_easy_reset(easy); /* options only: caches and connections stay */
    } else { /* no pointer into the freed request stays with the idle handle */
      curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
      curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
      curl_easy_setopt(easy, CURLOPT_WRITEDATA, NULL);
      curl_easy_setopt(easy, CURLOPT_HEADERDATA, NULL);
      curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
    }
    m->pool_ready[m->npool] = (unsigned char)ready;
    m->pool[m->npool++] = easy;
  } else {
    curl_easy_cleanup(easy);
  }
}

/* The three handles inside the struct (timer, keepalive, flush), and every
 * connection of http_wire.c, must be gone before it is freed. */
static void on_multi_handle_closed(uv_handle_t *handle) { http_multi_unref(handle->data); }

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
  m->shutting = 1;
  http_wire_close_idle(m, 0); /* (the busy ones closed with their cancelled requests) */
  http_hosts_free(&m->hosts); /* (empty: every request was cancelled, every connection closed) */
  curl_multi_cleanup(m->multi); /* may still call on_curl_socket / on_curl_timer */
  m->multi = NULL;
  for (size_t fd = 0; fd < m->socks_len; fd++)
    if (m->socks[fd]) uv_close((uv_handle_t *)&m->socks[fd]->poll, on_sock_closed);
  free(m->socks);
  m->socks = NULL;
  m->socks_len = 0;
  m->closing += 3;
  uv_close((uv_handle_t *)&m->flush, on_multi_handle_closed);
  uv_close((uv_handle_t *)&m->keepalive, on_multi_handle_closed);
  uv_close((uv_handle_t *)&m->timer, on_multi_handle_closed);
  curl_global_cleanup();
}

http_state *http_state_get(lua_State *L) {
  http_state *st = aq_module_state(L, &state_key, sizeof *st, on_engine_close);
  if (!st->made) {
    st->made = 1;
    st->max_total = HTTP_DEFAULT_MAX_TOTAL;
    st->max_host = HTTP_DEFAULT_MAX_HOST;
  }
  return st;
}
