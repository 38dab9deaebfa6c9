/*
 * file_format.c — what an aqueue SQLite file is, and taking one for this
 * process: a file is checked before anything in it changes (an SQLite
 * database, aqueue's application id, a format this engine reads, the kind it
 * was made as), then made ours: an exclusive lock (one aqueue-run per file),
 * WAL, and the tables of every kind (items: item_rows.c; store and queue:
 * the statements of lua/aqueue/store.lua and diskqueue.lua; feed_outbox and
 * feed_marks: lua/aqueue/feed_outbox.lua).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "file_format.h"
#include "db_state.h"

#define AQ_DB_FORMAT 1           /* PRAGMA user_version of the files this engine writes */
#define AQ_DB_APP_ID 0x61717565  /* PRAGMA application_id: "aque" */

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value);"
    "CREATE TABLE IF NOT EXISTS items("
    "  pid INTEGER PRIMARY KEY,"       /* the item's id in this file */
    "  parent INTEGER NOT NULL,"       /* 0 for a root item */
    "  ordinal INTEGER NOT NULL,"      /* nth child enqueued by the parent's process */
    "  class TEXT NOT NULL,"
    "  key TEXT,"                      /* Item:key(), tagged s: or n: */
    "  fields TEXT,"                   /* JSON; NULL once finished with success */
    "  state INTEGER NOT NULL,"        /* AQ_DB_PENDING, AQ_DB_OPEN, AQ_DB_FINISHED */
    "  outcome INTEGER NOT NULL,"      /* AQ_DB_NO_OUTCOME, AQ_DB_DONE, AQ_DB_FAILED */
    "  attempts INTEGER NOT NULL,"
    "  error TEXT);"
    "CREATE TABLE IF NOT EXISTS store(name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    "  PRIMARY KEY(name, key)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS queue(id INTEGER PRIMARY KEY, value TEXT NOT NULL);"
    /* aqueue.feed (lua/aqueue/feed_outbox.lua): the lines items wrote, committed with their
     * completion, until appended; and per feed file, the last line appended and the size after it */
    "CREATE TABLE IF NOT EXISTS feed_outbox(feed TEXT NOT NULL, seq INTEGER NOT NULL, line TEXT NOT NULL,"
    "  PRIMARY KEY(feed, seq)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS feed_marks(feed TEXT PRIMARY KEY, seq INTEGER NOT NULL, size INTEGER NOT NULL)"
    "  WITHOUT ROWID;";

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

char *file_format_open(const char *path, const char *kind, sqlite3 **out) {
  *out = NULL;
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return sqlite3_mprintf("%s is a directory", path);
  if (!is_sqlite_or_empty(path))
    return sqlite3_mprintf("%s is not an aqueue %s file (it is not an SQLite database); it was left as it is", path,
                           kind);
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
    return problem;
  }
  *out = conn;
  return NULL;
}
