/*
 * scheduler.c — item records, the item tree, worker slots and jobs of one run
 * (see scheduler.h for the model).
 *
 * Completion walks up the tree without recursion: when an item's count of open
 * things reaches zero, its hook is queued (if it has one) or it is finalized,
 * which closes one open thing of its parent, and so on. Each item is finalized
 * exactly once, so each hook runs exactly once.
 *
 * An item waits to start in one of three places: `queued` (it may start as
 * soon as a worker is free), `delays` (its delay or retry backoff runs;
 * sched_delays.c) or its limit key's queue (sched_limits.c). Only `queued` is
 * taken from, so a worker never meets an item that cannot start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "scheduler.h"

/* Every so many takes the runner checks whether its time slice is over. */
#define TAKE_CHECK_EVERY 32

static aq_item_rec *rec(aq_sched *s, int32_t id) { return &s->items.recs[id]; }
/* An item's priority: what the queues order by in the priority order (the
 * other orders ignore it, and keep none). */
static double priority_of(const aq_sched *s, int32_t id) { return items_priority(&s->items, id); }

static void sched_item_ready(aq_sched *s, int32_t id);
static void task_ending(void *data, aq_task *t);
static int task_woken(void *data, aq_task *t);

/* --- waits for a time (sched_delays.h) and limit keys (sched_limits.h) --- */

/* A `delays` entry came due: an item whose wait is over, or a key's wake-up. */
static void delay_due(void *data, int32_t entry) {
  aq_sched *s = data;
  if (entry < 0) {
    s->key_wakes--;
    limits_key_wake(&s->limits, -entry);
    return;
  }
  if (items_attempts(&s->items, entry) > 0) s->classes[rec(s, entry)->class_id].retrying--;
  sched_item_ready(s, entry);
}

static void delays_done(void *data) { sched_dispatch(data); }

/* The limits ask to wake limit key `key` at hrtime `due_ms`. */
static int wake_key_at(void *data, int32_t key, double due_ms) {
  aq_sched *s = data;
  if (delays_add(&s->delays, -key, due_ms) != 0) return -1;
  s->key_wakes++;
  return 0;
}

int sched_delay_item(aq_sched *s, int32_t id, double due_ms) {
  if (delays_add(&s->delays, id, due_ms) != 0) return -1;
  rec(s, id)->state = AQ_ITEM_DELAYED;
  return 0;
}

/* Takes any one item out of `delays` (graceful stop). Returns 1, or 0 when
 * none is left. */
static int pop_delayed(aq_sched *s, int32_t *id) {
  while (delays_pop(&s->delays, id)) {
    if (*id > 0) return 1;
    s->key_wakes--; /* a key's wake-up: nothing to drop */
    limits_key_wake_dropped(&s->limits, -*id);
  }
  return 0;
}

/* An item of a limit key may start: its key holds it. Returns 0 or -1. */
static int hold_item(aq_sched *s, int32_t id) {
  if (limits_item_ready(&s->limits, items_limit_key(&s->items, id), id, priority_of(s, id)) != 0) return -1;
  rec(s, id)->state = AQ_ITEM_HELD;
  return 0;
}

/* --- life --- */

void sched_init(aq_sched *s, aq_tasks *T, uv_loop_t *loop, aq_watchdog *watchdog) {
  memset(s, 0, sizeof *s);
  s->tasks = T;
  s->loop = loop;
  s->watchdog = watchdog;
  s->runner_fn_ref = s->timed_out_fn_ref = LUA_NOREF;
  aq_item_queue_init(&s->queued, AQ_ORDER_LIFO);
  aq_item_queue_init(&s->hooks, AQ_ORDER_FIFO);
  delays_init(&s->delays, loop, delay_due, delays_done, s);
  uv_timer_init(loop, &s->max_time_timer);
  s->max_time_timer.data = s;
  s->jitter_state = uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
  if (!s->jitter_state) s->jitter_state = 1;
  T->owner.data = s;
  T->owner.ending = task_ending;
  T->owner.woken = task_woken;
}

