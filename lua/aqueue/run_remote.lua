-- aqueue.run_remote: run_queue's path for a queue kept elsewhere (a backend
-- with local_queue false: aqueue.queue_backend says what it gets and does).
--
-- The items of a remote queue are the store's, not this process's scheduler's:
--   * an enqueue checks the item as always, then hands it to the backend,
--     which sends it with its parent's completion (or, for an item enqueued
--     outside any item, in the next batch); the local scheduler never sees it;
--   * the workers' jobs come from the store: the run keeps up to `capacity`
--     jobs in hand (its workers, plus min(workers, 128) prefetched) and asks
--     the backend for more, one claim at a time, as jobs leave;
--   * a claimed process job enters the scheduler as a root item of its class
--     without HAS_HOOK: its worker slot, the display's row, its timeout and
--     the watchdog are the scheduler's as for any item, and its subtree is
--     the store's business (its children are not the scheduler's);
--   * a claimed hook job enters as an item whose process is over, holding a
--     hook (aq__sched_restore_open + restore_release queue the hook at once);
--   * a failed attempt with retries left goes back to the store with its
--     backoff (aq__sched_retry_remote): the store runs it again;
--   * the run is held open (aq__sched_hold_run) until the backend says the
--     whole run is finished: between two claims this process may hold no item.
--
-- run_queue chooses this path once per run (setup below gives the run its
-- own enqueue_child, serve, fail, retry and drop): the local fast path has
-- no test of its own for it.
local bit = require("bit")
local sched = require("aqueue.sched")
local core = require("aqueue.core")
local handle = require("aqueue.handle")

local C, E = sched.C, sched.E
local HAS_HOOK = sched.HAS_HOOK
local settle_item = handle.settle_item
local band, bnot = bit.band, bit.bnot

local M = {}

local MAX_PREFETCH = 128

-- The handle of an item enqueued into a remote queue, { backend, entry }: it
-- runs in whichever process claims it, and its outcome comes from the store
-- (backend:result). The wait runs in a task of its own, and the caller waits
-- for that task as for any handle: without its worker slot, which the child
-- may need.
local RemoteHandle = {}
RemoteHandle.__index = RemoteHandle

function RemoteHandle:result()
  local backend, entry = self[1], self[2]
  local h = handle.spawn(function()
    return backend:result(entry)
  end)
  return h:result()
end

