-- aqueue.backends.memory: the queue of a run without a state file
-- (aqueue.queue_backend has the interface). The items wait in the engine's
-- scheduler, whose figures are the counters; what this backend keeps besides
-- is the run's key() values, for dedup. Nothing outlives the run: a second
-- run_queue call starts from nothing. Its steps cost nothing: the JIT
-- compiles the empty ones away.
--
-- aqueue.backends.sqlite builds on it: the same record in memory, plus the
-- state file.
local Memory = {}
Memory.__index = Memory

local M = { Memory = Memory }

-- A new backend of class `class` (Memory, or one built on it) with `fields`.
function M.new(class, fields)
  local b = setmetatable(fields, class)
  b.seen_keys = {} -- key() value -> true
  return b
end

function M.open()
  return M.new(Memory, { name = "memory", durable = false, local_queue = true })
end

-- Nothing survives a process: there is never a run to resume.
function Memory:resume()
  return nil
end

-- Every item can be kept, and no parent runs again: no ticket is needed.
function Memory:admit()
  return nil, nil
end

function Memory:seen(key)
  return self.seen_keys[key] == true
end

function Memory:enqueued(_, _, key)
  if key ~= nil then
    self.seen_keys[key] = true
  end
end

-- The run is stopping: an item not taken is gone with it.
function Memory:held()
  return false
end

function Memory:retrying() end

function Memory:processed() end

function Memory:hook_ran() end

function Memory:finished() end

-- The queue was the scheduler's: its figures, and nothing is left pending
-- once the run has ended.
function Memory:counters(summary)
  return { done = summary.processed, failed = summary.failed, pending = 0 }
end

function Memory:finish()
  return true
end

function Memory:abandon() end

return M
