-- Helpers of the scheduling specs: a run without the display, and the message
-- of an expected error.
local aqueue = require("aqueue")
local assert = require("luassert")

local M = {}

-- run_queue with `items` as the initial items and no display; `opts` may add
-- any other option.
function M.quiet(items, opts)
  opts = opts or {}
  opts.initial_items = items
  opts.progress = "none"
  return aqueue.run_queue(opts)
end

-- The error fn(...) raises, as a string; fails the test when it raises none.
function M.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

return M
