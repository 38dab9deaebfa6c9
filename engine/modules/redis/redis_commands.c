/*
 * redis_commands.c — commands on a client: the wire format, the two queues
 * (sent to hiredis, in reply order; waiting for a connection), replies handed
 * to the waiting task, deadlines and cancel. Who owns an op: redis.h.
 */
#include <math.h>
#include <stdio.h>
#include <strings.h>

#include <lauxlib.h>

#include "redis.h"

/* --- the wire format --- */

/* hiredis switches a context into pub/sub or monitor mode when it sees these,
 * which this client does not handle: refused up front. */
static const char *const UNSUPPORTED[] = {"subscribe", "psubscribe", "ssubscribe", "unsubscribe",
                                          "punsubscribe", "sunsubscribe", "monitor"};

static void refuse_unsupported(lua_State *L, const char *name, size_t len) {
  for (size_t i = 0; i < sizeof UNSUPPORTED / sizeof UNSUPPORTED[0]; i++) {
    if (len == strlen(UNSUPPORTED[i]) && strncasecmp(name, UNSUPPORTED[i], len) == 0)
      luaL_error(L, "aqueue.redis: %s is not supported (no pub/sub or monitor mode in this client)",
                 UNSUPPORTED[i]);
  }
}

/* An argument as bytes: a string as is, a number as Redis reads numbers
 * (whole numbers without exponent, so 1e15 goes out as 1000000000000000). */
static const char *argument(lua_State *L, int i, size_t *len, char *num, size_t num_size) {
  int t = lua_type(L, i);
  if (t == LUA_TSTRING) return lua_tolstring(L, i, len);
  if (t != LUA_TNUMBER) {
    luaL_error(L, "aqueue.redis: command arguments must be strings or numbers, got %s", lua_typename(L, t));
    return NULL;
  }
  double d = lua_tonumber(L, i);
  int n = (d == floor(d) && fabs(d) < 9.2e18) ? snprintf(num, num_size, "%lld", (long long)d)
                                              : snprintf(num, num_size, "%.17g", d);
  *len = (size_t)n;
  return num;
}

void redis_wire_begin(aq_buf *b, int argc) { aq_buf_printf(b, "*%d\r\n", argc); }

void redis_wire_arg(aq_buf *b, const char *s, size_t len) {
  aq_buf_printf(b, "$%zu\r\n", len);
  aq_buf_add(b, s, len);
  aq_buf_add(b, "\r\n", 2);
}

void redis_format_command(lua_State *L, aq_buf *b, int first, int last) {
  if (last < first) luaL_error(L, "aqueue.redis: a command needs at least its name");
  redis_wire_begin(b, last - first + 1);
  for (int i = first; i <= last; i++) {
    char num[32];
    size_t len;
    const char *s = argument(L, i, &len, num, sizeof num);
    if (i == first) refuse_unsupported(L, s, len);
    redis_wire_arg(b, s, len);
  }
}

/* The length of the first command of the wire format in s (as written by
 * redis_format_command). */
static size_t command_length(const char *s) {
  const char *p = s + 1;
  long argc = strtol(p, (char **)&p, 10);
  p += 2;
  for (long i = 0; i < argc; i++) {
    long len = strtol(p + 1, (char **)&p, 10);
    p += 2 + len + 2;
  }
  return (size_t)(p - s);
}

/* --- the queues --- */

static void sent_push(redis_client *c, redis_op *op) {
  op->next = NULL;
  if (c->sent_tail) c->sent_tail->next = op;
  else c->sent_head = op;
  c->sent_tail = op;
}

static void sent_pop(redis_client *c) {
  redis_op *op = c->sent_head;
  c->sent_head = op->next;
  if (!c->sent_head) c->sent_tail = NULL;
}

static void wait_push(redis_client *c, redis_op *op) {
  op->next = NULL;
  if (c->wait_tail) c->wait_tail->next = op;
  else c->wait_head = op;
  c->wait_tail = op;
}

static void wait_unlink(redis_client *c, redis_op *op) {
  redis_op **p = &c->wait_head, *prev = NULL;
  while (*p && *p != op) {
    prev = *p;
    p = &(*p)->next;
  }
  if (!*p) return;
  *p = op->next;
  if (c->wait_tail == op) c->wait_tail = prev;
}

redis_op *redis_op_new(redis_client *c, redis_op_kind kind, int expected) {
  redis_op *op = calloc(1, sizeof *op);
  if (!op) return NULL;
  op->client = c;
  op->kind = kind;
  op->expected = expected;
  op->results_ref = LUA_NOREF;
  op->deadline = uv_hrtime() + (uint64_t)(c->timeout * 1e9);
  return op;
}

void redis_op_free(redis_op *op) {
  if (op->results_ref != LUA_NOREF) luaL_unref(op->client->main, LUA_REGISTRYINDEX, op->results_ref);
  aq_buf_free(&op->commands);
  free(op);
}