void sched_stop_timers(aq_sched *s) {
  delays_stop(&s->delays);
  uv_timer_stop(&s->max_time_timer);
}

void sched_close(aq_sched *s) {
  delays_close(&s->delays);
  if (!uv_is_closing((uv_handle_t *)&s->max_time_timer)) uv_close((uv_handle_t *)&s->max_time_timer, NULL);
}

static void sched_release_run(aq_sched *s);

void sched_free(aq_sched *s) {
  sched_release_run(s);
  for (int32_t i = 0; i < s->nclasses; i++) free(s->classes[i].name);
  free(s->classes);
  s->classes = NULL;
  s->nclasses = s->classes_cap = 0;
  lua_State *L = s->tasks->L;
  if (s->runner_fn_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->runner_fn_ref);
  if (s->timed_out_fn_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->timed_out_fn_ref);
  s->runner_fn_ref = s->timed_out_fn_ref = LUA_NOREF;
}

int sched_run_start(aq_sched *s, int32_t num_workers, aq_order order, int64_t max_items) {
  s->slots = calloc((size_t)num_workers, sizeof *s->slots);
  s->free_slots = malloc((size_t)num_workers * sizeof *s->free_slots);
  if (!s->slots || !s->free_slots) {
    free(s->slots);
    free(s->free_slots);
    s->slots = NULL;
    s->free_slots = NULL;
    return -1;
  }
  s->num_workers = num_workers;
  /* free slots are a stack: slot 0 is handed out first */
  for (int32_t i = 0; i < num_workers; i++) s->free_slots[i] = num_workers - 1 - i;
  s->nfree_slots = num_workers;
  s->order = order;
  aq_item_queue_init(&s->queued, order);
  aq_item_queue_init(&s->hooks, AQ_ORDER_FIFO);
  s->hooks_to_come = 0;
  delays_restart(&s->delays);
  limits_init(&s->limits, order, &s->queued, sched_now_ms, wake_key_at, s);
  s->key_wakes = 0;
  s->max_items = max_items;
  items_init(&s->items, order == AQ_ORDER_PRIORITY);
  s->live_items = s->running_jobs = 0;
  s->processed = s->failed = s->retried = s->enqueued = s->dropped = s->cancelled = 0;
  s->duplicates = s->started = s->hooks_failed = 0;
  s->overall_total = s->overall_done = 0;
  for (int32_t i = 0; i < s->nclasses; i++) {
    aq_class_stats *c = &s->classes[i];
    c->queued = c->retrying = c->running = c->done = c->failed = c->max_queued = c->retried = c->hooks_failed = 0;
  }
  s->started_ns = uv_hrtime();
  s->starting_runners = 0;
  s->stopping = 0;
  s->stop_why = AQ_STOP_NONE;
  s->active = 1;
  return 0;
}

/* Frees what a run holds (no handles are touched: also used by sched_free). */
static void sched_release_run(aq_sched *s) {
  /* Runners that still hold a slot (one that yielded its turn as the run
   * ended) hold none from now on. */
  for (int32_t i = 0; s->slots && i < s->num_workers; i++)
    if (s->slots[i].runner) {
      s->slots[i].runner->slot = -1;
      s->slots[i].runner->starting = 0;
    }
  items_free(&s->items);
  aq_item_queue_free(&s->queued);
  aq_item_queue_free(&s->hooks);
  delays_clear(&s->delays);
  limits_free(&s->limits);
  free(s->slots);
  free(s->free_slots);
  s->slots = NULL;
  s->free_slots = NULL;
  s->nfree_slots = s->num_workers = 0;
  s->active = 0;
  /* Tasks woken from handle:result() that still wait for a slot: there is no
   * run to hold a slot of any more, so they simply continue. */
  aq_task *t;
  while ((t = task_list_pop(&s->slot_waiters))) task_make_ready(t);
}

