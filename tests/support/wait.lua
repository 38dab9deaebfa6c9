-- Test support: waiting for a condition instead of sleeping a fixed time.
--   local wait = require("tests.support.wait")
--   wait.until_true(function() return files.exists(path) end, "the file")
-- Yields (10 ms at a time) until fn() is true. Only a failing test reaches the
-- limit, so it is generous: 20 s, for a loaded 2-core machine running the
-- sanitizer build; a passing test waits only as long as the condition takes.
local aqueue = require("aqueue")

local M = {}

M.LIMIT = 20

-- Fails with "timed out waiting for <what>" after M.LIMIT seconds.
function M.until_true(fn, what)
  local deadline = aqueue.now() + M.LIMIT
  while not fn() do
    assert(aqueue.now() < deadline, "timed out waiting for " .. what)
    aqueue.sleep(0.01)
  end
end

-- Like until_true, but returns fn()'s final value instead of failing.
function M.eventually(fn)
  local deadline = aqueue.now() + M.LIMIT
  while not fn() and aqueue.now() < deadline do aqueue.sleep(0.005) end
  return fn()
end

return M
