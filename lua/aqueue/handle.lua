-- aqueue.handle: waiting for results without holding a worker slot.
--
-- Two kinds of handle share one waiting mechanism:
--   ItemHandle  returned by enqueue; :result() -> what process returned, or nil, err
--   TaskHandle  returned by aqueue.spawn; :result(), :cancel()
-- A waiting task is suspended "unslotted": a worker waiting here gives its slot
-- to other items, so waiting never deadlocks, even with num_workers = 1.
local core = require("aqueue.core")
local sched = require("aqueue.sched")
local traceback = require("aqueue.traceback")
local C, E = sched.C, sched.E

local unpack, select = unpack, select

local function pack(...)
  return { n = select("#", ...), ... }
end

-- Suspends the running task until one of core.wake's calls on `list`'s entries.
local function wait_on(list, what)
  local me = core.current()
  if not me then
    error(what .. " must be called from an aqueue task, not from a coroutine the script made", 3)
  end
  if not core.can_yield() then -- before `me` is listed: a failed wait leaves no waiter behind
    error(what .. ": attempt to yield across C-call boundary (it waits, and cannot from a "
      .. "table.sort comparator, a string.gsub callback, a __gc or other metamethod called from C)", 3)
  end
  list[#list + 1] = me
  core.suspend(true)
end

local function wake_all(list)
  for i = 1, #list do
    core.wake(list[i])
  end
end

---------------------------------------------------------------------------
-- Item handles: { item }. While the item is in its run, `item._aq_id` is its
-- id and the scheduler says whether its process has finished; once the item
-- is released (or its run is over) `_aq_id` is false. The outcome lives on the
-- item (`_aq_results`, `_aq_error`), and only when there is one to keep.

local ItemHandle = {}
ItemHandle.__index = ItemHandle

local item_waiters = {} -- item id -> list of waiting task ids

local function new_item_handle(item)
  return setmetatable({ item }, ItemHandle)
end

function ItemHandle:result()
  local item = self[1]
  local id = rawget(item, "_aq_id")
  if id and C.aq__sched_item_finished(E, id) == 0 then
    local list = item_waiters[id]
    if not list then
      list = {}
      item_waiters[id] = list
    end
    wait_on(list, "handle:result()")
  end
  local err = rawget(item, "_aq_error")
  if err ~= nil then
    return nil, err
  end
  local results = rawget(item, "_aq_results")
  if results then
    return unpack(results, 1, results.n)
  end
end

-- The process() of item `id` has finished: keep its outcome, wake waiters.
-- `ok` false: `...` is the error message.
local function settle_item(item, id, ok, ...)
  if not ok then
    item._aq_error = (...)
  elseif select("#", ...) > 0 then
    item._aq_results = pack(...)
  end
  local list = item_waiters[id]
  if list then
    item_waiters[id] = nil
    wake_all(list)
  end
end

---------------------------------------------------------------------------
-- Task handles for aqueue.spawn.

local TaskHandle = {}
TaskHandle.__index = TaskHandle

-- `ok` false: `...` is an error report (aqueue.traceback) or a message.
local function settle_task(h, ok, ...)
  h.settled = true
  if ok then
    h.results = pack(...)
  else
    h.report = traceback.normalize((...))
    h.error = h.report.message
  end
  local list = h.waiters
  h.waiters = nil
  if list then
    wake_all(list)
  end
  return ok, list ~= nil
end

-- An error nobody is waiting for is printed and fails the exit status, so it
-- is never silently lost. A waiter gets the message as `nil, err`.
local function spawned_body(h, fn, ...)
  local ok, watched = settle_task(h, xpcall(fn, traceback.capture, ...))
  if not ok and not watched then
    core.log("aqueue: error in a spawned task: " .. h.report.traceback)
    core.mark_failed()
  end
end

-- aqueue.spawn(fn, ...) -> a handle; fn(...) runs as its own task.
local function spawn(fn, ...)
  if type(fn) ~= "function" then
    error("aqueue.spawn(fn, ...): fn must be a function, got " .. type(fn), 2)
  end
  local h = setmetatable({}, TaskHandle)
  h.task = core.spawn(spawned_body, h, fn, ...)
  return h
end

function TaskHandle:result()
  if not self.settled then
    local list = self.waiters
    if not list then
      list = {}
      self.waiters = list
    end
    wait_on(list, "handle:result()")
  end
  if self.error ~= nil then
    return nil, self.error
  end
  return unpack(self.results, 1, self.results.n)
end

-- Stops the task at once; its pending operation is cancelled. Returns true
-- when it was still running.
function TaskHandle:cancel()
  if self.settled then
    return false
  end
  if self.task == core.current() then
    error("a task cannot cancel itself", 2)
  end
  core.cancel(self.task)
  settle_task(self, false, "cancelled")
  return true
end

return {
  new_item_handle = new_item_handle,
  settle_item = settle_item,
  spawn = spawn,
  reset_item_waiters = function()
    item_waiters = {}
  end,
}
