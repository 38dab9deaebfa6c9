/*
 * redis_client.c — one client's life: made by connect(), connecting,
 * connected, reconnecting after a drop with exponential backoff, closed.
 *
 *   connect() ──► CONNECTING ──handshake──► CONNECTED ──drop──► CONNECTING ...
 *                     │  attempt failed: connect() fails, or (later) retry
 *                     │  after backoff_min, x2 each time up to backoff_max
 *                     └──── close(), __gc, the engine's end ──► CLOSED
 *
 * Commands given while CONNECTING wait for the connection, each up to its
 * deadline (redis_commands.c). Who owns the client: redis.h.
 */
#include <math.h>
#include <stdio.h>

#include <lauxlib.h>

#include "redis.h"

/* --- the engine's list of clients --- */

static void list_add(redis_client_list *list, redis_client *c) {
  c->list = list;
  c->prev = NULL;
  c->next = list->head;
  if (list->head) list->head->prev = c;
  list->head = c;
}

static void list_remove(redis_client *c) {
  if (!c->list) return;
  if (c->prev) c->prev->next = c->next;
  else c->list->head = c->next;
  if (c->next) c->next->prev = c->prev;
  c->list = NULL;
}

/* --- making one --- */

static const char *opt_string(lua_State *L, int opts, const char *key, size_t *len, int required) {
  lua_getfield(L, opts, key);
  const char *s = lua_tolstring(L, -1, len);
  lua_pop(L, 1); /* the table keeps the string alive */
  if (!s && required) luaL_error(L, "aqueue.redis: connect option %s must be a string", key);
  return s;
}

static double opt_number(lua_State *L, int opts, const char *key, double dflt, double lo, double hi) {
  lua_getfield(L, opts, key);
  double d = lua_isnil(L, -1) ? dflt : lua_tonumber(L, -1);
  int ok = lua_isnil(L, -1) || lua_type(L, -1) == LUA_TNUMBER;
  lua_pop(L, 1);
  if (!ok || !(d >= lo && d <= hi)) luaL_error(L, "aqueue.redis: connect option %s must be a number from %g to %g", key, lo, hi);
  return d;
}

static char *copy(const char *s, size_t len) {
  if (!s) return NULL;
  char *d = malloc(len + 1);
  if (d) {
    memcpy(d, s, len);
    d[len] = '\0';
  }
  return d;
}

static void free_fields(redis_client *c) {
  free(c->name);
  free(c->host);
  free(c->path);
  free(c->password);
  aq_buf_free(&c->scratch);
}

static void on_backoff(uv_timer_t *timer) {
  redis_client *c = timer->data;
  if (c->state != CLIENT_CLOSED) redis_conn_start(c);
}

static void connected(redis_client *c);
static void attempt_failed(redis_client *c, const char *code, const char *text);
static void conn_ended(redis_client *c, const char *code, const char *text);
static void maybe_free(redis_client *c);

static const redis_client_events EVENTS = {
    .connected = connected,
    .attempt_failed = attempt_failed,
    .conn_ended = conn_ended,
    .drop = redis_conn_drop,
    .released = maybe_free,
};

redis_client *redis_client_new(lua_State *L, int opts, redis_client_list *list) {
  size_t name_len, host_len = 0, path_len = 0, pw_len = 0;
  const char *name = opt_string(L, opts, "name", &name_len, 1);
  const char *host = opt_string(L, opts, "host", &host_len, 0);
  const char *path = opt_string(L, opts, "path", &path_len, 0);
  const char *password = opt_string(L, opts, "password", &pw_len, 0);
  if (!host == !path) luaL_error(L, "aqueue.redis: connect needs a host or a path");
  double port = opt_number(L, opts, "port", 6379, 1, 65535);
  double db = opt_number(L, opts, "db", 0, 0, 1e6);
  double timeout = opt_number(L, opts, "timeout", 10, 0.001, 1e6);
  double backoff_min = opt_number(L, opts, "backoff_min", 0.1, 0, 3600);
  double backoff_max = opt_number(L, opts, "backoff_max", 2, backoff_min, 3600);
  lua_getfield(L, opts, "reconnect");
  int reconnect = lua_isnil(L, -1) || lua_toboolean(L, -1);
  lua_pop(L, 1);

  redis_client *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->name = copy(name, name_len);
  c->host = copy(host, host_len);
  c->path = copy(path, path_len);
  c->password = copy(password, pw_len);
  if (!c->name || (host && !c->host) || (path && !c->path) || (password && !c->password)) {
    free_fields(c);
    free(c);
    return NULL;
  }
  c->password_len = pw_len;
  c->port = (int)port;
  c->db = (int)db;
  c->timeout = timeout;
  c->reconnect = reconnect;
  c->backoff_min = c->backoff = backoff_min;
  c->backoff_max = backoff_max;
  c->engine = aq_engine_from_lua(L);
  c->loop = aq_engine_loop(c->engine);
  c->main = aq_engine_state(c->engine);
  c->connect_ref = c->self_ref = LUA_NOREF;
  c->ev = &EVENTS;
  c->state = CLIENT_CONNECTING;
  /* The three handles never keep the loop alive by themselves: keepalive is
   * referenced while a task waits. */
  uv_timer_init(c->loop, &c->deadline_timer);
  uv_timer_init(c->loop, &c->backoff_timer);
  uv_async_init(c->loop, &c->keepalive, NULL);
  c->deadline_timer.data = c->backoff_timer.data = c->keepalive.data = c;
  uv_unref((uv_handle_t *)&c->deadline_timer);
  uv_unref((uv_handle_t *)&c->backoff_timer);
  uv_unref((uv_handle_t *)&c->keepalive);
  c->handles_open = 3;
  list_add(list, c);
  aq_timer_start(&c->backoff_timer, on_backoff, 0);
  return c;
}