-- A claimed job enters the scheduler (see the header). Returns its id, or
-- nil when the scheduler took none (stopping, out of memory).
local function enter(run, parts, job)
  local item = job.item
  local cls = getmetatable(item)
  local id
  if job.hook then
    id = C.aq__sched_restore_open(E, 0, cls.__aq_class_id, HAS_HOOK)
    if id <= 0 then
      return nil
    end
    run.items[id] = item
    item._aq_id = id
    C.aq__sched_restore_release(E, id) -- its hook is queued now
    return id
  end
  local priority, flags, _, _, max_attempts = parts.sched_fields(run, nil, item, cls, 2)
  flags = band(flags, bnot(HAS_HOOK)) -- the store runs its hook when its subtree is over
  -- (start_in: a rate's start handed out ahead of its time waits here for it)
  id = C.aq__sched_enqueue(E, 0, cls.__aq_class_id, priority, flags, job.start_in or 0, 0, max_attempts)
  if id <= 0 then
    return nil
  end
  run.items[id] = item
  item._aq_id = id
  local attempt = job.attempt or 1
  if attempt == 1 then
    run.remote.first_attempts = run.remote.first_attempts + 1
  else
    C.aq__sched_restore_attempts(E, id, attempt - 1)
    item.attempt = attempt
  end
  return id
end

-- Asks the backend for jobs when enough workers are free for a batch (or
-- none is in hand), unless a claim is out already.
local function claim_more(run)
  local r = run.remote
  if r.claiming or r.store_finished or r.limit_reached or C.aq__sched_stopping(E) ~= 0 then
    return
  end
  local n = r.capacity - r.in_hand
  if n >= r.batch_min or (r.in_hand == 0 and n > 0) then
    r.claiming = true
    run.backend:claim(n, r.deliver)
  end
end

-- The backend's answer to a claim (see queue_backend): `jobs` to run,
-- `finished` when the store holds nothing of the run that is unfinished, and
-- `reached` once the whole run's max_items is: this process then stops as
-- max_items does, after the first attempts it holds have started.
-- Returns false when the run takes no more jobs (it is stopping or over):
-- the backend hands them back.
local function make_deliver(run, parts)
  local r = run.remote
  return function(jobs, finished, reached)
    r.claiming = false
    if r.closed or C.aq__sched_stopping(E) ~= 0 then
      return false
    end
    local refused = nil
    for i = 1, #jobs do
      if enter(run, parts, jobs[i]) then
        r.in_hand = r.in_hand + 1
      else
        refused = refused or {}
        refused[#refused + 1] = jobs[i].item
      end
    end
    if refused then
      run.backend:release(refused)
    end
    if reached and not r.limit_reached then
      r.limit_reached = true
      C.aq__sched_stop_after_starts(E, r.first_attempts)
    end
    if finished and r.in_hand == 0 and not r.store_finished then
      r.store_finished = true
      C.aq__sched_hold_run(E, -1) -- nothing left anywhere: the run may end
      return true
    end
    claim_more(run)
    return true
  end
end

-- A job left this process (done, failed, handed back for a retry, hook run).
local function job_left(run, parts)
  local r = run.remote
  r.in_hand = r.in_hand - 1
  if not r.claiming then
    claim_more(run)
  end
  if C.aq__sched_reaped_count(E) >= parts.REAP_BATCH then
    parts.reap(run)
  end
end

-- The enqueue of a remote run: checks `child` as the local one does, then
-- hands it to the backend. Returns a handle, or nil, "duplicate" (a key this
-- process enqueued before: the store drops duplicates from other processes
-- itself), or nil, "stopped" when the run stops (a durable store keeps the
-- item all the same, as a state file does, for the processes that go on or
-- a later one).
local function make_enqueue_child(run, parts)
  local backend, limits = run.backend, run.limits
  local instances_seen = {}
  local count_turn = parts.new_turn_counter()
  return function(parent, child, level, initial)
    if not initial then
      count_turn()
    end
    local cls = parts.check_item(run, instances_seen, parent, child, level + 1)
    local priority, flags, delay, _, max_attempts = parts.sched_fields(run, nil, child, cls, level + 1)
    backend:admit(parent, child, cls.__name, level + 1)
    local limit_key = nil
    if limits and child.limit_key ~= nil then
      limit_key = parts.call_key_method(child, "limit_key", child.limit_key, level + 1)
    end
    local stopping = C.aq__sched_stopping(E) ~= 0
    if stopping and not backend.durable then
      return nil, "stopped"
    end
    local key, duplicate = parts.dedup_key(backend, child, level + 1)
    if duplicate then
      return nil, "duplicate"
    end
    local entry = backend:enqueue(child, parent, {
      class = cls.__name, key = key, priority = priority, delay = delay, limit_key = limit_key,
      max_attempts = max_attempts, has_hook = band(flags, HAS_HOOK) ~= 0,
    })
    if stopping then
      return nil, "stopped"
    end
    if parent ~= nil then
      child.parent = parent
    else
      child._aq_id = false -- enqueued: not this process's to take children
    end
    return setmetatable({ backend, entry }, RemoteHandle)
  end
end

-- Gives `run` (whose backend has local_queue false) the remote path. `parts`
-- are run_queue's pieces it builds on.
function M.setup(run, parts, num_workers)
  local prefetch = math.min(num_workers, MAX_PREFETCH)
  run.remote = {
    capacity = num_workers + prefetch, -- jobs in hand at most: running and prefetched
    batch_min = math.max(1, math.ceil(prefetch / 2)), -- a claim asks for at least this many
    in_hand = 0,            -- jobs delivered that have not left this process
    claiming = false,       -- a claim is out
    store_finished = false, -- the store said the whole run is finished
    limit_reached = false,  -- the store said the whole run's max_items is reached
    first_attempts = 0,     -- process jobs delivered at their first attempt (max_items counts them)
    closed = false,         -- the run is over here: deliveries are handed back
    deliver = nil,
  }
  run.remote.deliver = make_deliver(run, parts)
  run.backend.on_counters = function(f) -- the whole run's figures, for the display
    C.aq__display_shared_run(E, f.processes_alive or 0, (f.queued or 0) + (f.delayed or 0), f.running or 0,
      f.done or 0, f.failed or 0)
  end
  run.enqueue_child = make_enqueue_child(run, parts)
  local fail_process = parts.fail_process
  local function finish_process(r, id, item, ok, ...)
    if ok then
      settle_item(item, id, true, ...)
      r.backend:processed(item, true, C.aq__sched_attempt(E, id), nil, (...))
      C.aq__sched_process_done(E, id, 1)
    else
      fail_process(r, id, item, (...))
    end
    job_left(r, parts)
  end
  local function finish_hook(r, id, item, ok, err)
    parts.finish_hook(r, id, item, ok, err)
    job_left(r, parts)
  end
  run.serve = parts.make_serve(finish_process, finish_hook)
  run.retry = C.aq__sched_retry_remote
  run.fail = function(r, id, item, err) -- a timeout's failed attempt
    fail_process(r, id, item, err)
    job_left(r, parts)
  end
  run.drop = function(r) -- a graceful stop: the claimed jobs not started go back
    local ids = core.run_drop()
    local back = {}
    for i = 1, #ids do
      local item = r.items[ids[i]]
      r.items[ids[i]] = nil
      back[i] = item
    end
    r.remote.in_hand = r.remote.in_hand - #ids
    if #back > 0 then
      r.backend:release(back)
    end
  end
end

-- max_items and max_time are the whole run's: the store counts the items
-- started by all processes (the backend asks it) and max_time counts from
-- the run's session start in the store's clock. Returns the local
-- scheduler's own: no max_items (deliver stops this process when the store
-- says), and the time left.
function M.run_limits(backend, max_items, max_time)
  backend:set_max_items(max_items)
  if max_time > 0 then
    max_time = math.max(max_time - backend:elapsed(), 0.001)
  end
  return 0, max_time
end

-- The run starts: the first process of the run enqueues the initial items
-- (one batch), then every process claims. Returns nil, or for a process that
-- joined a run the counts of what the run held (as resume's).
function M.start(run, initial)
  C.aq__sched_hold_run(E, 1)
  local joined = run.backend:start()
  if not joined then
    for i = 1, #initial do
      run.enqueue_child(nil, initial[i], 4, true)
    end
  end
  claim_more(run)
  return joined
end

-- The run is over in this process: later deliveries are handed back.
function M.close(run)
  run.remote.closed = true
end

return M
