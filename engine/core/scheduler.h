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
#include <uv.h>

#include "item_queue.h"
#include "task.h"

enum { AQ_ITEM_TRACK_OVERALL = 1, AQ_ITEM_HAS_HOOK = 2 };

/* Where an item is. The first four are "finished" for handles: its process()
 * will not run again. */
typedef enum {
  AQ_ITEM_FREE,
  AQ_ITEM_OPEN,          /* process() finished; children still open */
  AQ_ITEM_HOOK_QUEUED,
  AQ_ITEM_HOOK_RUNNING,
  AQ_ITEM_QUEUED,        /* in `queued`: may start as soon as a worker is free */
  AQ_ITEM_RUNNING,       /* process() running */
  AQ_ITEM_DELAYED,       /* in `delayed`: its delay or retry backoff runs */
  AQ_ITEM_HELD           /* in its limit key's `waiting` until one of its tokens comes up */
} aq_item_state;

typedef struct {
  double priority;  /* order = "priority": lower first */
  int32_t parent;   /* parent id, 0 for a root item; next free id while FREE */
  int32_t pending;  /* own process (until done) + unfinished children */
  int32_t limit_key; /* index into the run's limit keys, 0 for none */
  uint16_t class_id;
  uint8_t flags;
  uint8_t state;
  uint16_t attempts;     /* process() calls started so far */
  uint16_t max_attempts; /* 1 + retries */
} aq_item_rec;

typedef struct {
  char *name;
  int64_t queued;   /* waiting to start: queued, delayed, held or in backoff */
  int64_t retrying; /* of those, waiting out a retry backoff */
  int64_t running, done, failed, max_queued;
  int64_t retried;  /* retries scheduled */
  int64_t hooks_failed; /* after_children_processed raised (the item stays processed) */
} aq_class_stats;

typedef struct {
  aq_task *task;    /* the runner in this slot, NULL when free */
  uint64_t started; /* loop time (ms) the current job started */
} aq_slot;

/* One limit key of run_queue{ limits = ... } (sched_limits.c): its items wait
 * in `waiting`; the run's `queued` holds tokens (-key) that start them. */
typedef struct {
  int32_t per_key;       /* most items running at once */
  double interval_ms;    /* 1000 / rate: time between starts, 0 for no rate */
  int32_t running;       /* started and not ended (done, failed, retried) */
  int32_t tokens;        /* its tokens in `queued` */
  int wake_pending;      /* a wake-up for the next start time is in `delayed` */
  double next_start_ms;  /* hrtime (ms) the next start is due (rate_schedule.h); 0 before the first */
  aq_item_queue waiting; /* items held back, in the run's order */
} aq_limit_key;

/* Why a run stopped before its queue was empty. */
typedef enum { AQ_STOP_NONE, AQ_STOP_INTERRUPTED, AQ_STOP_MAX_ITEMS, AQ_STOP_MAX_TIME } aq_stop_why;

