-- aqueue.sched: the scheduler's hot path (engine/core/scheduler.h) through the FFI.
-- These calls are compiled by the JIT; they never call back into Lua.
local ffi = require("ffi")
local core = require("aqueue.core")

ffi.cdef([[
struct aq_engine;
int32_t aq__sched_class_add(struct aq_engine *E, const char *name);
int32_t aq__sched_enqueue(struct aq_engine *E, int32_t parent, int32_t class_id, double priority, int32_t flags,
                          double delay_s, int32_t limit_key, int32_t max_attempts);
int32_t aq__sched_take(struct aq_engine *E);
void aq__sched_process_done(struct aq_engine *E, int32_t id, int32_t ok);
void aq__sched_hook_done(struct aq_engine *E, int32_t id, int32_t ok);
int32_t aq__sched_reap(struct aq_engine *E);
int32_t aq__sched_reaped_count(struct aq_engine *E);
int32_t aq__sched_item_finished(struct aq_engine *E, int32_t id);
int32_t aq__sched_current_job(struct aq_engine *E);
int32_t aq__sched_stopping(struct aq_engine *E);
void aq__sched_set_desc(struct aq_engine *E, const char *text, size_t len);
void aq__sched_note_duplicate(struct aq_engine *E);
int32_t aq__sched_attempt(struct aq_engine *E, int32_t id);
double aq__sched_retry(struct aq_engine *E, int32_t id, double base_s, double cap_s);
int32_t aq__sched_arm_timeout(struct aq_engine *E, double seconds);
double aq__sched_timeout_over(struct aq_engine *E);
int32_t aq__sched_limit_key_add(struct aq_engine *E, int32_t per_key, double rate);
int32_t aq__sched_restore_open(struct aq_engine *E, int32_t parent, int32_t class_id, int32_t flags);
void aq__sched_restore_release(struct aq_engine *E, int32_t id);
void aq__sched_restore_attempts(struct aq_engine *E, int32_t id, int32_t attempts);
void aq__sched_add_overall_done(struct aq_engine *E, int64_t n);
void aq__sched_hold_open(struct aq_engine *E, int32_t parent);
void aq__display_key_name(struct aq_engine *E, int32_t key, const char *name, size_t len);
]])

return {
  C = ffi.C,
  E = ffi.cast("struct aq_engine *", core.engine),
  -- item flags (AQ_ITEM_* in scheduler.h)
  TRACK_OVERALL = 1,
  HAS_HOOK = 2,
}