/* --- the connection's outcomes --- */

/* connect() is over: it returns the client, or fails. */
static void end_connect(redis_client *c, const char *code) {
  aq_task *task = c->connect_task;
  if (!task) return;
  c->connect_task = NULL;
  if (code) {
    aq_task_resume_failure(task, code, "%s", c->last_error);
  } else {
    lua_rawgeti(aq_task_state(task), LUA_REGISTRYINDEX, c->connect_ref);
    aq_task_resume(task, 1);
  }
  luaL_unref(c->main, LUA_REGISTRYINDEX, c->connect_ref);
  c->connect_ref = LUA_NOREF;
  redis_wait_end(c);
}

static void connected(redis_client *c) {
  c->state = CLIENT_CONNECTED;
  c->backoff = c->backoff_min;
  c->last_code[0] = c->last_error[0] = '\0';
  end_connect(c, NULL);
  redis_ops_send_waiting(c);
}

/* The next attempt, after the backoff. */
static void retry_later(redis_client *c) {
  c->state = CLIENT_CONNECTING;
  aq_timer_start(&c->backoff_timer, on_backoff, c->backoff);
  c->backoff = fmin(c->backoff * 2, c->backoff_max);
}

/* A connection attempt failed: connect() fails with code and text; later,
 * the client retries after its backoff (or closes without reconnect). */
static void attempt_failed(redis_client *c, const char *code, const char *text) {
  if (c->state == CLIENT_CLOSED) return;
  snprintf(c->last_code, sizeof c->last_code, "%s", code);
  snprintf(c->last_error, sizeof c->last_error, "%s", text);
  redis_conn_drop(c, c->last_code, c->last_error);
  if (c->connect_task) {
    /* The first connection: the caller decides what to do. */
    end_connect(c, c->last_code);
    redis_client_close(c);
  } else if (c->reconnect) {
    retry_later(c);
  } else {
    redis_client_close(c);
  }
}

/* An established connection is made again (or the client closes without
 * reconnect); a failed attempt was handled already. */
static void conn_ended(redis_client *c, const char *code, const char *text) {
  if (c->state == CLIENT_CONNECTED) {
    /* An established connection: its commands failed (ECONNRESET); the
     * next ones wait for a new one. */
    snprintf(c->last_code, sizeof c->last_code, "%s", code);
    snprintf(c->last_error, sizeof c->last_error, "%s", text);
    c->state = CLIENT_CONNECTING;
    if (c->reconnect) retry_later(c);
    else redis_client_close(c);
  }
  maybe_free(c);
}

/* --- the end --- */

static void on_handle_closed(uv_handle_t *handle) {
  redis_client *c = handle->data;
  c->handles_open--;
  maybe_free(c);
}

void redis_client_close(redis_client *c) {
  if (c->closing) return;
  c->closing = 1;
  c->state = CLIENT_CLOSED;
  char text[REDIS_ERROR_MAX];
  snprintf(text, sizeof text, "the client of %s was closed", c->name);
  if (c->connect_task) {
    snprintf(c->last_error, sizeof c->last_error, "%s", text);
    end_connect(c, "ECONNRESET");
  }
  redis_ops_fail_waiting(c, "ECONNRESET", text);
  redis_conn_drop(c, "ECONNRESET", text);
  if (c->resolving) uv_cancel((uv_req_t *)&c->resolve);
  uv_close((uv_handle_t *)&c->deadline_timer, on_handle_closed);
  uv_close((uv_handle_t *)&c->backoff_timer, on_handle_closed);
  uv_close((uv_handle_t *)&c->keepalive, on_handle_closed);
}

/* Frees the client when nothing holds it any more. */
static void maybe_free(redis_client *c) {
  if (c->handles_open > 0 || c->resolving || c->conn) return;
  list_remove(c);
  if (c->userdata_alive) return;
  free_fields(c);
  free(c);
}

void redis_client_release(redis_client *c) {
  c->userdata_alive = 0;
  redis_client_close(c);
  maybe_free(c);
}
