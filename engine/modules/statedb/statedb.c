/*
 * statedb.c — SQLite files written in group commits by a writer thread (see
 * statedb.h), and their Lua binding `aqueue.statedb`.
 *
 * Ownership: a db is a Lua userdata. While the file is open the registry holds
 * a reference to it (it cannot be collected) and `open_dbs` lists it; db:close()
 * or the engine's close (close_all, an aq_engine_on_close hook) commit what is
 * left, stop the writer thread, close the connection and the uv handles, and
 * the last close callback drops the reference.
 *
 * Written against the public C API (aqueue.h) only, as every built-in binding.
 *
 * Two batches take turns: the loop thread fills `cur` while the writer commits
 * `handed`. Only `handed`, `committed`, `write_error` and `quit` are shared;
 * they are guarded by `mu`.
 */
#include "builtin.h"
#include "statedb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <sqlite3.h>
#include <uv.h>

#include "aqueue.h"

#define AQ_DB_COMMIT_MS 50
#define AQ_DB_BATCH_WRITES 16384 /* a batch this big is handed off at once, timer or not */
#define AQ_DB_MERGE_SLOTS 1024   /* recent updates by pid, to merge an item's next step into */
#define AQ_DB_FORMAT 1           /* PRAGMA user_version of the files this engine writes */
#define AQ_DB_APP_ID 0x61717565  /* PRAGMA application_id: "aque" */
#define AQ_DB_MAX_STATEMENTS 16  /* db:prepare() statements per file */
#define AQ_DB_OP_ARGS 3
#define DB_MT "aqueue.statedb"
#define ROWS_MT "aqueue.statedb.rows"
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

enum { UPDATE_ATTEMPTS, UPDATE_PROCESSED, UPDATE_FINISHED, UPDATE_PROCESSED_FINISHED };
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
  sqlite3_stmt *item_stmts[5]; /* insert, then one per update kind */
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

/* The files open in this process (one engine per process). */
static aq_statedb *open_dbs;
static int close_hook_set; /* close_all is registered with the engine */

/* --- batches --- */

static void batch_reset(batch *b) {
  b->nrows = b->nupdates = b->nops = b->used = 0;
}

static void batch_free(batch *b) {
  free(b->rows);
  free(b->updates);
  free(b->ops);
  free(b->arena);
  memset(b, 0, sizeof *b);
}

static int batch_empty(const batch *b) { return b->nrows == 0 && b->nupdates == 0 && b->nops == 0; }

static int grow(void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap * 2 : 256;
  while (n < need) n *= 2;
  void *q = realloc(*p, n * size);
  if (!q) return -1;
  *p = q;
  *cap = n;
  return 0;
}

static int arena_put(batch *b, const char *s, size_t len, str_ref *out) {
  if (!s) {
    out->off = NO_STRING;
    out->len = 0;
    return 0;
  }
  if (len >= UINT32_MAX || b->used + len >= UINT32_MAX) return -1;
  if (grow((void **)&b->arena, &b->arena_cap, b->used + len + 1, 1) != 0) return -1;
  memcpy(b->arena + b->used, s, len);
  out->off = (uint32_t)b->used;
  out->len = (uint32_t)len;
  b->used += len;
  return 0;
}

/* --- the writer thread --- */

static const char *const item_sql[5] = {
    "INSERT INTO items(pid, parent, ordinal, class, key, fields, state, outcome, attempts, error) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    "UPDATE items SET attempts = ?2 WHERE pid = ?1",
    "UPDATE items SET state = 1, outcome = ?2, attempts = ?3, error = ?4 WHERE pid = ?1",
    "UPDATE items SET state = 2, fields = CASE outcome WHEN 1 THEN NULL ELSE fields END WHERE pid = ?1",
    "UPDATE items SET state = 2, outcome = ?2, attempts = ?3, error = ?4, "
    "fields = CASE ?2 WHEN 1 THEN NULL ELSE fields END WHERE pid = ?1",
};

static void bind_str(sqlite3_stmt *st, int i, const batch *b, str_ref s) {
  if (s.off == NO_STRING) sqlite3_bind_null(st, i);
  else sqlite3_bind_text(st, i, b->arena + s.off, (int)s.len, SQLITE_STATIC);
}

