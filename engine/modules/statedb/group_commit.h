/* group_commit.h — the writer thread, hand-offs, db:flush() (group_commit.c). */
#ifndef AQ_GROUP_COMMIT_H
#define AQ_GROUP_COMMIT_H

#include "db_state.h"

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
  if (b->nrows + b->nupdates + b->nops >= AQ_DB_BATCH_WRITES && !db->hold &&
      !__atomic_load_n(&db->handed, __ATOMIC_ACQUIRE))
    group_commit_kick(db);
  else if (!uv_is_active((uv_handle_t *)&db->timer))
    uv_timer_start(&db->timer, group_commit_on_timer, AQ_DB_COMMIT_MS, 0);
}

#endif