typedef struct {
  int active;       /* between run_start and run_finish */
  int stopping;     /* graceful stop: no new items start */
  aq_stop_why stop_why;
  aq_order order;
  int32_t num_workers;
  uint64_t started_ns;
  int64_t max_items; /* stop once this many items have started; 0 for no limit */

  aq_item_rec *items; /* index = id; items[0] unused */
  int32_t items_cap;
  int32_t free_head;  /* first free id, 0 when none */
  int32_t next_id;    /* lowest id never used */
  int64_t live_items; /* enqueued and not yet finalized */
  int64_t running_jobs;

  aq_item_queue queued; /* items (and limit keys' tokens, -key) waiting for a worker, in `order` */
  aq_item_queue hooks;  /* items whose hook is due (FIFO) */
  int64_t hooks_to_come; /* items with a hook not yet in `hooks`: `hooks` has room
                            reserved for them all, so a due hook always finds a place */
  aq_item_queue delayed; /* DELAYED items (and keys' rate wake-ups, -key), by due time (hrtime ms) */
  uv_timer_t delay_timer; /* fires at the first due time in `delayed` */
  uv_timer_t max_time_timer; /* run_queue{ max_time = } */

  aq_limit_key *keys; /* index = limit key id; keys[0] unused */
  int32_t nkeys, keys_cap;
  int64_t held;       /* items in the keys' waiting queues */
  int64_t tokens;     /* keys' tokens in `queued` */
  int64_t key_wakes;  /* keys' wake-ups in `delayed` */
  int32_t drop_scan;  /* limits_pop_held: the first key that may hold items */

  int32_t *reaped;    /* finalized ids Lua has not released yet */
  int32_t nreaped, reaped_cap;

  aq_slot *slots;
  int32_t *free_slots; /* stack of free slot indexes */
  int32_t nfree_slots;
  aq_task_list slot_waiters; /* woken from an unslotted wait, need a slot back */

  aq_class_stats *classes; /* index = class id; names live for the engine */
  int32_t nclasses, classes_cap;

  /* counters of this run (the summary) */
  int64_t processed, failed, retried, enqueued, dropped, cancelled, duplicates, started;
  int64_t hooks_failed; /* hooks that raised: not in `failed`, which counts items whose process failed */
  int64_t overall_total, overall_done;

  size_t starting_runners; /* woken for a job, not yet in aq__sched_take */
  aq_task *waiter;    /* the task in run_wait, if any */
  uint32_t take_count;
  uint64_t jitter_state; /* xorshift state for retry backoff */
} aq_sched;

/* --- loop-side API (engine.c, core_lua.c) --- */
void sched_init(aq_engine *E);
/* Stops the scheduler's timers (the engine stops at once) / closes them. */
void sched_stop_timers(aq_engine *E);
void sched_close(aq_engine *E);
void sched_free(aq_sched *s);
/* Starts a run. max_items 0 and max_time_s 0 mean no limit. Returns 0, or -1
 * out of memory. */
int sched_run_start(aq_engine *E, int32_t num_workers, aq_order order, int64_t max_items, double max_time_s);
/* Ends a run: frees item records, queues, limit keys and slots. */
void sched_run_finish(aq_engine *E);
/* True when the run has nothing left to do (all finalized, or stopped and idle). */
int sched_run_finished(const aq_sched *s);
/* Items waiting to start: queued, delayed, held by limits, in backoff. */
int64_t sched_waiting(const aq_sched *s);
/* Graceful stop (first Ctrl-C, max_items, max_time): no new item starts; the
 * task in run_wait hears "stopping". Returns 0 when the run was already
 * stopping or is not active. */
int sched_request_stop(aq_engine *E, aq_stop_why why);
/* Wakes the task in run_wait when it has something to hear. */
void sched_notify_waiter(aq_engine *E);
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
/* A runner task is destroyed while it holds a job: cancelled by a shutdown, or
 * timed out (a failed attempt, finished by the Lua timeout handler). */
void sched_job_abandoned(aq_engine *E, aq_task *t);
/* Graceful stop: takes every waiting item out (queued, delayed, held; counted
 * as dropped) and calls `dropped(id, ud)` for each, after freeing its record. */
void sched_drop_queued(aq_engine *E, void (*dropped)(int32_t id, void *ud), void *ud);

/* --- FFI hot path (called from the runner loop in Lua) --- */
int32_t aq__sched_class_add(aq_engine *E, const char *name);
int32_t aq__sched_enqueue(aq_engine *E, int32_t parent, int32_t class_id, double priority, int32_t flags,
                          double delay_s, int32_t limit_key, int32_t max_attempts);
