/*
 * group_commit.c — the writer thread of a file and its group commits (see
 * statedb.h): the loop thread hands the batch it filled to the writer when
 * the writer is idle (at once when it is big, else on a timer of
 * AQ_DB_COMMIT_MS); the writer commits it as one transaction and tells the
 * loop (an async handle), which resumes the tasks waiting in db:flush() and
 * hands off what gathered meanwhile. What a commit writes is
 * batch_commit.c's. A failed commit stops the engine; what
 * was committed before is kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "group_commit.h"
#include "batch_commit.h"
#include "db_state.h"

/* --- the writer thread --- */

void group_commit_writer(void *arg) {
  aq_statedb *db = arg;
  uv_mutex_lock(&db->mu);
  for (;;) {
    while (!db->handed && !db->quit) uv_cond_wait(&db->work, &db->mu);
    if (!db->handed) break; /* quit, nothing left */
    batch *b = db->handed;
    int failed = db->write_error != NULL;
    uv_mutex_unlock(&db->mu);
    char *err = failed ? NULL : batch_commit(db, b);
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

void group_commit_kick(aq_statedb *db) {
  if (batch_empty(db->cur)) return;
  uv_mutex_lock(&db->mu);
  if (!db->handed) hand_off_locked(db);
  uv_mutex_unlock(&db->mu);
}

void group_commit_wait_idle(aq_statedb *db) {
  uv_mutex_lock(&db->mu);
  while (db->handed) uv_cond_wait(&db->done, &db->mu);
  uv_mutex_unlock(&db->mu);
}

void group_commit_flush_sync(aq_statedb *db) {
  uv_mutex_lock(&db->mu);
  while (db->handed) uv_cond_wait(&db->done, &db->mu);
  if (!batch_empty(db->cur)) {
    hand_off_locked(db);
    while (db->handed) uv_cond_wait(&db->done, &db->mu);
  }
  uv_mutex_unlock(&db->mu);
}

void group_commit_report_error(aq_statedb *db, const char *err) {
  if (db->failed) return;
  db->failed = 1;
  char line[1024];
  int n = snprintf(line, sizeof line,
                   "aqueue: %s %s: cannot write: %s; stopping (what was committed before is kept)",
                   strcmp(db->kind, AQ_DB_KIND_STATE) == 0 ? "state file" : db->kind, db->path, err);
  aq_log(db->E, line, n < 0 ? 0 : (size_t)n >= sizeof line ? sizeof line - 1 : (size_t)n);
  aq_engine_stop(db->E, 1, "stopped: a state file cannot be written");
}

void group_commit_wake_waiters(aq_statedb *db) {
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
  if (err) group_commit_report_error(db, err);
}

void group_commit_on_committed(uv_async_t *async) {
  aq_statedb *db = async->data;
  if (!db->open) return;
  group_commit_wake_waiters(db);
  group_commit_kick(db); /* what gathered while the writer was busy */
}

void group_commit_on_timer(uv_timer_t *timer) { group_commit_kick(timer->data); }

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
int group_commit_l_flush(lua_State *L) {
  aq_statedb *db = statedb_check(L);
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
  group_commit_kick(db);
  return aq_task_yield(L, cancel_flush, w);
}

/* --- the commits' progress (statedb_ffi.h) --- */

int aq__statedb_hold(aq_statedb *db, int32_t on) {
  db->hold = on != 0;
  if (!db->hold && db->open && !db->failed && !batch_empty(db->cur)) written(db); /* the hand-off held back */
  return 0;
}

double aq__statedb_pending_commit(aq_statedb *db) {
  return (double)(db->handoffs + 1); /* `cur` gets the next hand-off's number; handoffs is the loop's */
}

double aq__statedb_committed(aq_statedb *db) {
  uv_mutex_lock(&db->mu);
  uint64_t n = db->committed;
  uv_mutex_unlock(&db->mu);
  return (double)n;
}
