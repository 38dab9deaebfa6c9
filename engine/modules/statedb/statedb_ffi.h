/*
 * statedb_ffi.h — the item rows of a state file, written through LuaJIT's FFI
 * by lua/aqueue/state.lua on an item's hot path, and the group commits'
 * progress, which lua/aqueue/feed_outbox.lua follows. A new row is added by
 * statedb.add_item instead (a Lua C function: it reads the item table).
 *
 * This file is the only copy of these declarations. The C side includes it
 * (statedb.h), so the compiler checks the definitions (item_rows.c) against
 * it; the build embeds its text (cmake/embed_text.cmake) and aqueue.statedb
 * hands that text to Lua as statedb.ffi_cdef for ffi.cdef. So it stays plain
 * C that ffi.cdef parses: no preprocessor lines (no include guard: declaring
 * a function twice is allowed), no macros, only types ffi.cdef knows. Its
 * includer provides <stdint.h> and <stddef.h>.
 *
 * Each returns 0, or -1 out of memory or when the file failed.
 */
struct aq_statedb;

/* A retry of item pid was scheduled: `attempts` so far. */
int aq__statedb_item_attempts(struct aq_statedb *db, int64_t pid, int32_t attempts);
/* process() of item pid finished: ok, or failed with `error`. */
int aq__statedb_item_processed(struct aq_statedb *db, int64_t pid, int32_t ok, int32_t attempts, const char *error,
                               size_t error_len);
/* Item pid and its subtree are finished (its hook, if any, ran). */
int aq__statedb_item_finished(struct aq_statedb *db, int64_t pid);

/* While held (on = 1), writes stay in the current batch: it is not handed
 * off for its size until released (on = 0), so writes made between the two
 * calls, with no yield between them, commit in one transaction (an item's
 * completion and the feed records it wrote). Returns 0. */
int aq__statedb_hold(struct aq_statedb *db, int32_t on);
/* The number of the group commit that will hold the writes made now. */
double aq__statedb_pending_commit(struct aq_statedb *db);
/* The number of the last group commit done: writes made while
 * aq__statedb_pending_commit gave a number up to it are committed. */
double aq__statedb_committed(struct aq_statedb *db);
