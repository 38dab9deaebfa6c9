/*
 * statedb_private.h — the parts of aqueue.statedb (statedb.h) and what each
 * file of this folder offers the others. One file per job, in layers: a file
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
#ifndef AQ_STATEDB_PRIVATE_H
#define AQ_STATEDB_PRIVATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <sqlite3.h>
#include <uv.h>

#include "aqueue.h"
#include "statedb.h"

#define AQ_DB_COMMIT_MS 50
#define AQ_DB_BATCH_WRITES 16384 /* a batch this big is handed off at once, timer or not */
#define AQ_DB_MERGE_SLOTS 1024   /* recent updates by pid, to merge an item's next step into */
#define AQ_DB_MAX_STATEMENTS 16  /* db:prepare() statements per file */
#define AQ_DB_OP_ARGS 3
#define DB_MT "aqueue.statedb"
#define NO_STRING UINT32_MAX

typedef struct {
  uint32_t off, len; /* into the batch's arena; off NO_STRING for NULL */
} str_ref;

/* A new item, with whatever happened to it before its batch was handed off. */
typedef struct {
  int64_t parent;
  int32_t ordinal, attempts;
  uint8_t state, outcome;
  str_ref cls, key, fields, error;
} item_row;

enum { UPDATE_ATTEMPTS, UPDATE_PROCESSED, UPDATE_FINISHED, UPDATE_PROCESSED_FINISHED, ITEM_STATEMENTS = 5 };
typedef struct {
  int64_t pid;
  uint8_t kind, ok;
  int32_t attempts;
  str_ref error;
} item_update;

/* A write through a db:prepare() statement. */
enum { ARG_NULL, ARG_INT, ARG_TEXT };
typedef struct {
  int32_t stmt, nargs;
  struct {
    int type;
    int64_t i;
    str_ref s;
  } args[AQ_DB_OP_ARGS];
} generic_op;

typedef struct {
  item_row *rows;
  size_t nrows, rows_cap;
  int64_t first_pid; /* pid of rows[0] */
  item_update *updates;
  size_t nupdates, updates_cap;
  generic_op *ops;
  size_t nops, ops_cap;
  char *arena;
  size_t used, arena_cap;
  uint64_t seq;      /* set when handed off */
  uint32_t recent[AQ_DB_MERGE_SLOTS]; /* pid % slots -> index in updates (may be stale) */
} batch;

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

/* --- file_format.c --- */
/* Opens `path` as an aqueue file of `kind` for this process, making it one
 * when it is new or empty. Returns NULL and the connection in *conn, or a
 * message (sqlite3_mprintf) saying why not; the file is then left as it was. */
char *file_format_open(const char *path, const char *kind, sqlite3 **conn);

/* --- db_batch.c --- */
void batch_reset(batch *b);
void batch_free(batch *b);
/* Copies s (NULL for SQL NULL) into the batch's arena. Returns 0 or -1. */
int arena_put(batch *b, const char *s, size_t len, str_ref *out);
/* Binds a batch's string (the writer thread). */
void batch_bind_str(sqlite3_stmt *st, int i, const batch *b, str_ref s);

static inline int batch_empty(const batch *b) { return b->nrows == 0 && b->nupdates == 0 && b->nops == 0; }

/* Makes room for `need` elements of `size` in *p. Returns 0, or -1 out of
 * memory. Inline: each write of the hot path calls it. */
static inline int db_grow(void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap * 2 : 256;
  while (n < need) n *= 2;
  void *q = realloc(*p, n * size);
  if (!q) return -1;
  *p = q;
  *cap = n;
  return 0;
}

/* --- batch_commit.c --- */
/* Commits one batch as one transaction (the writer thread). Returns NULL, or
 * an error message to free. */
char *batch_commit(aq_statedb *db, const batch *b);
/* Finalizes the item statements and the db:prepare() ones (at close, the
 * writer thread stopped). */
void batch_commit_finalize(aq_statedb *db);

/* --- group_commit.c --- */
/* The writer thread's body (uv_thread_create). */
void group_commit_writer(void *arg);
/* The writer committed a batch (uv_async_t callback): wakes the waiters. */
void group_commit_on_committed(uv_async_t *async);
void group_commit_on_timer(uv_timer_t *timer);
/* Hands `cur` off now if the writer is idle and there is something to write. */
void group_commit_kick(aq_statedb *db);
/* Blocks the loop thread until the writer is idle: the connection is then the
 * loop thread's to use (it is opened NOMUTEX; only the loop thread hands off). */
void group_commit_wait_idle(aq_statedb *db);
/* Blocks the loop thread until everything appended so far is committed (or
 * failed): at open/read time and at close, never on a task's hot path. */
void group_commit_flush_sync(aq_statedb *db);
/* Resumes the tasks whose writes are committed (or failed). */
void group_commit_wake_waiters(aq_statedb *db);
/* The file cannot follow the run (a failed commit, or a write memory
 * refused): logs it once and stops the engine; what was committed is kept. */
void group_commit_report_error(aq_statedb *db, const char *err);
/* db:flush() */
int group_commit_l_flush(lua_State *L);

/* The loop thread appended to `cur`: make sure it gets committed. A big
 * batch goes to an idle writer at once: a process() that enqueues a million
 * items without yielding never lets the timer or the writer's news run.
 * Inline: each write of the hot path calls it. */
static inline void written(aq_statedb *db) {
  batch *b = db->cur;
  if (b->nrows + b->nupdates + b->nops >= AQ_DB_BATCH_WRITES && !__atomic_load_n(&db->handed, __ATOMIC_ACQUIRE))
    group_commit_kick(db);
  else if (!uv_is_active((uv_handle_t *)&db->timer))
    uv_timer_start(&db->timer, group_commit_on_timer, AQ_DB_COMMIT_MS, 0);
}

/* --- item_rows.c --- */
/* statedb.add_item */
int item_rows_l_add(lua_State *L);

/* --- statements.c --- */
int statements_l_prepare(lua_State *L);
int statements_l_write(lua_State *L);

/* --- reading.c --- */
/* The metatable of db:rows() iterators. */
void reading_register(lua_State *L);
int reading_l_rows(lua_State *L);
int reading_l_exec(lua_State *L);

#endif
