/*
 * item_rows.c — the items table of a state file: a row per item, written at
 * each step of its life (lua/aqueue/state.lua). A new row comes from
 * statedb.add_item (a Lua C function: it reads the item table), its next
 * steps through the FFI (statedb_ffi.h), all on the loop thread and into the
 * current batch. A step of an item whose row or last update is still in the
 * batch is merged into it; the writer thread then writes rows and updates
 * with the statements below. States and outcomes are statedb.h's values.
 */
#include <string.h>

#include <lauxlib.h>

#include "statedb_private.h"

/* --- the writer thread --- */

/* The statements of item rows: the insert, then one per update kind
 * (1 + UPDATE_*). States and outcomes are statedb.h's values. Returns an
 * sqlite3_mprintf string (NULL out of memory). */
static char *item_sql(int which) {
  switch (which) {
    case 0:
      return sqlite3_mprintf("INSERT INTO items(pid, parent, ordinal, class, key, fields, state, outcome, attempts, error) "
                             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    case 1 + UPDATE_ATTEMPTS: return sqlite3_mprintf("UPDATE items SET attempts = ?2 WHERE pid = ?1");
    case 1 + UPDATE_PROCESSED:
      return sqlite3_mprintf("UPDATE items SET state = %d, outcome = ?2, attempts = ?3, error = ?4 WHERE pid = ?1",
                             AQ_DB_OPEN);
    case 1 + UPDATE_FINISHED:
      return sqlite3_mprintf(
          "UPDATE items SET state = %d, fields = CASE outcome WHEN %d THEN NULL ELSE fields END WHERE pid = ?1",
          AQ_DB_FINISHED, AQ_DB_DONE);
    default: /* 1 + UPDATE_PROCESSED_FINISHED */
      return sqlite3_mprintf("UPDATE items SET state = %d, outcome = ?2, attempts = ?3, error = ?4, "
                             "fields = CASE ?2 WHEN %d THEN NULL ELSE fields END WHERE pid = ?1",
                             AQ_DB_FINISHED, AQ_DB_DONE);
  }
}

/* Prepares the item statements once (the writer thread). */
static int prepare_item_stmts(aq_statedb *db) {
  for (int i = 0; i < ITEM_STATEMENTS; i++) {
    if (db->item_stmts[i]) continue;
    char *sql = item_sql(i);
    if (!sql) return SQLITE_NOMEM;
    int rc = sqlite3_prepare_v2(db->conn, sql, -1, &db->item_stmts[i], NULL);
    sqlite3_free(sql);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

int item_rows_commit(aq_statedb *db, const batch *b) {
  int rc = prepare_item_stmts(db);
  if (rc != SQLITE_OK) return rc;
  sqlite3_stmt *ins = db->item_stmts[0];
  for (size_t i = 0; i < b->nrows; i++) {
    const item_row *r = &b->rows[i];
    sqlite3_bind_int64(ins, 1, b->first_pid + (int64_t)i);
    sqlite3_bind_int64(ins, 2, r->parent);
    sqlite3_bind_int(ins, 3, r->ordinal);
    batch_bind_str(ins, 4, b, r->cls);
    batch_bind_str(ins, 5, b, r->key);
    if (r->state == AQ_DB_FINISHED && r->outcome == AQ_DB_DONE) sqlite3_bind_null(ins, 6);
    else batch_bind_str(ins, 6, b, r->fields);
    sqlite3_bind_int(ins, 7, r->state);
    sqlite3_bind_int(ins, 8, r->outcome);
    sqlite3_bind_int(ins, 9, r->attempts);
    batch_bind_str(ins, 10, b, r->error);
    rc = statement_step(ins);
    if (rc != SQLITE_OK) return rc;
  }
  for (size_t i = 0; i < b->nupdates; i++) {
    const item_update *u = &b->updates[i];
    sqlite3_stmt *st = db->item_stmts[1 + u->kind];
    sqlite3_bind_int64(st, 1, u->pid);
    if (u->kind == UPDATE_ATTEMPTS) {
      sqlite3_bind_int(st, 2, u->attempts);
    } else if (u->kind == UPDATE_PROCESSED || u->kind == UPDATE_PROCESSED_FINISHED) {
      sqlite3_bind_int(st, 2, u->ok ? AQ_DB_DONE : AQ_DB_FAILED);
      sqlite3_bind_int(st, 3, u->attempts);
      batch_bind_str(st, 4, b, u->error);
    }
    rc = statement_step(st);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

void item_rows_finalize(aq_statedb *db) {
  for (int i = 0; i < ITEM_STATEMENTS; i++) {
    sqlite3_finalize(db->item_stmts[i]);
    db->item_stmts[i] = NULL;
  }
}

/* --- the loop thread --- */

static int usable(aq_statedb *db) { return db && db->open && !db->failed; }

/* A write that memory refused: the file can no longer follow the run, so the
 * run stops as for a failed commit (what was committed is kept, and a rerun
 * resumes from there). Returns -1. */
static int write_lost(aq_statedb *db) {
  group_commit_report_error(db, "out of memory");
  return -1;
}

/* A new item row. pid must be one more than the last one added. Strings are
 * copied; key may be NULL. Returns 0, or -1 out of memory or when the file
 * failed. */
static int item_add(aq_statedb *db, int64_t pid, int64_t parent, int32_t ordinal, const char *cls, size_t cls_len,
                    const char *key, size_t key_len, const char *fields, size_t fields_len) {
  if (!usable(db)) return -1;
  batch *b = db->cur;
  if (b->nrows == 0) b->first_pid = pid;
  else if (pid != b->first_pid + (int64_t)b->nrows) return -1;
  if (grow((void **)&b->rows, &b->rows_cap, b->nrows + 1, sizeof *b->rows) != 0) return write_lost(db);
  item_row *r = &b->rows[b->nrows];
  r->parent = parent;
  r->ordinal = ordinal;
  r->attempts = 0;
  r->state = AQ_DB_PENDING;
  r->outcome = AQ_DB_NO_OUTCOME;
  r->error.off = NO_STRING;
  if (arena_put(b, cls, cls_len, &r->cls) || arena_put(b, key, key_len, &r->key) ||
      arena_put(b, fields, fields_len, &r->fields))
    return write_lost(db);
  b->nrows++;
  written(db);
  return 0;
}

/* The row of pid when it was added to the current batch, else NULL. */
static item_row *row_in_batch(batch *b, int64_t pid) {
  if (b->nrows == 0 || pid < b->first_pid || pid >= b->first_pid + (int64_t)b->nrows) return NULL;
  return &b->rows[pid - b->first_pid];
}

/* The last update of pid in the current batch, if it is still known. */
static item_update *recent_update(batch *b, int64_t pid) {
  uint32_t i = b->recent[(uint64_t)pid % AQ_DB_MERGE_SLOTS];
  return i < b->nupdates && b->updates[i].pid == pid ? &b->updates[i] : NULL;
}

/* A new update in `cur`, for the caller to fill in and then call written():
 * written() may hand `cur` to the writer thread, after which the loop thread
 * must not touch it. */
static item_update *new_update(aq_statedb *db, int64_t pid, int kind) {
  batch *b = db->cur;
  if (grow((void **)&b->updates, &b->updates_cap, b->nupdates + 1, sizeof *b->updates) != 0) return NULL;
  b->recent[(uint64_t)pid % AQ_DB_MERGE_SLOTS] = (uint32_t)b->nupdates;
  item_update *u = &b->updates[b->nupdates++];
  memset(u, 0, sizeof *u);
  u->pid = pid;
  u->kind = (uint8_t)kind;
  u->error.off = NO_STRING;
  return u;
}

int aq__statedb_item_attempts(aq_statedb *db, int64_t pid, int32_t attempts) {
  if (!usable(db)) return -1;
  item_row *r = row_in_batch(db->cur, pid);
  if (r) {
    r->attempts = attempts;
    return 0;
  }
  item_update *u = new_update(db, pid, UPDATE_ATTEMPTS);
  if (!u) return write_lost(db);
  u->attempts = attempts;
  written(db);
  return 0;
}

int aq__statedb_item_processed(aq_statedb *db, int64_t pid, int32_t ok, int32_t attempts, const char *error,
                               size_t error_len) {
  if (!usable(db)) return -1;
  item_row *r = row_in_batch(db->cur, pid);
  if (r) {
    r->state = AQ_DB_OPEN;
    r->outcome = ok ? AQ_DB_DONE : AQ_DB_FAILED;
    r->attempts = attempts;
    return arena_put(db->cur, error, error_len, &r->error) == 0 ? 0 : write_lost(db);
  }
  item_update *u = new_update(db, pid, UPDATE_PROCESSED);
  if (!u) return write_lost(db);
  u->ok = ok != 0;
  u->attempts = attempts;
  int rc = arena_put(db->cur, error, error_len, &u->error);
  written(db);
  return rc == 0 ? 0 : write_lost(db);
}

int aq__statedb_item_finished(aq_statedb *db, int64_t pid) {
  if (!usable(db)) return -1;
  item_row *r = row_in_batch(db->cur, pid);
  if (r) {
    r->state = AQ_DB_FINISHED;
    return 0;
  }
  item_update *u = recent_update(db->cur, pid); /* most items finish right after processing */
  if (u && u->kind == UPDATE_PROCESSED) {
    u->kind = UPDATE_PROCESSED_FINISHED;
    return 0;
  }
  if (!new_update(db, pid, UPDATE_FINISHED)) return write_lost(db);
  written(db);
  return 0;
}

/* statedb.add_item(db, item, pid, parent_pid, ordinal, class, key_text):
 * the row of a new item, its fields as JSON (checked before by the caller;
 * raises if one cannot be saved). A C function, not an FFI call, because it
 * reads the item table; run_queue calls it last in enqueue (see there). */
int item_rows_l_add(lua_State *L) {
  aq_statedb *db = statedb_check(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t pid = (int64_t)luaL_checknumber(L, 3), parent = (int64_t)luaL_checknumber(L, 4);
  int32_t ordinal = (int32_t)luaL_checkinteger(L, 5);
  size_t cls_len, key_len = 0, json_len = 0;
  const char *cls = luaL_checklstring(L, 6, &cls_len);
  const char *key = luaL_optlstring(L, 7, NULL, &key_len);
  const char *problem = NULL, *field = NULL;
  const char *json = state_encode_item(L, 2, &json_len, &problem, &field);
  if (!json) return luaL_error(L, "enqueue: %s.%s cannot be saved in the state file: it %s", cls, field, problem);
  if (item_add(db, pid, parent, ordinal, cls, cls_len, key, key_len, json, json_len) != 0 && !db->failed)
    return luaL_error(L, "enqueue: out of memory");
  return 0;
}