void sched_run_finish(aq_sched *s) {
  sched_stop_timers(s);
  sched_release_run(s);
}

int64_t sched_waiting(const aq_sched *s) {
  return (int64_t)aq_item_queue_len(&s->queued) - s->limits.tokens + (int64_t)delays_len(&s->delays) -
         s->key_wakes + s->limits.held;
}

int sched_run_finished(const aq_sched *s) {
  if (!s->active) return 1;
  if (s->stopping)
    return s->running_jobs == 0 && aq_item_queue_len(&s->hooks) == 0 && s->slot_waiters.len == 0 &&
           sched_waiting(s) == 0;
  return s->live_items == 0;
}

void sched_notify_waiter(aq_sched *s) {
  if (!s->waiter) return;
  const char *news;
  if (s->stopping && sched_waiting(s) > 0) news = "stopping"; /* items to drop */
  else if (sched_run_finished(s)) news = "done";
  else return;
  aq_task *w = s->waiter;
  s->waiter = NULL;
  lua_pushstring(w->co, news);
  aq_task_resume(w, 1);
}

int sched_request_stop(aq_sched *s, aq_stop_why why) {
  if (!s->active || s->stopping) return 0;
  s->stopping = 1;
  s->stop_why = why;
  sched_stop_timers(s);
  sched_notify_waiter(s);
  return 1;
}

/* --- slots --- */

static void give_slot(aq_sched *s, aq_runner *r) {
  int32_t slot = s->free_slots[--s->nfree_slots];
  s->slots[slot].runner = r;
  s->slots[slot].started = uv_now(s->loop);
  r->slot = slot;
}

static void release_slot(aq_sched *s, aq_runner *r) {
  if (r->slot < 0) return;
  if (s->slots) {
    s->slots[r->slot].runner = NULL;
    s->free_slots[s->nfree_slots++] = r->slot;
  }
  r->slot = -1;
}

void sched_task_suspends(aq_sched *s, aq_task *t, int unslotted) {
  aq_runner *r = runner_of(t);
  if (unslotted && r && r->slot >= 0) {
    release_slot(s, r);
    r->wants_slot = 1;
  }
}

/* A runner that waited unslotted was woken: it gets a slot before it runs
 * (queued for one, 1), or runs now (0) when the run is over. */
static int task_woken(void *data, aq_task *t) {
  aq_sched *s = data;
  aq_runner *r = runner_of(t);
  if (!r->wants_slot) return 0;
  r->wants_slot = 0;
  if (!s->active) return 0; /* the run is over: nothing to hold a slot of */
  t->status = AQ_TASK_WAITING;
  task_list_push(&s->slot_waiters, t);
  sched_dispatch(s);
  return 1;
}

int sched_park(aq_sched *s, aq_task *t) {
  aq_runner *r = runner_of(t);
  if (r) release_slot(s, r);
  task_list_push(&s->parked, t);
  return task_yield(t, AQ_TASK_PARKED);
}

/* Jobs not yet promised to a runner: queued ones (hooks, and items unless
 * stopping) minus the runners already woken for them that have not taken one. */
static int has_unclaimed_job(const aq_sched *s) {
  size_t jobs = aq_item_queue_len(&s->hooks) + (s->stopping ? 0 : aq_item_queue_len(&s->queued));
  return jobs > s->starting_runners;
}

/* Creates a runner task running the Lua runner function, with its record;
 * NULL on failure. */
static aq_runner *new_runner(aq_sched *s) {
  aq_runner *r = runner_new(s);
  if (!r) return NULL;
  lua_State *L = s->tasks->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->runner_fn_ref);
  aq_task *t = task_create(s->tasks, AQ_TASK_RUNNER, L, 0);
  if (!t) {
    lua_pop(L, 1);
    runner_free(r);
    return NULL;
  }
  runner_attach(r, t);
  return r;
}

