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
-- Waiters wait in FIFO order and are served by hand-off: a put promises its
-- item to the first waiting getter (the item stays in place, so items always
-- leave in the order they were put), release gives its permit to the first
-- acquirer, a get moves the first waiting putter's value into the queue. The
-- waker asks core.wake, which says false for a task that ended (cancelled)
-- while it waited; such waiters are skipped and the next one is served.
--
-- A task can also be cancelled after it was handed an item or a permit and
-- before it ran again (`q:put(v); getter:cancel()`). Each wait therefore
-- passes a guard to core.suspend: the engine runs it, as a task of its own,
-- when the waiting task ends before it runs again, and the guard passes the
-- item or permit on to the next waiter, or gives it back. This holds for
-- every task: the main chunk, spawned tasks and items' tasks alike.
local core = require("aqueue.core")

local current, suspend, wake, now = core.current, core.suspend, core.wake, core.now
local TIMED_OUT = core.TIMED_OUT
local type, error, tostring, setmetatable = type, error, tostring, setmetatable
local floor, huge = math.floor, math.huge

-- waiter states
local WAITING, WOKEN, DONE, REVOKED = 0, 1, 2, 3

---------------------------------------------------------------------------
-- FIFO of waiter records: { task = id, state, value, owner, pos }, with
-- head/tail indexes (O(1) push and pop); `pos` is the record's index. Waiters
-- of ended tasks stay until popped. A waiter whose time ran out leaves at once
-- (fifo_remove): at either end its place is freed, in the middle it becomes
-- `false` (skipped, and compacted away once they are many), so a timed-out
-- waiter never takes a later item or permit.

local function new_fifo()
  return { head = 1, tail = 1, dead = 0 }
end

local function fifo_push(f, w)
  local t = f.tail
  f[t] = w
  w.pos = t
  f.tail = t + 1
end

local function fifo_compact(f)
  local j = f.head
  for i = f.head, f.tail - 1 do
    local w = f[i]
    f[i] = nil
    if w then
      f[j] = w
      w.pos = j
      j = j + 1
    end
  end
  f.tail = j
  f.dead = 0
end

local function fifo_remove(f, w)
  local i = w.pos
  if f[i] ~= w then
    return -- already popped
  end
  local h, t = f.head, f.tail
  if i == h then
    f[i] = nil
    h = h + 1
    while h < t and f[h] == false do
      f[h] = nil
      h = h + 1
      f.dead = f.dead - 1
    end
  elseif i == t - 1 then
    f[i] = nil
    t = t - 1
    while t > h and f[t - 1] == false do
      t = t - 1
      f[t] = nil
      f.dead = f.dead - 1
    end
  else
    f[i] = false
    f.dead = f.dead + 1
  end
  if h == t then
    h, t = 1, 1
  end
  f.head, f.tail = h, t
  if f.dead > 32 and f.dead * 2 > t - h then
    fifo_compact(f)
  end
end

-- The first waiter whose task is still waiting, now woken (core.wake said
-- true), or nil when none is left.
local function fifo_wake_first(f)
  local h, t = f.head, f.tail
  while h < t do
    local w = f[h]
    f[h] = nil
    h = h + 1
    if not w then
      f.dead = f.dead - 1
    elseif wake(w.task) then
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
    if w and wake(w.task) then
      w.state = WOKEN
    end
  end
  f.head, f.tail, f.dead = 1, 1, 0
end

---------------------------------------------------------------------------
-- Waiting.

-- The running task's id; raises (blaming the caller of the method) when the
-- method was called from a coroutine the script created itself, or where the
-- task cannot yield: before the method registers anything.
local function task_of(what)
  local me = current()
  if not me then
    error(what .. " waits, so it must be called from an aqueue task (the main chunk, process, "
      .. "a hook or a spawned task), not from a coroutine the script created itself: "
      .. "use aqueue.spawn", 3)
  end
  if not core.can_yield() then
    error(what .. ": attempt to yield across C-call boundary (it may wait, and cannot from a "
      .. "table.sort comparator, a string.gsub callback, a __gc or other metamethod called from C)", 3)
  end
  return me
end

-- A timeout argument of get, wait, acquire: nil (none) or seconds >= 0
-- (math.huge: none). Raises at the caller of the method.
local function check_timeout(what, t)
  if t == nil or t == huge then
    return nil
  end
  if type(t) ~= "number" or not (t >= 0) then
    error(("%s: timeout must be a number of seconds >= 0 (or nil for none), got %s")
      :format(what, tostring(t)), 3)
  end
  return t
end

-- Suspends the running task (without its worker slot) until `w` is woken, or
-- `timeout` seconds (nil: no limit) have passed. Returns true when woken,
-- false when the time ran out: then `w` has left the FIFO and took nothing.
-- Should the task end after it was handed something (`w.owner` set) and
-- before it runs again, the guard hands that on; ended while still waiting,
-- the guard takes `w` out of the FIFO.
local function wait(f, w, timeout)
  fifo_push(f, w)
  local function guard()
    if w.state == WOKEN and w.owner then
      w.state = REVOKED
      w.owner:_revoke(w)
    elseif w.state == WAITING then
      fifo_remove(f, w)
    end
  end
  local deadline = timeout and now() + timeout
  repeat
    local left = deadline and deadline - now()
    if left and left < 0 then
      left = 0
    end
    if suspend(true, guard, left) == TIMED_OUT and w.state == WAITING then
      fifo_remove(f, w)
      w.state = DONE
      return false
    end
  until w.state ~= WAITING
  w.state = DONE
  return true
