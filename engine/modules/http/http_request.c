/*
 * http_request.c — one request's life: made from request()'s options, sent
 * the engine's own way (http_wire.c: plain-HTTP GET and HEAD) or curl's (its
 * easy handle set up), started, fed by the body callbacks, ended by the
 * transfer, by its deadline or by the engine's cancel, and freed once
 * nothing of it is in flight (see the ownership note in http.h). A redirect
 * the wire read goes on here: on the wire again, or with curl from there.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define MAX_REDIRECTS 20
#define DEADLINE_GRACE_MS 20 /* the deadline timer lets curl's own timeout go first (the wire has none) */

static void on_deadline_closed(uv_handle_t *handle) { free(handle); }

static void deadline_close(http_req *r) {
  if (!r->deadline) return;
  uv_close((uv_handle_t *)r->deadline, on_deadline_closed);
  r->deadline = NULL;
}

static void leave_host(http_req *r);

void http_request_free(http_req *r) {
  if (r->host) leave_host(r); /* (every end of a transfer leaves it already) */
  http_cookies_detach(r);
  if (r->easy) http_easy_give_back(r->m, r->easy, r->easy_ready);
  deadline_close(r);
  curl_slist_free_all(r->headers);
  free(r->url);
  free(r->target.path);
  free(r->target.auth);
  free(r->eff_url);
  free(r->redirect_to);
  aq_buf_free(&r->out);
  http_decoder_free(r->decoder);
  aq_buf_free(&r->body);
  aq_buf_free(&r->head);
  aq_buf_free(&r->pending);
  aq_buf_free(&r->inflight);
  free(r->path);
  free(r->part);
  free(r);
}

static void advance(http_req *r);

/* Puts the transfer into the multi. Returns CURLM_OK or curl's error. */
static CURLMcode enter_multi(http_req *r) {
  CURLMcode rc = http_multi_add(r->m, r->easy);
  if (rc == CURLM_OK) r->in_multi = 1;
  return rc;
}

/* A request its host admitted after waiting goes into the multi, or, when
 * curl refuses it, ends with that error. */
static void start_admitted(http_req *r) {
  if (r->wire) {
    http_wire_start(r);
    return;
  }
  CURLMcode rc = enter_multi(r);
  if (rc == CURLM_OK) return;
  leave_host(r);
  r->done = 1;
  r->code = CURLE_FAILED_INIT;
  snprintf(r->errbuf, sizeof r->errbuf, "%s", curl_multi_strerror(rc));
  advance(r);
}

/* r no longer counts at its host (its transfer ended, or it stopped
 * waiting): the requests waiting there start, as many as the cap allows. */
static void leave_host(http_req *r) {
  http_host *h = r->host;
  http_host_leave(r);
  http_req *next;
  while ((next = http_host_next(&r->m->hosts, h, r->m->max_host))) start_admitted(next);
}

/* Takes the transfer out of the multi, or out of its host's queue; its
 * deadline is no longer needed. */
static void stop_transfer(http_req *r) {
  if (r->in_multi) {
    http_multi_remove(r->m, r->easy);
    r->in_multi = 0;
  }
  http_wire_stop(r);
  if (r->host) leave_host(r);
  deadline_close(r);
}

static CURLMcode add_transfer(http_req *r);
static int start_transfer(http_req *r);
static int set_up_easy(http_req *r, const http_options *o);

/* Ends the request with curl's code and words before its transfer starts
 * (or again). */
static void end_early(http_req *r, CURLcode code, const char *words) {
  r->done = 1;
  r->code = code;
  snprintf(r->errbuf, sizeof r->errbuf, "%s", words);
  advance(r);
}

/* A response of http_wire.c was a redirect to r->redirect_to: the request
 * goes on there, by http_wire.c again when that is plain HTTP, else by curl
 * (https), which follows the redirects still allowed and refuses what it
 * does not serve. */
