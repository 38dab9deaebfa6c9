-- aqueue.backends.shared_run: a remote queue backend (local_queue false;
-- aqueue.queue_backend has the interface) over a run shared by several
-- processes, reached through an object with the API of aqueue.redis_run:
--   run.first, run:enqueue(entries), run:claim(n) -> jobs,
--   run:complete(results [, n]) (with n: -> replies, the jobs of a claim(n)),
--   run:heartbeat(held jobs), run:reap(), run:release(list),
--   run:counters(), run:close()
-- (a job: { id, kind = "process" | "hook", class, fields, parent, attempt,
-- token }). aqueue.backends.redis gives it a redis_run; the tests give it an
-- in-process one (tests/support/local_remote_backend.lua).
--
-- Nothing here costs a round trip per item: enqueues and completions are
-- buffered and sent in batches by a flusher task (every FLUSH_S, or at once
-- when a batch is full; children travel with their parent's completion),
-- claims are one call for many jobs that also carries the completions
-- buffered before it (complete(results, n)), and a ticker task renews this process's
-- lease (heartbeat), runs the reaper every REAP_EVERY heartbeats and reads
-- the run's counters for the display. Each of these runs in a task of its
-- own: the run's calls may yield, the scheduler's steps that reach the
-- backend must not.
local cjson = require("cjson")
local core = require("aqueue.core")
local item_mod = require("aqueue.item")
local handle = require("aqueue.handle")
local state = require("aqueue.state")
local sleep = require("aqueue.sleep_core").sleep
local Event = require("aqueue.sync").Event
local batches = require("aqueue.backends.shared_batches")

local M = {}

local FLUSH_S = 0.005 -- the longest a completion waits for its batch
-- An empty claim is answered after a wait (the next claim follows it): 5 ms
-- after a claim that brought jobs, doubling while the claims come back empty
-- up to 50 ms. A process that joins a run whose work is still being built,
-- or whose last claim came just before more work, asks again soon; an idle
-- one costs the server 20 claims a second. The wait ends early, and the
-- next one is 5 ms again, once this process has sent completions or
-- enqueues: they may have made jobs ready (children) or finished the run,
-- which the next claim's answer says (at the end of a run every process
-- learns it within a few ms of its own last completion, not 50 ms later).
local CLAIM_POLL_MIN_S, CLAIM_POLL_MAX_S = 0.005, 0.05
local TICK_S = 0.25   -- the counters are read 4 times a second (more often with a quicker heartbeat)
local REAP_EVERY = 5  -- heartbeats between two reaper steps

local Shared = {}
Shared.__index = Shared

-- An item's own fields as JSON (not the engine's: parent, attempt, _aq_*).
local function encode_fields(item)
  return cjson.encode(item_mod.own_fields(item))
end

-- The item of a claimed job: its class's instance made from its fields.
local function decode_item(job)
  local cls = item_mod.classes[job.class]
  if not cls then
    error(("the shared run holds an item of class %s, which this script does not define"):format(
      tostring(job.class)), 0)
  end
  return setmetatable(cjson.decode(job.fields), cls)
end

-- Runs fn(self) in a task of its own; an error is logged, not raised (a
-- failed step is retried by the next one: the store keeps what it missed).
local function spawn_step(self, what, fn, ...)
  return handle.spawn(function(...)
    local ok, err = pcall(fn, ...)
    if not ok then
      core.log(("aqueue: %s: %s"):format(what, tostring(err)))
    end
  end, self, ...)
end

