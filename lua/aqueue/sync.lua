-- aqueue.sync: Queue, Semaphore and Event for tasks, with the semantics of
-- Python's asyncio.Queue / asyncio.Semaphore / asyncio.Event, built on
-- aqueue.core's suspend/wake.
--
-- The slot rule: a task waiting here gives its worker slot back while it
-- waits, as in handle:result(), and takes the next free one (before queued
-- items) when it is woken. num_workers bounds the items that are running, not
-- the ones waiting for another task: a producer and a consumer that are both
-- items work with num_workers = 1, and a Semaphore is how to bound a section.
--
-- Waiters wait in FIFO order and are served by hand-off: put gives its value to
-- the first waiting getter, release gives its permit to the first acquirer, a
-- get moves the first waiting putter's value into the queue. The waker first
-- asks core.wake, which says false for a task that ended (cancelled) while it
-- waited; such waiters are skipped and the next one is served.
--
-- A task can also be cancelled after it was handed an item or a permit and
-- before it ran again (`q:put(v); getter:cancel()`). Cancellation runs no Lua
-- in the task, so a sweeper task checks afterwards: it is spawned behind the
-- woken tasks on the engine's FIFO ready list, so when it runs, each of those
-- still alive has resumed and marked its waiter done. A hand-off still marked
-- "woken" belongs to a task that no longer exists: the sweeper takes the item
-- or permit back and serves the next waiter. Only tasks without a worker slot
-- (the main chunk, spawned tasks) are checked this way; an item's task that is
-- woken may wait for a slot for any length of time, so the check cannot tell
-- "cancelled" from "not yet resumed" for it.
local core = require("aqueue.core")
local sched = require("aqueue.sched")

local C, E = sched.C, sched.E
local current, suspend, wake = core.current, core.suspend, core.wake
local type, error, tostring, setmetatable = type, error, tostring, setmetatable
local floor, huge = math.floor, math.huge

-- waiter states
local WAITING, WOKEN, DONE, REVOKED = 0, 1, 2, 3

---------------------------------------------------------------------------
-- FIFO of waiter records: { task = id, state, value, owner }, with head/tail
-- indexes (O(1) push and pop). Waiters of ended tasks stay until popped.

local function new_fifo()
  return { head = 1, tail = 1 }
end

local function fifo_push(f, v)
  local t = f.tail
  f[t] = v
  f.tail = t + 1
end

-- The first waiter whose task is still waiting, now woken (core.wake said
-- true), or nil when none is left.
local function fifo_wake_first(f)
  local h, t = f.head, f.tail
  while h < t do
    local w = f[h]
    f[h] = nil
    h = h + 1
    if wake(w.task) then
      w.state = WOKEN
      if h == t then
        f.head, f.tail = 1, 1
      else
        f.head = h
      end
      return w
    end
  end
  f.head, f.tail = 1, 1
  return nil
end

local function fifo_wake_all(f)
  for i = f.head, f.tail - 1 do
    local w = f[i]
    f[i] = nil
    if wake(w.task) then
      w.state = WOKEN
    end
  end
  f.head, f.tail = 1, 1
end

---------------------------------------------------------------------------
-- Waiting.

-- The running task's id; raises (blaming the caller of the method) when the
-- method was called from a coroutine the script created itself.
local function task_of(what)
  local me = current()
  if not me then
    error(what .. " waits, so it must be called from an aqueue task (the main chunk, process, "
      .. "a hook or a spawned task), not from a coroutine the script created itself: "
      .. "use aqueue.spawn", 3)
  end
  return me
end

-- Suspends the running task (without its worker slot) until `w` is woken.
-- `w.slotted` says whether the task is an item's, which waits for a slot again.
local function wait(f, w)
  w.slotted = C.aq__sched_current_job(E) ~= 0
  fifo_push(f, w)
  repeat
    suspend(true)
  until w.state ~= WAITING
  w.state = DONE
end

---------------------------------------------------------------------------
-- The sweeper (see the top of the file).

local sweep = {}        -- woken waiters with a hand-off, unslotted tasks only
local sweep_judged = 0  -- sweep[1..sweep_judged] were woken before the sweeper
                        -- was last put on the ready list: it may judge them
local sweeper_alive = false