/* Out of memory for a new runner: the running workers take the job in
 * time. With none running, nothing would ever take it: the owner stops the
 * engine (a state file keeps the queue for the next run). */
static void no_runner(aq_sched *s) {
  if (s->nfree_slots < s->num_workers) return;
  if (s->out_of_memory) s->out_of_memory(s->owner_data, "cannot start a worker");
}

void sched_dispatch(aq_sched *s) {
  if (!s->active) return;
  while (s->nfree_slots > 0) {
    aq_task *t = task_list_pop(&s->slot_waiters);
    if (t) {
      give_slot(s, runner_of(t));
      task_make_ready(t);
      continue;
    }
    if (!has_unclaimed_job(s)) break;
    aq_runner *r;
    t = task_list_pop(&s->parked);
    if (t) {
      task_make_ready(t);
      r = runner_of(t);
    } else if (!(r = new_runner(s))) {
      no_runner(s);
      break;
    }
    give_slot(s, r);
    r->starting = 1;
    s->starting_runners++;
  }
}

/* A runner woken by dispatch has reached take, or ended before it did. */
static void runner_started(aq_sched *s, aq_runner *r) {
  if (r->starting) {
    r->starting = 0;
    s->starting_runners--;
  }
}

/* --- item records --- */

/* Frees an item record. Its id is reused only after items_recycle_id. */
static void release_record(aq_sched *s, int32_t id) {
  aq_item_rec *r = rec(s, id);
  r->state = AQ_ITEM_FREE;
  s->live_items--;
}

/* Frees an item record and hands its id to Lua, which releases the item table
 * (sched_reap) before the id can name another item. */
static void free_item(aq_sched *s, int32_t id) {
  release_record(s, id);
  items_reaped_push(&s->items, id);
}

/* One open thing of `id` finished: walk up while subtrees complete. */
static void close_one(aq_sched *s, int32_t id) {
  while (id) {
    aq_item_rec *r = rec(s, id);
    if (--r->pending > 0) return;
    if (r->flags & AQ_ITEM_HAS_HOOK) {
      r->state = AQ_ITEM_HOOK_QUEUED;
      s->hooks_to_come--;
      aq_item_queue_push(&s->hooks, id, 0); /* cannot fail: room was reserved */
      return;
    }
    int32_t parent = r->parent;
    free_item(s, id);
    id = parent;
  }
}

/* --- the hot path --- */

/* Returns the new class id, or -1 out of memory, -2 too many classes. */
int32_t sched_class_add(aq_sched *s, const char *name) {
  if (s->nclasses == s->classes_cap) {
    int32_t cap = s->classes_cap ? s->classes_cap * 2 : 16;
    if (cap > 65535) return -2;
    aq_class_stats *c = realloc(s->classes, (size_t)cap * sizeof *c);
    if (!c) return -1;
    s->classes = c;
    s->classes_cap = cap;
  }
  char *copy = strdup(name);
  if (!copy) return -1;
  aq_class_stats *c = &s->classes[s->nclasses];
  memset(c, 0, sizeof *c);
  c->name = copy;
  return s->nclasses++;
}

/* Puts an item into `queued` (state QUEUED). Returns 0, or -1 out of memory. */
static int push_queued(aq_sched *s, int32_t id) {
  aq_item_rec *r = rec(s, id);
  if (aq_item_queue_push(&s->queued, id, priority_of(s, id)) != 0) return -1;
  r->state = AQ_ITEM_QUEUED;
  return 0;
}

/* An item's wait for a time is over, it may start: into `queued`, or held
 * by its limit key. */
static void sched_item_ready(aq_sched *s, int32_t id) {
  int rc = items_limit_key(&s->items, id) ? hold_item(s, id) : push_queued(s, id);
  if (rc != 0) {
    /* Out of memory for a queue: the item cannot wait anywhere. It stays
     * open (its subtree cannot complete), like an abandoned job. */
    fprintf(stderr, "aqueue: out of memory: an item of class %s could not be queued\n",
            s->classes[rec(s, id)->class_id].name);
    s->had_failures = 1;
  }
}

