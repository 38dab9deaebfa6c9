/*
 * task.h — engine tasks: coroutines owned by C.
 *
 * A task is created by the engine (the script's main chunk, aqueue.spawn, or a
 * worker runner), holds one registry ref to its coroutine, and is destroyed
 * exactly once (task_destroy), which releases the ref. Its life:
 *
 *   READY ──resume──▶ RUNNING ──aq_task_yield──▶ WAITING ──aq_task_resume──▶ READY
 *                         │  ──park (runner with no work)──▶ PARKED ──dispatch──▶ READY
 *                         └──returns or raises──▶ destroyed
 *
 * Only the resume driver (engine.c) calls lua_resume. Completions never run Lua:
 * they move a task to READY and the driver continues it later.
 */
#ifndef AQ_TASK_H
#define AQ_TASK_H

#include <stdint.h>
#include <lua.h>

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

/* An intrusive FIFO of tasks; a task is in at most one list at a time. */
typedef struct aq_task_list {
  aq_task *head, *tail;
  uint32_t len;
} aq_task_list;

void task_list_push(aq_task_list *list, aq_task *t);
aq_task *task_list_pop(aq_task_list *list);
void task_list_remove(aq_task *t);

struct aq_task {
  aq_engine *engine;
  lua_State *co;       /* the coroutine; kept alive by `ref` */
  int ref;             /* registry ref, LUA_NOREF once released */
  uint32_t index;      /* slot in engine->tasks */
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
  /* worker bookkeeping (runners only) */
  int32_t slot;        /* worker slot held, -1 when none */
  int32_t job;         /* current job (scheduler.h encoding), 0 when none */
  int wants_slot;      /* woken from an unslotted wait: needs a slot before it runs */
  int starting;        /* woken by dispatch for a job it has not taken yet */
  uv_timer_t *timeout_timer; /* the item's `timeout`, made at first use, owned */
  double timeout_s;    /* the armed timeout, for the error message */
  uint64_t timeout_due_ns; /* hrtime the armed timeout passes, 0 when none: the
                        * timer cannot fire while the task runs without yielding */
  int timed_out;       /* destroyed by its timeout: the attempt failed */
  char *desc;          /* set_desc text, owned (malloc) */
  size_t desc_len, desc_cap;
};

/* Creates a READY task that will call the function found below `nargs`
 * arguments on top of `from`'s stack (all popped). `from` may be the main state
 * or a task's coroutine. Returns NULL (stack unchanged) when memory runs out. */
aq_task *task_create(aq_engine *E, aq_task_kind kind, lua_State *from, int nargs);

/* Ends a task: runs its cancel hook if it waits on an operation, takes it off
 * its list, gives back its worker slot and job, releases its registry ref and
 * frees it. Must not be called for the running task. */
void task_destroy(aq_task *t);

/* Puts a task at the tail of the ready list and wakes the driver. */
void task_make_ready(aq_task *t);

/* The running task when L is its coroutine and may yield there (not inside a
 * table.sort comparator, a string.gsub callback, a metamethod called from C),
 * else NULL. aq_task_current is the raising form. */
aq_task *task_yieldable(lua_State *L);

/* The id Lua uses for a task: stable, never reused for another task. */
double task_id(const aq_task *t);

/* The live task with that id, or NULL when it has ended. */
aq_task *task_by_id(aq_engine *E, double id);

#endif
