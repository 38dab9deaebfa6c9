/*
 * batch_commit.c — what the writer thread runs for a batch handed off to it
 * (group_commit.c): one transaction with the batch's new item rows, its item
 * updates and its writes through db:prepare() statements, in that order. The
 * item statements are prepared here on first use; the db:prepare() ones by
 * statements.c on the loop thread while the writer is idle. Both are
 * finalized here when the file closes.
 *
 * Threads: the writer thread only, on a batch it alone touches (and at close,
 * the loop thread once the writer has stopped).
 */
#include <stdlib.h>
#include <string.h>

#include "batch_commit.h"
#include "db_state.h"

/* Runs a statement of a batch's transaction, then resets it for its next
 * use. Returns SQLITE_OK or the error. */
static int statement_step(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* --- item rows --- */

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

/* Prepares the item statements once. */
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

/* Writes a batch's item rows and updates (item_rows.c gathered them). */
static int commit_item_rows(aq_statedb *db, const batch *b) {
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

/* --- db:prepare() statements --- */

/* Runs a batch's writes through db:prepare() statements (statements.c
 * gathered them). */
static int commit_statements(aq_statedb *db, const batch *b) {
  for (size_t i = 0; i < b->nops; i++) {
    const generic_op *op = &b->ops[i];
    sqlite3_stmt *st = db->stmts[op->stmt];
    for (int a = 0; a < op->nargs; a++) {
      if (op->args[a].type == ARG_INT) sqlite3_bind_int64(st, a + 1, op->args[a].i);
      else if (op->args[a].type == ARG_TEXT) batch_bind_str(st, a + 1, b, op->args[a].s);
      else sqlite3_bind_null(st, a + 1);
    }
    int rc = statement_step(st);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

/* --- the transaction --- */

char *batch_commit(aq_statedb *db, const batch *b) {
  int rc = sqlite3_exec(db->conn, "BEGIN", NULL, NULL, NULL);
  if (rc == SQLITE_OK) rc = commit_item_rows(db, b);
  if (rc == SQLITE_OK) rc = commit_statements(db, b);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db->conn, "COMMIT", NULL, NULL, NULL);
  if (rc == SQLITE_OK) return NULL;
  char *msg = sqlite3_mprintf("%s", sqlite3_errmsg(db->conn));
  sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
  char *copy = strdup(msg ? msg : "out of memory");
  sqlite3_free(msg);
  return copy ? copy : strdup("out of memory");
}

void batch_commit_finalize(aq_statedb *db) {
  for (int i = 0; i < ITEM_STATEMENTS; i++) {
    sqlite3_finalize(db->item_stmts[i]);
    db->item_stmts[i] = NULL;
  }
  for (int i = 0; i < db->nstmts; i++) sqlite3_finalize(db->stmts[i]);
  db->nstmts = 0;
}