int32_t aq__sched_take(aq_engine *E);
void aq__sched_process_done(aq_engine *E, int32_t id, int32_t ok);
void aq__sched_hook_done(aq_engine *E, int32_t id, int32_t ok);
int32_t aq__sched_reap(aq_engine *E);
int32_t aq__sched_reaped_count(aq_engine *E);
int32_t aq__sched_item_finished(aq_engine *E, int32_t id);
int32_t aq__sched_current_job(aq_engine *E);
int32_t aq__sched_stopping(aq_engine *E);
void aq__sched_set_desc(aq_engine *E, const char *text, size_t len);
void aq__sched_note_duplicate(aq_engine *E);
int32_t aq__sched_attempt(aq_engine *E, int32_t id);
/* resuming from a state file (lua/aqueue/state.lua) */
int32_t aq__sched_restore_open(aq_engine *E, int32_t parent, int32_t class_id, int32_t flags);
void aq__sched_restore_release(aq_engine *E, int32_t id);
void aq__sched_restore_attempts(aq_engine *E, int32_t id, int32_t attempts);
void aq__sched_add_overall_done(aq_engine *E, int64_t n);
void aq__sched_hold_open(aq_engine *E, int32_t parent);

/* --- the scheduler's inner parts (scheduler.c, sched_timers.c, sched_limits.c) --- */
/* An item's wait for a time is over, it may start: into `queued`, or held
 * by its limit key. */
void sched_item_ready(aq_engine *E, int32_t id);
/* The job of the calling runner (if the caller is one) is over: its timeout
 * is stopped. */
void sched_job_over(aq_engine *E);
/* Puts an item into `queued` (state QUEUED). Returns 0, or -1 out of memory. */
int sched_push_queued(aq_sched *s, int32_t id);

/* sched_timers.c: delays and backoff, job timeouts, max_time */
/* Puts an item into `delayed` (state DELAYED) until hrtime `due_ms`. Returns
 * 0, or -1 out of memory. */
int sched_delay_item(aq_engine *E, int32_t id, double due_ms);
/* Wakes limit key `key` (limits_key_wake) at hrtime `due_ms`. Returns 0 or -1. */
int sched_delay_key(aq_engine *E, int32_t key, double due_ms);
/* Takes any one item out of `delayed` (graceful stop). Returns 1, or 0 when
 * none is left. */
int sched_pop_delayed(aq_engine *E, int32_t *id);
/* The current hrtime in milliseconds. */
double sched_now_ms(void);
/* A job ended: stops the runner's timeout, if armed. */
void sched_job_timer_stop(aq_task *t);
/* The task ends: closes its timeout timer (freed by the close callback). */
void sched_job_timer_free(aq_task *t);
void sched_max_time_start(aq_engine *E, double seconds);
/* Process failed: retry after a backoff (returns its seconds) or not (-1). */
double aq__sched_retry(aq_engine *E, int32_t id, double base_s, double cap_s);
/* Arms the running process()'s timeout. Returns 0, or -1 out of memory (the
 * attempt must then fail: nothing would end it). */
int32_t aq__sched_arm_timeout(aq_engine *E, double seconds);
/* Ends the running process()'s timeout: its seconds when it had passed, else 0. */
double aq__sched_timeout_over(aq_engine *E);
/* The job's process() timeout has passed (whether or not its timer fired). */
int sched_job_overdue(const aq_task *t);
/* Ends a task whose process() timed out; the attempt fails (sched_job_abandoned). */
void sched_job_timed_out(aq_task *t);

/* sched_limits.c: limit keys */
int32_t aq__sched_limit_key_add(aq_engine *E, int32_t per_key, double rate);
/* An item with a limit key may start: it is held by its key. Returns 0, or -1
 * out of memory. */
int limits_item_ready(aq_engine *E, int32_t id);
/* A worker took a token of `key`: the held item to start into *id (1), or 0
 * when the key may not start one now. */
int limits_take_token(aq_engine *E, int32_t key, int32_t *id);
/* The key's rate allows its next start (its wake-up in `delayed` is due). */
void limits_key_wake(aq_engine *E, int32_t key);
/* An item of a limit key started / finished (done, failed, retried). */
void limits_item_started(aq_engine *E, aq_item_rec *r);
void limits_item_ended(aq_engine *E, aq_item_rec *r);
/* Takes any one held item out of its key (graceful stop). Returns 1, or 0. */
int limits_pop_held(aq_engine *E, int32_t *id);
void limits_free(aq_sched *s);

#endif
