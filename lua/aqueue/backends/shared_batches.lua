-- aqueue.backends.shared_batches: how a shared run's buffered records
-- (aqueue.backends.shared_run: jobs handed back, entries to enqueue,
-- completions) become script calls of its store, in batches that one call
-- holds, and what stays buffered when a call fails.
local M = {}

local BATCH = 128 -- completions sent at once

-- A batch is one script call, whose arguments are limited (a Lua C call
-- takes at most ~8000 values): an entry takes ENTRY_ARGS of them, a
-- completion COMPLETION_ARGS and its children's entries. MAX_ARGS leaves room
-- for the call's own.
local ENTRY_ARGS, COMPLETION_ARGS, MAX_ARGS = 9, 7, 6000
M.MAX_CHILDREN = math.floor((MAX_ARGS - COMPLETION_ARGS) / ENTRY_ARGS)

-- The first records of `list` (entries or completions) that make one batch,
-- and the rest. (A completion carries at most MAX_CHILDREN children:
-- shared_run sends the others ahead of it.)
local function split(list, max_records)
  local n, args = 0, 0
  while n < #list and n < max_records do
    local r = list[n + 1]
    local cost = r.outcome and COMPLETION_ARGS + ENTRY_ARGS * (r.children and #r.children or 0) or ENTRY_ARGS
    if n > 0 and args + cost > MAX_ARGS then
      break
    end
    n, args = n + 1, args + cost
  end
  if n == #list then
    return list, {}
  end
  local batch, rest = {}, {}
  for i = 1, n do
    batch[i] = list[i]
  end
  for i = n + 1, #list do
    rest[i - n] = list[i]
  end
  return batch, rest
end

-- `batch` goes back in front of `rest`: its call failed, it is sent again.
local function put_back(batch, rest)
  for i = 1, #rest do
    batch[#batch + 1] = rest[i]
  end
  return batch
end

-- Sends the records backend `b` buffered when the call began: the jobs
-- handed back, the enqueues outside a completion, then the completions. Sets
-- each sent entry's id. Returns true, or nil, err when the store could not be
-- reached: what was not sent is buffered again, in front.
function M.send(self)
  local releases, entries, results = self.releases, self.entries, self.results
  self.releases, self.entries, self.results = {}, {}, {}
  if #releases > 0 then
    local ok, err = self.run:release(releases)
    if not ok then
      self.releases, self.entries, self.results = put_back(releases, self.releases), put_back(entries, self.entries),
        put_back(results, self.results)
      return nil, err
    end
  end
  while #entries > 0 do
    local batch
    batch, entries = split(entries, math.huge)
    local ids, err = self.run:enqueue(batch)
    if not ids then
      self.entries = put_back(put_back(batch, entries), self.entries)
      self.results = put_back(results, self.results)
      return nil, err
    end
    for i = 1, #batch do
      batch[i].id = ids[i] -- false: a duplicate (handle:result() reads it)
    end
  end
  while #results > 0 do
    local batch
    batch, results = split(results, BATCH)
    local replies, err = self.run:complete(batch)
    if not replies then
      self.results = put_back(put_back(batch, results), self.results)
      return nil, err
    end
    for i = 1, #batch do
      local children, ids = batch[i].children, replies[i]
      for j = 1, children and #children or 0 do
        children[j].id = ids and ids[j] or false
      end
    end
  end
  return true
end


return M
