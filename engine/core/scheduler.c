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
 * soon as a worker is free), `delayed` (its delay or retry backoff runs;
 * sched_timers.c) or its limit key's queue (sched_limits.c). Only `queued` is
 * taken from, so a worker never meets an item that cannot start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "engine.h"

/* Every so many takes the runner checks whether its time slice is over. */
#define TAKE_CHECK_EVERY 32

void sched_init(aq_engine *E) {
  aq_sched *s = &E->sched;
  memset(s, 0, sizeof *s);
  aq_item_queue_init(&s->queued, AQ_ORDER_LIFO);
  aq_item_queue_init(&s->hooks, AQ_ORDER_FIFO);
  aq_item_queue_init(&s->delayed, AQ_ORDER_PRIORITY);
  uv_timer_init(&E->loop, &s->delay_timer);
  uv_timer_init(&E->loop, &s->max_time_timer);
  s->delay_timer.data = s->max_time_timer.data = E;
  s->jitter_state = uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
  if (!s->jitter_state) s->jitter_state = 1;
}

void sched_stop_timers(aq_engine *E) {
  uv_timer_stop(&E->sched.delay_timer);
  uv_timer_stop(&E->sched.max_time_timer);
}

void sched_close(aq_engine *E) {
  aq_sched *s = &E->sched;
  if (!uv_is_closing((uv_handle_t *)&s->delay_timer)) uv_close((uv_handle_t *)&s->delay_timer, NULL);
  if (!uv_is_closing((uv_handle_t *)&s->max_time_timer)) uv_close((uv_handle_t *)&s->max_time_timer, NULL);
}

static void sched_release_run(aq_sched *s);

void sched_free(aq_sched *s) {
  sched_release_run(s);
  for (int32_t i = 0; i < s->nclasses; i++) free(s->classes[i].name);
  free(s->classes);
  s->classes = NULL;
  s->nclasses = s->classes_cap = 0;
}

int sched_run_start(aq_engine *E, int32_t num_workers, aq_order order, int64_t max_items, double max_time_s) {
  aq_sched *s = &E->sched;
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
  aq_item_queue_init(&s->delayed, AQ_ORDER_PRIORITY);
  s->nkeys = 1; /* key 0 is "no key" */
  s->held = s->tokens = s->key_wakes = 0;
  s->drop_scan = 1;
  s->max_items = max_items;
  s->next_id = 1;
  s->free_head = 0;
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
  if (max_time_s > 0) sched_max_time_start(E, max_time_s);
  return 0;
}

