/*
 * statedb.h — an SQLite file (WAL) written by a thread of its own in group
 * commits: the state file of a run, a store's own file, a disk queue.
 *
 * The loop thread appends writes to the current batch; it never waits on
 * SQLite for them. The writer thread commits a batch as one transaction: the
 * first batch as soon as it is free, then whatever gathered while it wrote, so
 * a write is committed within AQ_DB_COMMIT_MS of being made (sooner when a
 * task waits on it: db:flush()). Batches commit in order, so a write committed
 * means every write made before it is committed too.
 *
 * Durability: WAL with synchronous=NORMAL. A commit survives the process being
 * killed (kill -9); a power failure may lose the last commits, never the file.
 *
 * Threads: everything here is called on the loop thread; only the writer
 * thread (statedb.c) touches a batch once it is handed off.
 */
#ifndef AQ_STATEDB_H
#define AQ_STATEDB_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

typedef struct aq_statedb aq_statedb;

/* What a file holds (the meta table's "kind"): a file is opened only as the
 * kind it was made as. */
#define AQ_DB_KIND_STATE "state"
#define AQ_DB_KIND_STORE "store"
#define AQ_DB_KIND_DISKQUEUE "diskqueue"

/* Items' states in the state file. */
enum { AQ_DB_PENDING = 0, AQ_DB_OPEN = 1, AQ_DB_FINISHED = 2 };
/* The outcome of an item's process(). */
enum { AQ_DB_NO_OUTCOME = 0, AQ_DB_DONE = 1, AQ_DB_FAILED = 2 };


/* state_encode.c: JSON of an item's fields (see there), statedb.encode, and
 * their buffer. */
const char *state_encode_item(lua_State *L, int idx, size_t *len, const char **problem, const char **field);
void state_encode_register(lua_State *L);
void state_encode_free(void);

/* --- FFI hot path (lua/aqueue/state.lua): the item rows of a state file. A
 * new row is added by statedb.add_item (a Lua C function: it reads the item
 * table). Each returns 0, or -1 out of memory or when the file failed. --- */
/* A retry of item pid was scheduled: `attempts` so far. */
int aq__statedb_item_attempts(aq_statedb *db, int64_t pid, int32_t attempts);
/* process() of item pid finished: ok, or failed with `error`. */
int aq__statedb_item_processed(aq_statedb *db, int64_t pid, int32_t ok, int32_t attempts, const char *error,
                               size_t error_len);
/* Item pid and its subtree are finished (its hook, if any, ran). */
int aq__statedb_item_finished(aq_statedb *db, int64_t pid);

#endif