static void follow_redirect(http_req *r) {
  char *url = r->redirect_to;
  r->redirect_to = NULL;
  if (++r->redirects > MAX_REDIRECTS) {
    free(url);
    char words[64];
    snprintf(words, sizeof words, "Maximum (%d) redirects followed", MAX_REDIRECTS);
    end_early(r, CURLE_TOO_MANY_REDIRECTS, words);
    return;
  }
  free(r->eff_url);
  free(r->target.path);
  free(r->target.auth);
  r->eff_url = r->target.path = r->target.auth = NULL;
  aq_buf_reset(&r->head);
  r->host_key_len = http_host_key(url, r->host_key, sizeof r->host_key);
  if (r->host_key_len && http_target_read(url, &r->target, &r->eff_url) == 0) {
    free(url);
    if (http_target_request(r) != 0) {
      end_early(r, CURLE_OUT_OF_MEMORY, "out of memory");
      return;
    }
  } else { /* to curl, from here on */
    r->wire = 0;
    int ready;
    r->easy = http_easy_take(r->m, &ready);
    if (!r->easy) {
      free(url);
      end_early(r, CURLE_OUT_OF_MEMORY, "out of memory");
      return;
    }
    r->easy_ready = (unsigned)ready;
    double left = r->timeout - (double)(uv_hrtime() - r->start_ns) / 1e9;
    http_options o = {
        .method = r->head_only ? "HEAD" : "GET",
        .url = url,
        .url_len = strlen(url),
        .timeout = r->timeout > 0 ? (left > 0.001 ? left : 0.001) : 0,
        .max_body = (double)r->max_body,
        .follow_redirects = 1,
    };
    int rc = set_up_easy(r, &o);
    r->easy_ready = 0; /* (MAXREDIRS differs: reset when it goes back) */
    curl_easy_setopt(r->easy, CURLOPT_MAXREDIRS, (long)(MAX_REDIRECTS - r->redirects));
    if (rc != HTTP_NEW_OK) {
      end_early(r, rc == HTTP_NEW_BAD_URL ? CURLE_URL_MALFORMAT : CURLE_OUT_OF_MEMORY, url);
      free(url);
      return;
    }
    free(url);
  }
  if (start_transfer(r) != 0) advance(r);
}

/* curl ended the transfer with `code` (the multi's http_transfer callback):
 * the request takes it out of the multi and moves on. */
static void on_transfer_over(void *data, CURLcode code) {
  http_req *r = data;
  stop_transfer(r);
  if (code == CURLE_OK && r->redirect_to) {
    follow_redirect(r);
    return;
  }
  r->done = 1;
  r->code = code;
  advance(r);
}

/* Adds the transfer to the multi, or, for a plain-HTTP host with
 * max_per_host transfers running, to that host's queue (http_hosts.c), from
 * which it starts when one of them ends. Returns CURLM_OK or curl's error. */
static CURLMcode add_transfer(http_req *r) {
  http_host *h = r->host_key_len ? http_host_get(&r->m->hosts, r->host_key, r->host_key_len) : NULL;
  if (r->wire && !h) return CURLM_OUT_OF_MEMORY;
  if (h && !http_host_admit(h, r, r->m->max_host)) return CURLM_OK; /* waits */
  if (r->wire) {
    http_wire_start(r);
    return CURLM_OK;
  }
  CURLMcode rc = enter_multi(r);
  if (rc != CURLM_OK && r->host) leave_host(r);
  return rc;
}

/* Adds the transfer to the multi once the output file is open. Returns 0; or
 * -1 after marking the request done with an error (the caller then advances
 * it). */
static int start_transfer(http_req *r) {
  CURLMcode rc = add_transfer(r);
  if (rc == CURLM_OK) return 0;
  r->done = 1;
  r->code = CURLE_FAILED_INIT;
  snprintf(r->errbuf, sizeof r->errbuf, "%s", curl_multi_strerror(rc));
  return -1;
}

/* The request's timeout passed and curl has not ended the transfer: curl 7.88
 * does not time out a transfer that waits for a free connection (over the
 * max_connections / max_per_host caps). End it here, as curl would. */
static void on_deadline(uv_timer_t *timer) {
  http_req *r = timer->data;
  if (!r->in_multi && !r->waiting && !r->in_wire) return;
  /* waiting: in its host's queue, in the wire's, or in curl's own */
  int no_connection = r->waiting || r->wire_waiting;
  if (r->in_multi) {
    curl_off_t connect = 0, lookup = 0;
    curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T, &connect);
    curl_easy_getinfo(r->easy, CURLINFO_NAMELOOKUP_TIME_T, &lookup);
    no_connection = connect == 0 && lookup == 0;
  }
  stop_transfer(r);
  r->done = 1;
  r->code = CURLE_OPERATION_TIMEDOUT;
  snprintf(r->errbuf, sizeof r->errbuf, "Operation timed out after %llu milliseconds%s",
           (unsigned long long)((uv_hrtime() - r->start_ns) / 1000000),
           no_connection ? " waiting for a free connection" : "");
  advance(r);
}

/* Moves the request on after any event: a write or other fs step done, the
 * transfer done, the task cancelled. Ends with the task resumed and the
 * request freed once nothing is in flight. */
