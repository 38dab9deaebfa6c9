/*
 * reading.c — reading a file and maintenance writes, synchronous on the loop
 * thread: opening, loading a run, --status, --fresh, --retry-failed. Each
 * first commits what is pending and waits for the writer to be idle: the
 * connection is then the loop thread's.
 */
#include <lauxlib.h>

#include "reading.h"
#include "group_commit.h"
#include "db_state.h"

#define ROWS_MT "aqueue.statedb.rows"

typedef struct {
  sqlite3_stmt *st;
  aq_statedb *db;
} rows_box;

static void push_column(lua_State *L, sqlite3_stmt *st, int i) {
  switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: lua_pushnumber(L, (lua_Number)sqlite3_column_int64(st, i)); break;
    case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, i)); break;
    case SQLITE_NULL: lua_pushnil(L); break;
    default: lua_pushlstring(L, (const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
  }
}

static int rows_next(lua_State *L) {
  rows_box *box = lua_touserdata(L, lua_upvalueindex(1));
  if (!box->st) return 0;
  if (box->db->open) group_commit_wait_idle(box->db);
  int rc = sqlite3_step(box->st);
  if (rc == SQLITE_ROW) {
    int n = sqlite3_column_count(box->st);
    luaL_checkstack(L, n, "too many columns");
    for (int i = 0; i < n; i++) push_column(L, box->st, i);
    return n;
  }
  sqlite3 *conn = sqlite3_db_handle(box->st);
  sqlite3_finalize(box->st);
  box->st = NULL;
  if (rc != SQLITE_DONE) { /* a damaged file: named, with no position in Lua code */
    lua_pushfstring(L, "cannot read %s: %s", box->db->path, sqlite3_errmsg(conn));
    return lua_error(L);
  }
  return 0;
}

static int rows_gc(lua_State *L) {
  rows_box *box = lua_touserdata(L, 1);
  if (box->st && box->db->open) group_commit_wait_idle(box->db);
  if (box->st) sqlite3_finalize(box->st);
  box->st = NULL;
  return 0;
}

static void bind_args(lua_State *L, sqlite3_stmt *st, int first) {
  int top = lua_gettop(L);
  for (int i = first; i <= top; i++) {
    int n = i - first + 1;
    if (lua_isnil(L, i)) sqlite3_bind_null(st, n);
    else if (lua_type(L, i) == LUA_TNUMBER) sqlite3_bind_double(st, n, lua_tonumber(L, i));
    else {
      size_t len;
      const char *s = luaL_checklstring(L, i, &len);
      sqlite3_bind_text(st, n, s, (int)len, SQLITE_TRANSIENT);
    }
  }
}

/* db:rows(sql, args...) -> an iterator over the rows' columns. Commits what
 * is pending first; do not write to the file while iterating. */
int reading_l_rows(lua_State *L) {
  aq_statedb *db = statedb_check(L);
  const char *sql = luaL_checkstring(L, 2);
  group_commit_flush_sync(db);
  rows_box *box = lua_newuserdata(L, sizeof *box);
  box->st = NULL;
  box->db = db;
  luaL_getmetatable(L, ROWS_MT);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 1); /* the iterator keeps the db (box->db) alive */
  lua_setfenv(L, -2);
  if (sqlite3_prepare_v2(db->conn, sql, -1, &box->st, NULL) != SQLITE_OK)
    return luaL_error(L, "%s: %s", db->path, sqlite3_errmsg(db->conn));
  lua_insert(L, 3);
  bind_args(L, box->st, 4);
  lua_settop(L, 3);
  lua_pushcclosure(L, rows_next, 1);
  return 1;
}

/* db:exec(sql, args...) -> the number of rows changed. Synchronous: for
 * maintenance (--fresh, --retry-failed), not for a run's writes. */
int reading_l_exec(lua_State *L) {
  aq_statedb *db = statedb_check(L);
  const char *sql = luaL_checkstring(L, 2);
  group_commit_flush_sync(db);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db->conn, sql, -1, &st, NULL) != SQLITE_OK)
    return luaL_error(L, "%s: %s", db->path, sqlite3_errmsg(db->conn));
  bind_args(L, st, 3);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot write %s: %s", db->path, sqlite3_errmsg(db->conn));
    return 2;
  }
  lua_pushinteger(L, sqlite3_changes(db->conn));
  return 1;
}

void reading_register(lua_State *L) {
  luaL_newmetatable(L, ROWS_MT);
  lua_pushcfunction(L, rows_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}
