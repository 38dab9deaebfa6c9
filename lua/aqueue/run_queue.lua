-- aqueue.run_queue: run_queue{...}, enqueue, and the runner loop.
--
-- Items are Lua tables; the C scheduler knows them by id. The run's `items[id]`
-- keeps an item alive from enqueue until the scheduler finalizes it (its process and all
-- of its subtree, hook included, are done) and hands the id back through
-- aq__sched_reap.
--
-- Runners are engine tasks running `runner` below: each holds a worker slot and
-- loops taking jobs (process or hook) until none is left, then parks. Calling
-- process directly from this loop (not through C) is what lets it yield.
local bit = require("bit")
local core = require("aqueue.core")
local sched = require("aqueue.sched")
local item_mod = require("aqueue.item")
local handle = require("aqueue.handle")
local traceback = require("aqueue.traceback")
local queue_backend = require("aqueue.queue_backend")
local run_remote = require("aqueue.run_remote")
local field_names = require("aqueue.field_names")
local robots = require("aqueue.robots")

local C, E = sched.C, sched.E
local JOB_ID_SHIFT, JOB_KIND_MASK, JOB_PROCESS = sched.JOB_ID_SHIFT, sched.JOB_KIND_MASK, sched.JOB_PROCESS
local TRACK_OVERALL, HAS_HOOK = sched.TRACK_OVERALL, sched.HAS_HOOK
local ENQUEUE_STOPPING, ENQUEUE_SUBTREE_DONE = sched.ENQUEUE_STOPPING, sched.ENQUEUE_SUBTREE_DONE
local class_of = item_mod.class_of
local new_item_handle, settle_item = handle.new_item_handle, handle.settle_item
local rshift, band = bit.rshift, bit.band
local xpcall, type, tostring = xpcall, type, tostring
local floor, huge = math.floor, math.huge
local on_error = traceback.capture

local MAX_KEPT_ERRORS = 1000
local MAX_RETRIES = 65534 -- attempts are counted in 16 bits

---------------------------------------------------------------------------
-- the run object
--
-- Everything one run_queue call keeps lives in its run object (its fields,
-- and the upvalues of its enqueue_child), made by new_run and dropped when
-- the call returns: a second run_queue (after the
-- first, from the same task or another) starts from nothing. The engine runs
-- one queue at a time (core.run_start refuses a second), and what it calls
-- back without saying which run (the runner tasks, process's `enqueue`,
-- Item:enqueue, timed_out) reaches the run through `active`.

local active = nil -- the run in progress; nil between runs

local function new_run_state(limits, backend)
  return {
    items = {},          -- id -> item table, from enqueue until the scheduler reaps the id
    errors = {},         -- final failures, for the summary (MAX_KEPT_ERRORS at most)
    errors_dropped = 0,  -- final failures past those
    limits = limits,     -- run_queue{ limits = } (checked), nil for none
    limit_key_ids = {},  -- Item:limit_key() value -> the scheduler's key id
    backend = backend,   -- where the queue is kept (aqueue.queue_backend)
    enqueue_child = nil, -- (parent, child, level, initial): see make_enqueue_child
    -- the path of the run's queue, chosen once (use_local_path, or
    -- aqueue.run_remote for a remote queue):
    serve = nil,         -- (run): the runner loop's jobs, see make_serve
    fail = nil,          -- (run, id, item, err): a process() attempt that timed out
    retry = nil,         -- aq__sched_retry or aq__sched_retry_remote
    drop = nil,          -- (run): a graceful stop's queued items
    remote = nil,        -- a remote queue's state (aqueue.run_remote)
  }
end

---------------------------------------------------------------------------
-- enqueue

local function describe(value)
  if type(value) == "table" and getmetatable(value) == nil then
    return "a plain table (make items with a class: MyItem{ ... })"
  end
  return "a " .. type(value)
end

local ENQUEUE_ERRORS = {
  [sched.ENQUEUE_NO_MEMORY] = "out of memory",
  [sched.ENQUEUE_NO_RUN] = "no queue is running: give initial items to aqueue.run_queue{ initial_items = ... }",
}

-- Checks an item's scheduling field: a number >= min (nil allowed when
-- `optional`). Returns it.
local function number_field(item, field, min, optional, level)
  local v = item[field]
  if v == nil and optional then
    return nil
  end
  if type(v) ~= "number" or v ~= v or v < min or v == huge then
    error(("enqueue: %s.%s must be a number of seconds >= %s, got %s"):format(item.__name, field,
      tostring(min), tostring(v)), level + 1)
  end
  return v
end