static int step(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int commit_items(aq_statedb *db, const batch *b) {
  for (int i = 0; i < 5; i++)
    if (!db->item_stmts[i] && sqlite3_prepare_v2(db->conn, item_sql[i], -1, &db->item_stmts[i], NULL) != SQLITE_OK)
      return sqlite3_errcode(db->conn);
  sqlite3_stmt *ins = db->item_stmts[0];
  for (size_t i = 0; i < b->nrows; i++) {
    const item_row *r = &b->rows[i];
    sqlite3_bind_int64(ins, 1, b->first_pid + (int64_t)i);
    sqlite3_bind_int64(ins, 2, r->parent);
    sqlite3_bind_int(ins, 3, r->ordinal);
    bind_str(ins, 4, b, r->cls);
    bind_str(ins, 5, b, r->key);
    if (r->state == AQ_DB_FINISHED && r->outcome == AQ_DB_DONE) sqlite3_bind_null(ins, 6);
    else bind_str(ins, 6, b, r->fields);
    sqlite3_bind_int(ins, 7, r->state);
    sqlite3_bind_int(ins, 8, r->outcome);
    sqlite3_bind_int(ins, 9, r->attempts);
    bind_str(ins, 10, b, r->error);
    int rc = step(ins);
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
      bind_str(st, 4, b, u->error);
    }
    int rc = step(st);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

static int commit_ops(aq_statedb *db, const batch *b) {
  for (size_t i = 0; i < b->nops; i++) {
    const generic_op *op = &b->ops[i];
    sqlite3_stmt *st = db->stmts[op->stmt];
    for (int a = 0; a < op->nargs; a++) {
      if (op->args[a].type == ARG_INT) sqlite3_bind_int64(st, a + 1, op->args[a].i);
      else if (op->args[a].type == ARG_TEXT) bind_str(st, a + 1, b, op->args[a].s);
      else sqlite3_bind_null(st, a + 1);
    }
    int rc = step(st);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

/* Commits one batch as one transaction. Returns NULL, or an error message to free. */
static char *commit_batch(aq_statedb *db, const batch *b) {
  int rc = sqlite3_exec(db->conn, "BEGIN", NULL, NULL, NULL);
  if (rc == SQLITE_OK) rc = commit_items(db, b);
  if (rc == SQLITE_OK) rc = commit_ops(db, b);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db->conn, "COMMIT", NULL, NULL, NULL);
  if (rc == SQLITE_OK) return NULL;
  char *msg = sqlite3_mprintf("%s", sqlite3_errmsg(db->conn));
  sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
  char *copy = strdup(msg ? msg : "out of memory");
  sqlite3_free(msg);
  return copy ? copy : strdup("out of memory");
}

static void writer_main(void *arg) {
  aq_statedb *db = arg;
  uv_mutex_lock(&db->mu);
  for (;;) {
    while (!db->handed && !db->quit) uv_cond_wait(&db->work, &db->mu);
    if (!db->handed) break; /* quit, nothing left */
    batch *b = db->handed;
    int failed = db->write_error != NULL;
    uv_mutex_unlock(&db->mu);
    char *err = failed ? NULL : commit_batch(db, b);
    uv_mutex_lock(&db->mu);
    if (err && !db->write_error) db->write_error = err;
    else free(err);
    if (!db->write_error) db->committed = b->seq;
    /* atomic: written() peeks at it without the mutex */
    __atomic_store_n(&db->handed, NULL, __ATOMIC_RELEASE);
    uv_cond_broadcast(&db->done);
    if (!db->quit) uv_async_send(&db->async);
  }
  uv_mutex_unlock(&db->mu);
}

/* --- the loop side --- */

/* Hands `cur` to the writer. The writer must be idle (mu held). */
static void hand_off_locked(aq_statedb *db) {
  batch *next = db->cur == &db->batches[0] ? &db->batches[1] : &db->batches[0];
  batch_reset(next);
  db->cur->seq = ++db->handoffs;
  db->handed = db->cur;
  db->cur = next;
  uv_cond_signal(&db->work);
}

/* Hands `cur` off now if the writer is idle and there is something to write. */
static void kick(aq_statedb *db) {
  if (batch_empty(db->cur)) return;
  uv_mutex_lock(&db->mu);
  if (!db->handed) hand_off_locked(db);
  uv_mutex_unlock(&db->mu);
}

/* Blocks the loop thread until the writer is idle: the connection is then the
 * loop thread's to use (it is opened NOMUTEX; only the loop thread hands off). */
static void wait_writer_idle(aq_statedb *db) {
  uv_mutex_lock(&db->mu);
  while (db->handed) uv_cond_wait(&db->done, &db->mu);
  uv_mutex_unlock(&db->mu);
}

/* Blocks the loop thread until everything appended so far is committed (or
 * failed): at open/read time and at close, never on a task's hot path. */
static void flush_sync(aq_statedb *db) {
  uv_mutex_lock(&db->mu);
  while (db->handed) uv_cond_wait(&db->done, &db->mu);
  if (!batch_empty(db->cur)) {
    hand_off_locked(db);
    while (db->handed) uv_cond_wait(&db->done, &db->mu);
  }
  uv_mutex_unlock(&db->mu);
}

static void report_write_error(aq_statedb *db, const char *err) {
  if (db->failed) return;
  db->failed = 1;
  char line[1024];
  int n = snprintf(line, sizeof line,
                   "aqueue: %s %s: cannot write: %s; stopping (what was committed before is kept)",
                   strcmp(db->kind, AQ_DB_KIND_STATE) == 0 ? "state file" : db->kind, db->path, err);
  aq_log(db->E, line, n < 0 ? 0 : (size_t)n >= sizeof line ? sizeof line - 1 : (size_t)n);
  aq_engine_stop(db->E, 1, "stopped: a state file cannot be written");
}

/* Resumes the tasks whose writes are committed (or failed). */
static void wake_waiters(aq_statedb *db) {
  uv_mutex_lock(&db->mu);
  uint64_t committed = db->committed;
  const char *err = db->write_error;
  uv_mutex_unlock(&db->mu);
  flush_waiter **pp = &db->waiters;
  while (*pp) {
    flush_waiter *w = *pp;
    if (err || w->seq <= committed) {
      *pp = w->next;
      if (err) aq_task_resume_error(w->task, err);
      else {
        lua_pushboolean(aq_task_state(w->task), 1);
        aq_task_resume(w->task, 1);
      }
      free(w);
    } else {
      pp = &w->next;
    }
  }
  if (!db->waiters) uv_unref((uv_handle_t *)&db->async); /* nothing waits: the loop may end */
  if (err) report_write_error(db, err);
}

static void on_committed(uv_async_t *async) {
  aq_statedb *db = async->data;
  if (!db->open) return;
  wake_waiters(db);
  kick(db); /* what gathered while the writer was busy */
}

static void on_commit_timer(uv_timer_t *timer) { kick(timer->data); }

/* The loop thread appended to `cur`: make sure it gets committed. A big
 * batch goes to an idle writer at once: a process() that enqueues a million
 * items without yielding never lets the timer or the writer's news run. */
static void written(aq_statedb *db) {
  batch *b = db->cur;
  if (b->nrows + b->nupdates + b->nops >= AQ_DB_BATCH_WRITES && !__atomic_load_n(&db->handed, __ATOMIC_ACQUIRE))
    kick(db);
  else if (!uv_is_active((uv_handle_t *)&db->timer))
    uv_timer_start(&db->timer, on_commit_timer, AQ_DB_COMMIT_MS, 0);
}

static int usable(aq_statedb *db) { return db && db->open && !db->failed; }

/* --- FFI hot path: item rows --- */

/* A write that memory refused: the file can no longer follow the run, so the
 * run stops as for a failed commit (what was committed is kept, and a rerun
 * resumes from there). Returns -1. */
static int write_lost(aq_statedb *db) {
  report_write_error(db, "out of memory");
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

/* --- opening --- */

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value);"
    "CREATE TABLE IF NOT EXISTS items("
    "  pid INTEGER PRIMARY KEY,"       /* the item's id in this file */
    "  parent INTEGER NOT NULL,"       /* 0 for a root item */
    "  ordinal INTEGER NOT NULL,"      /* nth child enqueued by the parent's process */
    "  class TEXT NOT NULL,"
    "  key TEXT,"                      /* Item:key(), tagged s: or n: */
    "  fields TEXT,"                   /* JSON; NULL once finished with success */
    "  state INTEGER NOT NULL,"        /* 0 pending, 1 open, 2 finished */
    "  outcome INTEGER NOT NULL,"      /* 0 none yet, 1 done, 2 failed */
    "  attempts INTEGER NOT NULL,"
    "  error TEXT);"
    "CREATE TABLE IF NOT EXISTS store(name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    "  PRIMARY KEY(name, key)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS queue(id INTEGER PRIMARY KEY, value TEXT NOT NULL);";

static int query_int(sqlite3 *conn, const char *sql, int64_t *out) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(conn, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(st, 0);
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_NOTFOUND;
  }
  sqlite3_finalize(st);
  return rc;
}

/* Checks that an existing file is an aqueue file of `kind` this engine can
 * read. Returns NULL, or a message (sqlite3_mprintf) saying what it is. */
static char *check_existing(sqlite3 *conn, const char *path, const char *kind) {
  int64_t app_id = 0, version = 0, tables = 0;
  int rc = query_int(conn, "PRAGMA application_id", &app_id);
  if (rc != SQLITE_OK)
    return sqlite3_mprintf("%s is not an aqueue %s file (%s); it was left as it is", path, kind,
                           sqlite3_errmsg(conn));
  query_int(conn, "SELECT count(*) FROM sqlite_schema", &tables);
  if (app_id == 0 && tables == 0) return NULL; /* an empty database: made anew */
  if (app_id != AQ_DB_APP_ID)
    return sqlite3_mprintf("%s is a database of another program, not an aqueue %s file; it was left as it is", path,
                           kind);
  query_int(conn, "PRAGMA user_version", &version);
  if (version > AQ_DB_FORMAT)
    return sqlite3_mprintf("%s was written by a newer aqueue (file format %lld; this one reads up to %d); "
                           "it was left as it is",
                           path, (long long)version, AQ_DB_FORMAT);
  sqlite3_stmt *st;
  char *msg = NULL;
  if (sqlite3_prepare_v2(conn, "SELECT value FROM meta WHERE key = 'kind'", -1, &st, NULL) != SQLITE_OK)
    return sqlite3_mprintf("%s is damaged (%s); it was left as it is", path, sqlite3_errmsg(conn));
  if (sqlite3_step(st) != SQLITE_ROW)
    msg = sqlite3_mprintf("%s is damaged (it does not say what it holds); it was left as it is", path);
  else if (strcmp((const char *)sqlite3_column_text(st, 0), kind) != 0)
    msg = sqlite3_mprintf("%s is an aqueue %s file, not a %s file; it was left as it is", path,
                          sqlite3_column_text(st, 0), kind);
  sqlite3_finalize(st);
  return msg;
}

/* A message for an SQLite failure while opening `path`. */
static char *open_problem(int rc, const char *path, const char *kind, const char *detail) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return sqlite3_mprintf("%s is in use by another process", path);
    case SQLITE_NOTADB:
      return sqlite3_mprintf("%s is not an aqueue %s file (%s); it was left as it is", path, kind, detail);
    case SQLITE_CORRUPT: return sqlite3_mprintf("%s is damaged (%s); it was left as it is", path, detail);
    case SQLITE_READONLY: return sqlite3_mprintf("cannot write %s: %s", path, detail);
    default: return sqlite3_mprintf("cannot open %s: %s", path, detail);
  }
}