/* --- outcomes --- */

/* The op's task stops waiting: it was resumed, or it is gone. */
static void op_release_task(redis_op *op) {
  if (!op->task) return;
  op->task = NULL;
  redis_wait_end(op->client);
}

static void op_fail(redis_op *op, const char *code, const char *text) {
  if (op->over) return;
  op->over = 1;
  if (op->kind == REDIS_OP_HANDSHAKE) {
    op->client->ev->attempt_failed(op->client, code, text);
    return;
  }
  if (!op->task) return;
  aq_task_resume_failure(op->task, code, "%s", text);
  op_release_task(op);
}

/* Handshake replies: AUTH, SELECT, PING, in that order (the first two only
 * when asked for). The first error ends the attempt. */
static void handshake_reply(redis_op *op, const redisReply *r, int index) {
  if (r->type == REDIS_REPLY_ERROR) {
    int auth = (op->has_auth && index == 1) || strncmp(r->str, "NOAUTH", 6) == 0 ||
               strncmp(r->str, "WRONGPASS", 9) == 0;
    char text[REDIS_ERROR_MAX];
    snprintf(text, sizeof text, "%s %s: %.*s", auth ? "authentication failed on" : "the server refused the connection on",
             op->client->name, (int)(r->len < 200 ? r->len : 200), r->str);
    op_fail(op, auth ? AQ_EAUTH : AQ_EREDIS, text);
    return;
  }
  if (index == op->expected) {
    op->over = 1;
    op->client->ev->connected(op->client);
  }
}

static void call_reply(redis_op *op, const redisReply *r) {
  op->over = 1;
  if (!op->task) return;
  lua_State *L = aq_task_state(op->task);
  if (r->type == REDIS_REPLY_ERROR) {
    aq_task_resume_failure(op->task, AQ_EREDIS, "%s", r->str);
  } else {
    redis_push_reply(L, r, 0);
    aq_task_resume(op->task, 1);
  }
  op_release_task(op);
}

static void pipeline_reply(redis_op *op, const redisReply *r, int index) {
  if (!op->task) return;
  lua_State *L = aq_task_state(op->task);
  lua_rawgeti(L, LUA_REGISTRYINDEX, op->results_ref);
  redis_push_reply(L, r, 1);
  lua_rawseti(L, -2, index);
  if (index < op->expected) {
    lua_pop(L, 1);
    return;
  }
  op->over = 1;
  aq_task_resume(op->task, 1); /* the list, left on the stack */
  op_release_task(op);
}

/* hiredis's reply callback: exactly once per command sent, with its reply, or
 * with NULL when the connection ends first. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  redis_op *op = privdata;
  redis_client *c = op->client;
  int index = ++op->received;
  if (!reply) {
    const char *code, *text;
    redis_lost_reason(c, ac, &code, &text);
    op_fail(op, code, text);
  } else if (!op->over) {
    switch (op->kind) {
    case REDIS_OP_HANDSHAKE: handshake_reply(op, reply, index); break;
    case REDIS_OP_CALL: call_reply(op, reply); break;
    case REDIS_OP_PIPELINE: pipeline_reply(op, reply, index); break;
    }
  }
  if (op->received == op->expected) {
    /* Replies come in the order of the commands: this op is the oldest. */
    sent_pop(c);
    redis_op_free(op);
  }
}

/* --- sending --- */

/* Hands op's commands to hiredis. Returns 0, or -1 when hiredis refused the
 * first one (nothing sent). A refusal after the first cannot happen: hiredis
 * refuses only a context that is being freed, and nothing frees it here. */
static int send_commands(redis_client *c, redis_op *op, const char *wire, size_t len) {
  redisAsyncContext *ac = c->conn->ac;
  size_t off = 0;
  for (int i = 0; i < op->expected && off < len; i++) {
    size_t n = command_length(wire + off);
    if (redisAsyncFormattedCommand(ac, on_reply, op, wire + off, n) != REDIS_OK) return i == 0 ? -1 : 0;
    if (i == 0) {
      op->sent = 1;
      sent_push(c, op);
    }
    off += n;
  }
  return 0;
}

int redis_op_submit(redis_op *op, const char *wire, size_t len) {
  redis_client *c = op->client;
  int ready = c->conn && c->conn->ac && !c->conn->dropping &&
              (c->state == CLIENT_CONNECTED || op->kind == REDIS_OP_HANDSHAKE);
  if (ready) {
    if (send_commands(c, op, wire, len) != 0) return -1;
  } else {
    aq_buf_add(&op->commands, wire, len);
    if (op->commands.failed) return -1;
    wait_push(c, op);
  }
  redis_ops_arm_deadline(c);
  return 0;
}

