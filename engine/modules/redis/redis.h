/*
 * redis.h — the private header of aqueue.redis_core: a Redis client on the
 * engine's libuv loop, on hiredis's async API. Built as a loadable module on
 * the public API only (aqueue.h) and hiredis.
 *
 * The files, one job each:
 *   redis_module.c    the Lua functions: connect(), the client's call(),
 *                     pipeline(), state(), close(), its __gc; luaopen; the
 *                     per-engine list of clients and its close hook
 *   redis_client.c    one client's life: its target, state, timers, the
 *                     reconnection with backoff, close and free
 *   redis_conn.c      one connection: DNS (uv_getaddrinfo), the hiredis
 *                     context and its libuv adapter (uv_poll on its socket),
 *                     the handshake (AUTH, SELECT, PING)
 *   redis_commands.c  commands: their wire format, the queue of commands sent
 *                     and of those waiting for a connection, replies handed
 *                     to their task, per-command deadlines, cancel, and the
 *                     waiting tasks that keep the loop (and the client) alive
 *   redis_reply.c     a reply as Lua values
 *
 * Layers, each calling only those below it (scripts/dev/check_floors.py):
 * redis_module.c, redis_client.c, redis_conn.c, redis_commands.c,
 * redis_reply.c. The lower files report to the client through its events
 * (redis_client_events, set by redis_client.c), as libuv calls its users
 * back: a connection attempt failed or ended, the handshake succeeded, a
 * command timed out (the connection must go), a resource was released.
 *
 * Ownership: a client is malloc'd by connect() and pointed at by its Lua
 * userdata (as luv does), so its handles can finish closing after the
 * userdata is collected. It is freed once both are gone: its handles closed
 * (redis_client_close, by close(), __gc or the engine's close hook) and its
 * userdata collected. A command (redis_op) is owned by the client's queues:
 * hiredis calls its reply callback exactly once per command sent (with the
 * reply, or with NULL when the connection ends), and the op is freed when the
 * last of its callbacks has run, also when its task is gone. The task is
 * resumed once, at the first of: every reply in, a failure, or never when it
 * is cancelled.
 *
 * Threads: everything runs on the loop thread (uv_getaddrinfo resolves on the
 * thread pool and reports on the loop thread).
 */
#ifndef AQ_REDIS_H
#define AQ_REDIS_H

#include <stdint.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <lua.h>

#include "aqueue.h"

#define REDIS_CLIENT_MT "aqueue.redis.client"
/* The longest error message kept (longer ones are cut). */
#define REDIS_ERROR_MAX 400

typedef struct redis_client redis_client;

/* What the lower files tell the client (redis_client.c implements them). */
typedef struct {
  /* The handshake succeeded: the connection is usable. */
  void (*connected)(redis_client *c);
  /* A connection attempt failed (DNS, connect, handshake, its deadline). */
  void (*attempt_failed)(redis_client *c, const char *code, const char *text);
  /* hiredis cleaned the connection up (c->conn is NULL now), for this reason. */
  void (*conn_ended)(redis_client *c, const char *code, const char *text);
  /* A command got no reply in time: the connection must be dropped. */
  void (*drop)(redis_client *c, const char *code, const char *text);
  /* Something the client waited for before it may be freed is done. */
  void (*released)(redis_client *c);
} redis_client_events;
typedef struct redis_conn redis_conn;
typedef struct redis_op redis_op;

typedef enum {
  CLIENT_CONNECTING, /* resolving, connecting, handshaking, or waiting to retry */
  CLIENT_CONNECTED,
  CLIENT_CLOSED, /* by close(), its __gc, the engine's end, or a drop without reconnect */
} redis_state;

/* What a command is for. */
typedef enum {
  REDIS_OP_CALL,      /* call(): one reply, resumes its task with it */
  REDIS_OP_PIPELINE,  /* pipeline(): n replies, resumes its task with their list */
  REDIS_OP_HANDSHAKE, /* AUTH/SELECT/PING of a new connection: ends in the client's connected or attempt_failed event */
} redis_op_kind;