-- `run` (a redis_run, or an object with its API); `fields`: name, durable,
-- and optionally claim_poll_min_s, claim_poll_max_s (the waits above; the
-- tests lengthen them to show that a wait ends early).
function M.new(run, fields)
  local b = setmetatable(fields, Shared)
  b.run = run
  b.local_queue = false
  b.first = run.first
  b.jobs = {}      -- item in hand -> its job ({ id, token, kind })
  b.held_tokens = {}  -- id -> token for each job this process holds in the store, from its claim's
                     -- reply until the store took its completion or release: the heartbeat renews
                     -- these leases and only these (a claim whose reply was lost holds jobs this
                     -- process never learns of: their leases expire and the reaper frees them)
  b.children = {}  -- item in hand -> the entries of the children its process enqueued
  b.entries = {}   -- entries to enqueue on their own in the next batch: enqueued outside any item,
                  -- or children someone waits for (send_children_now)
  b.results = {}   -- completions for the next batch
  b.releases = {}  -- claimed jobs handed back unstarted, for the next batch
  b.seen_keys = {} -- key() values this process enqueued
  b.claims = 0     -- claims out
  b.claim_sending = false -- a claim's task is about to send the buffer with its claim
  b.stopped = false
  b.flushing = false -- a flush is under way
  b.pause_said = false -- the run said it is paused (the store cannot be reached)
  b.claim_poll_min_s = b.claim_poll_min_s or CLAIM_POLL_MIN_S
  b.claim_poll_max_s = b.claim_poll_max_s or CLAIM_POLL_MAX_S
  b.poll_s = b.claim_poll_min_s -- the wait after the next empty claim
  b.sent = Event()  -- set when a flush sent this process's records (ends a claim's wait)
  b.polling = false -- a claim is waiting out an empty answer: this process has no job to claim
  b.wake_flusher = Event() -- ends the flusher's wait: the run stops, or a completion while polling
  b.flushed = Event() -- set when a flush ends (a flush waiting for its turn goes)
  b.figures = nil  -- the last counters read
  b.flusher, b.ticker = nil, nil -- their task handles, from start to finish
  return b
end

