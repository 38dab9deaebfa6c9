-- aqueue.backends.sqlite: the queue of a run with a state file (--state FILE,
-- SPEC section 5; aqueue.queue_backend has the interface). It keeps what the
-- memory backend keeps, and writes every step to the file through
-- aqueue.state (the item rows) on the group-committing writer of
-- engine/modules/statedb: a write never waits. A rerun resumes from the file.
local memory = require("aqueue.backends.memory")
local state = require("aqueue.state")
local outbox = require("aqueue.feed_outbox")

local Sqlite = setmetatable({}, { __index = memory.Memory })
Sqlite.__index = Sqlite

local M = {}

-- Opens `file` (opts: fresh, retry_failed). Raises at `level` when it cannot
-- be used, leaving it as it was.
function M.open(file, opts, level)
  local resuming = state.start(file, opts.fresh, opts.retry_failed, level + 1)
  outbox.run_started(state.db())
  return memory.new(Sqlite, { name = "sqlite", durable = true, local_queue = true, file = file,
    resuming = resuming })
end

function Sqlite:resume(classes, restore, level)
  if not self.resuming then
    return nil
  end
  local keys, counts = state.load(classes, restore, level + 1)
  self.seen_keys = keys
  return counts
end

-- The item's fields must be savable; a parent that runs again after a crash
-- gets back the children it enqueued before (by their ordinal). The ticket is
-- the child's ordinal under its parent.
function Sqlite:admit(parent, child, class_name, level)
  state.check(child, class_name, level + 1)
  local ordinal = state.next_ordinal(parent)
  if parent ~= nil then
    local same, err = state.known_child(parent, ordinal, class_name)
    if same ~= nil then
      return same, err
    end
  end
  return nil, ordinal
end

-- The row of a new item (its parent's row comes first).
local function write_row(child, parent, key, ordinal)
  local pid, parent_pid, key_text = state.new_row(child, parent, key)
  state.add_item(state.db(), child, pid, parent_pid, ordinal, child.__name, key_text)
end

-- Writes the row last: a C call ends the JIT's trace (see state.new_row).
function Sqlite:enqueued(child, parent, key, ordinal)
  if key ~= nil then
    self.seen_keys[key] = true
  end
  write_row(child, parent, key, ordinal)
end

-- Kept for the next run, under its parent. Its key counts as seen from now
-- on: another parent that names the same key while the run stops must not
-- keep a second copy (the next run would process both).
function Sqlite:held(child, parent, key, ordinal)
  if key ~= nil then
    self.seen_keys[key] = true
  end
  write_row(child, parent, key, ordinal)
  return true
end

function Sqlite:retrying(item, attempt)
  outbox.drop(item)
  state.retrying(item, attempt)
end

-- The feed lines the item wrote commit with its completion (aqueue.feed_outbox).
function Sqlite:processed(item, ok, attempt, err)
  if outbox.commit(item, ok) then
    state.processed(item, ok, attempt, err)
    outbox.release()
  else
    state.processed(item, ok, attempt, err)
  end
end

-- Written at once, so a crash before the subtree is reaped does not run the
-- hook again.
function Sqlite:hook_ran(item)
  state.finished(item)
end

function Sqlite:finished(item)
  state.finished(item) -- once: nothing when hook_ran wrote it
end

-- Commits what the run wrote (yields until then), then reads the file's
-- counts for counters().
function Sqlite:finish()
  local ok, why, counts = state.finish()
  outbox.run_ended(ok)
  self.counts = counts
  return ok, why
end

-- The whole run's figures, as the file holds them (a resumed run counts
-- what earlier processes did too).
function Sqlite:counters()
  return self.counts
end

function Sqlite:abandon()
  outbox.run_ended(false)
  state.abandon()
end

return M
