/*
 * scheduler.h — the queue of one run_queue call: item records, the item tree,
 * worker slots, per-class counters, and the jobs runners take.
 *
 * Items live in Lua (tables); the scheduler knows them by id (1..). For each
 * id it keeps the parent, how many things still keep the item's subtree open
 * (its own process plus each unfinished child), its class and state, in the
 * item records (sched_items.h). A job is one of:
 *   process  run item:process(enqueue, set_desc)
 *   hook     run item:after_children_processed()
 * encoded as one number (AQ_JOB_*, sched_runner.h). Hooks are taken before new items (they finish subtrees and free memory).
 *
 * The hot-path functions (sched_take, sched_process_done, ...) are called
 * from Lua through the FFI, by way of the aq__sched_* entry points
 * (core_ffi.h, the one copy both the compiler and ffi.cdef read): they must
 * never call into Lua. The constants Lua needs (item flags, the job
 * encoding) are defined in C only; aqueue.core exports them.
 *
 * The scheduler sits above the tasks (task.h: it creates and parks runner
 * tasks, and hears of their ends through the task table's owner hooks), the
 * watchdog (it tells it a job's deadline) and its own parts: item records
 * (sched_items.h), limits (sched_limits.h), waits for a time (sched_delays.h)
 * and runner records (sched_runner.h). It knows nothing of the engine that holds it.
 */
#ifndef AQ_SCHEDULER_H
#define AQ_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "item_queue.h"
#include "sched_delays.h"
#include "sched_items.h"
#include "sched_limits.h"
#include "sched_runner.h"
#include "task.h"
#include "watchdog.h"

typedef struct {
  char *name;
  int64_t queued;   /* waiting to start: queued, delayed, held or in backoff */
  int64_t retrying; /* of those, waiting out a retry backoff */
  int64_t running, done, failed, max_queued;
  int64_t retried;  /* retries scheduled */
  int64_t hooks_failed; /* after_children_processed raised (the item stays processed) */
} aq_class_stats;

typedef struct {
  aq_runner *runner; /* the runner in this slot, NULL when free */
  uint64_t started;  /* loop time (ms) the current job started */
} aq_slot;

/* Why a run stopped before its queue was empty. */
typedef enum { AQ_STOP_NONE, AQ_STOP_INTERRUPTED, AQ_STOP_MAX_ITEMS, AQ_STOP_MAX_TIME } aq_stop_why;

typedef struct aq_sched {
  /* what it works with (sched_init), owned by the engine */
  aq_tasks *tasks;      /* its runners are tasks; the running one is tasks->current */
  uv_loop_t *loop;
  aq_watchdog *watchdog; /* told each job's deadline */
  int runner_fn_ref;    /* the Lua function every runner runs (core.set_runner) */
  int timed_out_fn_ref; /* the Lua function that finishes a timed-out process(id, message) */
  aq_task_list parked;  /* runners without work, reused before new ones */
  int had_failures;     /* an item or hook failed, in any run: the exit status is 1 */
  /* Called when the run cannot go on for want of memory (no worker can be
   * started and none runs): the owner stops the engine. Set by the owner. */
  void (*out_of_memory)(void *data, const char *what);
  void *owner_data;

  int active;       /* between run_start and run_finish */
  int stopping;     /* graceful stop: no new items start */
  aq_stop_why stop_why;
  aq_order order;
  int32_t num_workers;
  uint64_t started_ns;
  int64_t max_items; /* stop once this many items have started; 0 for no limit */

  aq_items items;      /* the records of this run's items, by id (sched_items.h) */
  int64_t live_items; /* enqueued and not yet finalized */
  int64_t running_jobs;

  aq_item_queue queued; /* items (and limit keys' tokens, -key) waiting for a worker, in `order` */
  aq_item_queue hooks;  /* items whose hook is due (FIFO) */
  int64_t hooks_to_come; /* items with a hook not yet in `hooks`: `hooks` has room
                            reserved for them all, so a due hook always finds a place */
  aq_delays delays;     /* DELAYED items (and keys' rate wake-ups, -key), by due time */
  int64_t key_wakes;    /* keys' wake-ups in `delays` */
  aq_limits limits;     /* the run's limit keys */
  uv_timer_t max_time_timer; /* run_queue{ max_time = } (sched_timers.c) */

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

  size_t starting_runners; /* woken for a job, not yet in sched_take */
  aq_task *waiter;    /* the task in run_wait, if any */
  uint32_t take_count;
  uint64_t jitter_state; /* retry backoff's generator (sched_backoff.h) */
} aq_sched;

/* --- life and runs (engine.c, core_lua.c) --- */
/* Sets the scheduler up on `loop` for the tasks of T (it becomes their
 * owner: it hears of their ends and wake-ups), telling `watchdog` each job's
 * deadline. */
