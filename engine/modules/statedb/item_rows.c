/*
 * item_rows.c — the items table of a state file: a row per item, written at
 * each step of its life (lua/aqueue/state.lua). A new row comes from
 * statedb.add_item (a Lua C function: it reads the item table), its next
 * steps through the FFI (statedb_ffi.h), all on the loop thread and into the
 * current batch. A step of an item whose row or last update is still in the
 * batch is merged into it; the writer thread then writes rows and updates
 * (batch_commit.c). States and outcomes are statedb.h's values.
 */
#include <string.h>

#include <lauxlib.h>

#include "item_rows.h"
#include "group_commit.h"
#include "db_state.h"

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
  if (db_grow((void **)&b->rows, &b->rows_cap, b->nrows + 1, sizeof *b->rows) != 0) return write_lost(db);
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
  if (db_grow((void **)&b->updates, &b->updates_cap, b->nupdates + 1, sizeof *b->updates) != 0) return NULL;
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