static void advance(http_req *r) {
  if (r->fs_busy) return;
  if (r->path && http_output_advance(r)) {
    if (r->paused && http_output_can_take(r)) { /* the file caught up: the transfer goes on */
      r->paused = 0;
      if (r->in_multi) curl_easy_pause(r->easy, CURLPAUSE_CONT); /* may call on_body at once */
      else http_wire_resume(r);
    }
    return;
  }
  if (!r->cancelled) http_response_resume(r);
  http_request_free(r);
}

/* The engine cancelled the task: stop the transfer; the request is freed now,
 * or by the fs callback when a file operation is in flight. */
static void cancel_request(aq_task *task, void *data) {
  (void)task;
  http_req *r = data;
  r->task = NULL;
  r->cancelled = 1;
  stop_transfer(r);
  /* The easy handle goes now: the request may outlive the engine's curl (a
   * file operation in flight), and curl_global_cleanup may come first. */
  curl_easy_cleanup(r->easy);
  r->easy = NULL;
  advance(r);
}

/* CURLOPT_WRITEFUNCTION: the body, to memory or to the output file. Past
 * max_body the transfer fails (curl stops reading it and closes the
 * connection) before the bytes are kept. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userp) {
  http_req *r = userp;
  size_t n = size * nmemb;
  r->received += (curl_off_t)n;
  if (r->max_body > 0 && r->received > r->max_body) {
    r->too_big = 1;
    return 0;
  }
  if (r->path) return http_output_take(r, data, n);
  aq_buf_add(&r->body, data, n);
  return r->body.failed ? 0 : n; /* 0: curl fails the transfer (ENOMEM) */
}

/* CURLOPT_HEADERFUNCTION: keeps the header lines of the last response. curl
 * hands over those of every response (a redirect's, a 100 Continue, a
 * proxy's CONNECT answer) each after its status line, and a chunked body's
 * trailers after the blank line that ends the headers: a status line starts
 * the lines again, the blank line closes them. */
static size_t on_header(char *data, size_t size, size_t nitems, void *userp) {
  http_req *r = userp;
  size_t n = size * nitems;
  if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
    aq_buf_reset(&r->head);
    r->head_open = 1;
  } else if (r->head_open) {
    if (data[0] == '\r' || data[0] == '\n') r->head_open = 0;
    else aq_buf_add(&r->head, data, n);
  }
  return r->head.failed ? 0 : n; /* 0: curl fails the transfer (ENOMEM) */
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

/* Copies what the request keeps of its options: the URL (for messages), the
 * header list, the output paths. Returns 0, or -1 when out of memory. */
static int copy_options(lua_State *L, http_req *r, const http_options *o) {
  r->url = malloc(o->url_len + 1);
  if (!r->url) return -1;
  memcpy(r->url, o->url, o->url_len + 1);
  for (size_t i = 1; i <= o->nheaders; i++) {
    lua_rawgeti(L, o->headers_idx, (int)i);
    struct curl_slist *list = curl_slist_append(r->headers, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!list) return -1;
    r->headers = list;
  }
  if (o->output) {
    r->path = strdup(o->output);
    r->part = malloc(o->output_len + sizeof ".part");
    if (!r->path || !r->part) return -1;
    memcpy(r->part, o->output, o->output_len);
    memcpy(r->part + o->output_len, ".part", sizeof ".part");
  }
  return 0;
}

/* The deadline timer of a request with a timeout (started when the task
 * waits). Returns 0, or -1 when out of memory. */
static int make_deadline(http_req *r) {
  r->deadline = malloc(sizeof *r->deadline);
  if (!r->deadline) return -1;
  uv_timer_init(r->loop, r->deadline);
  r->deadline->data = r;
  uv_unref((uv_handle_t *)r->deadline);
  return 0;
}

/* The options every request sets alike: kept by a handle that goes back to
 * the pool without a reset (http_easy_give_back), so set only on a new or a
 * reset one. curl_easy_reset and these cost 6k instructions a request. */
static void set_fixed_options(CURL *easy) {
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
  /* Removing a transfer whose name is still being resolved must not wait for
   * curl's resolver thread: it finishes and frees itself on its own. */
  curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
#endif
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, ""); /* every decoding curl has */
  /* HTTP/2 over TLS when the server offers it (ALPN), HTTP/1.1 otherwise;
   * curl 7.88's default, said here so no build of curl differs. */
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  /* (redirects too: curl follows none to a protocol this leaves out, so a
   * CURLOPT_REDIR_PROTOCOLS_STR of its own would only cost its parse, 2k
   * instructions a request) */
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, HTTP_USER_AGENT);
}

