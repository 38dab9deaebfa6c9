/*
 * task.c — creating, ending, suspending and waking engine tasks, and the
 * yield/resume half of the public API (aqueue.h). The resume driver itself is in
 * engine.c: it is the only caller of lua_resume.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "engine.h"

/* Task ids are generation * 2^24 + index: exact in a Lua number, and an id of
 * an ended task never names the task that later reuses its index. */
#define TASK_INDEX_BITS 24
#define TASK_INDEX_LIMIT (1u << TASK_INDEX_BITS)

void task_list_push(aq_task_list *list, aq_task *t) {
  t->list = list;
  t->next = NULL;
  t->prev = list->tail;
  if (list->tail) list->tail->next = t;
  else list->head = t;
  list->tail = t;
  list->len++;
}

void task_list_remove(aq_task *t) {
  aq_task_list *list = t->list;
  if (!list) return;
  if (t->prev) t->prev->next = t->next;
  else list->head = t->next;
  if (t->next) t->next->prev = t->prev;
  else list->tail = t->prev;
  list->len--;
  t->list = NULL;
  t->prev = t->next = NULL;
}

aq_task *task_list_pop(aq_task_list *list) {
  aq_task *t = list->head;
  if (t) task_list_remove(t);
  return t;
}

/* Finds a free index in the task table, growing it when needed; -1 when full. */
static int64_t take_index(aq_engine *E) {
  if (E->nfree_indexes > 0) return E->free_indexes[--E->nfree_indexes];
  uint32_t old = E->tasks_cap;
  uint32_t cap = old ? old * 2 : 256;
  if (cap > TASK_INDEX_LIMIT) return -1;
  aq_task **tasks = realloc(E->tasks, cap * sizeof *tasks);
  if (!tasks) return -1;
  E->tasks = tasks;
  uint32_t *gens = realloc(E->task_gens, cap * sizeof *gens);
  if (!gens) return -1;
  E->task_gens = gens;
  uint32_t *free_indexes = realloc(E->free_indexes, cap * sizeof *free_indexes);
  if (!free_indexes) return -1;
  E->free_indexes = free_indexes;
  E->tasks_cap = cap;
  for (uint32_t i = old; i < cap; i++) {
    tasks[i] = NULL;
    gens[i] = 0;
  }
  /* hand out low indexes first */
  for (uint32_t i = cap; i > old + 1; i--) E->free_indexes[E->nfree_indexes++] = i - 1;
  return old;
}

aq_task *task_create(aq_engine *E, aq_task_kind kind, lua_State *from, int nargs) {
  aq_task *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  int64_t index = take_index(E);
  if (index < 0) {
    free(t);
    return NULL;
  }
  t->engine = E;
  t->index = (uint32_t)index;
  t->generation = ++E->task_gens[index] & 0x1fffffff;
  t->kind = kind;
  t->slot = -1;
  t->guard_ref = LUA_NOREF;
  t->co = lua_newthread(from);
  t->ref = luaL_ref(from, LUA_REGISTRYINDEX); /* pops the thread */
  lua_xmove(from, t->co, nargs + 1);         /* the function and its arguments */
  t->nresults = nargs;
  E->tasks[index] = t;
  E->live_tasks++;
  task_make_ready(t);
  return t;
}