/* An item with a hook (flags) is coming: reserves its place in `hooks`, so
 * that its hook cannot be lost for want of memory when it is due. Returns 0,
 * or -1 out of memory. Undone by hook_unreserve. */
static int hook_reserve(aq_sched *s, int32_t flags) {
  if (!(flags & AQ_ITEM_HAS_HOOK)) return 0;
  if (aq_item_queue_reserve(&s->hooks, aq_item_queue_len(&s->hooks) + (size_t)s->hooks_to_come + 1) != 0) return -1;
  s->hooks_to_come++;
  return 0;
}

static void hook_unreserve(aq_sched *s, int32_t flags) {
  if (flags & AQ_ITEM_HAS_HOOK) s->hooks_to_come--;
}

/* A record for a new item under `parent` (0: none) whose own process is
 * still to come, its hook counted in hooks_to_come. The caller gives it a
 * state. Returns its id, or -1 out of memory (nothing changed). */
static int32_t new_item(aq_sched *s, int32_t parent, int32_t class_id, int32_t flags, double priority,
                        int32_t limit_key, int32_t max_attempts) {
  if (hook_reserve(s, flags) != 0) return -1;
  int32_t id = items_new_id(&s->items);
  if (id < 0) {
    hook_unreserve(s, flags);
    return -1;
  }
  *rec(s, id) = (aq_item_rec){
      .parent = parent, .pending = 1, .class_id = (uint16_t)class_id, .flags = (uint8_t)flags, .state = AQ_ITEM_FREE};
  if (items_set_extras(&s->items, id, priority, limit_key, max_attempts) != 0) {
    items_recycle_id(&s->items, id);
    hook_unreserve(s, flags);
    return -1;
  }
  return id;
}

/* Returns the new id (> 0), or why it took none (AQ_ENQUEUE_*). */
int32_t sched_enqueue(aq_sched *s, int32_t parent, int32_t class_id, double priority, int32_t flags,
                      double delay_s, int32_t limit_key, int32_t max_attempts) {
  if (!s->active) return AQ_ENQUEUE_NO_RUN;
  if (s->stopping) return AQ_ENQUEUE_STOPPING;
  if (parent) {
    uint8_t st = rec(s, parent)->state;
    if (st == AQ_ITEM_FREE || st == AQ_ITEM_HOOK_QUEUED || st == AQ_ITEM_HOOK_RUNNING) return AQ_ENQUEUE_SUBTREE_DONE;
  }
  int32_t id = new_item(s, parent, class_id, flags, priority, limit_key, max_attempts);
  if (id < 0) return AQ_ENQUEUE_NO_MEMORY;
  int rc;
  if (delay_s > 0) rc = sched_delay_item(s, id, sched_now_ms() + delay_s * 1000.0);
  else if (limit_key) rc = hold_item(s, id);
  else rc = push_queued(s, id);
  if (rc != 0) {
    rec(s, id)->state = AQ_ITEM_FREE;
    items_recycle_id(&s->items, id);
    hook_unreserve(s, flags);
    return AQ_ENQUEUE_NO_MEMORY;
  }
  if (parent) rec(s, parent)->pending++;
  s->live_items++;
  s->enqueued++;
  if (flags & AQ_ITEM_TRACK_OVERALL) s->overall_total++;
  aq_class_stats *c = &s->classes[class_id];
  if (++c->queued > c->max_queued) c->max_queued = c->queued;
  return id;
}

/* Takes the next item that may start from `queued` into *id: an item, or the
 * held item a limit key's token starts. Returns 0 when there is none. */
static int pop_startable(aq_sched *s, int32_t *id) {
  while (aq_item_queue_pop(&s->queued, id))
    if (*id > 0 || limits_take_token(&s->limits, -*id, id)) return 1;
  return 0;
}

