/*
 * db_batch.c — a batch: the writes the loop thread gathers for one group
 * commit (new item rows, item updates, statement writes) and the arena their
 * strings are copied into. The loop thread fills one while the writer thread
 * commits the other (group_commit.c); a handed-off batch is the writer's.
 */
#include <string.h>

#include "db_batch.h"

void batch_reset(batch *b) {
  b->nrows = b->nupdates = b->nops = b->used = 0;
}

void batch_free(batch *b) {
  free(b->rows);
  free(b->updates);
  free(b->ops);
  free(b->arena);
  memset(b, 0, sizeof *b);
}

int arena_put(batch *b, const char *s, size_t len, str_ref *out) {
  if (!s) {
    out->off = NO_STRING;
    out->len = 0;
    return 0;
  }
  if (len >= UINT32_MAX || b->used + len >= UINT32_MAX) return -1;
  if (db_grow((void **)&b->arena, &b->arena_cap, b->used + len + 1, 1) != 0) return -1;
  memcpy(b->arena + b->used, s, len);
  out->off = (uint32_t)b->used;
  out->len = (uint32_t)len;
  b->used += len;
  return 0;
}

void batch_bind_str(sqlite3_stmt *st, int i, const batch *b, str_ref s) {
  if (s.off == NO_STRING) sqlite3_bind_null(st, i);
  else sqlite3_bind_text(st, i, b->arena + s.off, (int)s.len, SQLITE_STATIC);
}