-- Calls the key() or limit_key() method; returns a string, a number or nil.
local function call_key_method(item, name, fn, level)
  if type(fn) ~= "function" then
    error(("enqueue: %s.%s must be a method (function %s:%s() ... end), got %s"):format(item.__name,
      name, item.__name, name, type(fn)), level + 1)
  end
  local k = fn(item)
  local tk = type(k)
  if k ~= nil and ((tk ~= "string" and tk ~= "number") or k ~= k) then
    error(("enqueue: %s:%s() must return a string, a number or nil, got %s"):format(item.__name, name,
      tostring(k)), level + 1)
  end
  return k
end

-- The scheduler's id of limit key `k` in `run`, made at first use with its limits.
local function limit_key_id(run, k)
  local id = run.limit_key_ids[k]
  if id then
    return id
  end
  local limits = run.limits
  local own = limits.keys[k] -- a key's own limits override the common ones
  local per_key = own and own.per_key or limits.per_key
  local rate = own and own.rate or limits.rate
  id = C.aq__sched_limit_key_add(E, per_key or 0, rate or 0)
  if id < 0 then
    error("enqueue: out of memory", 0)
  end
  run.limit_key_ids[k] = id
  local name = tostring(k)
  C.aq__display_key_name(E, id, name, #name) -- for "waiting for rate (name)"
  return id
end

-- The scheduler's view of item `child` of class `cls`, its fields checked:
-- priority, flags, delay, limit key id (in `run`, whose checked `limits` may
-- be nil), attempts allowed. Raises at `level`.
local function sched_fields(run, limits, child, cls, level)
  local priority = child.priority
  if type(priority) ~= "number" then
    error(("enqueue: %s.priority must be a number, got %s"):format(cls.__name, type(priority)), level)
  end
  local retries = child.retries
  if type(retries) ~= "number" or retries < 0 or retries > MAX_RETRIES or retries ~= floor(retries) then
    error(("enqueue: %s.retries must be a whole number from 0 to %d, got %s"):format(cls.__name,
      MAX_RETRIES, tostring(retries)), level)
  end
  if retries > 0 then
    number_field(child, "retry_backoff", 0, false, level)
    number_field(child, "retry_backoff_max", 0, false, level)
  end
  local delay = number_field(child, "delay", 0, true, level) or 0
  if child.timeout ~= nil and number_field(child, "timeout", 0, false, level) == 0 then
    error(("enqueue: %s.timeout must be more than 0 seconds (nil for none)"):format(cls.__name), level)
  end
  local limit_key = 0
  if limits then
    local fn = child.limit_key
    if fn ~= nil then
      local k = call_key_method(child, "limit_key", fn, level)
      if k ~= nil then
        limit_key = limit_key_id(run, k)
      end
    end
  end
  local flags = 0
  if child.track_overall then flags = flags + TRACK_OVERALL end
  if child.after_children_processed ~= nil then flags = flags + HAS_HOOK end
  return priority, flags, delay, limit_key, retries + 1
end

-- A loop that enqueues millions of children would hold the loop thread (no
-- display, no Ctrl-C) until it ends: every TURN_EVERY enqueues from the same
-- job, enqueue gives other tasks and the loop a turn (the driver's time slice
-- then lets timers, signals and the display run). Only where the caller may
-- yield: from a coroutine the script made itself, or through a C call (a
-- table.sort comparator), it goes on without the turn.
local TURN_EVERY = 4096
local isyieldable, current_task, yield_now = coroutine.isyieldable, core.current, core.yield_now

-- A run's count of enqueues between turns: a function to call at each
-- enqueue, which gives the turn when it is due.
local function new_turn_counter()
  local turn_job, turn_count = -1, 0 -- the job whose enqueues are counted, and how many so far
  return function()
    local job = C.aq__sched_current_job(E)
    if job ~= turn_job then
      turn_job, turn_count = job, 0
    end
    turn_count = turn_count + 1
    if turn_count >= TURN_EVERY then
      turn_count = 0
      if isyieldable() and current_task() then
        yield_now()
      end
    end
  end
end

-- Misspelt fields on instances (field_names): every instance of the first
-- CHECK_ALL_FIRST of a class is checked, then one in CHECK_EVERY. Checking
-- every one costs a loop over its fields in the enqueue path, which made a
-- million no-op items 8 % slower; a misspelling comes from the code that
-- makes the items, so it shows on the first ones.
local CHECK_ALL_FIRST, CHECK_EVERY = 1000, 1024

-- Where an item's id lives. A million queued items are a million Lua tables,
-- so the engine adds as few fields to them as it can: every field past the
-- user's own doubles the table's hash part. A child carries only `parent`
-- (public, SPEC section 2); a root item carries `_aq_id` (its id, false once
-- finished), as does an item whose id had to be searched for once. The id of
-- the item a runner is processing comes from its job; handles keep the id
-- they were made with.

-- True when `item` was enqueued, in this run or an earlier one.
local function was_enqueued(item)
  return rawget(item, "_aq_id") ~= nil or rawget(item, "parent") ~= nil
end

-- The id of `item` in `run` while it is there (enqueued, not yet reaped), else nil.
local function id_of(run, item)
  local items = run.items
  local id = rawget(item, "_aq_id")
  if id ~= nil then
    return id and items[id] == item and id or nil -- a dropped item keeps a stale id
  end
  local job = C.aq__sched_current_job(E)
  if job > 0 then
    id = rshift(job, JOB_ID_SHIFT)
    if items[id] == item then
      return id -- the item whose process or hook runs: the usual parent
    end
  end
  if rawget(item, "parent") == nil then
    return nil -- never enqueued
  end
  -- A child named from elsewhere (another task, another item): searched for
  -- once, then kept on it (reap sets it false).
  local other_id, other = next(items) -- (next() by hand: see aqueue.item's own_fields)
  while other_id ~= nil do
    if other == item then
      item._aq_id = other_id
      return other_id
    end
    other_id, other = next(items, other_id)
  end
  return nil
end

-- enqueue, first: `child` is an item that can be enqueued under `parent`
-- (nil for a root item). Returns its class and the parent's id (0 for none).
-- `instances_seen` counts the instances checked for misspelt fields.
local function check_item(run, instances_seen, parent, child, level)
  local cls = class_of(child)
  if not cls then
    error("enqueue: expected an item (an instance of an aqueue.Item class), got " .. describe(child), level)
  end
  if child.process == nil then
    error(("enqueue: %s has no process method (define function %s:process(enqueue, set_desc))")
      :format(cls.__name, cls.__name), level)
  end
  if was_enqueued(child) then
    error("enqueue: this " .. cls.__name .. " item was already enqueued; make a new one", level)
  end
  local seen = (instances_seen[cls] or 0) + 1
  instances_seen[cls] = seen
  if seen <= CHECK_ALL_FIRST or band(seen, CHECK_EVERY - 1) == 0 then
    field_names.check_instance(child, cls.__name, level + 1)
  end
  local parent_id = 0
  if parent ~= nil then
    parent_id = run and id_of(run, parent)
    if not parent_id then
      error(("enqueue: cannot add a child to a %s item that is %s"):format(parent.__name,
        was_enqueued(parent) and "finished (its subtree already completed)" or "not enqueued"), level)
    end
  end
  return cls, parent_id
end

-- The item a re-running parent enqueues again (state file): a handle to the
-- child it enqueued before the restart, live or finished (`same` false).
local function handle_of_known(child, same, err)
  if same then
    return new_item_handle(same, rawget(same, "_aq_id")) -- restored items keep their id (resume)
  end
  child._aq_id = false
  child._aq_error = err
  return new_item_handle(child, false)
end

-- enqueue's dedup: the child's key() (nil without one), and true when the
-- backend saw an item of that key before.
local function dedup_key(backend, child, level)
  local key_fn = child.key
  if key_fn == nil then
    return nil, false
  end
  local key = call_key_method(child, "key", key_fn, level)
  if key ~= nil and backend:seen(key) then
    C.aq__sched_note_duplicate(E)
    return key, true
  end
  return key, false
end

-- enqueue, when the scheduler did not take the child (`id` <= 0):
-- returns when the queue is stopping (a durable backend keeps the child for
-- the next run, under its parent); raises for what the scheduler refuses.
local function stopped_or_refused(backend, id, parent, parent_id, child, key, ticket, level)
  if id == ENQUEUE_STOPPING then
    if backend:held(child, parent, key, ticket) then
      C.aq__sched_hold_open(E, parent_id) -- the parent's subtree waits for the kept child
    end
    return
  elseif id == ENQUEUE_SUBTREE_DONE then
    error(("enqueue: cannot add a child to a %s item whose subtree already completed")
      :format(parent.__name), level)
  end
  error("enqueue: " .. ENQUEUE_ERRORS[id], level)
end

-- enqueue, once the scheduler took the child (id `id`): the run keeps it
-- (in `items`, its run.items) until it is reaped. Returns its handle.
local function record(items, parent, child, id)
  items[id] = child
  if parent ~= nil then
    child.parent = parent -- its only engine field (see was_enqueued)
  else
    child._aq_id = id
  end
  return new_item_handle(child, id)
end

-- `run`'s enqueue_child(parent, child, level, initial): enqueues `child`
-- under `parent` (nil for a root item). Returns a handle, or nil, "stopped"
-- when the queue is stopping, or nil, "duplicate" when an item with the same
-- key() was enqueued in this run. Misuse raises at `level`. `initial`:
-- run_queue's own initial items, all queued before any starts (no turns).
-- A closure per run: what it reads on every enqueue are its upvalues, which
-- the JIT compiles as constants of the run.
local function make_enqueue_child(run)
  local items, limits, backend = run.items, run.limits, run.backend
  local admit, enqueued = backend.admit, backend.enqueued -- looked up once, not at each enqueue
  local instances_seen = {} -- class -> instances enqueued (misspelt-field checks)
  local count_turn = new_turn_counter()
  return function(parent, child, level, initial)
    if not initial then
      count_turn()
    end
    local cls, parent_id = check_item(run, instances_seen, parent, child, level + 1)
    local priority, flags, delay, limit_key, max_attempts = sched_fields(run, limits, child, cls, level + 1)
    local known, ticket = admit(backend, parent, child, cls.__name, level + 1)
    if known ~= nil then -- a re-running parent's child, enqueued before (ticket: its error)
      return handle_of_known(child, known, ticket)
    end
    local key, duplicate = dedup_key(backend, child, level + 1)
    if duplicate then
      return nil, "duplicate"
    end
    local id = C.aq__sched_enqueue(E, parent_id, cls.__aq_class_id, priority, flags, delay, limit_key, max_attempts)
    if id <= 0 then
      stopped_or_refused(backend, id, parent, parent_id, child, key, ticket, level + 1)
      return nil, "stopped"
    end
    local h = record(items, parent, child, id)
    enqueued(backend, child, parent, key, ticket) -- last: a state file's write ends the JIT's trace
    return h
  end
end

-- A new run: its state, and its enqueue.
local function new_run(limits, backend)
  local run = new_run_state(limits, backend)
  run.enqueue_child = make_enqueue_child(run)
  return run
end

-- Enqueues in the run in progress (Item:enqueue and process's `enqueue`).
-- With no run, the item's own mistakes are reported first, as in a run.
local function enqueue_in_active_run(parent, child, level)
  local run = active
  if run == nil then
    check_item(nil, {}, parent, child, level + 1)
    error("enqueue: " .. ENQUEUE_ERRORS[sched.ENQUEUE_NO_RUN], level)
  end
  local h, err = run.enqueue_child(parent, child, level + 1) -- not a tail call: levels
  return h, err
end

-- The `enqueue` given to process: a child of the item this task is
-- processing (a root item when called from a task that processes none).
local function enqueue(child)
  local run = active
  if run == nil then
    local h, err = enqueue_in_active_run(nil, child, 3) -- raises: no run
    return h, err
  end
  local job = C.aq__sched_current_job(E)
  local parent = nil
  if job > 0 then
    parent = run.items[rshift(job, JOB_ID_SHIFT)]
  end
  local h, err = run.enqueue_child(parent, child, 3) -- not a tail call: level 3
  return h, err                                    -- must be enqueue's caller
end

-- The item whose process() the calling task runs (a runner's job), else nil:
-- a hook, a spawned task, the main chunk, no run. aqueue.feed asks it.
local function current_item()
  local run = active
  local job = C.aq__sched_current_job(E)
  if run == nil or job <= 0 or band(job, JOB_KIND_MASK) ~= JOB_PROCESS then
    return nil
  end
  return run.items[rshift(job, JOB_ID_SHIFT)]
end

local function set_desc(text)
  text = tostring(text)
  C.aq__sched_set_desc(E, text, #text)
end

---------------------------------------------------------------------------
-- failures

-- A final failure: printed with its traceback, kept for the run's summary.
-- Returns the message.
local function report_failure(run, item, phase, err, attempts)
  local class = item.__name
  err = traceback.normalize(err)
  local after = attempts and attempts > 1 and (" (after %d attempts)"):format(attempts) or ""
  core.log(("aqueue: %s:%s failed%s: %s: %s"):format(class, phase, after, item_mod.view(item), err.traceback))
  core.note_failure(("%s:%s: %s%s"):format(class, phase, err.message, after))
  local errors = run.errors
  if #errors < MAX_KEPT_ERRORS then
    errors[#errors + 1] = { class = class, phase = phase, error = err.message, item = item, attempts = attempts }
  else
    run.errors_dropped = run.errors_dropped + 1
  end
  return err.message
end

-- process() of item `id` failed (raised, or timed out): retry it after a
-- backoff while it has retries left, else it has failed for good. The
-- run's `retry` (aq__sched_retry, or aq__sched_retry_remote for a remote
-- queue) waits the backoff or hands the item back to the store.
local function fail_process(run, id, item, err)
  local attempt = C.aq__sched_attempt(E, id)
  local wait = run.retry(E, id, item.retry_backoff, item.retry_backoff_max)
  if wait >= 0 then
    local message = traceback.normalize(err).message
    item._aq_last_error = message
    local text = ("%s:process failed (attempt %d of %d), retrying in %.2f s: "):format(item.__name,
      attempt, item.retries + 1, wait)
    core.log("aqueue: " .. text .. item_mod.view(item) .. ": " .. message) -- names the item, as report_failure
    core.note_error(text .. message) -- the panel's one line keeps the message
    run.backend:retrying(item, attempt, wait)
    item.attempt = attempt + 1 -- what the retry's process sees as self.attempt
    return
  end
  item._aq_last_error = nil
  local message = report_failure(run, item, "process", err, attempt)
  settle_item(item, id, false, message)
  run.backend:processed(item, false, attempt, message)
  C.aq__sched_process_done(E, id, 0)
end

---------------------------------------------------------------------------
-- the runner loop

-- Releases finalized items. Called once per REAP_BATCH finished jobs, not per
-- job: a loop inside the per-item path would keep the JIT from compiling the
-- runner loop. Ids are not reused before they are reaped, so waiting is safe.
local REAP_BATCH = 64
local function reap(run)
  local items, backend = run.items, run.backend
  while true do
    local id = C.aq__sched_reap(E)
    if id == 0 then
      return
    end
    local item = items[id]
    if rawget(item, "_aq_id") then
      item._aq_id = false -- finished: no more children (a child without it: was_enqueued)
    end
    items[id] = nil
    backend:finished(item)
  end
end

local function finish_process(run, id, item, ok, ...)
  if ok then
    settle_item(item, id, true, ...)
    run.backend:processed(item, true, C.aq__sched_attempt(E, id))
    C.aq__sched_process_done(E, id, 1)
  else
    fail_process(run, id, item, (...))
  end
  if C.aq__sched_reaped_count(E) >= REAP_BATCH then
    reap(run)
  end
end

local function finish_hook(run, id, item, ok, err)
  if not ok then
    report_failure(run, item, "after_children_processed", err)
  end
  run.backend:hook_ran(item)
  C.aq__sched_hook_done(E, id, ok and 1 or 0)
  if C.aq__sched_reaped_count(E) >= REAP_BATCH then
    reap(run)
  end
end

-- What process() gave, unless its timeout passed meanwhile: a task that did
-- not yield kept the timer from firing, and such an attempt fails all the same.
local function in_time(ok, ...)
  local over = C.aq__sched_timeout_over(E)
  if over > 0 then
    return false, ("timed out after %g s"):format(over)
  end
  return ok, ...
end

-- A serve(run) that runs `run`'s jobs until the scheduler has none for this
-- runner: returns 0 (nothing to take: park) or -1 (its time slice is over:
-- yield). `finish_process` and `finish_hook` end each job: the local ones
-- above, or a remote queue's (aqueue.run_remote).
local function make_serve(finish_process, finish_hook)
  return function(run)
    local items = run.items
    while true do
      local job = C.aq__sched_take(E)
      if job <= 0 then
        return job
      end
      local id = rshift(job, JOB_ID_SHIFT)
      local item = items[id]
      if band(job, JOB_KIND_MASK) == JOB_PROCESS then
        if item.timeout then
          if C.aq__sched_arm_timeout(E, item.timeout) ~= 0 then
            finish_process(run, id, item, false, "out of memory (for the timeout's timer)")
          else
            finish_process(run, id, item, in_time(xpcall(item.process, on_error, item, enqueue, set_desc)))
          end
        else
          finish_process(run, id, item, xpcall(item.process, on_error, item, enqueue, set_desc))
        end
      else
        finish_hook(run, id, item, xpcall(item.after_children_processed, on_error, item))
      end
    end
  end
end

local serve_local = make_serve(finish_process, finish_hook)

-- Every runner task runs this. A runner outlives runs (parked runners are
-- woken for the next one), so it looks up the run in progress each time it
-- comes back.
local function runner()
  while true do
    local run = active
    local job = run and run.serve(run) or 0
    if job == 0 then
      if run then
        reap(run)
      end
      core.park()
    else
      core.yield_now()
    end
  end
end

-- The timeout of item `id`'s process() expired: its runner task is gone (what
-- it waited on is cancelled), and this runs as a task of its own.
local function timed_out(id, message)
  local run = active
  run.fail(run, id, run.items[id], message)
  if C.aq__sched_reaped_count(E) >= REAP_BATCH then
    reap(run)
  end
end

core.set_runner(runner, timed_out)

---------------------------------------------------------------------------
-- run_queue

local ORDERS = { lifo = true, fifo = true, priority = true }
local OPTIONS = {
  initial_items = true, num_workers = true, order = true, progress = true,
  limits = true, max_items = true, max_time = true, state = true, lease = true, heartbeat = true,
  robots = true,
}
local PROGRESS = { auto = true, tty = true, plain = true, json = true, none = true }

-- One limit: { per_key = n, rate = r }, both optional.
local function check_limit(l, where)
  if type(l) ~= "table" then
    error(("run_queue: %s must be a table { per_key = n, rate = r }, got %s"):format(where, type(l)), 5)
  end
  for k in pairs(l) do
    if k ~= "per_key" and k ~= "rate" and not (where == "limits" and k == "keys") then
      error(("run_queue: %s: unknown field %q"):format(where, tostring(k)), 5)
    end
  end
  local n = l.per_key
  if n ~= nil and (type(n) ~= "number" or n < 1 or n ~= floor(n) or n > 2147483647) then
    error(("run_queue: %s.per_key must be a whole number >= 1, got %s"):format(where, tostring(n)), 5)
  end
  local r = l.rate
  if r ~= nil and (type(r) ~= "number" or not (r > 0) or r == huge) then
    error(("run_queue: %s.rate must be a number of starts per second > 0, got %s"):format(where, tostring(r)), 5)
  end
  return { per_key = n, rate = r }
end

-- run_queue{ lease =, heartbeat = }: the lease of a shared run's claims and
-- how often this process renews it (seconds; README "Beyond one machine").
-- Returns { lease =, heartbeat = } (nil for the defaults of aqueue.redis_run).
local function check_lease(opts)
  local lease, heartbeat = opts.lease, opts.heartbeat
  if lease ~= nil and (type(lease) ~= "number" or not (lease > 0) or lease == huge) then
    error("run_queue: lease must be a number of seconds > 0, got " .. tostring(lease), 4)
  end
  if heartbeat ~= nil and (type(heartbeat) ~= "number" or not (heartbeat > 0) or heartbeat == huge) then
    error("run_queue: heartbeat must be a number of seconds > 0, got " .. tostring(heartbeat), 4)
  end
  if (heartbeat or 1) * 2 > (lease or 15) then
    error(("run_queue: heartbeat (%s s) must be at most half the lease (%s s): a lease must outlive a late heartbeat")
      :format(tostring(heartbeat or 1), tostring(lease or 15)), 4)
  end
  return { lease = lease, heartbeat = heartbeat }
end

-- run_queue{ limits = { per_key =, rate =, keys = { [key] = { per_key =, rate = } } } }
local function check_limits(l)
  if l == nil then
    return nil
  end
  local checked = check_limit(l, "limits")
  checked.keys = {}
  if l.keys ~= nil then
    if type(l.keys) ~= "table" then
      error("run_queue: limits.keys must be a table of key = { per_key =, rate = }, got " .. type(l.keys), 4)
    end
    for k, kl in pairs(l.keys) do
      checked.keys[k] = check_limit(kl, ("limits.keys[%q]"):format(tostring(k)))
    end
  end
  return checked
end

local function check_options(opts)
  if opts == nil then
    opts = {}
  elseif type(opts) ~= "table" then
    error("run_queue{...} takes a table of options, got " .. type(opts), 3)
  end
  for k in pairs(opts) do
    if not OPTIONS[k] then
      error(("run_queue: unknown option %q"):format(tostring(k)), 3)
    end
  end
  -- The command line wins over the script for -w, --order, --max-items and
  -- --max-time (SPEC section 3); the script's values are checked all the same.
  local cli_workers, cli_order, cli_progress, cli_state, _, _, cli_max_items, cli_max_time = core.defaults()
  local num_workers = opts.num_workers or 5
  if type(num_workers) ~= "number" or num_workers < 1 or num_workers ~= math.floor(num_workers) then
    error("run_queue: num_workers must be a whole number >= 1, got " .. tostring(num_workers), 3)
  end
  num_workers = cli_workers or num_workers
  local order = opts.order or "lifo"
  if not ORDERS[order] then
    error(("run_queue: order must be \"lifo\", \"fifo\" or \"priority\", got %q"):format(tostring(order)), 3)
  end
  order = cli_order or order
  local progress = opts.progress or cli_progress or "auto"
  if not PROGRESS[progress] then
    error(("run_queue: progress must be \"auto\", \"tty\", \"plain\", \"json\" or \"none\", got %q")
      :format(tostring(progress)), 3)
  end
  local initial = opts.initial_items or {}
  if class_of(initial) then
    initial = { initial } -- one item: a list of one
  elseif type(initial) ~= "table" or getmetatable(initial) ~= nil then
    error("run_queue: initial_items must be a list of items (or one item), got " .. describe(initial), 3)
  else
    local n = #initial
    for i = 1, n do
      if initial[i] == nil then
        error(("run_queue: initial_items[%d] is nil: initial_items must be a list of items"):format(i), 3)
      end
    end
    for k in pairs(initial) do
      if type(k) ~= "number" or k < 1 or k > n or k ~= floor(k) then
        error(("run_queue: initial_items must be a list of items (or one item), got a table with the key %s")
          :format(type(k) == "string" and ("%q"):format(k) or tostring(k)), 3)
      end
    end
  end
  local seen = {}
  for i = 1, #initial do
    local cls = class_of(initial[i])
    if seen[initial[i]] or (cls and was_enqueued(initial[i])) then
      error(("run_queue: initial_items[%d] was already enqueued; make a new item"):format(i), 3)
    end
    seen[initial[i]] = true
    if not cls then
      error(("run_queue: initial_items[%d] is not an item: got %s"):format(i, describe(initial[i])), 3)
    elseif initial[i].process == nil then
      error(("run_queue: %s has no process method (define function %s:process(enqueue, set_desc))")
        :format(cls.__name, cls.__name), 3)
    end
  end
  local max_items = opts.max_items
  if max_items ~= nil and (type(max_items) ~= "number" or max_items < 1 or max_items ~= floor(max_items)) then
    error("run_queue: max_items must be a whole number >= 1, got " .. tostring(max_items), 3)
  end
  local max_time = opts.max_time
  if max_time ~= nil and (type(max_time) ~= "number" or not (max_time > 0) or max_time == huge) then
    error("run_queue: max_time must be a number of seconds > 0, got " .. tostring(max_time), 3)
  end
  max_items, max_time = cli_max_items or max_items, cli_max_time or max_time
  local state_file = opts.state or cli_state
  if state_file ~= nil and (type(state_file) ~= "string" or state_file == "") then
    error("run_queue: state must be a file name, got " .. tostring(state_file), 3)
  end
  if opts.robots ~= nil and type(opts.robots) ~= "boolean" then
    local v = opts.robots
    error("run_queue: robots must be true or false, got " .. (type(v) == "string" and ("%q"):format(v) or describe(v)), 3)
  end
  return initial, num_workers, order, progress, check_limits(opts.limits), max_items or 0, max_time or 0, state_file,
    check_lease(opts), opts.robots == true
end

-- Settles the handles of items a graceful stop took out of `run`'s queue.
local function drop_queued(run)
  local items = run.items
  local ids = core.run_drop()
  for i = 1, #ids do
    local id = ids[i]
    local item = items[id]
    items[id] = nil
    local last_error = rawget(item, "_aq_last_error")
    if last_error then
      settle_item(item, id, false, "not retried: the queue was stopped (last error: " .. last_error .. ")")
    else
      settle_item(item, id, false, "not started: the queue was stopped")
    end
  end
end

-- The run's queue is this process's scheduler's (memory, sqlite): the fast path.
local function use_local_path(run)
  run.serve, run.fail, run.retry, run.drop = serve_local, fail_process, C.aq__sched_retry, drop_queued
end

-- What aqueue.run_remote builds a remote run's path from.
local remote_parts = {
  sched_fields = sched_fields, check_item = check_item, call_key_method = call_key_method,
  dedup_key = dedup_key, new_turn_counter = new_turn_counter, fail_process = fail_process,
  finish_hook = finish_hook, make_serve = make_serve, reap = reap, REAP_BATCH = REAP_BATCH,
}

-- Puts the unfinished items the run's backend holds back into the scheduler
-- and into `run` (queue_backend: resume). Returns the counts of what it held,
-- or nil when it held no run.
local function resume(run)
  local opened = {}
  local function restore(item, parent, open, attempts)
    local cls = getmetatable(item)
    local parent_id = parent and rawget(parent, "_aq_id") or 0
    local priority, flags, delay, limit_key, max_attempts = sched_fields(run, run.limits, item, cls, 3)
    local id
    if open then
      id = C.aq__sched_restore_open(E, parent_id, cls.__aq_class_id, flags)
      opened[#opened + 1] = id
    else
      id = C.aq__sched_enqueue(E, parent_id, cls.__aq_class_id, priority, flags, delay, limit_key, max_attempts)
    end
    if id <= 0 then
      error("run_queue: out of memory while resuming", 0)
    end
    run.items[id] = item
    item._aq_id = id
    if not open and attempts > 0 then
      if C.aq__sched_restore_attempts(E, id, attempts) ~= 0 then
        error("run_queue: out of memory while resuming", 0)
      end
      item.attempt = attempts + 1 -- self.attempt of its next run
    end
  end
  local counts = run.backend:resume(item_mod.classes, restore, 3)
  if counts == nil then
    return nil
  end
  for i = 1, #opened do
    C.aq__sched_restore_release(E, opened[i])
  end
  C.aq__sched_add_overall_done(E, counts.tracked_done)
  return counts
end

local function say_resumed(file, c)
  if c.pending + c.open == 0 then
    core.log(("aqueue: the run in %s is complete (%d done, %d failed): nothing to do; "
      .. "--fresh starts anew, --retry-failed runs the failed items again"):format(file, c.done, c.failed))
  else
    core.log(("aqueue: resuming the run in %s: %d items to run, %d waiting for their children; "
      .. "%d done and %d failed before"):format(file, c.pending, c.open, c.done, c.failed))
  end
end

-- Ends `run`: its items that are left can no longer take children, and the
-- engine's callbacks no longer reach it.
local function close_run(run)
  for _, item in pairs(run.items) do
    if rawget(item, "_aq_id") then
      item._aq_id = false
    end
  end
  handle.set_run_items(nil)
  robots.end_run()
  active = nil
end

-- The default name of a shared run (--redis without --run): the script's
-- file name without its extension.
local function script_name()
  local path = arg and arg[0] or "run"
  return (path:match("([^/]*)$"):gsub("%.[^.]*$", ""))
end

-- The names of the item classes the script defined (a shared run's
-- processes must agree on them).
local function class_names()
  local names = {}
  for name in pairs(item_mod.classes) do
    names[#names + 1] = name
  end
  return names
end

local function run_queue(opts)
  local initial, num_workers, order, progress, run_limits, max_items, max_time, state_file, lease, obey_robots =
    check_options(opts)
  local _, _, _, _, fresh, retry_failed, _, _, redis, run_name = core.defaults()
  local backend = queue_backend.open(state_file, { fresh = fresh, retry_failed = retry_failed, order = order,
    redis = redis, run = run_name or script_name(), limits = run_limits, classes = class_names(),
    lease = lease.lease, heartbeat = lease.heartbeat }, 2)
  if not backend.local_queue then
    max_items, max_time = run_remote.run_limits(backend, max_items, max_time)
  end
  local ok, err = pcall(core.run_start, num_workers, order, progress, max_items, max_time)
  if not ok then -- another run is active
    backend:abandon()
    error(err, 2)
  end
  local run = new_run(run_limits, backend)
  active = run
  handle.set_run_items(run.items)
  robots.start_run(obey_robots)
  local resumed = nil
  ok, err = pcall(function()
    if not backend.local_queue then
      run_remote.setup(run, remote_parts, num_workers)
      resumed = run_remote.start(run, initial)
      return
    end
    use_local_path(run)
    resumed = resume(run)
    if resumed then
      say_resumed(state_file, resumed)
    else
      for i = 1, #initial do
        run.enqueue_child(nil, initial[i], 4, true)
      end
    end
  end)
  if not ok then -- an invalid initial item, or a run that cannot resume: nothing has started yet
    core.run_finish()
    close_run(run)
    backend:abandon()
    error(err, 0)
  end
  while core.run_wait() == "stopping" do
    run.drop(run)
  end
  if run.remote then
    run_remote.close(run)
  end
  reap(run)
  local summary = core.run_finish()
  close_run(run)
  handle.reset_item_waiters()
  summary.errors = run.errors
  summary.errors_not_kept = run.errors_dropped
  if backend.durable then
    summary.state = state_file
    summary.resumed = resumed
  end
  local committed, why = backend:finish()
  if not committed then
    error("run_queue: " .. why, 2)
  end
  summary.backend, summary.counters = backend.name, backend:counters(summary)
  return summary
end

-- Item:enqueue(child) (aqueue/init.lua): enqueue_child(self, child, 3).
local function enqueue_in_run(parent, child, level)
  local h, err = enqueue_in_active_run(parent, child, level + 1) -- not a tail call: levels
  return h, err
end

return {
  run_queue = run_queue,
  enqueue_child = enqueue_in_run,
  set_desc = set_desc,
  current_item = current_item,
}