struct redis_op {
  redis_op *next; /* in the client's sent or waiting queue */
  redis_client *client;
  redis_op_kind kind;
  aq_task *task;     /* who waits; NULL for a handshake or once resumed or cancelled */
  int expected;      /* replies (= commands) */
  int received;      /* reply callbacks run so far */
  int results_ref;   /* pipeline: the list of replies so far, in the registry */
  int has_auth;      /* handshake: the first command is AUTH */
  unsigned sent : 1; /* handed to hiredis (else waiting for a connection) */
  unsigned over : 1; /* its outcome is settled: later callbacks only count */
  uint64_t deadline; /* uv_hrtime() after which it fails with ETIMEDOUT */
  aq_buf commands;   /* waiting: its commands in the wire format, sent once connected */
};

/* One connection (attempt): a hiredis context and the poll handle on its
 * socket. Freed by the poll handle's close callback, once hiredis has cleaned
 * up the context. */
struct redis_conn {
  uv_poll_t poll;
  int events;    /* UV_READABLE | UV_WRITABLE that hiredis asked for */
  redisAsyncContext *ac; /* NULL once hiredis cleaned up */
  redis_client *client;  /* NULL once detached */
  int dropping;          /* redisAsyncFree was called */
  /* Why it ended (set once, by the first to know): what its commands still
   * waiting fail with. */
  char code[32];
  char text[REDIS_ERROR_MAX];
};

/* The open clients of an engine (a userdata in the registry): the engine's
 * close hook closes them. */
typedef struct {
  redis_client *head;
} redis_client_list;

struct redis_client {
  redis_client *prev, *next; /* in the engine's list of open clients */
  redis_client_list *list;   /* that list, NULL once unlinked */
  const redis_client_events *ev;
  aq_engine *engine;
  uv_loop_t *loop;
  lua_State *main; /* for registry references */
  /* The target, from connect()'s table (copies). */
  char *name; /* "redis://host:port/db" or "unix:///path", without the password, for messages */
  char *host; /* NULL for a unix socket */
  int port;
  char *path; /* NULL for TCP */
  char *password; /* NULL for none */
  size_t password_len;
  int db;
  double timeout;     /* seconds, per command and per connection attempt */
  int reconnect;      /* reconnect after a drop */
  double backoff_min, backoff_max, backoff;
  redis_state state;
  /* The connection, or NULL between attempts. */
  redis_conn *conn;
  uv_getaddrinfo_t resolve;
  int resolving; /* resolve is in flight */
  uv_timer_t deadline_timer; /* the earliest command's deadline */
  uv_timer_t backoff_timer;  /* the next connection attempt */
  uv_async_t keepalive;      /* referenced while a task waits: the loop must not run dry */
  int handles_open;          /* of the three above, not yet closed */
  int closing;               /* redis_client_close ran */
  int userdata_alive;
  int waiters; /* tasks waiting on this client (ops and connect) */
  /* While a task waits, the client's userdata (a registry reference): a
   * client nobody else holds, as in connect(url):call(...), must not be
   * collected (and closed) under its waiting task. LUA_NOREF otherwise. */
  int self_ref;
  /* connect(): the task waiting for the first connection, and the client's
   * userdata it returns (a registry reference, LUA_NOREF without). */
  aq_task *connect_task;
  int connect_ref;
  /* Commands handed to hiredis, in order (replies come back in this order),
   * and commands waiting for a connection. */
  redis_op *sent_head, *sent_tail;
  redis_op *wait_head, *wait_tail;
  /* Why the last connection attempt failed, or why the last one ended. */
  char last_code[32];
  char last_error[REDIS_ERROR_MAX];
  aq_buf scratch; /* a command being formatted */
};

/* --- a client (redis_client.c) --- */