/* Frees what a run holds (no handles are touched: also used by sched_free). */
static void sched_release_run(aq_sched *s) {
  /* Runners that still hold a slot (one that yielded its turn as the run
   * ended) hold none from now on. */
  for (int32_t i = 0; s->slots && i < s->num_workers; i++)
    if (s->slots[i].task) {
      s->slots[i].task->slot = -1;
      s->slots[i].task->starting = 0;
    }
  free(s->items);
  s->items = NULL;
  s->items_cap = 0;
  aq_item_queue_free(&s->queued);
  aq_item_queue_free(&s->hooks);
  aq_item_queue_free(&s->delayed);
  limits_free(s);
  free(s->reaped);
  s->reaped = NULL;
  s->nreaped = s->reaped_cap = 0;
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

void sched_run_finish(aq_engine *E) {
  sched_stop_timers(E);
  sched_release_run(&E->sched);
}

int64_t sched_waiting(const aq_sched *s) {
  return (int64_t)aq_item_queue_len(&s->queued) - s->tokens + (int64_t)aq_item_queue_len(&s->delayed) -
         s->key_wakes + s->held;
}

int sched_run_finished(const aq_sched *s) {
  if (!s->active) return 1;
  if (s->stopping)
    return s->running_jobs == 0 && aq_item_queue_len(&s->hooks) == 0 && s->slot_waiters.len == 0 &&
           sched_waiting(s) == 0;
  return s->live_items == 0;
}

void sched_notify_waiter(aq_engine *E) {
  aq_sched *s = &E->sched;
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

int sched_request_stop(aq_engine *E, aq_stop_why why) {
  aq_sched *s = &E->sched;
  if (!s->active || s->stopping) return 0;
  s->stopping = 1;
  s->stop_why = why;
  sched_stop_timers(E);
  sched_notify_waiter(E);
  return 1;
}

/* --- slots --- */

static void give_slot(aq_engine *E, aq_task *t) {
  aq_sched *s = &E->sched;
  int32_t slot = s->free_slots[--s->nfree_slots];
  s->slots[slot].task = t;
  s->slots[slot].started = engine_now_ms(E);
  t->slot = slot;
}

void sched_release_slot(aq_engine *E, aq_task *t) {
  aq_sched *s = &E->sched;
  if (t->slot < 0) return;
  if (s->slots) {
    s->slots[t->slot].task = NULL;
    s->free_slots[s->nfree_slots++] = t->slot;
  }
  t->slot = -1;
}

void sched_slot_wanted(aq_engine *E, aq_task *t) {
  aq_sched *s = &E->sched;
  t->wants_slot = 0;
  if (!s->active) { /* the run is over: nothing to hold a slot of */
    task_make_ready(t);
    return;
  }
  t->status = AQ_TASK_WAITING;
  task_list_push(&s->slot_waiters, t);
  sched_dispatch(E);
}

/* Jobs not yet promised to a runner: queued ones (hooks, and items unless
 * stopping) minus the runners already woken for them that have not taken one. */
static int has_unclaimed_job(const aq_sched *s) {
  size_t jobs = aq_item_queue_len(&s->hooks) + (s->stopping ? 0 : aq_item_queue_len(&s->queued));
  return jobs > s->starting_runners;
}

/* Creates a runner task running the Lua runner function; NULL on failure. */
static aq_task *new_runner(aq_engine *E) {
  lua_rawgeti(E->L, LUA_REGISTRYINDEX, E->runner_fn_ref);
  aq_task *t = task_create(E, AQ_TASK_RUNNER, E->L, 0);
  if (!t) lua_pop(E->L, 1);
  return t;
}

/* Out of memory for a new runner: the running workers take the job in
 * time. With none running, nothing would ever take it: the engine stops
 * (a state file keeps the queue for the next run). */
static void no_runner(aq_engine *E) {
  aq_sched *s = &E->sched;
  if (s->nfree_slots < s->num_workers) return;
  static const char msg[] = "aqueue: out of memory: cannot start a worker";
  engine_log(E, msg, sizeof msg - 1);
  E->stop_reason = "stopped: out of memory";
  E->had_failures = 1;
  engine_request_shutdown(E, AQ_EXIT_FAILED);
}

void sched_dispatch(aq_engine *E) {
  aq_sched *s = &E->sched;
  if (!s->active) return;
  while (s->nfree_slots > 0) {
    aq_task *t = task_list_pop(&s->slot_waiters);
    if (t) {
      give_slot(E, t);
      task_make_ready(t);
      continue;
    }
    if (!has_unclaimed_job(s)) break;
    t = task_list_pop(&E->parked);
    if (t) task_make_ready(t);
    else if (!(t = new_runner(E))) {
      no_runner(E);
      break;
    }
    give_slot(E, t);
    t->starting = 1;
    s->starting_runners++;
  }
}

/* --- item records --- */

static aq_item_rec *rec(aq_sched *s, int32_t id) { return &s->items[id]; }

static int32_t new_item_id(aq_sched *s) {
  if (s->free_head) {
    int32_t id = s->free_head;
    s->free_head = s->items[id].parent;
    return id;
  }
  if (s->next_id >= s->items_cap) {
    int32_t cap = s->items_cap ? s->items_cap * 2 : 1024;
    /* `reaped` grows with the records: an id is there at most once, so
     * free_item always finds room (a lost id would never be released). */
    int32_t *reaped = realloc(s->reaped, (size_t)cap * sizeof *reaped);
    if (!reaped) return -1;
    s->reaped = reaped;
    s->reaped_cap = cap;
    aq_item_rec *items = realloc(s->items, (size_t)cap * sizeof *items);
    if (!items) return -1;
    memset(items + s->items_cap, 0, (size_t)(cap - s->items_cap) * sizeof *items);
    s->items = items;
    s->items_cap = cap;
  }
  return s->next_id++;
}

/* Frees an item record. Its id is reused only after recycle_id. */
static void release_record(aq_sched *s, int32_t id) {
  aq_item_rec *r = rec(s, id);
  r->state = AQ_ITEM_FREE;
  s->live_items--;
}

static void recycle_id(aq_sched *s, int32_t id) {
  s->items[id].parent = s->free_head;
  s->free_head = id;
}

/* Frees an item record and hands its id to Lua, which releases the item table
 * (aq__sched_reap) before the id can name another item. */
static void free_item(aq_sched *s, int32_t id) {
  release_record(s, id);
  s->reaped[s->nreaped++] = id; /* room reserved by new_item_id */
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

/* --- FFI hot path --- */

/* Returns the new class id, or -1 out of memory, -2 too many classes. */
int32_t aq__sched_class_add(aq_engine *E, const char *name) {
  aq_sched *s = &E->sched;
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

int sched_push_queued(aq_sched *s, int32_t id) {
  aq_item_rec *r = rec(s, id);
  if (aq_item_queue_push(&s->queued, id, r->priority) != 0) return -1;
  r->state = AQ_ITEM_QUEUED;
  return 0;
}

void sched_item_ready(aq_engine *E, int32_t id) {
  aq_sched *s = &E->sched;
  aq_item_rec *r = rec(s, id);
  int rc = r->limit_key ? limits_item_ready(E, id) : sched_push_queued(s, id);
  if (rc != 0) {
    /* Out of memory for a queue: the item cannot wait anywhere. It stays
     * open (its subtree cannot complete), like an abandoned job. */
    fprintf(stderr, "aqueue: out of memory: an item of class %s could not be queued\n", s->classes[r->class_id].name);
    E->had_failures = 1;
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

/* Returns the new id (> 0), or: -1 out of memory, -2 the run is stopping,
 * -3 the parent's subtree already completed, -4 no run is active. */
int32_t aq__sched_enqueue(aq_engine *E, int32_t parent, int32_t class_id, double priority, int32_t flags,
                          double delay_s, int32_t limit_key, int32_t max_attempts) {
  aq_sched *s = &E->sched;
  if (!s->active) return -4;
  if (s->stopping) return -2;
  if (parent) {
    uint8_t st = rec(s, parent)->state;
    if (st == AQ_ITEM_FREE || st == AQ_ITEM_HOOK_QUEUED || st == AQ_ITEM_HOOK_RUNNING) return -3;
  }
  if (hook_reserve(s, flags) != 0) return -1;
  int32_t id = new_item_id(s);
  if (id < 0) {
    hook_unreserve(s, flags);
    return -1;
  }
  aq_item_rec *r = rec(s, id);
  r->priority = priority;
  r->parent = parent;
  r->pending = 1;
  r->limit_key = limit_key;
  r->class_id = (uint16_t)class_id;
  r->flags = (uint8_t)flags;
  r->attempts = 0;
  r->max_attempts = (uint16_t)max_attempts;
  int rc;
  if (delay_s > 0) rc = sched_delay_item(E, id, sched_now_ms() + delay_s * 1000.0);
  else if (limit_key) rc = limits_item_ready(E, id);
  else rc = sched_push_queued(s, id);
  if (rc != 0) {
    r->state = AQ_ITEM_FREE;
    recycle_id(s, id);
    hook_unreserve(s, flags);
    return -1;
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
static int pop_startable(aq_engine *E, int32_t *id) {
  aq_sched *s = &E->sched;
  while (aq_item_queue_pop(&s->queued, id))
    if (*id > 0 || limits_take_token(E, -*id, id)) return 1;
  return 0;
}

/* Returns the next job for the running runner (id*2 process, id*2+1 hook),
 * 0 when there is none (the runner parks), -1 when its time slice is over (it
 * yields to the loop and asks again). */
int32_t aq__sched_take(aq_engine *E) {
  aq_sched *s = &E->sched;
  aq_task *t = E->current;
  t->job = 0;
  sched_runner_started(s, t);
  /* The run is over (this runner yielded its turn past the end), or a task
   * woken from handle:result() waits for a slot: it goes first, so this
   * runner parks and gives its slot up. */
  if (!s->active || t->slot < 0 || s->slot_waiters.len > 0) return 0;
  if ((++s->take_count % TAKE_CHECK_EVERY) == 0 && uv_hrtime() >= E->slice_deadline) return -1;
  int32_t id;
  int32_t job;
  if (aq_item_queue_pop(&s->hooks, &id)) {
    rec(s, id)->state = AQ_ITEM_HOOK_RUNNING;
    job = id * 2 + 1;
  } else if (!s->stopping && pop_startable(E, &id)) {
    aq_item_rec *r = rec(s, id);
    r->state = AQ_ITEM_RUNNING;
    aq_class_stats *c = &s->classes[r->class_id];
    c->queued--;
    c->running++;
    if (r->limit_key) limits_item_started(E, r);
    if (r->attempts++ == 0 && ++s->started == s->max_items) sched_request_stop(E, AQ_STOP_MAX_ITEMS);
    job = id * 2;
  } else {
    return 0;
  }
  s->running_jobs++;
  s->slots[t->slot].started = engine_now_ms(E);
  t->desc_len = 0;
  t->job = job;
  return job;
}

void sched_job_over(aq_engine *E) {
  aq_task *t = E->current;
  if (t->job) {
    watchdog_job_ending(E, t); /* names the job while it still has it */
    sched_job_timer_stop(t);
    t->job = 0;
  }
}

void aq__sched_process_done(aq_engine *E, int32_t id, int32_t ok) {
  aq_sched *s = &E->sched;
  aq_item_rec *r = rec(s, id);
  aq_class_stats *c = &s->classes[r->class_id];
  c->running--;
  if (r->limit_key) limits_item_ended(E, r);
  if (ok) {
    c->done++;
    s->processed++;
  } else {
    c->failed++;
    s->failed++;
    E->had_failures = 1;
  }
  if (r->flags & AQ_ITEM_TRACK_OVERALL) s->overall_done++;
  r->state = AQ_ITEM_OPEN;
  s->running_jobs--;
  sched_job_over(E);
  close_one(s, id);
  sched_notify_waiter(E);
}

void aq__sched_hook_done(aq_engine *E, int32_t id, int32_t ok) {
  aq_sched *s = &E->sched;
  aq_item_rec *r = rec(s, id);
  if (!ok) { /* the item's process stays processed: a hook failure is counted on its own */
    s->classes[r->class_id].hooks_failed++;
    s->hooks_failed++;
    E->had_failures = 1;
  }
  s->running_jobs--;
  sched_job_over(E);
  int32_t parent = r->parent;
  free_item(s, id);
  close_one(s, parent);
  sched_notify_waiter(E);
}

void sched_runner_started(aq_sched *s, aq_task *t) {
  if (t->starting) {
    t->starting = 0;
    s->starting_runners--;
  }
}

/* A process() cut short by its timeout fails that attempt; Lua finishes it
 * (report, retry or settle) in a task of its own, as if process had raised. */
static int hand_timeout_to_lua(aq_engine *E, aq_task *t, int32_t id) {
  if (E->timed_out_fn_ref == LUA_NOREF) return -1;
  lua_State *L = E->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, E->timed_out_fn_ref);
  lua_pushinteger(L, id);
  char text[64];
  snprintf(text, sizeof text, "timed out after %g s", t->timeout_s);
  lua_pushstring(L, text);
  if (!task_create(E, AQ_TASK_SPAWN, L, 2)) {
    lua_pop(L, 3);
    return -1;
  }
  return 0;
}

void sched_job_abandoned(aq_engine *E, aq_task *t) {
  aq_sched *s = &E->sched;
  int32_t job = t->job;
  t->job = 0;
  if (!s->active || !job) return;
  int32_t id = job / 2;
  aq_item_rec *r = rec(s, id);
  /* Timed out: the item stays RUNNING (and counted) until Lua finishes it. */
  if (t->timed_out && !E->shutdown && job % 2 == 0 && hand_timeout_to_lua(E, t, id) == 0) return;
  if (job % 2 == 0) { /* a hook cut short is not an item: not counted */
    s->classes[r->class_id].running--;
    s->cancelled++;
  }
  s->running_jobs--;
  /* The item stays open: its subtree cannot complete in this run. */
  sched_notify_waiter(E);
}

/* Takes one waiting item out of the run (graceful stop). */
static void drop_one(aq_engine *E, int32_t id, void (*dropped)(int32_t id, void *ud), void *ud) {
  aq_sched *s = &E->sched;
  aq_item_rec *r = rec(s, id);
  aq_class_stats *c = &s->classes[r->class_id];
  c->queued--;
  if (r->state == AQ_ITEM_DELAYED && r->attempts > 0) c->retrying--;
  s->dropped++;
  /* Its parent stays open: that subtree did not finish in this run. */
  release_record(s, id);
  recycle_id(s, id);
  dropped(id, ud);
}

void sched_drop_queued(aq_engine *E, void (*dropped)(int32_t id, void *ud), void *ud) {
  aq_sched *s = &E->sched;
  int32_t id;
  while (aq_item_queue_pop(&s->queued, &id)) {
    if (id > 0) {
      drop_one(E, id, dropped, ud);
    } else { /* a limit key's token */
      s->keys[-id].tokens--;
      s->tokens--;
    }
  }
  while (sched_pop_delayed(E, &id) || limits_pop_held(E, &id)) drop_one(E, id, dropped, ud);
  sched_notify_waiter(E);
}

/* --- resuming a run from its state file --- */

/* An item whose process() finished before the restart: it is OPEN (waiting
 * for its children, then its hook) and holds itself open until
 * aq__sched_restore_release, so its children can be restored under it first.
 * Returns its id, or -1 out of memory, -4 no run. */
int32_t aq__sched_restore_open(aq_engine *E, int32_t parent, int32_t class_id, int32_t flags) {
  aq_sched *s = &E->sched;
  if (!s->active) return -4;
  if (hook_reserve(s, flags) != 0) return -1;
  int32_t id = new_item_id(s);
  if (id < 0) {
    hook_unreserve(s, flags);
    return -1;
  }
  aq_item_rec *r = rec(s, id);
  memset(r, 0, sizeof *r);
  r->parent = parent;
  r->pending = 1;
  r->class_id = (uint16_t)class_id;
  r->flags = (uint8_t)flags;
  r->state = AQ_ITEM_OPEN;
  r->max_attempts = 1;
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
void aq__sched_hold_open(aq_engine *E, int32_t parent) {
  if (parent > 0 && E->sched.active) rec(&E->sched, parent)->pending++;
}

/* The restored children of an open item are in: let its subtree close. */
void aq__sched_restore_release(aq_engine *E, int32_t id) {
  close_one(&E->sched, id);
  sched_notify_waiter(E);
}

/* A restored item already used `attempts` of its attempts. */
void aq__sched_restore_attempts(aq_engine *E, int32_t id, int32_t attempts) {
  rec(&E->sched, id)->attempts = (uint16_t)attempts;
}

/* track_overall items finished before the restart: the overall bar counts them. */
void aq__sched_add_overall_done(aq_engine *E, int64_t n) {
  E->sched.overall_total += n;
  E->sched.overall_done += n;
}

/* Returns a finalized id whose item table Lua should release, 0 when none. */
int32_t aq__sched_reap(aq_engine *E) {
  aq_sched *s = &E->sched;
  if (s->nreaped == 0) return 0;
  int32_t id = s->reaped[--s->nreaped];
  recycle_id(s, id);
  return id;
}

int32_t aq__sched_reaped_count(aq_engine *E) { return E->sched.nreaped; }

/* 1 when the process() of item `id` of this run has finished. Lua asks only
 * while the item holds the id (ids are reused only after aq__sched_reap). */
int32_t aq__sched_item_finished(aq_engine *E, int32_t id) {
  aq_sched *s = &E->sched;
  if (!s->active || id <= 0 || id >= s->items_cap) return 1;
  return rec(s, id)->state < AQ_ITEM_QUEUED;
}

/* The number of the attempt of item `id` that runs or ran last (1 = first). */
int32_t aq__sched_attempt(aq_engine *E, int32_t id) {
  aq_sched *s = &E->sched;
  if (!s->active || id <= 0 || id >= s->items_cap) return 0;
  return rec(s, id)->attempts;
}

void aq__sched_note_duplicate(aq_engine *E) { E->sched.duplicates++; }

int32_t aq__sched_current_job(aq_engine *E) { return E->current ? E->current->job : 0; }

/* 1 once a graceful stop of the run began (first Ctrl-C, max_items,
 * max_time), until the next run starts: aqueue.stopping(). */
int32_t aq__sched_stopping(aq_engine *E) { return E->sched.stopping; }

void aq__sched_set_desc(aq_engine *E, const char *text, size_t len) {
  aq_task *t = E->current;
  if (!t) return;
  if (len + 1 > t->desc_cap) {
    size_t cap = len + 1 < 64 ? 64 : len + 1;
    char *d = realloc(t->desc, cap);
    if (!d) return; /* the worker row keeps its old text */
    t->desc = d;
    t->desc_cap = cap;
  }
  memcpy(t->desc, text, len);
  t->desc[len] = '\0';
  t->desc_len = len;
}
