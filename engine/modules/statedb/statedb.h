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
 * thread (group_commit.c) touches a batch once it is handed off.
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

/* Items' states in the state file (the items table's `state`). The only
 * copy: the SQL of this module is built from them, and aqueue.statedb
 * exports them (STATE_*, OUTCOME_*) for the SQL and the checks of
 * lua/aqueue/state.lua and state_tool.lua. */
enum { AQ_DB_PENDING = 0, AQ_DB_OPEN = 1, AQ_DB_FINISHED = 2 };
/* The outcome of an item's process() (the items table's `outcome`). */
enum { AQ_DB_NO_OUTCOME = 0, AQ_DB_DONE = 1, AQ_DB_FAILED = 2 };


/* state_encode.c: JSON of an item's fields (see there), statedb.encode, and
 * their buffer. */
const char *state_encode_item(lua_State *L, int idx, size_t *len, const char **problem, const char **field);
void state_encode_register(lua_State *L);
void state_encode_free(void);

/* The FFI hot path (lua/aqueue/state.lua): the item rows of a state file. */
#include "statedb_ffi.h"
/* statedb_ffi.h's text, for ffi.cdef: generated at build time
 * (cmake/embed_text.cmake), exported as aqueue.statedb's ffi_cdef. */
extern const char aq_statedb_ffi_cdef[];

#endif
