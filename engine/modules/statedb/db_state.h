/*
 * db_state.h — an open aqueue SQLite file (aqueue.statedb, statedb.h): the
 * state every file of this folder works on. Each file declares what it
 * offers the others in its own header. One file per job, in layers: a file
 * calls only the files listed before it (state_encode.c and file_format.c
 * stand alone).
 *   db_batch.c       batches: the writes the loop thread gathers
 *   batch_commit.c   the SQL the writer thread runs for a batch
 *   group_commit.c   the writer thread, hand-offs, db:flush()
 *   item_rows.c      the items table of a state file (run_queue's steps)
 *   statements.c     writes through db:prepare() statements (stores, disk queues)
 *   reading.c        db:rows() and db:exec(), synchronous
 *   file_format.c    what an aqueue SQLite file is: checks before use, schema
 *   statedb.c        a file's life: open, close, the Lua module (on top)
 *
 * Threads: two batches take turns: the loop thread fills `cur` while the
 * writer commits `handed`. Only `handed`, `committed`, `write_error` and
 * `quit` are shared; they are guarded by `mu`.
 */
#ifndef AQ_DB_STATE_H
#define AQ_DB_STATE_H

#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>
#include <sqlite3.h>
#include <uv.h>

#include "aqueue.h"
#include "db_batch.h"
#include "statedb.h"

#define AQ_DB_COMMIT_MS 50
#define AQ_DB_BATCH_WRITES 16384 /* a batch this big is handed off at once, timer or not */
#define AQ_DB_MAX_STATEMENTS 16  /* db:prepare() statements per file */
#define DB_MT "aqueue.statedb"

typedef struct flush_waiter {
  aq_task *task;
  uint64_t seq; /* resumed once this batch is committed */
  struct aq_statedb *db;
  struct flush_waiter *next;
} flush_waiter;

struct aq_statedb {
  aq_engine *E;
  char *path;
  char kind[16];
  sqlite3 *conn;
  int open, ref;
  struct aq_statedb *next_open; /* open_dbs */

  /* writer thread only */
  sqlite3_stmt *item_stmts[ITEM_STATEMENTS]; /* insert, then one per update kind */
  sqlite3_stmt *stmts[AQ_DB_MAX_STATEMENTS];
  int nstmts;

  batch batches[2];
  batch *cur;     /* being filled by the loop thread */
  uint64_t handoffs;

  uv_thread_t thread;
  uv_mutex_t mu;
  uv_cond_t work, done;
  batch *handed;          /* mu: being committed, NULL when the writer is idle; also read
                           * without mu by written() (the loop's hot path), so the writer
                           * clears it with an atomic store */
  uint64_t committed;     /* mu: seq of the last committed batch */
  char *write_error;      /* mu: set once, when a commit failed */
  int quit;               /* mu */

  int failed;             /* loop: the write error was reported; writes are refused */
  int hold;               /* loop: aq__statedb_hold: `cur` is not handed off for its size */
  flush_waiter *waiters;
  uv_async_t async;
  uv_timer_t timer;
  int closing_handles;
};

/* The open db at argument 1, raising when it is not one or is closed. For
 * every method of a db, whichever file it is written in. */
static inline aq_statedb *statedb_check(lua_State *L) {
  aq_statedb *db = luaL_checkudata(L, 1, DB_MT);
  if (!db->open) luaL_error(L, "%s %s is closed", db->kind, db->path);
  return db;
}

#endif