/* Returns the next job for the running runner (a process or a hook: AQ_JOB_*),
 * 0 when there is none (the runner parks), -1 when its time slice is over (it
 * yields to the loop and asks again). */
int32_t sched_take(aq_sched *s) {
  aq_runner *run = runner_of(s->tasks->current);
  run->job = 0;
  runner_started(s, run);
  /* The run is over (this runner yielded its turn past the end), or a task
   * woken from handle:result() waits for a slot: it goes first, so this
   * runner parks and gives its slot up. */
  if (!s->active || run->slot < 0 || s->slot_waiters.len > 0) return 0;
  if ((++s->take_count % TAKE_CHECK_EVERY) == 0 && uv_hrtime() >= s->tasks->slice_deadline) return -1;
  int32_t id;
  int32_t job;
  if (aq_item_queue_pop(&s->hooks, &id)) {
    rec(s, id)->state = AQ_ITEM_HOOK_RUNNING;
    job = sched_job(id, AQ_JOB_HOOK);
  } else if (!s->stopping && pop_startable(s, &id)) {
    aq_item_rec *r = rec(s, id);
    r->state = AQ_ITEM_RUNNING;
    aq_class_stats *c = &s->classes[r->class_id];
    c->queued--;
    c->running++;
    int32_t key = items_limit_key(&s->items, id);
    if (key) limits_item_started(&s->limits, key);
    if (items_attempt_starts(&s->items, id) && ++s->started == s->max_items) sched_request_stop(s, AQ_STOP_MAX_ITEMS);
    job = sched_job(id, AQ_JOB_PROCESS);
  } else {
    return 0;
  }
  s->running_jobs++;
  s->slots[run->slot].started = uv_now(s->loop);
  run->desc_len = 0;
  run->job = job;
  return job;
}

/* sched_job_over, inline for the hot path's process_done and hook_done. */
static inline void job_over(aq_sched *s) {
  aq_task *t = s->tasks->current;
  aq_runner *r = t ? runner_of(t) : NULL; /* a spawned task finishes a timed-out job */
  if (r && r->job) {
    watchdog_job_ending(s->watchdog, t); /* names the job while it still has it */
    if (runner_timeout_stop(r)) watchdog_set_deadline(s->watchdog, 0);
    r->job = 0;
  }
}

void sched_job_over(aq_sched *s) { job_over(s); }

void sched_process_done(aq_sched *s, int32_t id, int32_t ok) {
  aq_item_rec *r = rec(s, id);
  aq_class_stats *c = &s->classes[r->class_id];
  c->running--;
  int32_t key = items_limit_key(&s->items, id);
  if (key) limits_item_ended(&s->limits, key);
  if (ok) {
    c->done++;
    s->processed++;
  } else {
    c->failed++;
    s->failed++;
    s->had_failures = 1;
  }
  if (r->flags & AQ_ITEM_TRACK_OVERALL) s->overall_done++;
  r->state = AQ_ITEM_OPEN;
  s->running_jobs--;
  job_over(s);
  close_one(s, id);
  sched_notify_waiter(s);
}

void sched_hook_done(aq_sched *s, int32_t id, int32_t ok) {
  aq_item_rec *r = rec(s, id);
  if (!ok) { /* the item's process stays processed: a hook failure is counted on its own */
    s->classes[r->class_id].hooks_failed++;
    s->hooks_failed++;
    s->had_failures = 1;
  }
  s->running_jobs--;
  job_over(s);
  int32_t parent = r->parent;
  free_item(s, id);
  close_one(s, parent);
  sched_notify_waiter(s);
}

/* A process() cut short by its timeout fails that attempt; Lua finishes it
 * (report, retry or settle) in a task of its own, as if process had raised. */
