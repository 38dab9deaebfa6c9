/*
 * curl_loop.c — libcurl's multi-socket API on libuv and nothing else: the
 * ceiling of any HTTP client built on curl this way, for the HTTP benchmark
 * (scripts/bench/http_client.lua prints it beside aqueue and wrk).
 *
 *   bench_curl_loop URL TASKS SECONDS CONNECTIONS
 *
 * TASKS easy handles each GET URL again as soon as the last answer is in,
 * for SECONDS, on at most CONNECTIONS connections; prints
 * "requests=N rate=R" (requests per second). The body is thrown away; no
 * option is set beyond the URL, the body callback and the caps, so this is
 * curl's own cost per transfer with its defaults.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static uv_loop_t *loop;
static CURLM *multi;
static uv_timer_t timer;
static long done_count;
static uint64_t stop_at_ms;

typedef struct {
  uv_poll_t poll;
  curl_socket_t fd;
} watched_socket;

static size_t discard(char *data, size_t size, size_t n, void *userp) {
  (void)data;
  (void)userp;
  return size * n;
}

/* Each finished transfer starts again until the time is up. */
static void collect_done(void) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL *easy = msg->easy_handle;
    curl_multi_remove_handle(multi, easy);
    done_count++;
    if (uv_now(loop) < stop_at_ms) curl_multi_add_handle(multi, easy);
    else curl_easy_cleanup(easy);
  }
}

static void on_poll(uv_poll_t *poll, int status, int events) {
  watched_socket *w = poll->data;
  int flags = status < 0 ? CURL_CSELECT_ERR : 0, running;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(multi, w->fd, flags, &running);
  collect_done();
}

static void on_timer(uv_timer_t *t) {
  (void)t;
  int running;
  curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
  collect_done();
}

static int on_curl_timer(CURLM *m, long ms, void *userp) {
  (void)m;
  (void)userp;
  if (ms < 0) uv_timer_stop(&timer);
  else uv_timer_start(&timer, on_timer, (uint64_t)ms, 0);
  return 0;
}

static void on_closed(uv_handle_t *handle) { free(handle->data); }

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)easy;
  (void)userp;
  watched_socket *w = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (w) {
      curl_multi_assign(multi, fd, NULL);
      uv_close((uv_handle_t *)&w->poll, on_closed);
    }
    return 0;
  }
  if (!w) {
    w = calloc(1, sizeof *w);
    if (!w || uv_poll_init_socket(loop, &w->poll, fd) != 0) {
      free(w);
      return -1;
    }
    w->fd = fd;
    w->poll.data = w;
    curl_multi_assign(multi, fd, w);
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&w->poll, events, on_poll);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s URL TASKS SECONDS CONNECTIONS\n", argv[0]);
    return 2;
  }
  const char *url = argv[1];
  int tasks = atoi(argv[2]);
  double seconds = atof(argv[3]);
  long connections = atol(argv[4]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  loop = uv_default_loop();
  uv_timer_init(loop, &timer);
  multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, connections);
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, connections);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, connections);
  uv_update_time(loop);
  uint64_t start_ms = uv_now(loop);
  stop_at_ms = start_ms + (uint64_t)(seconds * 1000);
  for (int i = 0; i < tasks; i++) {
    CURL *easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    curl_multi_add_handle(multi, easy);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_update_time(loop);
  double elapsed = (double)(uv_now(loop) - start_ms) / 1000.0;
  printf("requests=%ld rate=%.0f\n", done_count, (double)done_count / elapsed);
  curl_multi_cleanup(multi); /* closes the cached connections: their polls close */
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  curl_global_cleanup();
  return 0;
}
