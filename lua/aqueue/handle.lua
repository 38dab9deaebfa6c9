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

-- Waiter lists: each handle that has not finished keeps a list of waiter
-- records { task = id, wait = the wait's state, i = the handle's index in the
-- wait, idx = the record's index in the list }. When the handle finishes,
-- each record's wait counts it (several handles may finish in one turn, and
-- core.wake wakes a task once) and its task is woken. A task takes its records
-- out of the lists it is in before it goes on, so a handle never wakes a task
-- that has stopped waiting for it.

local function list_add(list, rec)
  local n = #list + 1
  rec.idx = n
  list[n] = rec
end

-- O(1): the last record takes the removed one's place (waking order among the
-- waiters of one handle is not promised).
local function list_remove(list, rec)
  local i, n = rec.idx, #list
  if list[i] ~= rec then
    return
  end
  local last = list[n]
  list[i] = last
  last.idx = i
  list[n] = nil
end

local function wake_all(list)
  for i = 1, #list do
    local rec = list[i]
    local w = rec.wait
    w.finished = w.finished + 1
    if not w.first then
      w.first = rec.i
    end
    core.wake(rec.task)
  end
end

local function current_task(what, level)
  local me = core.current()
  if not me then
    error(what .. " must be called from an aqueue task, not from a coroutine the script made", level + 1)
  end
  if not core.can_yield() then -- before the task is listed: a failed wait leaves no waiter behind
    error(what .. ": attempt to yield across C-call boundary (it waits, and cannot from a "
      .. "table.sort comparator, a string.gsub callback, a __gc or other metamethod called from C)", level + 1)
  end
  return me
end

local TIMED_OUT, now = core.TIMED_OUT, core.now

-- Suspends the running task (without its worker slot) until `need` of the
-- handles `hs[1..n]` (none finished yet) have finished, or `timeout` seconds
-- (nil: no limit) pass. `guard` is core.suspend's: it runs as a task of its
-- own if the waiting task is cancelled meanwhile. Returns the index of the
-- handle that finished first, or nil when the time ran out first.
local function wait_handles(hs, n, need, timeout, guard)
  local me = current_task("waiting for a handle", 3)
  local w = { finished = 0, first = nil }
  local lists, recs = {}, {}
  for i = 1, n do
    local list = hs[i]:_waiter_list()
    local rec = { task = me, wait = w, i = i }
    list_add(list, rec)
    lists[i], recs[i] = list, rec
  end
  local deadline = timeout and now() + timeout
  repeat
    local left = deadline and deadline - now()
    if left and left < 0 then
      left = 0
    end
    if core.suspend(true, guard, left) == TIMED_OUT and w.finished < need then
      break
    end
  until w.finished >= need
  for i = 1, n do
    list_remove(lists[i], recs[i])
  end
  return w.first
end

-- wait_handles for one handle (handle:result()), with one record that is its
-- own wait state.
local function wait_one(h)
  local list = h:_waiter_list()
  local rec = { task = core.current(), finished = 0, i = 1 }
  rec.wait = rec
  list_add(list, rec)
  repeat
    core.suspend(true)
  until rec.finished > 0
  list_remove(list, rec)
end

---------------------------------------------------------------------------
-- Item handles: { item, id }, `id` being the item's id in its run (false for
-- an item known finished). While the run in progress still holds the item
-- under that id (run_items, given by run_queue), the scheduler says whether
-- its process has finished; once the item is released (or its run is over)
-- it has. The outcome lives on the item (`_aq_results`, `_aq_error`), and
-- only when there is one to keep.

local ItemHandle = {}
ItemHandle.__index = ItemHandle

local item_waiters = {} -- item id -> list of waiting task ids
local run_items = {}    -- the run in progress's id -> item (run_queue's run.items), {} between runs

local function new_item_handle(item, id)
  return setmetatable({ item, id }, ItemHandle)
end

-- True when the item's process() will not run again (its outcome is known).
function ItemHandle:_finished()
  local id = self[2]
  return not id or run_items[id] ~= self[1] or C.aq__sched_item_finished(E, id) ~= 0
end

function ItemHandle:_waiter_list()
  local id = self[2]
  local list = item_waiters[id]
  if not list then
    list = {}
    item_waiters[id] = list
  end
  return list
end

-- The error of a finished item that failed, else nil.
function ItemHandle:_error()
  return rawget(self[1], "_aq_error")
end

function ItemHandle:result()
  if not self:_finished() then
    current_task("handle:result()", 2)
    wait_one(self)
  end
  local item = self[1]
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
  return ok, list ~= nil and #list > 0
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

function TaskHandle:_finished()
  return self.settled == true
end

function TaskHandle:_waiter_list()
  local list = self.waiters
  if not list then
    list = {}
    self.waiters = list
  end
  return list
end

function TaskHandle:_error()
  return self.error
end

function TaskHandle:result()
  if not self.settled then
    current_task("handle:result()", 2)
    wait_one(self)
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

-- True for a handle from enqueue or aqueue.spawn.
local function is_handle(v)
  local mt = getmetatable(v)
  return mt == ItemHandle or mt == TaskHandle
end

return {
  new_item_handle = new_item_handle,
  is_handle = is_handle,
  wait_handles = wait_handles,
  settle_item = settle_item,
  spawn = spawn,
  reset_item_waiters = function()
    item_waiters = {}
  end,
  -- run_queue: the items of the run in progress (nil when it ends)
  set_run_items = function(items)
    run_items = items or {}
  end,
}
