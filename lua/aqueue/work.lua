-- aqueue.work(fn, ...): CPU work on the libuv thread pool (engine/modules/work/).
--
-- fn(...) runs on a pool thread in that thread's own Lua state, so fn must not
-- have upvalues (pass what it needs as arguments), and its arguments and
-- results must be nil, booleans, numbers, strings or tables of those. The
-- calling task yields meanwhile; every other task keeps running.
--   local sum = aqueue.work(function(n) local s = 0 for i = 1, n do s = s + i end return s end, 1e8)
local core = require("aqueue.work_core")

return {
  -- aqueue.work(fn, ...) -> fn(...)'s results; nil, "EWORK: <fn's error>",
  -- "EWORK" when fn raised or a result cannot come back ("ENOMEM" when memory
  -- ran out). Raises when fn or an argument cannot be sent.
  work = core.work,
  -- pool_size() -> how many pool threads there are: how many work calls run
  -- at once (UV_THREADPOOL_SIZE; aqueue sets it to the number of cores unless
  -- it is set already).
  pool_size = core.pool_size,
}