/* Sets the easy handle's options for request r. Returns HTTP_NEW_OK, or
 * HTTP_NEW_NO_MEMORY, or HTTP_NEW_BAD_URL when curl refuses the URL. */
static int set_up_easy(http_req *r, const http_options *o) {
  CURL *easy = r->easy;
  if (!r->easy_ready) set_fixed_options(easy);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)&r->transfer);
  r->errbuf[0] = '\0'; /* curl writes it only when the transfer fails */
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, o->follow_redirects ? 1L : 0L);
  long timeout_ms = 0; /* (0: none) */
  if (o->timeout > 0) {
    double ms = ceil(o->timeout * 1000.0);
    timeout_ms = ms >= 1e12 ? (long)1e12 : ms < 1 ? 1 : (long)ms;
  }
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
  /* A Content-Length above the limit fails before the body is read; the
   * body callback counts the decoded bytes of any other. (0: no limit) */
  r->max_body = o->max_body > 0 ? (curl_off_t)o->max_body : 0;
  curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, r->max_body);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, r->headers);
  /* Options the next request would have to undo: the handle is reset when
   * it goes back to the pool (http_request_free). */
  int plain_get = !o->body && strcmp(o->method, "GET") == 0;
  r->easy_ready = plain_get && !o->ca_file && !o->proxy && !o->jar;
  if (o->ca_file) curl_easy_setopt(easy, CURLOPT_CAINFO, o->ca_file); /* curl copies it */
  if (o->proxy) curl_easy_setopt(easy, CURLOPT_PROXY, o->proxy);
  if (o->jar) http_cookies_attach(r, o->jar);
  set_method(easy, o->method, o->body, o->body_len);
  if (strlen(o->url) != o->url_len || curl_easy_setopt(easy, CURLOPT_URL, o->url) != CURLE_OK)
    return HTTP_NEW_BAD_URL;
  return HTTP_NEW_OK;
}

int http_request_new(lua_State *L, http_multi *m, const http_options *o, http_req **out) {
  *out = NULL;
  http_req *r = calloc(1, sizeof *r);
  if (!r) return HTTP_NEW_NO_MEMORY;
  r->m = m;
  r->transfer.over = on_transfer_over;
  r->transfer.data = r;
  r->loop = m->loop;
  r->fd = -1;
  r->fs.data = r;
  r->timeout = o->timeout;
  r->start_ns = uv_hrtime();
  r->max_body = o->max_body > 0 ? (curl_off_t)o->max_body : 0;
  r->follow = o->follow_redirects ? 1 : 0;
  r->head_only = strcmp(o->method, "HEAD") == 0;
  if (!o->proxy) r->host_key_len = http_host_key(o->url, r->host_key, sizeof r->host_key);
  /* Plain-HTTP GET and HEAD go to http_wire.c, the rest to curl. */
  r->wire = r->host_key_len && !m->wire_off && !o->body && (r->head_only || strcmp(o->method, "GET") == 0) &&
            !o->jar && !o->ca_file && strlen(o->url) == o->url_len &&
            http_target_read(o->url, &r->target, &r->eff_url) == 0;
  int rc = HTTP_NEW_NO_MEMORY;
  if (copy_options(L, r, o) != 0 || (o->timeout > 0 && make_deadline(r) != 0)) {
    rc = HTTP_NEW_NO_MEMORY;
  } else if (r->wire) {
    rc = http_target_request(r) == 0 ? HTTP_NEW_OK : HTTP_NEW_NO_MEMORY;
  } else {
    int ready = 0;
    r->easy = http_easy_take(m, &ready);
    r->easy_ready = (unsigned)ready;
    if (r->easy) rc = set_up_easy(r, o);
  }
  if (rc != HTTP_NEW_OK) {
    http_request_free(r);
    return rc;
  }
  *out = r;
  return HTTP_NEW_OK;
}

/* A step of the output file is done: the request moves on. */
static void on_output_step(http_req *r) { advance(r); }

int http_request_start(http_req *r) {
  if (r->path) http_output_begin(r, on_output_step);
  return (int)add_transfer(r);
}

int http_request_wait(lua_State *L, http_req *r, aq_task *task) {
  r->task = task;
  if (r->deadline)
    aq_timer_start(r->deadline, on_deadline, r->timeout + (r->wire ? 0 : DEADLINE_GRACE_MS / 1000.0));
  return aq_task_yield(L, cancel_request, r);
}