void sched_init(aq_sched *s, aq_tasks *T, uv_loop_t *loop, aq_watchdog *watchdog);
/* Stops the scheduler's timers (the engine stops at once) / closes them. */
void sched_stop_timers(aq_sched *s);
void sched_close(aq_sched *s);
/* Frees what it holds and releases its registry refs (after sched_close). */
void sched_free(aq_sched *s);
/* core.set_runner: the function every runner runs, and the one that finishes
 * a process() its timeout cut short; each at the top of the main state's
 * stack, both popped. */
void sched_set_runner(aq_sched *s);
/* Starts a run. max_items 0 means no limit (max_time: sched_max_time_start).
 * Returns 0, or -1 out of memory. */
int sched_run_start(aq_sched *s, int32_t num_workers, aq_order order, int64_t max_items);
/* Ends a run: frees item records, queues, limit keys and slots. */
void sched_run_finish(aq_sched *s);
/* True when the run has nothing left to do (all finalized, or stopped and idle). */
int sched_run_finished(const aq_sched *s);
/* Items waiting to start: queued, delayed, held by limits, in backoff. */
int64_t sched_waiting(const aq_sched *s);
/* Graceful stop (first Ctrl-C, max_items, max_time): no new item starts; the
 * task in run_wait hears "stopping". Returns 0 when the run was already
 * stopping or is not active. */
int sched_request_stop(aq_sched *s, aq_stop_why why);
/* Wakes the task in run_wait when it has something to hear. */
void sched_notify_waiter(aq_sched *s);
/* Gives free slots to slot waiters, then to runners (parked ones first, new
 * ones when none is parked) while jobs are queued. Called by the driver after
 * each resume. */
void sched_dispatch(aq_sched *s);
/* The running task waits in core.suspend: a runner with `unslotted` gives its
 * slot back and gets one again, once woken, before it continues. */
void sched_task_suspends(aq_sched *s, aq_task *t, int unslotted);
/* core.park: the running runner, without work, gives its slot back and parks
 * (yields: call as `return sched_park(...)`). */
int sched_park(aq_sched *s, aq_task *t);
/* Graceful stop: takes every waiting item out (queued, delayed, held; counted
 * as dropped) and calls `dropped(id, ud)` for each, after freeing its record. */
void sched_drop_queued(aq_sched *s, void (*dropped)(int32_t id, void *ud), void *ud);
/* Who task t is, for the watchdog's warning: "Page: <desc> (worker 3)", "the
 * main chunk", "a spawned task", "a worker between items". */
void sched_describe_task(const aq_sched *s, const aq_task *t, char *out, size_t size);

/* --- the hot path (through the FFI: core_ffi.h, sched_ffi.c) --- */
int32_t sched_class_add(aq_sched *s, const char *name);
/* Why sched_enqueue (or sched_restore_open) took no item: it returns one of
 * these instead of an id (> 0). Lua reads them as aqueue.sched.ENQUEUE_*. */
enum {
  AQ_ENQUEUE_NO_MEMORY = -1,
  AQ_ENQUEUE_STOPPING = -2,    /* the run is stopping: a durable backend keeps the child */
  AQ_ENQUEUE_SUBTREE_DONE = -3, /* the parent's subtree already completed */
  AQ_ENQUEUE_NO_RUN = -4,
};
int32_t sched_enqueue(aq_sched *s, int32_t parent, int32_t class_id, double priority, int32_t flags,
                      double delay_s, int32_t limit_key, int32_t max_attempts);
int32_t sched_take(aq_sched *s);
void sched_process_done(aq_sched *s, int32_t id, int32_t ok);
void sched_hook_done(aq_sched *s, int32_t id, int32_t ok);
int32_t sched_reap(aq_sched *s);
int32_t sched_item_finished(const aq_sched *s, int32_t id);
int32_t sched_attempt(const aq_sched *s, int32_t id);
int32_t sched_current_job(const aq_sched *s);
void sched_set_desc(aq_sched *s, const char *text, size_t len);
/* resuming from a state file (lua/aqueue/state.lua) */
int32_t sched_restore_open(aq_sched *s, int32_t parent, int32_t class_id, int32_t flags);
void sched_restore_release(aq_sched *s, int32_t id);
int32_t sched_restore_attempts(aq_sched *s, int32_t id, int32_t attempts);
void sched_hold_open(aq_sched *s, int32_t parent);
/* a remote queue (lua/aqueue/run_remote.lua) */
void sched_hold_run(aq_sched *s, int32_t delta);
void sched_hand_back(aq_sched *s, int32_t id);

/* --- for the scheduler's clocks above (sched_timers.c) --- */
/* Puts an item into `delays` (state DELAYED) until hrtime `due_ms`. Returns
 * 0, or -1 out of memory. */
int sched_delay_item(aq_sched *s, int32_t id, double due_ms);
/* The job of the calling runner (if the caller is one) is over: its timeout
 * is stopped. */
void sched_job_over(aq_sched *s);

#endif
