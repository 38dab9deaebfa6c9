/*
 * sched_ffi.h — the functions Lua calls through the FFI: the scheduler's hot
 * path (lua/aqueue/sched.lua's ffi.cdef must match these) and the display's
 * limit-key names. Each takes the engine (core.engine) and hands on to its
 * scheduler or display (sched_ffi.c); they never call into Lua.
 */
#ifndef AQ_SCHED_FFI_H
#define AQ_SCHED_FFI_H

#include <stddef.h>
#include <stdint.h>

#include "aqueue.h"

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
double aq__sched_retry(aq_engine *E, int32_t id, double base_s, double cap_s);
void aq__sched_arm_timeout(aq_engine *E, double seconds);
double aq__sched_timeout_over(aq_engine *E);
int32_t aq__sched_limit_key_add(aq_engine *E, int32_t per_key, double rate);
/* resuming from a state file (lua/aqueue/state.lua) */
int32_t aq__sched_restore_open(aq_engine *E, int32_t parent, int32_t class_id, int32_t flags);
void aq__sched_restore_release(aq_engine *E, int32_t id);
void aq__sched_restore_attempts(aq_engine *E, int32_t id, int32_t attempts);
void aq__sched_add_overall_done(aq_engine *E, int64_t n);
void aq__sched_hold_open(aq_engine *E, int32_t parent);
/* display_set_key_name */
void aq__display_key_name(aq_engine *E, int32_t key, const char *name, size_t len);

#endif