static int hand_timeout_to_lua(aq_sched *s, aq_runner *run, int32_t id) {
  if (s->timed_out_fn_ref == LUA_NOREF) return -1;
  lua_State *L = s->tasks->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->timed_out_fn_ref);
  lua_pushinteger(L, id);
  char text[64];
  snprintf(text, sizeof text, "timed out after %g s", run->timeout_s);
  lua_pushstring(L, text);
  if (!task_create(s->tasks, AQ_TASK_SPAWN, L, 2)) {
    lua_pop(L, 3);
    return -1;
  }
  return 0;
}

/* A runner task is destroyed while it holds a job: cancelled by a shutdown,
 * or timed out (a failed attempt, finished by the Lua timeout handler). */
static void job_abandoned(aq_sched *s, aq_runner *run) {
  int32_t job = run->job;
  run->job = 0;
  if (!s->active || !job) return;
  int32_t id = sched_job_item(job);
  aq_item_rec *r = rec(s, id);
  /* Timed out: the item stays RUNNING (and counted) until Lua finishes it. */
  if (run->timed_out && !s->tasks->shutdown && sched_job_is_process(job) && hand_timeout_to_lua(s, run, id) == 0) return;
  if (sched_job_is_process(job)) { /* a hook cut short is not an item: not counted */
    s->classes[r->class_id].running--;
    s->cancelled++;
  }
  s->running_jobs--;
  /* The item stays open: its subtree cannot complete in this run. */
  sched_notify_waiter(s);
}

/* A task ends (task_destroy): a runner gives back its job, its slot and its
 * record; the task in run_wait no longer waits. */
static void task_ending(void *data, aq_task *t) {
  aq_sched *s = data;
  aq_runner *r = runner_of(t);
  if (r) {
    runner_started(s, r);
    if (r->job) job_abandoned(s, r);
    if (r->slot >= 0) release_slot(s, r);
    runner_free(r);
  }
  if (s->waiter == t) s->waiter = NULL;
}

/* Takes one waiting item out of the run (graceful stop). */
static void drop_one(aq_sched *s, int32_t id, void (*dropped)(int32_t id, void *ud), void *ud) {
  aq_item_rec *r = rec(s, id);
  aq_class_stats *c = &s->classes[r->class_id];
  c->queued--;
  if (r->state == AQ_ITEM_DELAYED && items_attempts(&s->items, id) > 0) c->retrying--;
  s->dropped++;
  /* Its parent stays open: that subtree did not finish in this run. */
  release_record(s, id);
  items_recycle_id(&s->items, id);
  dropped(id, ud);
}

void sched_drop_queued(aq_sched *s, void (*dropped)(int32_t id, void *ud), void *ud) {
  int32_t id;
  while (aq_item_queue_pop(&s->queued, &id)) {
    if (id > 0) drop_one(s, id, dropped, ud);
    else limits_token_dropped(&s->limits, -id); /* a limit key's token */
  }
  while (pop_delayed(s, &id) || limits_pop_held(&s->limits, &id)) drop_one(s, id, dropped, ud);
  sched_notify_waiter(s);
}

/* --- resuming a run from its state file --- */

/* An item whose process() finished before the restart: it is OPEN (waiting
 * for its children, then its hook) and holds itself open until
 * sched_restore_release, so its children can be restored under it first.
 * Returns its id, or AQ_ENQUEUE_NO_MEMORY / AQ_ENQUEUE_NO_RUN. */
int32_t sched_restore_open(aq_sched *s, int32_t parent, int32_t class_id, int32_t flags) {
  if (!s->active) return AQ_ENQUEUE_NO_RUN;
  int32_t id = new_item(s, parent, class_id, flags, 0, 0, 1);
  if (id < 0) return AQ_ENQUEUE_NO_MEMORY;
  rec(s, id)->state = AQ_ITEM_OPEN;
  if (parent) rec(s, parent)->pending++;
  s->live_items++;
  if (flags & AQ_ITEM_TRACK_OVERALL) {
    s->overall_total++;
    s->overall_done++;
  }
  return id;
}

