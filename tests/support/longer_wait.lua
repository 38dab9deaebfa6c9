-- Test support: a wait to compare with, instead of a wall-clock upper bound.
-- A task sleeping `seconds`, started just before what is measured: when that
-- ends while the longer wait is still running, it ended first — on a fast
-- machine or on a loaded one alike, since both wait on the same loop and its
-- timers fire in the order they are due.
--   local longer_wait = require("tests.support.longer_wait")
--   local longer = longer_wait.start(1)      -- as long as the sleep cut short
--   run{ ... }                                 -- an item's 0.05 s timeout
--   assert.is_false(longer:ended(), "the timeout did not cut the 1 s sleep")
--   longer:stop()                              -- no need to wait for it
-- `ended_at` is the aqueue.now() reading when it ended (nil before), to order
-- an event before or after it.
local aqueue = require("aqueue")

local M = {}

function M.start(seconds)
  local wait = { done = false }
  wait.task = aqueue.spawn(function()
    aqueue.sleep(seconds)
    wait.done = true
    wait.ended_at = aqueue.now()
  end)
  function wait.ended(self) return self.done end
  -- Cancels the wait when it is still running (the spec need not wait for it).
  function wait.stop(self)
    if not self.done then self.task:cancel() end
  end
  return wait
end

return M
