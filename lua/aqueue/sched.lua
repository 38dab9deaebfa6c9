-- aqueue.sched: the scheduler's hot path (engine/core/core_ffi.h) through the FFI.
-- These calls are compiled by the JIT; they never call back into Lua.
-- The declarations and the constants come from the engine (aqueue.core):
-- nothing here is a copy of C. Callers keep the constants in locals.
local ffi = require("ffi")
local core = require("aqueue.core")

ffi.cdef(core.ffi_cdef)

return {
  C = ffi.C,
  E = ffi.cast("struct aq_engine *", core.engine),
  -- item flags (AQ_ITEM_* in scheduler.h)
  TRACK_OVERALL = core.ITEM_TRACK_OVERALL,
  HAS_HOOK = core.ITEM_HAS_HOOK,
  -- a job (aq__sched_take, aq__sched_current_job) is
  -- id << JOB_ID_SHIFT | kind, kind being JOB_PROCESS or JOB_HOOK (AQ_JOB_*)
  JOB_ID_SHIFT = core.JOB_ID_SHIFT,
  JOB_KIND_MASK = core.JOB_KIND_MASK,
  JOB_PROCESS = core.JOB_PROCESS,
  JOB_HOOK = core.JOB_HOOK,
  -- why aq__sched_enqueue / aq__sched_restore_open took no item (AQ_ENQUEUE_*)
  ENQUEUE_NO_MEMORY = core.ENQUEUE_NO_MEMORY,
  ENQUEUE_STOPPING = core.ENQUEUE_STOPPING,
  ENQUEUE_SUBTREE_DONE = core.ENQUEUE_SUBTREE_DONE,
  ENQUEUE_NO_RUN = core.ENQUEUE_NO_RUN,
}