void task_destroy(aq_task *t) {
  aq_engine *E = t->engine;
  if (t->status == AQ_TASK_WAITING && t->cancel) {
    aq_cancel_fn cancel = t->cancel;
    t->cancel = NULL;
    cancel(t, t->cancel_data);
  }
  task_list_remove(t);
  if (t->guard_ref != LUA_NOREF) {
    /* It ended before it could take what it was woken with: the guard hands
     * that on. Not while the engine stops: nothing would take it. */
    if (!E->shutdown) {
      lua_rawgeti(E->L, LUA_REGISTRYINDEX, t->guard_ref);
      if (!task_create(E, AQ_TASK_SPAWN, E->L, 0)) lua_pop(E->L, 1);
    }
    luaL_unref(E->L, LUA_REGISTRYINDEX, t->guard_ref);
    t->guard_ref = LUA_NOREF;
  }
  sched_runner_started(&E->sched, t);
  sched_job_timer_free(t);
  if (t->job) sched_job_abandoned(E, t);
  if (t->slot >= 0) sched_release_slot(E, t);
  if (E->sched.waiter == t) E->sched.waiter = NULL;
  if (E->main_task == t) E->main_task = NULL;
  luaL_unref(E->L, LUA_REGISTRYINDEX, t->ref);
  t->ref = LUA_NOREF;
  E->tasks[t->index] = NULL;
  E->free_indexes[E->nfree_indexes++] = t->index;
  E->live_tasks--;
  free(t->desc);
  free(t);
}

void task_make_ready(aq_task *t) {
  aq_engine *E = t->engine;
  t->status = AQ_TASK_READY;
  task_list_push(&E->ready, t);
  if (!uv_is_active((uv_handle_t *)&E->driver)) uv_idle_start(&E->driver, E->driver.idle_cb);
}

double task_id(const aq_task *t) {
  return (double)t->generation * TASK_INDEX_LIMIT + t->index;
}

aq_task *task_by_id(aq_engine *E, double id) {
  if (!(id >= 0) || id != floor(id)) return NULL;
  uint64_t n = (uint64_t)id;
  uint32_t index = (uint32_t)(n % TASK_INDEX_LIMIT);
  uint32_t gen = (uint32_t)(n / TASK_INDEX_LIMIT);
  if (index >= E->tasks_cap) return NULL;
  aq_task *t = E->tasks[index];
  return t && t->generation == gen ? t : NULL;
}

/* --- the public yield/resume API (aqueue.h) --- */

aq_task *task_yieldable(lua_State *L) {
  aq_task *t = aq_engine_from_lua(L)->current;
  return t && t->co == L && lua_isyieldable(L) ? t : NULL;
}

/* Raises why L cannot yield into the engine. Does not return. */
static int cannot_yield(lua_State *L) {
  aq_task *t = aq_engine_from_lua(L)->current;
  if (!t || t->co != L)
    return luaL_error(L, "this function yields and must be called from an aqueue task; "
                         "it was called from a coroutine the script created itself "
                         "(run it with aqueue.spawn instead)");
  /* LuaJIT's own words, so the message is the same whoever checks first; the
   * rest says where that happens with aqueue. */
  return luaL_error(L, "attempt to yield across C-call boundary (this function waits, and cannot "
                       "from a table.sort comparator, a string.gsub callback, a __gc or other "
                       "metamethod called from C)");
}

aq_task *aq_task_current(lua_State *L) {
  aq_task *t = task_yieldable(L);
  if (!t) cannot_yield(L);
  return t;
}

lua_State *aq_task_state(aq_task *task) { return task->co; }

int aq_task_yield(lua_State *L, aq_cancel_fn cancel, void *data) {
  /* Checked before the task changes state, so a yield that cannot happen
   * leaves the task RUNNING. What the binding armed is its own to release:
   * aq_task_current, called first, keeps it from arming anything. */
  aq_task *t = task_yieldable(L);
  if (!t) return cannot_yield(L);
  t->status = AQ_TASK_WAITING;
  t->cancel = cancel;
  t->cancel_data = data;
  return lua_yield(L, 0);
}

void aq_task_resume(aq_task *t, int nresults) {
  t->cancel = NULL;
  t->cancel_data = NULL;
  t->suspended = 0;
  t->nresults = nresults;
  if (t->wants_slot) sched_slot_wanted(t->engine, t);
  else task_make_ready(t);
}

void aq_task_resume_error(aq_task *t, const char *message) {
  lua_pushnil(t->co);
  lua_pushstring(t->co, message);
  aq_task_resume(t, 2);
}
