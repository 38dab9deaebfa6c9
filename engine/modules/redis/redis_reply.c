/*
 * redis_reply.c — a Redis reply as Lua values (the rules are in README,
 * "aqueue.redis", and redis.h).
 */
#include "redis.h"

/* Runs from a reply callback, outside any protected call: it must not
 * raise. A nested array keeps its parents' tables on the stack, so nesting
 * is capped well below what the stack may hold (Redis itself nests replies
 * only as deep as a script builds them). */
#define MAX_DEPTH 1000

static void push_value(lua_State *L, const redisReply *r, int in_list, int depth) {
  if (depth > MAX_DEPTH || !lua_checkstack(L, 3)) {
    lua_pushliteral(L, "(reply nested too deep)");
    return;
  }
  switch (r->type) {
  case REDIS_REPLY_STATUS:
  case REDIS_REPLY_STRING:
    lua_pushlstring(L, r->str, r->len);
    break;
  case REDIS_REPLY_INTEGER:
    lua_pushnumber(L, (lua_Number)r->integer);
    break;
  case REDIS_REPLY_NIL:
    if (in_list) lua_pushboolean(L, 0);
    else lua_pushnil(L);
    break;
  case REDIS_REPLY_ERROR:
    lua_createtable(L, 0, 1);
    lua_pushlstring(L, r->str, r->len);
    lua_setfield(L, -2, "err");
    break;
  case REDIS_REPLY_ARRAY:
    lua_createtable(L, (int)r->elements, 0);
    for (size_t i = 0; i < r->elements; i++) {
      push_value(L, r->element[i], 1, depth + 1);
      lua_rawseti(L, -2, (int)i + 1);
    }
    break;
  default: /* hiredis 0.14 knows no other type */
    lua_pushnil(L);
    break;
  }
}

void redis_push_reply(lua_State *L, const redisReply *r, int in_list) { push_value(L, r, in_list, 0); }
