/*
 * db_batch.h — a batch: the writes (item rows, item updates, db:prepare()
 * statement calls) the loop thread gathers for the writer thread to commit
 * in one transaction, with their strings in one arena (db_batch.c).
 */
#ifndef AQ_DB_BATCH_H
#define AQ_DB_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <sqlite3.h>

#define AQ_DB_MERGE_SLOTS 1024   /* recent updates by pid, to merge an item's next step into */
#define AQ_DB_OP_ARGS 3
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

#endif