end

-- `w` was woken with an item or a permit of `owner`, which it takes when it
-- resumes.
local function handed_off(w, owner)
  w.owner = owner
end

-- What every wait with a timeout returns when the time ran out (Queue:get,
-- Semaphore:acquire, Event:wait here; aqueue.wait_any and with_timeout too):
-- the error shape of I/O failures, nil, message, code.
local function timed_out()
  return nil, "timeout", "ETIMEDOUT"
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

-- The items are q[_head .. _tail - 1] (a nil is an item too). The first
-- _reserved of them are promised to getters that were woken and have not run
-- yet: they are no longer in the queue for qsize, empty, full and the other
-- getters, but they stay in place, so the order of the items never changes.
local function new_queue(maxsize)
  return setmetatable({
    maxsize = check_maxsize(maxsize),
    _head = 1, _tail = 1, _reserved = 0,
    _getters = new_fifo(),
    _putters = new_fifo(),
    _joiners = new_fifo(),
    _unfinished = 0,
  }, Queue)
end

local function available(q)
  return q._tail - q._head - q._reserved
end

local function is_full(q)
  local max = q.maxsize
  return max > 0 and q._tail - q._head - q._reserved >= max
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

-- `v` enters the queue at the back; a waiting getter is promised an item.
-- A queue with an `_entering(q, v)` function is told first, whichever task
-- makes v enter (its putter, or a getter moving a waiting putter's value in):
-- aqueue.diskqueue writes the item's row there, so rows follow queue order.
local function enter(q, v)
  local entering = q._entering
  if entering then
    entering(q, v)
  end
  q._unfinished = q._unfinished + 1
  local t = q._tail
  q[t] = v
  q._tail = t + 1
  local g = fifo_wake_first(q._getters)
  if g then
    q._reserved = q._reserved + 1
    handed_off(g, q)
  end
end

-- Takes the front item; the first waiting putter's value fills the place.
local function take(q)
  local v = pop_front(q)
  if not is_full(q) then
    local p = fifo_wake_first(q._putters)
    if p then
      local value = p.value
      p.value = nil
      enter(q, value)
    end
  end
  return v
end

-- A getter's task ended before it took the item promised to it: the promise
-- goes to the next waiting getter, or the item is free again.
function Queue:_revoke()
  local g = fifo_wake_first(self._getters)
  if g then
    handed_off(g, self)
  else
    self._reserved = self._reserved - 1
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
  enter(self, v)
end

-- q:put_nowait(v): adds v or raises aqueue.QueueFull.
function Queue:put_nowait(v)
  if is_full(self) then
    error(QueueFull, 2)
  end
  enter(self, v)
end

-- q:get([timeout]): the front item, waiting while the queue is empty; nil,
-- "timeout", "ETIMEDOUT" when none came within `timeout` seconds.
function Queue:get(timeout)
  local me = task_of("Queue:get()")
  timeout = check_timeout("Queue:get([timeout])", timeout)
  if available(self) > 0 then
    return take(self)
  end
  if not wait(self._getters, { task = me, state = WAITING }, timeout) then
    return timed_out()
  end
  self._reserved = self._reserved - 1
  return pop_front(self)
end

-- q:get_nowait(): the front item, or raises aqueue.QueueEmpty.
function Queue:get_nowait()
  if available(self) > 0 then
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
  return available(self)
end

function Queue:empty()
  return available(self) == 0
end

function Queue:full()
  return is_full(self)
end

function Queue:__tostring()
  return ("Queue(size %d of %s, %d unfinished)"):format(available(self),
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

-- sem:acquire([timeout]): takes a permit, waiting (FIFO) while there is none.
-- Returns true, or nil, "timeout", "ETIMEDOUT" when no permit came within
-- `timeout` seconds.
function Semaphore:acquire(timeout)
  local me = task_of("Semaphore:acquire()")
  timeout = check_timeout("Semaphore:acquire([timeout])", timeout)
  local n = self._value
  if n > 0 then
    self._value = n - 1
    return true
  end
  if not wait(self._waiters, { task = me, state = WAITING }, timeout) then
    return timed_out()
  end
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

-- ev:wait([timeout]): returns at once when the flag is set, else waits until
-- set(). Returns true, or nil, "timeout", "ETIMEDOUT" when it was not set
-- within `timeout` seconds.
function Event:wait(timeout)
  local me = task_of("Event:wait()")
  timeout = check_timeout("Event:wait([timeout])", timeout)
  if not self._set then
    if not wait(self._waiters, { task = me, state = WAITING }, timeout) then
      return timed_out()
    end
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
  timed_out = timed_out,
  check_timeout = check_timeout,
}
