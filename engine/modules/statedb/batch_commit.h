/* batch_commit.h — the SQL the writer thread runs for a batch (batch_commit.c). */
#ifndef AQ_BATCH_COMMIT_H
#define AQ_BATCH_COMMIT_H

#include "db_state.h"

/* Commits one batch as one transaction (the writer thread). Returns NULL, or
 * an error message to free. */
char *batch_commit(aq_statedb *db, const batch *b);
/* Finalizes the item statements and the db:prepare() ones (at close, the
 * writer thread stopped). */
void batch_commit_finalize(aq_statedb *db);

#endif