/* A child enqueued while the run stops is kept in the state file for the
 * next run: its parent stays open (no hook) as for a dropped child. */
void sched_hold_open(aq_sched *s, int32_t parent) {
  if (parent > 0 && s->active) rec(s, parent)->pending++;
}

/* --- a run whose queue is remote (lua/aqueue/run_remote.lua) --- */

/* The items of a remote queue enter this scheduler only while this process
 * runs them, so between two claims it may hold none: the run's Lua side
 * holds the run open (+1) until the store says the whole run is finished
 * (-1), as a live item would. */
void sched_hold_run(aq_sched *s, int32_t delta) {
  if (!s->active) return;
  s->live_items += delta;
  sched_notify_waiter(s);
}

/* Item `id`, running, goes back to the remote store that owns it (a retry
 * the store schedules): it leaves this scheduler as a finished item would,
 * without counting as done or failed. */
void sched_hand_back(aq_sched *s, int32_t id) {
  rec(s, id)->state = AQ_ITEM_OPEN;
  close_one(s, id);
  sched_notify_waiter(s);
}

/* The restored children of an open item are in: let its subtree close. */
void sched_restore_release(aq_sched *s, int32_t id) {
  close_one(s, id);
  sched_notify_waiter(s);
}

/* A restored item already used `attempts` of its attempts. Returns 0, or -1
 * out of memory (nothing changed). */
int32_t sched_restore_attempts(aq_sched *s, int32_t id, int32_t attempts) {
  return items_set_attempts(&s->items, id, attempts);
}

/* Returns a finalized id whose item table Lua should release, 0 when none. */
int32_t sched_reap(aq_sched *s) {
  int32_t id;
  return items_reaped_pop(&s->items, &id) ? id : 0;
}

/* 1 when the process() of item `id` of this run has finished. Lua asks only
 * while the item holds the id (ids are reused only after sched_reap). */
int32_t sched_item_finished(const aq_sched *s, int32_t id) {
  if (!s->active || id <= 0 || id >= s->items.next_id) return 1;
  return s->items.recs[id].state < AQ_ITEM_QUEUED;
}

/* The number of the attempt of item `id` that runs or ran last (1 = first). */
int32_t sched_attempt(const aq_sched *s, int32_t id) {
  if (!s->active || id <= 0 || id >= s->items.next_id) return 0;
  return items_attempts(&s->items, id);
}

int32_t sched_current_job(const aq_sched *s) {
  aq_task *t = s->tasks->current;
  aq_runner *r = t ? runner_of(t) : NULL;
  return r ? r->job : 0;
}

void sched_set_desc(aq_sched *s, const char *text, size_t len) {
  aq_task *t = s->tasks->current;
  aq_runner *r = t ? runner_of(t) : NULL;
  if (r) runner_set_desc(r, text, len);
}

/* --- words --- */

void sched_describe_task(const aq_sched *s, const aq_task *t, char *out, size_t size) {
  const aq_runner *r = runner_of(t);
  int32_t job = r ? r->job : 0;
  int32_t id = sched_job_item(job);
  if (job && s->active && id < s->items.next_id) {
    const char *cls = s->classes[s->items.recs[id].class_id].name;
    const char *hook = !sched_job_is_process(job) ? " (after children)" : "";
    int desc_len = r->desc_len > 60 ? 60 : (int)r->desc_len;
    if (desc_len > 0)
      snprintf(out, size, "%s%s: %.*s (worker %d)", cls, hook, desc_len, r->desc, (int)r->slot + 1);
    else
      snprintf(out, size, "%s%s (worker %d)", cls, hook, (int)r->slot + 1);
  } else {
    snprintf(out, size, "%s", t->kind == AQ_TASK_MAIN    ? "the main chunk"
                              : t->kind == AQ_TASK_SPAWN ? "a spawned task"
                                                         : "a worker between items");
  }
}
