/*
 * statedb.c — the life of a file of aqueue.statedb (see statedb.h) and the
 * Lua module: opening (file_format.c checks and sets up the file), the
 * writer thread and handles it gets (group_commit.c), closing, and the
 * module's functions and methods, each written in the file of its job (see
 * db_state.h).
 *
 * Ownership: a db is a Lua userdata. While the file is open the registry holds
 * a reference to it (it cannot be collected) and `open_dbs` lists it; db:close()
 * or the engine's close (close_all, an aq_engine_on_close hook) commit what is
 * left, stop the writer thread, close the connection and the uv handles, and
 * the last close callback drops the reference.
 *
 * Written against the public C API (aqueue.h) only, as every built-in binding.
 */
#include "builtin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "batch_commit.h"
#include "db_state.h"
#include "file_format.h"
#include "group_commit.h"
#include "item_rows.h"
#include "reading.h"
#include "statements.h"

/* The files open in this process (one engine per process). */
static aq_statedb *open_dbs;
static int close_hook_set; /* close_all is registered with the engine */

static void close_all(aq_engine *E, void *data);

/* --- what a db's threads share, and its handles --- */

static void on_handle_closed(uv_handle_t *h) {
  aq_statedb *db = h->data;
  if (--db->closing_handles > 0) return;
  luaL_unref(aq_engine_state(db->E), LUA_REGISTRYINDEX, db->ref);
}

/* Destroys what l_open made for the two threads to meet (the writer thread
 * is not running) and closes the handles; the last close callback drops the
 * registry's reference to the db. */
static void release_sync_and_handles(aq_statedb *db) {
  uv_mutex_destroy(&db->mu);
  uv_cond_destroy(&db->work);
  uv_cond_destroy(&db->done);
  db->closing_handles = 2;
  uv_close((uv_handle_t *)&db->async, on_handle_closed);
  uv_close((uv_handle_t *)&db->timer, on_handle_closed);
}

/* statedb.open(path, kind) -> db, or nil, message (the file is left as it was). */
static int l_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *kind = luaL_checkstring(L, 2);
  if (strlen(kind) >= sizeof ((aq_statedb *)0)->kind) return luaL_argerror(L, 2, "unknown kind");
  aq_engine *E = aq_engine_from_lua(L);
  for (aq_statedb *o = open_dbs; o; o = o->next_open)
    if (strcmp(o->path, path) == 0) return luaL_error(L, "%s is already open in this process", path);
  /* First: without the hook, an open file would never be closed at exit
   * (its handles left in the loop, its last batch not committed). */
  if (!close_hook_set) {
    if (aq_engine_on_close(E, close_all, NULL) != 0) return luaL_error(L, "out of memory");
    close_hook_set = 1;
  }
  sqlite3 *conn;
  char *problem = file_format_open(path, kind, &conn);
  if (problem) {
    lua_pushnil(L);
    lua_pushstring(L, problem);
    sqlite3_free(problem);
    return 2;
  }
  aq_statedb *db = lua_newuserdata(L, sizeof *db);
  memset(db, 0, sizeof *db);
  db->E = E;
  db->conn = conn;
  db->path = strdup(path);
  snprintf(db->kind, sizeof db->kind, "%s", kind);
  db->cur = &db->batches[0];
  luaL_getmetatable(L, DB_MT);
  lua_setmetatable(L, -2);
  if (!db->path || uv_mutex_init(&db->mu) != 0) {
    free(db->path);
    db->path = NULL; /* l_gc frees it otherwise */
    sqlite3_close(conn);
    return luaL_error(L, "out of memory");
  }
  uv_cond_init(&db->work);
  uv_cond_init(&db->done);
  uv_async_init(aq_engine_loop(E), &db->async, group_commit_on_committed);
  uv_unref((uv_handle_t *)&db->async);
  uv_timer_init(aq_engine_loop(E), &db->timer);
  uv_unref((uv_handle_t *)&db->timer); /* the exit commits what is left */
  db->async.data = db->timer.data = db;
  lua_pushvalue(L, -1);
  db->ref = luaL_ref(L, LUA_REGISTRYINDEX); /* dropped when the handles are closed */
  if (uv_thread_create(&db->thread, group_commit_writer, db) != 0) {
    sqlite3_close(conn);
    release_sync_and_handles(db);
    return luaL_error(L, "cannot start the writer thread of %s", path);
  }
  db->open = 1;
  db->next_open = open_dbs;
  open_dbs = db;
  return 1;
}

