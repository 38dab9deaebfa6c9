-- aqueue.run_queue: run_queue{...}, enqueue, and the runner loop.
--
-- Items are Lua tables; the C scheduler knows them by id. `items[id]` keeps an
-- item alive from enqueue until the scheduler finalizes it (its process and all
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

local C, E = sched.C, sched.E
local class_of = item_mod.class_of
local new_item_handle, settle_item = handle.new_item_handle, handle.settle_item
local rshift, band = bit.rshift, bit.band
local xpcall, type, tostring = xpcall, type, tostring
local on_error = traceback.capture

local items = {}          -- id -> item table, for the current run
local errors = {}         -- failures of the current run, for the summary
local MAX_KEPT_ERRORS = 1000
local errors_dropped = 0

---------------------------------------------------------------------------
-- enqueue

local function describe(value)
  if type(value) == "table" and getmetatable(value) == nil then
    return "a plain table (make items with a class: MyItem{ ... })"
  end
  return "a " .. type(value)
end

local ENQUEUE_ERRORS = {
  [-1] = "out of memory",
  [-4] = "no queue is running: give initial items to aqueue.run_queue{ initial_items = ... }",
}

-- Enqueues `child` under `parent` (nil for a root item). Returns a handle, or
-- nil, "stopped" when the queue is stopping. Misuse raises at `level`.
local function enqueue_child(parent, child, level)
  local cls = class_of(child)
  if not cls then
    error("enqueue: expected an item (an instance of an aqueue.Item class), got " .. describe(child), level)
  end
  if child.process == nil then
    error(("enqueue: %s has no process method (define function %s:process(enqueue, set_desc))")
      :format(cls.__name, cls.__name), level)
  end
  if rawget(child, "_aq_id") ~= nil then
    error("enqueue: this " .. cls.__name .. " item was already enqueued; make a new one", level)
  end
  local parent_id = 0
  if parent ~= nil then
    parent_id = rawget(parent, "_aq_id")
    if not parent_id then
      error(("enqueue: cannot add a child to a %s item that is %s"):format(parent.__name,
        parent_id == false and "finished (its subtree already completed)" or "not enqueued"), level)
    end
  end
  local priority = child.priority
  if type(priority) ~= "number" then
    error(("enqueue: %s.priority must be a number, got %s"):format(cls.__name, type(priority)), level)
  end
  local flags = 0
  if child.track_overall then flags = flags + sched.TRACK_OVERALL end
  if child.after_children_processed ~= nil then flags = flags + sched.HAS_HOOK end
  local id = C.aq__sched_enqueue(E, parent_id, cls.__aq_class_id, priority, flags)
  if id <= 0 then
    if id == -2 then
      return nil, "stopped"
    elseif id == -3 then
      error(("enqueue: cannot add a child to a %s item whose subtree already completed")
        :format(parent.__name), level)
    end
    error("enqueue: " .. ENQUEUE_ERRORS[id], level)
  end
  items[id] = child
  child._aq_id = id
  if parent ~= nil then
    child.parent = parent
  end
  return new_item_handle(child)
end

-- The `enqueue` given to process: a child of the item this task is
-- processing (a root item when called from a task that processes none).
local function enqueue(child)
  local job = C.aq__sched_current_job(E)
  local parent = nil
  if job > 0 then
    parent = items[rshift(job, 1)]
  end
  local h, err = enqueue_child(parent, child, 3) -- not a tail call: level 3
  return h, err                                  -- must be enqueue's caller
end

local function set_desc(text)
  text = tostring(text)
  C.aq__sched_set_desc(E, text, #text)
end

---------------------------------------------------------------------------
-- failures

local function report_failure(item, phase, err)
  local class = item.__name
  err = traceback.normalize(err)
  core.log(("aqueue: %s:%s failed: %s"):format(class, phase, err.traceback))
  core.note_failure(("%s:%s: %s"):format(class, phase, err.message))
  if #errors < MAX_KEPT_ERRORS then
    errors[#errors + 1] = { class = class, phase = phase, error = err.message, item = item }
  else
    errors_dropped = errors_dropped + 1
  end
  return err.message
end

---------------------------------------------------------------------------
-- the runner loop

-- Releases finalized items. Called once per REAP_BATCH finished jobs, not per
-- job: a loop inside the per-item path would keep the JIT from compiling the
-- runner loop. Ids are not reused before they are reaped, so waiting is safe.
local REAP_BATCH = 64
local function reap()
  while true do
    local id = C.aq__sched_reap(E)
    if id == 0 then
      return
    end
    items[id]._aq_id = false -- finished: no more children
    items[id] = nil
  end
end

local function finish_process(id, item, ok, ...)
  if ok then
    settle_item(item, id, true, ...)
    C.aq__sched_process_done(E, id, 1)
  else
    settle_item(item, id, false, report_failure(item, "process", (...)))
    C.aq__sched_process_done(E, id, 0)
  end
  if C.aq__sched_reaped_count(E) >= REAP_BATCH then
    reap()
  end
end

local function finish_hook(id, item, ok, err)
  if not ok then
    report_failure(item, "after_children_processed", err)
  end
  C.aq__sched_hook_done(E, id, ok and 1 or 0)
  if C.aq__sched_reaped_count(E) >= REAP_BATCH then
    reap()
  end
end

local function runner()
  while true do
    local job = C.aq__sched_take(E)
    if job > 0 then
      local id = rshift(job, 1)
      local item = items[id]
      if band(job, 1) == 0 then
        finish_process(id, item, xpcall(item.process, on_error, item, enqueue, set_desc))
      else
        finish_hook(id, item, xpcall(item.after_children_processed, on_error, item))
      end
    elseif job == 0 then
      reap()
      core.park()
    else
      core.yield_now()
    end
  end
end
core.set_runner(runner)

---------------------------------------------------------------------------
-- run_queue

local ORDERS = { lifo = true, fifo = true, priority = true }
local OPTIONS = { initial_items = true, num_workers = true, order = true, progress = true }
local PROGRESS = { auto = true, tty = true, plain = true, json = true, none = true }

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
  local cli_workers, cli_order, cli_progress = core.defaults()
  local num_workers = opts.num_workers or cli_workers or 5
  if type(num_workers) ~= "number" or num_workers < 1 or num_workers ~= math.floor(num_workers) then
    error("run_queue: num_workers must be a whole number >= 1, got " .. tostring(num_workers), 3)
  end
  local order = opts.order or cli_order or "lifo"
  if not ORDERS[order] then
    error(("run_queue: order must be \"lifo\", \"fifo\" or \"priority\", got %q"):format(tostring(order)), 3)
  end
  local progress = opts.progress or cli_progress or "auto"
  if not PROGRESS[progress] then
    error(("run_queue: progress must be \"auto\", \"tty\", \"plain\", \"json\" or \"none\", got %q")
      :format(tostring(progress)), 3)
  end
  local initial = opts.initial_items or {}
  if type(initial) ~= "table" then
    error("run_queue: initial_items must be a list of items, got " .. type(initial), 3)
  end
  local seen = {}
  for i = 1, #initial do
    local cls = class_of(initial[i])
    if seen[initial[i]] or (cls and rawget(initial[i], "_aq_id") ~= nil) then
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
  return initial, num_workers, order, progress
end

-- Settles the handles of items a graceful stop took out of the queue.
local function drop_queued()
  local ids = core.run_drop()
  for i = 1, #ids do
    local id = ids[i]
    local item = items[id]
    items[id] = nil
    settle_item(item, id, false, "not started: the queue was stopped")
  end
end

local function run_queue(opts)
  local initial, num_workers, order, progress = check_options(opts)
  core.run_start(num_workers, order, progress)
  errors, errors_dropped = {}, 0
  local ok, err = pcall(function()
    for i = 1, #initial do
      enqueue_child(nil, initial[i], 4)
    end
  end)
  if not ok then -- an invalid initial item: nothing has started yet
    core.run_finish()
    items = {}
    error(err, 0)
  end
  while core.run_wait() == "stopping" do
    drop_queued()
  end
  local summary = core.run_finish()
  for _, item in pairs(items) do
    item._aq_id = false
  end
  items = {}
  handle.reset_item_waiters()
  summary.errors = errors
  summary.errors_not_kept = errors_dropped
  return summary
end

return {
  run_queue = run_queue,
  enqueue_child = enqueue_child,
  set_desc = set_desc,
}
