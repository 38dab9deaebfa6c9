/*
 * task.h — engine tasks: coroutines owned by C, and the table that holds them.
 *
 * A task is created by the engine (the script's main chunk, aqueue.spawn, or a
 * worker runner), holds one registry ref to its coroutine, and is destroyed
 * exactly once (task_destroy), which releases the ref. Its life:
 *
 *   READY ──resume──▶ RUNNING ──task_yield(WAITING)──▶ WAITING ──aq_task_resume──▶ READY
 *                         │  ──task_yield(PARKED) (runner with no work)──▶ PARKED ──dispatch──▶ READY
 *                         └──returns or raises──▶ destroyed
 *
 * Only the resume driver (engine.c) calls lua_resume; every yield into the
 * engine goes through task_yield. Completions never run Lua: they move a task
 * to READY and the driver continues it later.
 *
 * This file knows nothing above it: the scheduler, which runs worker tasks,
 * hears about their ends and wake-ups through an aq_task_owner, and keeps its
 * own per-runner record in owner_data.
 */
#ifndef AQ_TASK_H
#define AQ_TASK_H

#include <stdint.h>
#include <lua.h>
#include <uv.h>

#include "aqueue.h"

typedef enum {
  AQ_TASK_READY,
  AQ_TASK_RUNNING,
  AQ_TASK_WAITING,
  AQ_TASK_PARKED
} aq_task_status;

typedef enum {
  AQ_TASK_MAIN,   /* the script's main chunk */
  AQ_TASK_SPAWN,  /* aqueue.spawn */
  AQ_TASK_RUNNER  /* a worker coroutine that runs item jobs (scheduler.c) */
} aq_task_kind;

typedef struct aq_tasks aq_tasks;

/* An intrusive FIFO of tasks; a task is in at most one list at a time. */
typedef struct aq_task_list {
  aq_task *head, *tail;
  uint32_t len;
} aq_task_list;

void task_list_push(aq_task_list *list, aq_task *t);
aq_task *task_list_pop(aq_task_list *list);
void task_list_remove(aq_task *t);

struct aq_task {
  aq_tasks *tasks;     /* the table it is in */
  lua_State *co;       /* the coroutine; kept alive by `ref` */
  int ref;             /* registry ref, LUA_NOREF once released */
  uint32_t index;      /* slot in tasks->all */
  uint32_t generation; /* with index, the task id Lua sees (task_id) */
  aq_task_status status;
  aq_task_kind kind;
  int nresults;        /* values pushed on `co` for the next resume */
  aq_cancel_fn cancel; /* set while WAITING on an operation */
  void *cancel_data;
  aq_task *prev, *next; /* links in `list` */
  struct aq_task_list *list; /* the list this task is in, NULL when none */
  int suspended;       /* WAITING in core.suspend: woken by core.wake */
  int guard_ref;       /* core.suspend's guard: a function run (as a task of
                        * its own) if this task ends before it runs again;
                        * LUA_NOREF when none */
  void *owner_data;    /* the owner's record of this task (a runner's, in the
                        * scheduler), NULL when none; never read here */
};

/* Who runs worker tasks (the scheduler) hears through these. */
typedef struct {
  void *data;
  /* A task is being destroyed (every task, before its memory goes). */
  void (*ending)(void *data, aq_task *t);
  /* A task with owner_data was resumed: returns 1 when the owner takes it in
   * hand (it makes it ready later), 0 to make it ready now. */
  int (*woken)(void *data, aq_task *t);
} aq_task_owner;

/* The tasks of the engine: the table of live ones, the ready list the driver
 * resumes in order, and the one running now. */
struct aq_tasks {
  lua_State *L;          /* the main state: never a task, never resumed */
  uv_idle_t *driver;     /* the resume driver (engine.c): started when a task becomes ready */
  aq_task *current;      /* the task inside lua_resume, NULL otherwise */
  uint64_t slice_deadline; /* the driver yields to the loop after this (hrtime) */
  int shutdown;          /* the engine stops: every task is being cancelled */

  aq_task **all;         /* index -> live task or NULL */
  uint32_t *gens;        /* index -> generation of the last task there */
  uint32_t cap;
  uint32_t *free_indexes; /* stack of free indexes into all */
  uint32_t nfree_indexes;
  uint32_t live;         /* tasks not destroyed (parked runners included) */

  aq_task_list ready;    /* READY tasks, resumed in order by the driver */
  aq_task_owner owner;
};

/* Makes an empty table for the state L, whose driver idle handle (initialized,
 * with its callback in idle_cb) is started whenever a task becomes ready. */
void tasks_init(aq_tasks *T, lua_State *L, uv_idle_t *driver);
/* Frees the table's arrays (every task must have been destroyed). */
void tasks_free(aq_tasks *T);

/* Creates a READY task that will call the function found below `nargs`
 * arguments on top of `from`'s stack (all popped). `from` may be the main state
 * or a task's coroutine. Returns NULL (stack unchanged) when memory runs out. */
aq_task *task_create(aq_tasks *T, aq_task_kind kind, lua_State *from, int nargs);

/* Ends a task: runs its cancel hook if it waits on an operation, takes it off
 * its list, tells the owner, releases its registry ref and frees it. Must not
 * be called for the running task. */
void task_destroy(aq_task *t);

/* Puts a task at the tail of the ready list and wakes the driver. */
void task_make_ready(aq_task *t);

/* The running task when L is its coroutine and may yield there (not inside a
 * table.sort comparator, a string.gsub callback, a metamethod called from C),
 * else NULL. aq_task_current is the raising form. */
aq_task *task_yieldable(lua_State *L);

/* The one way a task yields into the engine; call as `return task_yield(...)`
 * from a C function running in task t (checked with task_yieldable or
 * aq_task_current). `status` is where the task goes: WAITING (on what its
 * cancel hook says: aq_task_yield), PARKED (the caller has put it on the
 * scheduler's parked list) or READY (the back of the ready list). */
int task_yield(aq_task *t, aq_task_status status);

/* The id Lua uses for a task: stable, never reused for another task. */
double task_id(const aq_task *t);

/* The live task with that id, or NULL when it has ended. */
aq_task *task_by_id(aq_tasks *T, double id);

#endif