-- Sends what is buffered when the call began: the jobs handed back, the
-- enqueues outside a completion, then the completions; one flush at a time
-- (the flusher's and a claim's), so the entries a completion needs sent
-- first are sent first. With claim_n, claims up to claim_n jobs in the same
-- call as the last completions. Returns true (and the jobs claimed, and
-- whether the run's max_items is reached), or nil, err when the store could not be reached: what was not sent stays buffered
-- for the next flush (a completion sent twice is refused the second time by
-- its token).
function Shared:flush(claim_n)
  while self.flushing do
    self.flushed:wait()
  end
  self.flushing = true
  self.flushed:clear()
  local records = #self.results + #self.entries + #self.releases
  local called, ok, err, reached = pcall(batches.send, self, claim_n) -- a raise must not leave the flag set
  self.flushing = false
  self.flushed:set()
  if not called then
    return nil, ok
  end
  if ok and records > 0 then
    self.sent:set()
  end
  return ok, err, reached
end

-- While the store cannot be reached (a Redis restart), the run pauses: the
-- steps wait RETRY_S and try again, and say so once.
local RETRY_S = 0.2
function Shared:paused(err)
  if not self.pause_said then
    self.pause_said = true
    core.log(("aqueue: the shared run is paused: %s (trying again)"):format(tostring(err)))
  end
  sleep(RETRY_S)
end

function Shared:resumed()
  if self.pause_said then
    self.pause_said = false
    core.log("aqueue: the shared run goes on")
  end
end

-- While a claim is out, its task sends what is buffered with it (one round
-- trip for the completions and the next jobs): the flusher sends only
-- between claims. A completion waits up to FLUSH_S for others to share its
-- call, unless this process has nothing to claim (a claim is waiting out an
-- empty answer): then its children, or the end of the run, wait for it, and
-- the flusher sends it at once.
local function flusher(self)
  while not self.stopped do
    if not self.claim_sending and (#self.entries > 0 or #self.results > 0 or #self.releases > 0) then
      local ok, err = self:flush()
      if ok then
        self:resumed()
      else
        self:paused(err)
      end
    else
      self.wake_flusher:wait(FLUSH_S)
      if not self.stopped then
        self.wake_flusher:clear()
      end
    end
  end
end

-- Reads the counters every tick and renews the leases every
-- run.heartbeat_interval (a whole number of ticks).
local function ticker(self)
  local ticks = 0
  local heartbeat_ticks = math.ceil(self.run.heartbeat_interval / TICK_S)
  local tick_s = self.run.heartbeat_interval / heartbeat_ticks
  while not self.stopped do
    local figures = self.run:counters()
    if figures then
      self.figures = figures
      if self.on_counters then
        self.on_counters(figures)
      end
    end
    ticks = ticks + 1
    if ticks % heartbeat_ticks == 0 then
      local held = {}
      for id, token in pairs(self.held_tokens) do
        held[#held + 1] = { id = id, token = token }
      end
      self.run:heartbeat(held)
      if ticks % (heartbeat_ticks * REAP_EVERY) == 0 then
        self.run:reap()
      end
    end
    sleep(tick_s)
  end
end

-- The run's max_items counts the items started by all its processes: the
-- store hands out no more past it (claims say when it is reached).
function Shared:set_max_items(n)
  self.run.max_items = n
end

-- Seconds since the run's session began, in the store's clock (max_time
-- counts from there).
function Shared:elapsed()
  return self.run.session_elapsed or 0
end

-- Nothing is restored into this process: claims bring the work.
function Shared:resume()
  return nil
end

-- The run starts here: the flusher and the ticker begin. Returns nil for
-- the process that created the run, else the counts of what it held when
-- this one joined ({ pending, open, done, failed }).
function Shared:start()
  self.flusher = spawn_step(self, "sending completions", flusher)
  self.ticker = spawn_step(self, "heartbeat", ticker)
  if self.first then
    return nil
  end
  local f = assert(self.run:counters())
  return { pending = f.queued + f.delayed + f.running, open = f.waiting or 0, done = f.done, failed = f.failed }
end

-- The item's fields must be JSON: another process makes the item from them.
function Shared:admit(_, child, class_name, level)
  state.check(child, class_name, level + 1, "a shared run")
  return nil, nil
end

function Shared:seen(key)
  return self.seen_keys[key] == true
end

-- Keeps `entry` (aqueue.run_remote's) of item `child` for the next batch:
-- on its own, or with its parent's completion. Returns the entry, whose `id`
-- is the store's once the batch went (false: a duplicate, or its parent's
-- completion was refused).
function Shared:enqueue(child, parent, entry)
  if entry.key ~= nil then
    self.seen_keys[entry.key] = true
  end
  entry.fields = encode_fields(child)
  if parent == nil then
    self.entries[#self.entries + 1] = entry
    return entry
  end
  local job = self.jobs[parent]
  if job == nil or job.kind ~= "process" then
    error(("enqueue: cannot add a child to a %s item whose subtree already completed"):format(parent.__name), 0)
  end
  entry.parent = job.id
  entry.parent_item = parent
  local list = self.children[parent]
  if list then
    list[#list + 1] = entry
  else
    self.children[parent] = { entry }
  end
  return entry
end

-- Someone waits for a child of `parent`, still running: its children go now,
-- not with its completion (the store counts them under it all the same).
function Shared:send_children_now(parent)
  local list = self.children[parent]
  if list then
    self.children[parent] = nil
    for i = 1, #list do
      self.entries[#self.entries + 1] = list[i]
    end
  end
end

-- The outcome of the item of `entry` (enqueued by this process, run by any):
-- what its process returned (its first value, through JSON), or nil, err.
-- Waits (yields) until the store has it, asking again after a wait that
-- doubles up to POLL_MAX_S: only while someone waits on it.
local POLL_MIN_S, POLL_MAX_S = 0.01, 0.5
function Shared:result(entry)
  if entry.id == nil and entry.parent_item then
    self:send_children_now(entry.parent_item)
  end
  local wait = POLL_MIN_S
  while true do
    if entry.id == false then
      return nil, "not run: the shared run already had an item with this key() (or its parent's completion was refused)"
    elseif entry.id ~= nil then
      local outcome, result, err = self.run:result(entry.id)
      if outcome == "done" then
        if result == nil then
          return
        end
        return cjson.decode(result)
      elseif outcome == "failed" then
        return nil, err
      end
    end
    sleep(wait)
    wait = math.min(wait * 2, POLL_MAX_S)
  end
end

function Shared:claim(n, deliver)
  self.claims = self.claims + 1
  self.claim_sending = true
  spawn_step(self, "claiming", function()
    local jobs, err, reached
    repeat
      local ok, claimed
      ok, claimed, reached = self:flush(n) -- the store sees what this process did before it answers
      jobs, err = ok and claimed, claimed
      self.claim_sending = false
      self.sent:clear() -- (what this flush sent, the answer reflects)
      if not jobs then
        if self.stopped then
          jobs = {}
        else
          self:paused(err)
        end
      end
    until jobs
    local delivered, finished = {}, false
    if #jobs > 0 then
      self.poll_s = self.claim_poll_min_s
    end
    for i = 1, #jobs do
      local job = jobs[i]
      local item = decode_item(job)
      self.jobs[item] = job
      self.held_tokens[job.id] = job.token
      delivered[i] = { item = item, hook = job.kind == "hook", attempt = job.attempt, start_in = job.start_in }
    end
    if #jobs == 0 and not self.stopped and not reached then
      local figures = self.run:counters()
      finished = figures and figures.finished
      if not finished then
        -- a job held back by a rate is due sooner than the poll: ask then
        local wake_in = self.run.wake_in
        local poll = self.poll_s
        self.poll_s = math.min(poll * 2, self.claim_poll_max_s)
        self.polling = true
        if self.sent:wait(wake_in and math.max(0.001, math.min(wake_in, poll)) or poll) then
          self.poll_s = self.claim_poll_min_s -- woken by this process's own records: not idle
        end
        self.polling = false
      end
    end
    self.claims = self.claims - 1
    if not deliver(delivered, finished, reached) and #delivered > 0 then
      local items = {}
      for i = 1, #delivered do
        items[i] = delivered[i].item
      end
      self:release(items)
    end
  end)
end

-- A completion of item `item`'s job, for the next batch.
-- Children too many for one call go ahead of it, as entries under their
-- parent (sent before the completions: the store counts them under it).
local MAX_CHILDREN = batches.MAX_CHILDREN
function Shared:complete(item, result)
  local job = self.jobs[item]
  self.jobs[item] = nil
  result.id, result.token = job.id, job.token
  local children = self.children[item]
  if children and #children > MAX_CHILDREN then
    self:send_children_now(item)
  else
    result.children = children
    self.children[item] = nil
  end
  self.results[#self.results + 1] = result
  if self.polling then
    self.wake_flusher:set()
  end
end

function Shared:processed(item, ok, _, err, value)
  local result
  if value ~= nil then
    local encoded, text = pcall(cjson.encode, value)
    result = encoded and text or nil
  end
  self:complete(item, { outcome = ok and "done" or "failed", error = err, result = result })
end

function Shared:retrying(item, _, wait)
  self:complete(item, { outcome = "retry", retry_delay = wait, error = rawget(item, "_aq_last_error") })
end

function Shared:hook_ran(item)
  self:complete(item, { outcome = "hook_done" })
end

function Shared:finished() end

function Shared:held()
  return false
end

-- Claimed jobs that did not start go back to the store with the next batch
-- (the flusher's, at most FLUSH_S later, or finish's).
function Shared:release(items)
  local releases = self.releases
  for i = 1, #items do
    local job = self.jobs[items[i]]
    self.jobs[items[i]] = nil
    releases[#releases + 1] = { id = job.id, token = job.token }
  end
end

-- The run is over for this process: its last completions go out, its tasks
-- stop, and the run's figures are read once more.
function Shared:finish()
  self:stop_tasks()
  while self.claims > 0 do
    sleep(FLUSH_S) -- an answer on its way is handed back (deliver refuses it)
  end
  repeat -- (a flush sends one batch of completions: batches.send)
    local ok, err = self:flush()
    if not ok then
      self:leave()
      return nil, "the shared run's last steps could not be sent: " .. tostring(err)
    end
  until #self.results == 0 and #self.entries == 0 and #self.releases == 0
  self.figures = self.run:counters() or self.figures
  self:leave()
  return true
end

function Shared:counters()
  local f = self.figures or {}
  return { done = f.done or 0, failed = f.failed or 0,
    pending = (f.queued or 0) + (f.delayed or 0) + (f.running or 0) }
end

-- The flusher ends after its batch in flight (its completions must not be
-- lost); the ticker's steps can be cut short.
function Shared:stop_tasks()
  self.stopped = true
  self.wake_flusher:set()
  self.sent:set() -- a claim waiting out an empty answer returns now
  if self.ticker then
    self.ticker:cancel()
    self.flusher:result()
    self.ticker, self.flusher = nil, nil
  end
end

function Shared:abandon()
  self:stop_tasks()
  self:leave()
end

-- The run is over for this process: it leaves the run, and the connection.
function Shared:leave()
  self.run:close()
  if self.client then
    self.client:close()
  end
end

return M
