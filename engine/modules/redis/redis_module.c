/*
 * redis_module.c — aqueue.redis_core, the Lua side: connect() and the
 * client's methods call(), pipeline(), state(), close(). lua/aqueue/redis.lua
 * parses URLs and options and adds the script helpers. This folder is built
 * as its own loadable module (see CMakeLists.txt), so hiredis is loaded only
 * by scripts that use Redis; the files and who owns what: redis.h.
 */
#include <lauxlib.h>

#include "redis.h"

/* --- the engine's clients --- */

static char list_key;

/* Closes every client still open when the engine ends: their tasks were
 * cancelled already, so nobody waits. */
static void on_engine_close(aq_engine *engine, void *data) {
  (void)engine;
  redis_client_list *list = data;
  for (redis_client *c = list->head, *next; c; c = next) {
    next = c->next;
    redis_client_close(c);
  }
}

/* The engine's list of clients (aq_module_state: it lives until lua_close,
 * after the close hook), made on first use. */
static redis_client_list *client_list(lua_State *L) {
  return aq_module_state(L, &list_key, sizeof(redis_client_list), on_engine_close);
}

static redis_client *check_client(lua_State *L) {
  redis_client **ud = luaL_checkudata(L, 1, REDIS_CLIENT_MT);
  return *ud;
}

/* --- connect --- */

static void on_connect_cancel(aq_task *task, void *data) {
  (void)task;
  redis_client *c = data;
  c->connect_task = NULL;
  luaL_unref(c->main, LUA_REGISTRYINDEX, c->connect_ref);
  c->connect_ref = LUA_NOREF;
  redis_wait_end(c);
  redis_client_close(c);
}

/* connect{ name =, host =, port = | path =, password =, db =, timeout =,
 * reconnect =, backoff_min =, backoff_max = } (checked by aqueue.redis):
 * yields until the first connection is up (handshake included), then returns
 * the client, or nil, err, code. Raises on misuse. */
static int l_connect(lua_State *L) {
  aq_task *task = aq_task_current(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  redis_client_list *list = client_list(L);
  redis_client **ud = lua_newuserdata(L, sizeof *ud);
  *ud = NULL;
  luaL_getmetatable(L, REDIS_CLIENT_MT);
  lua_setmetatable(L, -2);
  redis_client *c = redis_client_new(L, 1, list);
  if (!c) return luaL_error(L, "aqueue.redis: out of memory");
  *ud = c;
  c->userdata_alive = 1;
  c->connect_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  c->connect_task = task;
  redis_wait_begin(c);
  return aq_task_yield(L, on_connect_cancel, c);
}

/* --- the client's methods --- */

/* The calling task waits on the client at index 1: the client stays alive
 * meanwhile (self_ref, released by the last waiter). */
static int wait_for(lua_State *L, redis_client *c, redis_op *op, aq_task *task) {
  if (c->self_ref == LUA_NOREF) {
    lua_pushvalue(L, 1);
    c->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return redis_op_wait(L, op, task);
}

static int closed_failure(lua_State *L, redis_client *c) {
  return aq_push_failure(L, "ENOTCONN", "the client of %s is closed", c->name);
}

/* Sends the commands formatted in c->scratch as one operation expecting
 * `replies` replies (a pipeline collects them in a list), and yields the
 * task until they are in. */
static int send_and_wait(lua_State *L, redis_client *c, aq_task *task, redis_op_kind kind, int replies) {
  redis_op *op = c->scratch.failed ? NULL : redis_op_new(c, kind, replies);
  if (op && kind == REDIS_OP_PIPELINE) {
    lua_createtable(L, replies, 0);
    op->results_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  if (!op || redis_op_submit(op, c->scratch.data, c->scratch.len) != 0) {
    if (op) redis_op_free(op);
    aq_buf_reset(&c->scratch);
    return luaL_error(L, "aqueue.redis: out of memory");
  }
  aq_buf_reset(&c->scratch);
  return wait_for(L, c, op, task);
}

/* client:call(name, args...): yields until the reply; returns it (nil for a
 * nil reply), or nil, err, code. */
static int l_call(lua_State *L) {
  redis_client *c = check_client(L);
  aq_task *task = aq_task_current(L);
  if (c->state == CLIENT_CLOSED) return closed_failure(L, c);
  aq_buf_reset(&c->scratch);
  redis_format_command(L, &c->scratch, 2, lua_gettop(L));
  return send_and_wait(L, c, task, REDIS_OP_CALL, 1);
}

/* client:pipeline{ { name, args... }, ... }: sends them all at once, yields
 * until every reply is in; returns their list (an error reply as
 * { err = "message" }, a nil reply as false), or nil, err, code. */
static int l_pipeline(lua_State *L) {
  redis_client *c = check_client(L);
  aq_task *task = aq_task_current(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)lua_objlen(L, 2);
  if (n == 0) {
    lua_newtable(L);
    return 1;
  }
  if (c->state == CLIENT_CLOSED) return closed_failure(L, c);
  aq_buf_reset(&c->scratch);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    if (!lua_istable(L, -1)) {
      aq_buf_reset(&c->scratch);
      return luaL_error(L, "aqueue.redis: pipeline command %d must be a list {name, args...}", i);
    }
    int cmd = lua_gettop(L), argc = (int)lua_objlen(L, cmd);
    luaL_checkstack(L, argc, "aqueue.redis: too many arguments");
    for (int k = 1; k <= argc; k++) lua_rawgeti(L, cmd, k);
    redis_format_command(L, &c->scratch, cmd + 1, cmd + argc);
    lua_settop(L, cmd - 1);
  }
  return send_and_wait(L, c, task, REDIS_OP_PIPELINE, n);
}

/* client:state() -> "connected", "connecting" or "closed". */
static int l_state(lua_State *L) {
  redis_client *c = check_client(L);
  static const char *const names[] = {"connecting", "connected", "closed"};
  lua_pushstring(L, names[c->state]);
  return 1;
}

/* client:close(): commands still waiting fail with ECONNRESET; idempotent. */
static int l_close(lua_State *L) {
  redis_client_close(check_client(L));
  return 0;
}

static int l_gc(lua_State *L) {
  redis_client **ud = lua_touserdata(L, 1);
  if (*ud) redis_client_release(*ud);
  *ud = NULL;
  return 0;
}

/* require("aqueue.redis_core"). */
AQ_EXPORT int luaopen_aqueue_redis_core(lua_State *L);

AQ_EXPORT int luaopen_aqueue_redis_core(lua_State *L) {
  AQ_MODULE_CHECK(L, "aqueue.redis_core");
  static const luaL_Reg methods[] = {
      {"call", l_call},
      {"pipeline", l_pipeline},
      {"state", l_state},
      {"close", l_close},
      {NULL, NULL},
  };
  luaL_newmetatable(L, REDIS_CLIENT_MT);
  lua_newtable(L);
  luaL_register(L, NULL, methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__index");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -3, "__gc");
  /* module = { connect, client_methods (for aqueue.redis to add to) } */
  lua_newtable(L);
  lua_insert(L, -2);
  lua_setfield(L, -2, "client_methods");
  lua_remove(L, -2);
  lua_pushcfunction(L, l_connect);
  lua_setfield(L, -2, "connect");
  lua_pushfstring(L, "%d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
  lua_setfield(L, -2, "hiredis_version");
  return 1;
}
