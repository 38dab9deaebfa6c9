/*
 * statements.c — writes through statements a Lua module prepared on its file
 * (db:prepare, db:write): the store's and the disk queue's rows
 * (lua/aqueue/store.lua, diskqueue.lua). A write goes into the current batch
 * with its arguments; the writer thread runs it in the batch's transaction
 * (batch_commit.c).
 */
#include <lauxlib.h>

#include "statements.h"
#include "group_commit.h"
#include "db_state.h"

/* db:prepare(sql) -> a statement number for db:write. */
int statements_l_prepare(lua_State *L) {
  aq_statedb *db = statedb_check(L);
  const char *sql = luaL_checkstring(L, 2);
  if (db->nstmts == AQ_DB_MAX_STATEMENTS) return luaL_error(L, "too many statements");
  group_commit_flush_sync(db); /* the writer is idle: the connection is ours */
  if (sqlite3_prepare_v2(db->conn, sql, -1, &db->stmts[db->nstmts], NULL) != SQLITE_OK)
    return luaL_error(L, "%s: %s", db->path, sqlite3_errmsg(db->conn));
  lua_pushinteger(L, db->nstmts++);
  return 1;
}

/* db:write(stmt, args...): runs the statement in the next group commit.
 * Arguments are nil, whole numbers or strings. Returns true, or nil, message
 * when the file can no longer be written. */
int statements_l_write(lua_State *L) {
  aq_statedb *db = statedb_check(L);
  int stmt = (int)luaL_checkinteger(L, 2);
  int nargs = lua_gettop(L) - 2;
  if (stmt < 0 || stmt >= db->nstmts) return luaL_argerror(L, 2, "not a statement of this file");
  if (nargs > AQ_DB_OP_ARGS) return luaL_error(L, "too many arguments");
  if (db->failed) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot write %s", db->path);
    return 2;
  }
  batch *b = db->cur;
  if (db_grow((void **)&b->ops, &b->ops_cap, b->nops + 1, sizeof *b->ops) != 0) return luaL_error(L, "out of memory");
  generic_op *op = &b->ops[b->nops];
  op->stmt = stmt;
  op->nargs = nargs;
  for (int a = 0; a < nargs; a++) {
    int idx = a + 3;
    if (lua_isnil(L, idx)) {
      op->args[a].type = ARG_NULL;
    } else if (lua_type(L, idx) == LUA_TNUMBER) {
      op->args[a].type = ARG_INT;
      op->args[a].i = (int64_t)lua_tonumber(L, idx);
    } else {
      size_t len;
      const char *s = luaL_checklstring(L, idx, &len);
      op->args[a].type = ARG_TEXT;
      if (arena_put(b, s, len, &op->args[a].s) != 0) return luaL_error(L, "out of memory");
    }
  }
  b->nops++;
  written(db);
  lua_pushboolean(L, 1);
  return 1;
}