/* --- closing --- */

static void db_close(aq_statedb *db) {
  if (!db->open) return;
  group_commit_flush_sync(db);
  uv_mutex_lock(&db->mu);
  db->quit = 1;
  uv_cond_signal(&db->work);
  uv_mutex_unlock(&db->mu);
  uv_thread_join(&db->thread);
  group_commit_wake_waiters(db);
  db->open = 0;
  for (aq_statedb **pp = &open_dbs; *pp; pp = &(*pp)->next_open)
    if (*pp == db) {
      *pp = db->next_open;
      break;
    }
  batch_commit_finalize(db);
  sqlite3_close_v2(db->conn); /* freed once the last db:rows() iterator is collected */
  db->conn = NULL;
  batch_free(&db->batches[0]);
  batch_free(&db->batches[1]);
  free(db->write_error);
  db->write_error = NULL;
  release_sync_and_handles(db);
}

/* The engine closes (after its tasks were cancelled): commit and close all. */
static void close_all(aq_engine *E, void *data) {
  (void)E;
  (void)data;
  while (open_dbs) db_close(open_dbs);
  state_encode_free();
  close_hook_set = 0;
}

/* db:close(): commits what is left and closes the file. */
static int l_close(lua_State *L) {
  aq_statedb *db = luaL_checkudata(L, 1, DB_MT);
  db_close(db);
  return 0;
}

static int l_gc(lua_State *L) {
  aq_statedb *db = luaL_checkudata(L, 1, DB_MT);
  free(db->path);
  db->path = NULL;
  return 0;
}

/* --- the module --- */

static int l_pointer(lua_State *L) {
  lua_pushlightuserdata(L, statedb_check(L));
  return 1;
}

static int l_path(lua_State *L) {
  aq_statedb *db = luaL_checkudata(L, 1, DB_MT);
  lua_pushstring(L, db->path ? db->path : "?");
  return 1;
}

/* What lua/aqueue/state.lua (and state_tool.lua) must agree on with this
 * module, defined once here: the FFI declarations (statedb_ffi.h's text) and
 * the items' states and outcomes (statedb.h), for their SQL and checks. */
static void export_statedb_contract(lua_State *L) {
  static const aq_constant constants[] = {
      {"STATE_PENDING", AQ_DB_PENDING}, {"STATE_OPEN", AQ_DB_OPEN},     {"STATE_FINISHED", AQ_DB_FINISHED},
      {"OUTCOME_NONE", AQ_DB_NO_OUTCOME}, {"OUTCOME_DONE", AQ_DB_DONE}, {"OUTCOME_FAILED", AQ_DB_FAILED},
  };
  aq_export_ffi_contract(L, aq_statedb_ffi_cdef, constants, sizeof constants / sizeof constants[0]);
}

static int luaopen_statedb(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"close", l_close},
      {"prepare", statements_l_prepare},
      {"write", statements_l_write},
      {"flush", group_commit_l_flush},
      {"rows", reading_l_rows},
      {"exec", reading_l_exec},
      {"pointer", l_pointer},
      {"path", l_path},
      {NULL, NULL}};
  reading_register(L);
  luaL_newmetatable(L, DB_MT);
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_newtable(L);
  luaL_register(L, NULL, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "open");
  lua_pushcfunction(L, item_rows_l_add);
  lua_setfield(L, -2, "add_item");
  export_statedb_contract(L);
  state_encode_register(L);
  return 1;
}

/* Registers the Lua module `aqueue.statedb` for require. Files still open
 * when the engine closes are committed and closed then. */
void statedb_register(lua_State *L) {
  /* Before SQLite initializes: no global mutex around every allocation for
   * statistics nobody reads. */
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  aq_register_module(L, "aqueue.statedb", luaopen_statedb);
}
