/*
 * task.c — the task table: creating, ending, suspending and waking engine
 * tasks, task_yield (the one way a task yields into the engine), and the
 * yield/resume half of the public API (aqueue.h). The resume driver itself is
 * in engine.c: it is the only caller of lua_resume.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "task.h"

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

static char tasks_key; /* its address keys the task table in the Lua registry */

void tasks_init(aq_tasks *T, lua_State *L, uv_idle_t *driver) {
  memset(T, 0, sizeof *T);
  T->L = L;
  T->driver = driver;
  lua_pushlightuserdata(L, &tasks_key);
  lua_pushlightuserdata(L, T);
  lua_rawset(L, LUA_REGISTRYINDEX);
}

void tasks_free(aq_tasks *T) {
  free(T->all);
  free(T->gens);
  free(T->free_indexes);
  T->all = NULL;
  T->gens = T->free_indexes = NULL;
  T->cap = T->nfree_indexes = 0;
}

static aq_tasks *tasks_from_lua(lua_State *L) {
  lua_pushlightuserdata(L, &tasks_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  aq_tasks *T = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return T;
}

/* Finds a free index in the task table, growing it when needed; -1 when full. */
static int64_t take_index(aq_tasks *T) {
  if (T->nfree_indexes > 0) return T->free_indexes[--T->nfree_indexes];
  uint32_t old = T->cap;
  uint32_t cap = old ? old * 2 : 256;
  if (cap > TASK_INDEX_LIMIT) return -1;
  aq_task **all = realloc(T->all, cap * sizeof *all);
  if (!all) return -1;
  T->all = all;
  uint32_t *gens = realloc(T->gens, cap * sizeof *gens);
  if (!gens) return -1;
  T->gens = gens;
  uint32_t *free_indexes = realloc(T->free_indexes, cap * sizeof *free_indexes);
  if (!free_indexes) return -1;
  T->free_indexes = free_indexes;
  T->cap = cap;
  for (uint32_t i = old; i < cap; i++) {
    all[i] = NULL;
    gens[i] = 0;
  }
  /* hand out low indexes first */
  for (uint32_t i = cap; i > old + 1; i--) T->free_indexes[T->nfree_indexes++] = i - 1;
  return old;
}

aq_task *task_create(aq_tasks *T, aq_task_kind kind, lua_State *from, int nargs) {
  aq_task *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  int64_t index = take_index(T);
  if (index < 0) {
    free(t);
    return NULL;
  }
  t->tasks = T;
  t->index = (uint32_t)index;
  t->generation = ++T->gens[index] & 0x1fffffff;
  t->kind = kind;
  t->guard_ref = LUA_NOREF;
  t->co = lua_newthread(from);
  t->ref = luaL_ref(from, LUA_REGISTRYINDEX); /* pops the thread */
  lua_xmove(from, t->co, nargs + 1);         /* the function and its arguments */
  t->nresults = nargs;
  T->all[index] = t;
  T->live++;
  task_make_ready(t);
  return t;
}

void task_destroy(aq_task *t) {
  aq_tasks *T = t->tasks;
  if (t->status == AQ_TASK_WAITING && t->cancel) {
    aq_cancel_fn cancel = t->cancel;
    t->cancel = NULL;
    cancel(t, t->cancel_data);
  }
  task_list_remove(t);
  if (t->guard_ref != LUA_NOREF) {
    /* It ended before it could take what it was woken with: the guard hands
     * that on. Not while the engine stops: nothing would take it. */
    if (!T->shutdown) {
      lua_rawgeti(T->L, LUA_REGISTRYINDEX, t->guard_ref);
      if (!task_create(T, AQ_TASK_SPAWN, T->L, 0)) lua_pop(T->L, 1);
    }
    luaL_unref(T->L, LUA_REGISTRYINDEX, t->guard_ref);
    t->guard_ref = LUA_NOREF;
  }
  if (T->owner.ending) T->owner.ending(T->owner.data, t);
  luaL_unref(T->L, LUA_REGISTRYINDEX, t->ref);
  t->ref = LUA_NOREF;
  T->all[t->index] = NULL;
  T->free_indexes[T->nfree_indexes++] = t->index;
  T->live--;
  free(t);
}

void task_make_ready(aq_task *t) {
  aq_tasks *T = t->tasks;
  t->status = AQ_TASK_READY;
  task_list_push(&T->ready, t);
  if (!uv_is_active((uv_handle_t *)T->driver)) uv_idle_start(T->driver, T->driver->idle_cb);
}

double task_id(const aq_task *t) {
  return (double)t->generation * TASK_INDEX_LIMIT + t->index;
}

aq_task *task_by_id(aq_tasks *T, double id) {
  if (!(id >= 0) || id != floor(id)) return NULL;
  uint64_t n = (uint64_t)id;
  uint32_t index = (uint32_t)(n % TASK_INDEX_LIMIT);
  uint32_t gen = (uint32_t)(n / TASK_INDEX_LIMIT);
  if (index >= T->cap) return NULL;
  aq_task *t = T->all[index];
  return t && t->generation == gen ? t : NULL;
}

/* --- the public yield/resume API (aqueue.h) --- */

aq_task *task_yieldable(lua_State *L) {
  aq_task *t = tasks_from_lua(L)->current;
  return t && t->co == L && lua_isyieldable(L) ? t : NULL;
}

/* Raises why L cannot yield into the engine. Does not return. */
static int cannot_yield(lua_State *L) {
  aq_task *t = tasks_from_lua(L)->current;
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
  t->cancel = cancel;
  t->cancel_data = data;
  return task_yield(t, AQ_TASK_WAITING);
}

int task_yield(aq_task *t, aq_task_status status) {
  if (status == AQ_TASK_READY) task_make_ready(t);
  else t->status = status;
  return lua_yield(t->co, 0);
}

void aq_task_resume(aq_task *t, int nresults) {
  t->cancel = NULL;
  t->cancel_data = NULL;
  t->suspended = 0;
  t->nresults = nresults;
  aq_tasks *T = t->tasks;
  if (t->owner_data && T->owner.woken(T->owner.data, t)) return;
  task_make_ready(t);
}

void aq_task_resume_error(aq_task *t, const char *message) {
  lua_pushnil(t->co);
  lua_pushstring(t->co, message);
  aq_task_resume(t, 2);
}