void redis_ops_send_waiting(redis_client *c) {
  while (c->wait_head && c->state == CLIENT_CONNECTED) {
    redis_op *op = c->wait_head;
    c->wait_head = op->next;
    if (!c->wait_head) c->wait_tail = NULL;
    if (send_commands(c, op, op->commands.data, op->commands.len) != 0) {
      op_fail(op, "ECONNRESET", "the connection ended before the command could be sent");
      redis_op_free(op);
      continue;
    }
    aq_buf_free(&op->commands);
  }
}

void redis_ops_fail_waiting(redis_client *c, const char *code, const char *text) {
  while (c->wait_head) {
    redis_op *op = c->wait_head;
    c->wait_head = op->next;
    if (!c->wait_head) c->wait_tail = NULL;
    op_fail(op, code, text);
    redis_op_free(op);
  }
}

/* --- deadlines --- */

static uint64_t next_deadline(const redis_client *c) {
  uint64_t d = 0;
  if (c->sent_head) d = c->sent_head->deadline;
  if (c->wait_head && (d == 0 || c->wait_head->deadline < d)) d = c->wait_head->deadline;
  return d;
}

/* Fails the commands whose time is up. */
static void expire(redis_client *c) {
  uint64_t now = uv_hrtime();
  char text[REDIS_ERROR_MAX];
  while (c->wait_head && c->wait_head->deadline <= now) {
    redis_op *op = c->wait_head;
    c->wait_head = op->next;
    if (!c->wait_head) c->wait_tail = NULL;
    snprintf(text, sizeof text, "no connection to %s within %g s (%.200s)", c->name, c->timeout,
             c->last_error[0] ? c->last_error : "still connecting");
    op_fail(op, "ETIMEDOUT", text);
    redis_op_free(op);
  }
  redis_op *head = c->sent_head;
  if (head && head->deadline <= now) {
    /* Replies are ordered: the ones behind this one cannot come first, so
     * the connection is given up (its other commands fail with ECONNRESET)
     * and a new one made. */
    if (head->kind == REDIS_OP_HANDSHAKE)
      snprintf(text, sizeof text, "no answer from %s within %g s while connecting", c->name, c->timeout);
    else snprintf(text, sizeof text, "no reply from %s within %g s", c->name, c->timeout);
    op_fail(head, "ETIMEDOUT", text);
    snprintf(text, sizeof text, "connection to %s dropped: an earlier command got no reply within %g s", c->name,
             c->timeout);
    c->ev->drop(c, "ECONNRESET", text);
  }
}

static void on_deadline(uv_timer_t *timer) {
  redis_client *c = timer->data;
  expire(c);
  redis_ops_arm_deadline(c);
}

void redis_ops_arm_deadline(redis_client *c) {
  if (c->closing || uv_is_active((uv_handle_t *)&c->deadline_timer)) return;
  uint64_t next = next_deadline(c);
  if (next == 0) return;
  uint64_t now = uv_hrtime();
  aq_timer_start(&c->deadline_timer, on_deadline, next > now ? (double)(next - now) / 1e9 : 0);
}

/* --- why a connection ended --- */

void redis_lost_reason(redis_client *c, const redisAsyncContext *ac, const char **code, const char **text) {
  redis_conn *conn = ac->data;
  if (!conn->code[0]) {
    snprintf(conn->code, sizeof conn->code, "ECONNRESET");
    snprintf(conn->text, sizeof conn->text, "connection to %s lost: %s", c->name,
             ac->errstr && ac->errstr[0] ? ac->errstr : "closed");
  }
  *code = conn->code;
  *text = conn->text;
}

/* --- waiting --- */

void redis_wait_begin(redis_client *c) {
  if (c->waiters++ == 0) uv_ref((uv_handle_t *)&c->keepalive);
}

void redis_wait_end(redis_client *c) {
  if (--c->waiters > 0) return;
  uv_unref((uv_handle_t *)&c->keepalive);
  luaL_unref(c->main, LUA_REGISTRYINDEX, c->self_ref);
  c->self_ref = LUA_NOREF;
}

static void on_cancel(aq_task *task, void *data) {
  (void)task;
  redis_op *op = data;
  redis_client *c = op->client;
  op->over = 1;
  op_release_task(op);
  if (op->results_ref != LUA_NOREF) {
    luaL_unref(c->main, LUA_REGISTRYINDEX, op->results_ref);
    op->results_ref = LUA_NOREF;
  }
  /* A command sent stays queued: its reply will come, and is dropped then. */
  if (!op->sent) {
    wait_unlink(c, op);
    redis_op_free(op);
  }
}

int redis_op_wait(lua_State *L, redis_op *op, aq_task *task) {
  op->task = task;
  redis_wait_begin(op->client);
  return aq_task_yield(L, on_cancel, op);
}
