-- A remote queue kept in this process, for the tests of run_queue's remote
-- path (aqueue.run_remote) without a Redis: an in-process store with the API
-- and the job shapes of aqueue.redis_run (enqueue, claim, complete, release,
-- counters, ...), behind the same backend as Redis's
-- (aqueue.backends.shared_run). Its claims answer from a timer, later, as a
-- store across the network would. Kept small: one process, no limits, no
-- leases (heartbeat and reap do nothing).
--
--   local uninstall = require("tests.support.local_remote_backend").install()
-- makes every later run_queue of this process use it (backend name
-- "local_remote") until uninstall().
local core = require("aqueue.core")
local sleep = require("aqueue.sleep_core").sleep
local queue_backend = require("aqueue.queue_backend")
local shared_run = require("aqueue.backends.shared_run")

local Store = {}
Store.__index = Store

local function new_store(order)
  return setmetatable({
    first = true, order = order or "lifo", heartbeat_interval = 1,
    recs = {},     -- id -> { class, fields, parent, has_hook, priority, pending, attempt, token, hook }
    next_id = 0,
    queue = {},    -- ids of process jobs due
    hooks = {},    -- ids of hook jobs due
    delayed = {},  -- { id, due } of process jobs not yet due
    keys = {},     -- key() values enqueued
    live = 0,      -- items whose subtree is not finished
    running = 0, done = 0, failed = 0, tokens = 0,
    started = 0,   -- first attempts claimed (max_items, set by the backend, counts them)
    max_items = 0,
    claims = {},   -- n asked by each claim, in order (what the tests look at)
    outcomes = {}, -- outcome of each completion, in order
    released = 0,  -- jobs handed back unstarted
  }, Store)
end

function Store:add(entry)
  if entry.key ~= nil then
    if self.keys[entry.key] then
      return false
    end
    self.keys[entry.key] = true
  end
  self.next_id = self.next_id + 1
  local id = self.next_id
  self.recs[id] = { class = entry.class, fields = entry.fields, parent = entry.parent, has_hook = entry.has_hook,
    priority = entry.priority or 0, pending = 1, attempt = 0 }
  if entry.parent then
    local p = self.recs[entry.parent]
    p.pending = p.pending + 1
  end
  self.live = self.live + 1
  if (entry.delay or 0) > 0 then
    self.delayed[#self.delayed + 1] = { id = id, due = core.now() + entry.delay }
  else
    self.queue[#self.queue + 1] = id
  end
  return id
end

function Store:enqueue(entries)
  local ids = {}
  for i = 1, #entries do
    ids[i] = self:add(entries[i])
  end
  return ids
end

-- One open thing of item `id` is over: its subtree finishes when none is left.
function Store:close_one(id)
  while id do
    local r = self.recs[id]
    r.pending = r.pending - 1
    if r.pending > 0 then
      return
    end
    if r.has_hook and not r.hook then
      r.hook = true
      r.pending = 1 -- the hook itself
      self.hooks[#self.hooks + 1] = id
      return
    end
    self.live = self.live - 1
    id = r.parent
  end
end

-- The next due process job in the run's order.
function Store:pop()
  local q = self.queue
  if #q == 0 then
    return nil
  end
  local at = self.order == "fifo" and 1 or #q
  if self.order == "priority" then
    for i = 1, #q do
      if self.recs[q[i]].priority > self.recs[q[at]].priority then
        at = i
      end
    end
  end
  return table.remove(q, at)
end

function Store:claim(n)
  self.claims[#self.claims + 1] = n
  sleep(0.001) -- the answer comes later, from the loop
  local now = core.now()
  for i = #self.delayed, 1, -1 do
    local d = self.delayed[i]
    if d.due <= now then
      table.remove(self.delayed, i)
      self.queue[#self.queue + 1] = d.id
    end
  end
  local jobs = {}
  local function room()
    return (self.max_items or 0) == 0 or self.started < self.max_items
  end
  while #jobs < n do
    local id, kind = table.remove(self.hooks, 1), "hook"
    if not id and room() then
      id, kind = self:pop(), "process"
    end
    if not id then
      break
    end
    local r = self.recs[id]
    if kind == "process" then
      r.attempt = r.attempt + 1
      if r.attempt == 1 then
        self.started = self.started + 1
      end
    end
    self.tokens = self.tokens + 1
    r.token = self.tokens
    self.running = self.running + 1
    jobs[#jobs + 1] = { id = id, kind = kind, class = r.class, fields = r.fields, parent = r.parent,
      attempt = r.attempt, token = r.token }
  end
  return jobs, not room()
end

-- Returns per result the ids of its children (false: a duplicate key); with
-- claim_n, then claims as claim(claim_n) and returns its jobs too.
function Store:complete(results, claim_n)
  local replies = {}
  for i = 1, #results do
    local res = results[i]
    local r = self.recs[res.id]
    assert(r.token == res.token, "a completion with a stale token")
    self.outcomes[#self.outcomes + 1] = res.outcome
    r.token = nil
    self.running = self.running - 1
    local children, ids = res.children or {}, {}
    for j = 1, #children do
      ids[j] = self:add(children[j])
    end
    replies[i] = ids
    if res.outcome == "retry" then
      self.delayed[#self.delayed + 1] = { id = res.id, due = core.now() + res.retry_delay }
    else
      if res.outcome ~= "hook_done" then
        r.outcome, r.result, r.error = res.outcome, res.result, res.error
      end
      if res.outcome == "done" then
        self.done = self.done + 1
      elseif res.outcome == "failed" then
        self.failed = self.failed + 1
      end
      self:close_one(res.id)
    end
  end
  if claim_n then
    local jobs, reached = self:claim(claim_n)
    return replies, jobs, reached
  end
  return replies
end

function Store:release(list)
  for i = 1, #list do
    local r = self.recs[list[i].id]
    if r.token == list[i].token then
      r.token = nil
      self.released = self.released + 1
      self.running = self.running - 1
      if r.hook then
        self.hooks[#self.hooks + 1] = list[i].id
      else
        r.attempt = r.attempt - 1
        if r.attempt == 0 then
          self.started = self.started - 1
        end
        self.queue[#self.queue + 1] = list[i].id
      end
    end
  end
  return true
end

-- result(id) -> "queued" | "running" | "done" | "failed", result JSON, error
function Store:result(id)
  local r = self.recs[id]
  if r.outcome then
    return r.outcome, r.result, r.error
  end
  return r.token and "running" or "queued"
end

function Store:counters()
  return { queued = #self.queue + #self.hooks, delayed = #self.delayed, running = self.running, done = self.done,
    failed = self.failed, processes_alive = 1, finished = self.live == 0 }
end

function Store:heartbeat() return true end
function Store:reap() return 0, 0 end
function Store:close() end

local M = { new_store = new_store, store = nil }

-- Every later run_queue of this process keeps its queue in a store of its
-- own (the last one made is M.store, for the tests to look at). Returns a
-- function that puts the usual backends back.
function M.install()
  local open = queue_backend.open
  queue_backend.open = function(_, opts)
    M.store = new_store(opts.order)
    M.store.session_elapsed = M.session_elapsed -- (the tests of max_time set it)
    return shared_run.new(M.store, { name = "local_remote", durable = false,
      claim_poll_min_s = M.claim_poll_s, claim_poll_max_s = M.claim_poll_s }) -- (nil: the backend's own)
  end
  return function()
    queue_backend.open = open
  end
end

return M