/* SQLite's message, with the system's reason when there is one. */
static char *explain(sqlite3 *conn, int rc, const char *errmsg) {
  int err = conn ? sqlite3_system_errno(conn) : 0;
  const char *what = errmsg ? errmsg : sqlite3_errstr(rc);
  return err ? sqlite3_mprintf("%s: %s", what, strerror(err)) : sqlite3_mprintf("%s", what);
}

static char *run_sql(sqlite3 *conn, const char *sql, const char *path, const char *kind) {
  char *errmsg = NULL;
  int rc = sqlite3_exec(conn, sql, NULL, NULL, &errmsg);
  if (rc == SQLITE_OK) return NULL;
  char *detail = explain(conn, rc, errmsg);
  char *msg = open_problem(rc, path, kind, detail);
  sqlite3_free(detail);
  sqlite3_free(errmsg);
  sqlite3_exec(conn, "ROLLBACK", NULL, NULL, NULL);
  return msg;
}

/* Takes the file for this process, checks what it holds before changing
 * anything, then makes it ours (WAL, schema). Returns NULL or a message. */
static char *setup_connection(sqlite3 *conn, const char *path, const char *kind) {
  sqlite3_extended_result_codes(conn, 1);
  /* SQLite opens a file it may not write read-only, without a word. */
  if (sqlite3_db_readonly(conn, "main") == 1) return sqlite3_mprintf("cannot write %s: the file is read-only", path);
  /* The exclusive lock (taken by the first read) keeps a second aqueue-run off the file. */
  char *problem = run_sql(conn, "PRAGMA locking_mode = EXCLUSIVE; BEGIN IMMEDIATE; SELECT count(*) FROM sqlite_schema;",
                          path, kind);
  if (!problem) problem = check_existing(conn, path, kind);
  sqlite3_exec(conn, "COMMIT", NULL, NULL, NULL);
  if (problem) return problem;
  problem = run_sql(conn, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", path, kind);
  if (problem) return problem;
  char *sql = sqlite3_mprintf("BEGIN; %s PRAGMA application_id = %d; PRAGMA user_version = %d;"
                              "INSERT OR IGNORE INTO meta VALUES ('kind', %Q); COMMIT;",
                              schema_sql, AQ_DB_APP_ID, AQ_DB_FORMAT, kind);
  problem = run_sql(conn, sql, path, kind);
  sqlite3_free(sql);
  return problem;
}

static void on_handle_closed(uv_handle_t *h);
static void close_all(aq_engine *E, void *data);

/* SQLite takes a file shorter than its header for an empty database and
 * would make it one: a file that exists must start with the header (an
 * empty file, such as mktemp makes, is adopted). */
static int is_sqlite_or_empty(const char *path) {
  static const char header[16] = "SQLite format 3";
  char got[16];
  FILE *f = fopen(path, "rb");
  if (!f) return 1; /* not there yet (or unreadable: sqlite3_open says why) */
  size_t n = fread(got, 1, sizeof got, f);
  fclose(f);
  return n == 0 || (n == sizeof got && memcmp(got, header, sizeof got) == 0);
}

static aq_statedb *check_db(lua_State *L) {
  aq_statedb *db = luaL_checkudata(L, 1, DB_MT);
  if (!db->open) luaL_error(L, "%s %s is closed", db->kind, db->path);
  return db;
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
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s is a directory", path);
    return 2;
  }
  if (!is_sqlite_or_empty(path)) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s is not an aqueue %s file (it is not an SQLite database); it was left as it is", path, kind);
    return 2;
  }
  sqlite3 *conn = NULL;
  int rc = sqlite3_open_v2(path, &conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  char *problem;
  if (rc == SQLITE_OK) {
    problem = setup_connection(conn, path, kind);
  } else {
    char *detail = explain(conn, rc, sqlite3_errmsg(conn));
    problem = sqlite3_mprintf("cannot open %s: %s", path, detail);
    sqlite3_free(detail);
  }
  if (problem) {
    sqlite3_close(conn);
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
  uv_async_init(aq_engine_loop(E), &db->async, on_committed);
  uv_unref((uv_handle_t *)&db->async);
  uv_timer_init(aq_engine_loop(E), &db->timer);
  uv_unref((uv_handle_t *)&db->timer); /* the exit commits what is left */
  db->async.data = db->timer.data = db;
  lua_pushvalue(L, -1);
  db->ref = luaL_ref(L, LUA_REGISTRYINDEX); /* dropped when the handles are closed */
  if (uv_thread_create(&db->thread, writer_main, db) != 0) {
    sqlite3_close(conn);
    uv_mutex_destroy(&db->mu);
    uv_cond_destroy(&db->work);
    uv_cond_destroy(&db->done);
    db->closing_handles = 2;
    uv_close((uv_handle_t *)&db->async, on_handle_closed);
    uv_close((uv_handle_t *)&db->timer, on_handle_closed);
    return luaL_error(L, "cannot start the writer thread of %s", path);
  }
  db->open = 1;
  db->next_open = open_dbs;
  open_dbs = db;
  return 1;
}

/* --- closing --- */

static void on_handle_closed(uv_handle_t *h) {
  aq_statedb *db = h->data;
  if (--db->closing_handles > 0) return;
  luaL_unref(aq_engine_state(db->E), LUA_REGISTRYINDEX, db->ref);
}

static void db_close(aq_statedb *db) {
  if (!db->open) return;
  flush_sync(db);
  uv_mutex_lock(&db->mu);
  db->quit = 1;
  uv_cond_signal(&db->work);
  uv_mutex_unlock(&db->mu);
  uv_thread_join(&db->thread);
  wake_waiters(db);
  db->open = 0;
  for (aq_statedb **pp = &open_dbs; *pp; pp = &(*pp)->next_open)
    if (*pp == db) {
      *pp = db->next_open;
      break;
    }
  for (int i = 0; i < 5; i++) sqlite3_finalize(db->item_stmts[i]);
  for (int i = 0; i < db->nstmts; i++) sqlite3_finalize(db->stmts[i]);
  sqlite3_close_v2(db->conn); /* freed once the last db:rows() iterator is collected */
  db->conn = NULL;
  batch_free(&db->batches[0]);
  batch_free(&db->batches[1]);
  free(db->write_error);
  db->write_error = NULL;
  uv_mutex_destroy(&db->mu);
  uv_cond_destroy(&db->work);
  uv_cond_destroy(&db->done);
  db->closing_handles = 2;
  uv_close((uv_handle_t *)&db->async, on_handle_closed);
  uv_close((uv_handle_t *)&db->timer, on_handle_closed);
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

/* --- writes through prepared statements --- */

/* db:prepare(sql) -> a statement number for db:write. */
static int l_prepare(lua_State *L) {
  aq_statedb *db = check_db(L);
  const char *sql = luaL_checkstring(L, 2);
  if (db->nstmts == AQ_DB_MAX_STATEMENTS) return luaL_error(L, "too many statements");
  flush_sync(db); /* the writer is idle: the connection is ours */
  if (sqlite3_prepare_v2(db->conn, sql, -1, &db->stmts[db->nstmts], NULL) != SQLITE_OK)
    return luaL_error(L, "%s: %s", db->path, sqlite3_errmsg(db->conn));
  lua_pushinteger(L, db->nstmts++);
  return 1;
}

/* db:write(stmt, args...): runs the statement in the next group commit.
 * Arguments are nil, whole numbers or strings. Returns true, or nil, message
 * when the file can no longer be written. */
static int l_write(lua_State *L) {
  aq_statedb *db = check_db(L);
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
  if (grow((void **)&b->ops, &b->ops_cap, b->nops + 1, sizeof *b->ops) != 0) return luaL_error(L, "out of memory");
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

/* --- waiting for commits --- */

static void cancel_flush(aq_task *task, void *data) {
  flush_waiter *w = data;
  (void)task;
  aq_statedb *db = w->db;
  for (flush_waiter **pp = &db->waiters; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  free(w);
  if (!db->waiters && db->open) uv_unref((uv_handle_t *)&db->async);
}

/* db:flush() -> true once every write made so far is committed, or nil,
 * message. Yields (the loop goes on); the commit starts at once. */
static int l_flush(lua_State *L) {
  aq_statedb *db = check_db(L);
  aq_task *task = aq_task_current(L);
  uv_mutex_lock(&db->mu);
  uint64_t want = batch_empty(db->cur) ? (db->handed ? db->handed->seq : 0) : db->handoffs + 1;
  int done = want <= db->committed;
  const char *err = db->write_error;
  uv_mutex_unlock(&db->mu);
  if (err) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  if (done) {
    lua_pushboolean(L, 1);
    return 1;
  }
  flush_waiter *w = malloc(sizeof *w);
  if (!w) return luaL_error(L, "out of memory");
  w->task = task;
  w->seq = want;
  w->db = db;
  w->next = db->waiters;
  db->waiters = w;
  uv_ref((uv_handle_t *)&db->async); /* the commit's news keeps the loop alive */
  kick(db);
  return aq_task_yield(L, cancel_flush, w);
}

/* --- reading (synchronous: opening, loading a run, --status) --- */

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
  if (box->db->open) wait_writer_idle(box->db);
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
  if (box->st && box->db->open) wait_writer_idle(box->db);
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
static int l_rows(lua_State *L) {
  aq_statedb *db = check_db(L);
  const char *sql = luaL_checkstring(L, 2);
  flush_sync(db);
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
static int l_exec(lua_State *L) {
  aq_statedb *db = check_db(L);
  const char *sql = luaL_checkstring(L, 2);
  flush_sync(db);
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

/* statedb.add_item(db, item, pid, parent_pid, ordinal, class, key_text):
 * the row of a new item, its fields as JSON (checked before by the caller;
 * raises if one cannot be saved). A C function, not an FFI call, because it
 * reads the item table; run_queue calls it last in enqueue (see there). */
static int l_add_item(lua_State *L) {
  aq_statedb *db = check_db(L);
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

static int l_pointer(lua_State *L) {
  lua_pushlightuserdata(L, check_db(L));
  return 1;
}

static int l_path(lua_State *L) {
  aq_statedb *db = luaL_checkudata(L, 1, DB_MT);
  lua_pushstring(L, db->path ? db->path : "?");
  return 1;
}

static int luaopen_statedb(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"close", l_close}, {"prepare", l_prepare}, {"write", l_write},     {"flush", l_flush},
      {"rows", l_rows},   {"exec", l_exec},       {"pointer", l_pointer}, {"path", l_path},
      {NULL, NULL}};
  luaL_newmetatable(L, ROWS_MT);
  lua_pushcfunction(L, rows_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
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
  lua_pushcfunction(L, l_add_item);
  lua_setfield(L, -2, "add_item");
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