local function sweeper()
  while true do
    local list, judged = sweep, sweep_judged
    sweep = {}
    for i = judged + 1, #list do -- woken after the sweeper was made ready: keep
      sweep[#sweep + 1] = list[i]
    end
    for i = 1, judged do
      local w = list[i]
      if w.state == WOKEN then -- its task ended before it resumed
        w.state = REVOKED
        w.owner:_revoke(w) -- may hand off again, into `sweep`
      end
    end
    if #sweep == 0 then
      sweeper_alive = false
      return
    end
    sweep_judged = #sweep
    core.yield_now() -- to the back of the ready list, behind their tasks
  end
end

-- `w` was woken with an item or a permit it takes when it resumes.
local function handed_off(w, owner)
  if w.slotted then
    return
  end
  w.owner = owner
  local n = #sweep + 1
  sweep[n] = w
  if not sweeper_alive then -- made ready now, behind w's task
    sweeper_alive = true
    sweep_judged = n
    core.spawn(sweeper)
  end
end

---------------------------------------------------------------------------
-- Error values: compare with ==, print as their name.

local function error_value(name, text)
  return setmetatable({ name = name, message = text }, {
    __tostring = function()
      return name
    end,
    __metatable = false,
  })
end

local QueueFull = error_value("QueueFull", "put_nowait on a full queue")
local QueueEmpty = error_value("QueueEmpty", "get_nowait on an empty queue")

---------------------------------------------------------------------------
-- Queue

local Queue = { __name = "Queue" }
Queue.__index = Queue

local function check_maxsize(maxsize)
  if maxsize == nil then
    return 0
  end
  if type(maxsize) ~= "number" or maxsize < 0 or (maxsize ~= floor(maxsize)) then
    error("aqueue.Queue([maxsize]): maxsize must be a whole number >= 0 (0 or nil: unbounded), got "
      .. tostring(maxsize), 3)
  end
  return maxsize == huge and 0 or maxsize
end

local function new_queue(maxsize)
  return setmetatable({
    maxsize = check_maxsize(maxsize),
    _head = 1, _tail = 1, -- items in [_head, _tail); a nil is an item too
    _getters = new_fifo(),
    _putters = new_fifo(),
    _joiners = new_fifo(),
    _unfinished = 0,
  }, Queue)
end

local function is_full(q)
  local max = q.maxsize
  return max > 0 and q._tail - q._head >= max
end

local function push_back(q, v)
  local t = q._tail
  q[t] = v
  q._tail = t + 1
end

local function pop_front(q)
  local h = q._head
  local v = q[h]
  q[h] = nil
  h = h + 1
  if h == q._tail then
    q._head, q._tail = 1, 1
  else
    q._head = h
  end
  return v
end

-- `v` enters the queue: to the first waiting getter, or at the back.
local function enter(q, v)
  local g = fifo_wake_first(q._getters)
  if g then
    g.value = v
    handed_off(g, q)
  else
    push_back(q, v)
  end
end

-- Takes the front item; a waiting putter's value fills the freed place.
local function take(q)
  local v = pop_front(q)
  if not is_full(q) then
    local p = fifo_wake_first(q._putters)
    if p then
      q._unfinished = q._unfinished + 1
      push_back(q, p.value)
      p.value = nil
    end
  end
  return v
end

-- A getter's task ended before it took the item handed to it: the item goes to
-- the next getter, or back to the front, where it was.
function Queue:_revoke(w)
  local v = w.value
  w.value = nil
  local g = fifo_wake_first(self._getters)
  if g then
    g.value = v
    handed_off(g, self)
  else
    local h = self._head - 1
    self[h] = v
    self._head = h
  end
end

-- q:put(v): adds v at the back, waiting while the queue is full. nil is a
-- value like any other.
function Queue:put(v)
  local me = task_of("Queue:put()")
  if is_full(self) then
    wait(self._putters, { task = me, state = WAITING, value = v })
    return -- a get moved v into the queue
  end
  self._unfinished = self._unfinished + 1
  enter(self, v)
end

-- q:put_nowait(v): adds v or raises aqueue.QueueFull.
function Queue:put_nowait(v)
  if is_full(self) then
    error(QueueFull, 2)
  end
  self._unfinished = self._unfinished + 1
  enter(self, v)
end

-- q:get(): the front item, waiting while the queue is empty.
function Queue:get()
  local me = task_of("Queue:get()")
  if self._tail > self._head then
    return take(self)
  end
  local w = { task = me, state = WAITING }
  wait(self._getters, w)
  return w.value
end

-- q:get_nowait(): the front item, or raises aqueue.QueueEmpty.
function Queue:get_nowait()
  if self._tail > self._head then
    return take(self)
  end
  error(QueueEmpty, 2)
end

-- q:task_done(): one item got from the queue has been processed.
function Queue:task_done()
  local n = self._unfinished
  if n <= 0 then
    error("Queue:task_done() called more times than there were items put", 2)
  end
  n = n - 1
  self._unfinished = n
  if n == 0 then
    fifo_wake_all(self._joiners)
  end
end

-- q:join(): waits until every item put has been marked done by task_done().
function Queue:join()
  local me = task_of("Queue:join()")
  if self._unfinished > 0 then
    wait(self._joiners, { task = me, state = WAITING })
  end
end

function Queue:qsize()
  return self._tail - self._head
end

function Queue:empty()
  return self._tail == self._head
end

function Queue:full()
  return is_full(self)
end

function Queue:__tostring()
  return ("Queue(size %d of %s, %d unfinished)"):format(self._tail - self._head,
    self.maxsize > 0 and tostring(self.maxsize) or "unbounded", self._unfinished)
end

setmetatable(Queue, {
  __call = function(_, maxsize)
    return new_queue(maxsize)
  end,
})

---------------------------------------------------------------------------
-- Semaphore

local Semaphore = { __name = "Semaphore" }
Semaphore.__index = Semaphore

-- One permit is given back: to the first waiting acquirer, or to the count.
local function release_one(s)
  local w = fifo_wake_first(s._waiters)
  if w then
    handed_off(w, s)
  else
    s._value = s._value + 1
  end
end

function Semaphore:_revoke()
  release_one(self)
end

-- sem:acquire(): takes a permit, waiting (FIFO) while there is none. Returns true.
function Semaphore:acquire()
  local me = task_of("Semaphore:acquire()")
  local n = self._value
  if n > 0 then
    self._value = n - 1
    return true
  end
  wait(self._waiters, { task = me, state = WAITING })
  return true
end

-- sem:release(): gives a permit back. As with asyncio.Semaphore, releasing more
-- than was acquired raises the count above its initial value.
function Semaphore:release()
  release_one(self)
end

-- sem:locked(): true when acquire() would wait.
function Semaphore:locked()
  return self._value == 0
end

-- sem:available(): the number of permits acquire() can take without waiting.
function Semaphore:available()
  return self._value
end

function Semaphore:__tostring()
  return ("Semaphore(%d available)"):format(self._value)
end

setmetatable(Semaphore, {
  __call = function(_, n)
    if n == nil then
      n = 1
    elseif type(n) ~= "number" or n < 0 or n ~= floor(n) or n == huge then
      error("aqueue.Semaphore(n): n must be a whole number >= 0, got " .. tostring(n), 2)
    end
    return setmetatable({ _value = n, _waiters = new_fifo() }, Semaphore)
  end,
})

---------------------------------------------------------------------------
-- Event

local Event = { __name = "Event" }
Event.__index = Event

-- ev:wait(): returns at once when the flag is set, else waits until set().
-- Returns true.
function Event:wait()
  local me = task_of("Event:wait()")
  if not self._set then
    wait(self._waiters, { task = me, state = WAITING })
  end
  return true
end

-- ev:set(): sets the flag and wakes every waiter (a clear() right after does
-- not stop them).
function Event:set()
  if not self._set then
    self._set = true
    fifo_wake_all(self._waiters)
  end
end

function Event:clear()
  self._set = false
end

function Event:is_set()
  return self._set
end

function Event:__tostring()
  return self._set and "Event(set)" or "Event(clear)"
end

setmetatable(Event, {
  __call = function()
    return setmetatable({ _set = false, _waiters = new_fifo() }, Event)
  end,
})

return {
  Queue = Queue,
  Semaphore = Semaphore,
  Event = Event,
  QueueFull = QueueFull,
  QueueEmpty = QueueEmpty,
}
