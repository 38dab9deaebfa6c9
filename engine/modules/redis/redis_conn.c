/*
 * redis_conn.c — one connection of a client: the host resolved with
 * uv_getaddrinfo (hiredis's own resolver would block the loop), a hiredis
 * async context connected to the address found, our libuv adapter driving
 * it, and the handshake (AUTH, SELECT, PING) that makes it usable.
 *
 * Why an adapter of our own: the one hiredis 0.14 ships ignores a poll
 * handle's error status, and libuv reports a refused connect(2) exactly so
 * (it stops the handle and passes UV_EBADF): the context then waits forever.
 * Here an error status hands the socket to hiredis, which reads the error
 * (SO_ERROR, or read(2)) and ends the connection with it.
 */
#include <errno.h>
#include <stdio.h>

#include "redis.h"

/* --- the adapter: hiredis's event hooks on a uv_poll_t --- */

static void on_poll(uv_poll_t *handle, int status, int events) {
  redis_conn *conn = handle->data;
  if (status < 0) {
    /* libuv stopped the handle: let hiredis find the socket's error. Before
     * the connection is up its write handler checks SO_ERROR; after, a read
     * returns the error (or EOF). */
    if (!conn->ac) return;
    if (conn->ac->c.flags & REDIS_CONNECTED) redisAsyncHandleRead(conn->ac);
    else redisAsyncHandleWrite(conn->ac);
    if (conn->ac && conn->events) uv_poll_start(&conn->poll, conn->events, on_poll);
    return;
  }
  /* Each handler may end the context (conn->ac is then NULL). */
  if (conn->ac && (events & UV_READABLE)) redisAsyncHandleRead(conn->ac);
  if (conn->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(conn->ac);
}

/* hiredis calls these as often as it likes: only a change reaches libuv. */
static void watch(redis_conn *conn, int events) {
  if (events == conn->events) return;
  conn->events = events;
  if (events) uv_poll_start(&conn->poll, events, on_poll);
  else uv_poll_stop(&conn->poll);
}

static void add_read(void *data) {
  redis_conn *conn = data;
  watch(conn, conn->events | UV_READABLE);
}

static void del_read(void *data) {
  redis_conn *conn = data;
  watch(conn, conn->events & ~UV_READABLE);
}

static void add_write(void *data) {
  redis_conn *conn = data;
  watch(conn, conn->events | UV_WRITABLE);
}

static void del_write(void *data) {
  redis_conn *conn = data;
  watch(conn, conn->events & ~UV_WRITABLE);
}

static void on_conn_closed(uv_handle_t *handle) { free(handle->data); }

/* hiredis is freeing the context (after failing its pending commands, before
 * closing the socket): the end of the connection, whatever the cause. */
static void cleanup(void *data) {
  redis_conn *conn = data;
  redis_client *c = conn->client;
  const char *code = NULL, *text = NULL;
  if (c) redis_lost_reason(c, conn->ac, &code, &text);
  conn->ac = NULL;
  conn->client = NULL;
  uv_close((uv_handle_t *)&conn->poll, on_conn_closed);
  if (!c) return;
  c->conn = NULL;
  c->ev->conn_ended(c, code, text);
}

int redis_adapter_attach(redis_conn *conn, uv_loop_t *loop) {
  redisAsyncContext *ac = conn->ac;
  int err = uv_poll_init(loop, &conn->poll, ac->c.fd);
  if (err) return err;
  conn->poll.data = conn;
  /* An idle connection does not keep the loop alive: waiting tasks do
   * (redis_wait_begin). */
  uv_unref((uv_handle_t *)&conn->poll);
  ac->ev.data = conn;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  return 0;
}

/* --- why a connection ended --- */

/* libuv's name of an errno value ("ECONNREFUSED"), or `fallback`. */
static const char *errno_code(int e, const char *fallback) {
  if (e <= 0) return fallback;
  const char *name = uv_err_name(uv_translate_sys_error(e));
  return strncmp(name, "Unknown", 7) == 0 ? fallback : name;
}

/* A failed connect(2): hiredis has just read SO_ERROR into errno. */
static void on_connect(const redisAsyncContext *ac, int status) {
  redis_conn *conn = ac->data;
  if (status == REDIS_OK || conn->code[0]) return;
  snprintf(conn->code, sizeof conn->code, "%s", errno_code(errno, "ECONNREFUSED"));
  snprintf(conn->text, sizeof conn->text, "cannot connect to %s: %s", conn->client->name,
           aq_error_text(conn->code) ? aq_error_text(conn->code) : ac->errstr);
}

void redis_conn_drop(redis_client *c, const char *code, const char *text) {
  redis_conn *conn = c->conn;
  if (!conn || !conn->ac || conn->dropping) return;
  if (!conn->code[0]) {
    snprintf(conn->code, sizeof conn->code, "%s", code);
    snprintf(conn->text, sizeof conn->text, "%s", text);
  }
  conn->dropping = 1;
  /* Inside a reply callback hiredis only marks the context, and frees it
   * when the callback returns. */
  redisAsyncFree(conn->ac);
}

/* --- a connection attempt --- */

static void fail_attempt(redis_client *c, const char *code, const char *fmt, ...) AQ_PRINTF(3, 4);
static void fail_attempt(redis_client *c, const char *code, const char *fmt, ...) {
  char text[REDIS_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  c->ev->attempt_failed(c, code, text);
}

static void send_handshake(redis_client *c) {
  aq_buf *b = &c->scratch;
  aq_buf_reset(b);
  int n = 0, has_auth = c->password != NULL;
  if (has_auth) {
    redis_wire_begin(b, 2);
    redis_wire_arg(b, "AUTH", 4);
    redis_wire_arg(b, c->password, c->password_len);
    n++;
  }
  if (c->db != 0) {
    char db[16];
    int len = snprintf(db, sizeof db, "%d", c->db);
    redis_wire_begin(b, 2);
    redis_wire_arg(b, "SELECT", 6);
    redis_wire_arg(b, db, (size_t)len);
    n++;
  }
  /* Last, and always: the connection is usable once the server answers it
   * (a server still loading its data answers LOADING, and the attempt is
   * retried). */
  redis_wire_begin(b, 1);
  redis_wire_arg(b, "PING", 4);
  n++;
  redis_op *op = b->failed ? NULL : redis_op_new(c, REDIS_OP_HANDSHAKE, n);
  if (!op) {
    aq_buf_reset(b);
    fail_attempt(c, "ENOMEM", "out of memory connecting to %s", c->name);
    return;
  }
  op->has_auth = has_auth;
  int rc = redis_op_submit(op, b->data, b->len);
  aq_buf_reset(b);
  if (rc != 0) {
    redis_op_free(op);
    fail_attempt(c, "ENOMEM", "out of memory connecting to %s", c->name);
  }
}

/* Connects to `ip` (or the unix socket when NULL) and sends the handshake. */
static void open_context(redis_client *c, const char *ip) {
  errno = 0;
  redisAsyncContext *ac = ip ? redisAsyncConnect(ip, c->port) : redisAsyncConnectUnix(c->path);
  int err = errno;
  if (!ac) {
    fail_attempt(c, "ENOMEM", "out of memory connecting to %s", c->name);
    return;
  }
  if (ac->err) {
    /* connect(2) failed at once (a unix socket, or a refusal the kernel
     * knew right away). */
    const char *code = ac->err == REDIS_ERR_IO ? errno_code(err, "ECONNREFUSED") : "ECONNREFUSED";
    char why[128];
    snprintf(why, sizeof why, "%s", aq_error_text(code) ? aq_error_text(code) : ac->errstr);
    redisAsyncFree(ac);
    fail_attempt(c, code, "cannot connect to %s: %s", c->name, why);
    return;
  }
  redis_conn *conn = calloc(1, sizeof *conn);
  int uerr = conn ? (conn->ac = ac, conn->client = c, redis_adapter_attach(conn, c->loop)) : UV_ENOMEM;
  if (uerr != 0) {
    free(conn);
    redisAsyncFree(ac);
    fail_attempt(c, uv_err_name(uerr), "cannot watch the connection to %s: %s", c->name,
                                uv_strerror(uerr));
    return;
  }
  ac->data = conn;
  redisAsyncSetConnectCallback(ac, on_connect);
  c->conn = conn;
  send_handshake(c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  redis_client *c = req->data;
  c->resolving = 0;
  if (c->state == CLIENT_CLOSED || status == UV_ECANCELED) {
    uv_freeaddrinfo(res);
    c->ev->released(c);
    return;
  }
  if (status < 0) {
    fail_attempt(c, uv_err_name(status), "cannot resolve the host of %s: %s", c->name,
                                uv_strerror(status));
    return;
  }
  /* The first IPv4 address, else the first: what hiredis itself prefers. */
  const struct addrinfo *pick = res;
  for (const struct addrinfo *a = res; a; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
  }
  char ip[64] = "";
  if (pick->ai_family == AF_INET) uv_ip4_name((const struct sockaddr_in *)pick->ai_addr, ip, sizeof ip);
  else uv_ip6_name((const struct sockaddr_in6 *)pick->ai_addr, ip, sizeof ip);
  uv_freeaddrinfo(res);
  open_context(c, ip);
}

void redis_conn_start(redis_client *c) {
  if (c->path) {
    open_context(c, NULL);
    return;
  }
  char port[16];
  snprintf(port, sizeof port, "%d", c->port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  c->resolve.data = c;
  int err = uv_getaddrinfo(c->loop, &c->resolve, on_resolved, c->host, port, &hints);
  if (err) {
    fail_attempt(c, uv_err_name(err), "cannot resolve the host of %s: %s", c->name, uv_strerror(err));
    return;
  }
  c->resolving = 1;
}
