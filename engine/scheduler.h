/*
 * scheduler.h — the queue of one run_queue call: item records, the item tree,
 * worker slots, per-class counters, and the jobs runners take.
 *
 * Items live in Lua (tables); the scheduler knows them by id (1..). For each
 * id it keeps the parent, how many things still keep the item's subtree open
 * (its own process plus each unfinished child), its class and state. A job is
 * one of:
 *   process  run item:process(enqueue, set_desc)          encoded id*2
 *   hook     run item:after_children_processed()          encoded id*2+1
 * Hooks are taken before new items (they finish subtrees and free memory).
 *
 * The hot-path functions (aq__sched_*) are called from Lua through the FFI:
 * they must never call into Lua. Declarations for the FFI are in
 * lua/aqueue/sched.lua and must match these.
 */
#ifndef AQ_SCHEDULER_H
#define AQ_SCHEDULER_H

#include <stdint.h>

#include "item_queue.h"
#include "task.h"

enum { AQ_ITEM_TRACK_OVERALL = 1, AQ_ITEM_HAS_HOOK = 2 };

typedef enum {
  AQ_ITEM_FREE,
  AQ_ITEM_QUEUED,
  AQ_ITEM_RUNNING,       /* process() running */
  AQ_ITEM_OPEN,          /* process() finished; children still open */
  AQ_ITEM_HOOK_QUEUED,
  AQ_ITEM_HOOK_RUNNING
} aq_item_state;

typedef struct {
  int32_t parent;   /* parent id, 0 for a root item; next free id while FREE */
  int32_t pending;  /* own process (until done) + unfinished children */
  uint16_t class_id;
  uint8_t flags;
  uint8_t state;
} aq_item_rec;

typedef struct {
  char *name;
  int64_t queued, running, done, failed, max_queued;
} aq_class_stats;

typedef struct {
  aq_task *task;    /* the runner in this slot, NULL when free */
  uint64_t started; /* loop time (ms) the current job started */
} aq_slot;

typedef struct {
  int active;       /* between run_start and run_finish */
  int stopping;     /* graceful stop: no new items start */
  aq_order order;
  int32_t num_workers;
  uint64_t started_ns;

  aq_item_rec *items; /* index = id; items[0] unused */
  int32_t items_cap;
  int32_t free_head;  /* first free id, 0 when none */
  int32_t next_id;    /* lowest id never used */
  int64_t live_items; /* enqueued and not yet finalized */
  int64_t running_jobs;

  aq_item_queue queued; /* items waiting for a worker, in `order` */
  aq_item_queue hooks;  /* items whose hook is due (FIFO) */

  int32_t *reaped;    /* finalized ids Lua has not released yet */
  int32_t nreaped, reaped_cap;

  aq_slot *slots;
  int32_t *free_slots; /* stack of free slot indexes */
  int32_t nfree_slots;
  aq_task_list slot_waiters; /* woken from an unslotted wait, need a slot back */

  aq_class_stats *classes; /* index = class id; names live for the engine */
  int32_t nclasses, classes_cap;

  /* counters of this run (the summary) */
  int64_t processed, failed, retried, enqueued, dropped, cancelled;
  int64_t overall_total, overall_done;

  size_t starting_runners; /* woken for a job, not yet in aq__sched_take */
  aq_task *waiter;    /* the task in run_wait, if any */
  uint32_t take_count;
} aq_sched;

/* --- loop-side API (engine.c, core_lua.c) --- */
void sched_init(aq_sched *s);
void sched_free(aq_sched *s);
/* Starts a run. Returns 0, or -1 out of memory. */
int sched_run_start(aq_sched *s, int32_t num_workers, aq_order order);
/* Ends a run: frees item records, queues and slots. */
void sched_run_finish(aq_sched *s);
/* True when the run has nothing left to do (all finalized, or stopped and idle). */
int sched_run_finished(const aq_sched *s);
/* Gives free slots to slot waiters, then to runners (parked ones first, new
 * ones when none is parked) while jobs are queued. Called by the driver after
 * each resume. */
void sched_dispatch(aq_engine *E);
/* A runner holding a slot gives it back (it parks or waits unslotted). */
void sched_release_slot(aq_engine *E, aq_task *t);
/* A task that waits unslotted was woken: give it a slot now or queue it. */
void sched_slot_wanted(aq_engine *E, aq_task *t);
/* A runner woken by dispatch has reached take, or ended before it did. */
void sched_runner_started(aq_sched *s, aq_task *t);
/* A runner task is destroyed while it holds a job (cancellation). */
void sched_job_abandoned(aq_engine *E, aq_task *t);
/* Graceful stop: takes every queued item out (counted as dropped) and calls
 * `dropped(id, ud)` for each, after freeing its record. */
void sched_drop_queued(aq_engine *E, void (*dropped)(int32_t id, void *ud), void *ud);

/* --- FFI hot path (called from the runner loop in Lua) --- */
int32_t aq__sched_class_add(aq_engine *E, const char *name);
int32_t aq__sched_enqueue(aq_engine *E, int32_t parent, int32_t class_id, double priority, int32_t flags);
int32_t aq__sched_take(aq_engine *E);
void aq__sched_process_done(aq_engine *E, int32_t id, int32_t ok);
void aq__sched_hook_done(aq_engine *E, int32_t id, int32_t ok);
int32_t aq__sched_reap(aq_engine *E);
int32_t aq__sched_reaped_count(aq_engine *E);
int32_t aq__sched_item_finished(aq_engine *E, int32_t id);
int32_t aq__sched_current_job(aq_engine *E);
void aq__sched_set_desc(aq_engine *E, const char *text, size_t len);

#endif
