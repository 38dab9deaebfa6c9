-- aqueue.backends.shared_batches: how a shared run's buffered records
-- (aqueue.backends.shared_run: jobs handed back, entries to enqueue,
-- completions) become script calls of its store, in batches that one call
-- holds, and what stays buffered when a call fails.
local M = {}

local BATCH = 128 -- completions sent at once

-- A batch is one script call. Its records travel packed in one argument
-- (aqueue.redis_run), so the call's arguments do not bound it; MAX_RECORDS
-- does, so that one script (which holds the server while it runs) stays
-- short and the other processes' calls get their turn: an entry counts
-- one, a completion one and its children's entries. 512 records hold the
-- server about 1.5 ms; with 2048, a burst of parents with many children (a
-- tree's fan-out) kept the claims of every process waiting behind 6 ms calls,
-- and their workers idle (a shared run's start took 10 ms longer, and no-op
-- items went through 2 processes at 58k/s instead of 72k/s).
local MAX_RECORDS = 512
M.MAX_CHILDREN = MAX_RECORDS - 1

-- The first records of `list` (entries or completions) that make one batch,
-- and the rest. (A completion carries at most MAX_CHILDREN children:
-- shared_run sends the others ahead of it.)
local function split(list, max_records)
  local n, records = 0, 0
  while n < #list and n < max_records do
    local r = list[n + 1]
    local cost = r.outcome and 1 + (r.children and #r.children or 0) or 1
    if n > 0 and records + cost > MAX_RECORDS then
      break
    end
    n, records = n + 1, records + cost
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
-- handed back, the enqueues outside a completion, then one batch of the
-- completions. Sets each sent entry's id. The completions that do not fit
-- in one call stay buffered for the next send (the flusher's or a claim's):
-- a burst of parents with thousands of children takes several calls, and a
-- claim that comes meanwhile carries the next batch instead of waiting for
-- them all. With claim_n, also claims up to claim_n jobs: the batch of
-- completions carries the claim (one round trip for both), or a plain claim
-- goes when there is nothing to complete. Returns true, the jobs claimed and whether
-- the run's max_items is reached (with claim_n), or nil, err when the store
-- could not be reached: what was not sent is buffered again, in front.
function M.send(self, claim_n)
  local releases, entries, results = self.releases, self.entries, self.results
  self.releases, self.entries, self.results = {}, {}, {}
  if #releases > 0 then
    local ok, err = self.run:release(releases)
    if not ok then
      self.releases, self.entries, self.results = put_back(releases, self.releases), put_back(entries, self.entries),
        put_back(results, self.results)
      return nil, err
    end
    for i = 1, #releases do
      self.held_tokens[releases[i].id] = nil
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
  local jobs, reached = nil, false
  if #results > 0 then
    local batch
    batch, results = split(results, BATCH)
    self.results = put_back(results, self.results)
    local replies, claimed_or_err, limit_reached = self.run:complete(batch, claim_n)
    if not replies then
      self.results = put_back(batch, self.results)
      return nil, claimed_or_err
    end
    if claim_n then
      jobs, reached = claimed_or_err, limit_reached
    end
    for i = 1, #batch do
      self.held_tokens[batch[i].id] = nil -- (a stale completion too: the job is no longer ours)
    end
    for i = 1, #batch do
      local children, ids = batch[i].children, replies[i]
      for j = 1, children and #children or 0 do
        children[j].id = ids and ids[j] or false
      end
    end
  end
  if claim_n and not jobs then
    local claimed_or_err
    claimed_or_err, reached = self.run:claim(claim_n)
    if not claimed_or_err then
      return nil, reached
    end
    jobs = claimed_or_err
  end
  return true, jobs, reached
end

return M