/* Makes a client for the target in the options table at index `opts`, in
 * the engine's list, and starts connecting on the next loop turn (so the
 * outcome always comes after connect() yields). Returns NULL when out of
 * memory. Raises on misuse, before allocating anything. */
redis_client *redis_client_new(lua_State *L, int opts, redis_client_list *list);

/* Closes the client: commands waiting fail, the connection is dropped, its
 * handles are closed. Idempotent. */
void redis_client_close(redis_client *c);

/* The client's userdata was collected: frees the client once its handles are
 * closed. */
void redis_client_release(redis_client *c);


/* --- a connection (redis_conn.c) --- */

/* Starts a connection attempt: resolves the host, connects, sends the
 * handshake. Its outcome comes back through the client's events
 * (connected, attempt_failed). */
void redis_conn_start(redis_client *c);

/* Drops the client's connection (if any): hiredis fails the commands sent
 * (their callbacks get NULL: they fail with code and text, unless the
 * connection had failed already), then cleans up. Safe inside a reply
 * callback (hiredis then frees the context when the callback returns). */
void redis_conn_drop(redis_client *c, const char *code, const char *text);

/* The libuv side of a hiredis context (the adapter): returns 0, or a libuv
 * error. */
int redis_adapter_attach(redis_conn *conn, uv_loop_t *loop);

/* --- commands (redis_commands.c) --- */

/* The wire format of a command (RESP): its argument count, then each
 * argument, appended to b. */
void redis_wire_begin(aq_buf *b, int argc);
void redis_wire_arg(aq_buf *b, const char *s, size_t len);

/* Appends the command of the stack values first..last (strings or numbers)
 * in the wire format to b. Raises on misuse (another type, no value, a
 * command this client does not support). */
void redis_format_command(lua_State *L, aq_buf *b, int first, int last);

/* A new op of `kind` expecting n replies, deadline from now. NULL when out
 * of memory. */
redis_op *redis_op_new(redis_client *c, redis_op_kind kind, int expected);

/* Sends op's commands, formatted in `wire` (n commands of the wire format),
 * now if connected (or if it is a handshake), else queues op until the
 * connection is up (copying them). Returns 0, or -1 when hiredis refused
 * (the op is then not queued: free it). */
int redis_op_submit(redis_op *op, const char *wire, size_t len);

/* Sends the waiting commands (the connection just came up). */
void redis_ops_send_waiting(redis_client *c);

/* Fails every waiting command with code and text (the client closes or
 * gives up). */
void redis_ops_fail_waiting(redis_client *c, const char *code, const char *text);

/* A task starts or stops waiting on the client: the loop stays alive while
 * some task waits (its keepalive handle is referenced). The last to stop
 * releases self_ref. */
void redis_wait_begin(redis_client *c);
void redis_wait_end(redis_client *c);

/* Arms the client's deadline timer for its earliest command, unless it runs
 * (it then fires no later: a new command's deadline is never earlier). When
 * it fires, the commands whose time is up fail with ETIMEDOUT. */
void redis_ops_arm_deadline(redis_client *c);

/* Why the connection of `ac` ended, for its commands: the reason recorded
 * first (a refused connect, a drop), else what hiredis saw (ECONNRESET). */
void redis_lost_reason(redis_client *c, const redisAsyncContext *ac, const char **code, const char **text);

/* The yielding end of call() and pipeline(). */
int redis_op_wait(lua_State *L, redis_op *op, aq_task *task);

void redis_op_free(redis_op *op);

/* --- replies (redis_reply.c) --- */

/* Pushes the reply as Lua values: status and bulk strings as strings,
 * integers as numbers, arrays as lists (nested), nil as nil at the top and
 * false inside a list; an error as { err = "message" } (the top of call()
 * turns it into nil, "EREDIS: message", "EREDIS" instead). */
void redis_push_reply(lua_State *L, const redisReply *r, int in_list);

#endif
