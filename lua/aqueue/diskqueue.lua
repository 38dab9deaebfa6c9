-- aqueue.diskqueue: a durable FIFO with the aiodiskqueue interface (SPEC
-- section 5), kept in the `queue` table of an aqueue SQLite file of its own
-- (engine/modules/statedb/statements.c; kind "diskqueue").
--
--   local dq = aqueue.diskqueue.open("jobs.db", { maxsize = 100 })
--   dq:put(job)                     -- returns once the job is on disk
--   local job = dq:get()            -- the oldest job; it stays on disk...
--   work_on(job)
--   dq:task_done()                  -- ...until this: a crash before it loses nothing
--
-- Semantics: those of aqueue.Queue (asyncio.Queue), which it is built on:
-- get/put wait (without holding a worker slot) while the queue is empty/full,
-- put_nowait/get_nowait raise aqueue.QueueFull / aqueue.QueueEmpty (the same
-- values, also diskqueue.QueueFull / diskqueue.QueueEmpty), join waits until
-- every item has had its task_done. qsize, empty, full and maxsize count the
-- items not yet got. nil is a value like any other.
--
-- On disk:
-- * An item's row is written when it enters the queue, in queue order, and
--   is deleted at task_done(). Items left in the file are loaded in order
--   when the file is opened, so after a crash or a stop an item that was got
--   but not marked done is delivered again: at-least-once delivery.
-- * put() returns once the item is committed (it yields for the group
--   commit, at most ~50 ms); put_nowait() returns at once and the item is
--   committed within ~50 ms. task_done() yields too (as in aiodiskqueue),
--   until the item's removal is committed: once it returned, a crash never
--   delivers that item again. So a crash delivers again at most the items
--   got and not yet through task_done: one per consumer that was busy.
-- * Values are saved as JSON (what aqueue.store holds): a value that cannot be
--   saved raises at put, naming the queue and the offending field. get()
--   returns the value as read back from JSON (a copy), the same as it would
--   come after a restart.
--
-- task_done() marks done the oldest item the calling task got and has not
-- marked done yet; when the calling task holds none (a consumer handing its
-- item to another task), the oldest outstanding item of any task. Calling it
-- with no item outstanding raises, as asyncio does.
--
-- Ownership: this module owns the queue objects (one per path for the whole
-- process: opening the path again returns the same queue) and the statements
-- it prepares; aqueue.statefile owns the open file, which the engine commits
-- and closes at exit. The waiting (hand-off, cancelled waiters) is
-- aqueue.sync's Queue, holding item records { id =, json = }; its
-- `_entering` hook writes each record's row as it enters.
local cjson = require("cjson").new()
local core = require("aqueue.core")
local statedb = require("aqueue.statedb")
local statefile = require("aqueue.statefile")
local sync = require("aqueue.sync")

local type, error, tostring, pairs, select = type, error, tostring, pairs, select
local setmetatable, remove, floor, huge = setmetatable, table.remove, math.floor, math.huge
local current, encode, decode, null = core.current, statedb.encode, cjson.decode, cjson.null

local INSERT_SQL = "INSERT INTO queue(id, value) VALUES (?, ?)"
local DELETE_SQL = "DELETE FROM queue WHERE id = ?"
local NIL_JSON = "null" -- nil; statedb.encode never makes null otherwise

local USAGE = "aqueue.diskqueue.open(path [, { maxsize = n }])"

local opened = {} -- path -> the queue

local DiskQueue = { __name = "DiskQueue" }
DiskQueue.__index = DiskQueue

---------------------------------------------------------------------------
-- Items on disk

-- The queue's _entering hook: an item record enters the queue (from a put,
-- or from a get moving a waiting putter's record in). Records loaded from the
-- file already have their id and row.
local function entering(q, rec)
  if rec.id then
    return
  end
  local dq = q._disk
  local id = dq._next_id
  dq._next_id = id + 1
  rec.id = id
  -- A failed write is reported by the engine, which stops the run; put()
  -- then returns nil, err from its flush.
  dq._db:write(dq._insert, id, rec.json)
end

local function json_of(dq, v, level)
  if v == nil then
    return NIL_JSON
  end
  local json, problem, where = encode(v)
  if not json then
    error(("diskqueue %s: the value cannot be saved: %s %s"):format(dq.path,
      where ~= "" and "field " .. where or "it", problem), level + 1)
  end
  return json
end

local function value_of(rec)
  local v = decode(rec.json)
  if v == null then
    return nil
  end
  return v
end

---------------------------------------------------------------------------
-- Outstanding items (got, not yet marked done). `_owner[id]` is the task that
-- got it (false outside a task); `_mine[task]` that task's ids, oldest
-- first; `_got[_got_head .. _got_tail - 1]` every outstanding id, oldest
-- first (ids are got in increasing order), done ones trimmed from the front.

local function got(dq, rec)
  local me = current() or false
  local id = rec.id
  dq._owner[id] = me
  local mine = dq._mine[me]
  if mine then
    mine[#mine + 1] = id
  else
    dq._mine[me] = { id }
  end
  local t = dq._got_tail
  dq._got[t] = id
  dq._got_tail = t + 1
  return value_of(rec)
end

-- Item `id` is done: out of its owner's list and, once at the front, of _got.
local function forget(dq, id)
  local owner = dq._owner[id]
  dq._owner[id] = nil
  local mine = dq._mine[owner]
  for i = 1, #mine do
    if mine[i] == id then
      remove(mine, i)
      break
    end
  end
  if #mine == 0 then
    dq._mine[owner] = nil
  end
  local list, h, t = dq._got, dq._got_head, dq._got_tail
  while h < t and dq._owner[list[h]] == nil do
    list[h] = nil
    h = h + 1
  end
  if h == t then
    h, t = 1, 1
  end
  dq._got_head, dq._got_tail = h, t
end

---------------------------------------------------------------------------
-- The interface

-- The methods keep their frame (no tail calls into the Queue), so errors
-- blame their caller.

-- dq:put(v): adds v at the back, waiting while the queue is full; returns
-- true once v is committed, or nil, err when the file cannot be written.
function DiskQueue:put(v)
  local rec = { json = json_of(self, v, 2) }
  self._queue:put(rec)
  local ok, err = self._db:flush()
  return ok, err
end

-- dq:put_nowait(v): adds v (committed within ~50 ms), or raises QueueFull.
function DiskQueue:put_nowait(v)
  self._queue:put_nowait({ json = json_of(self, v, 2) })
end

-- dq:get(): the oldest item, waiting while the queue is empty. The item stays
-- on disk until task_done().
function DiskQueue:get()
  local rec = self._queue:get()
  local v = got(self, rec)
  return v
end

-- dq:get_nowait(): the oldest item, or raises QueueEmpty.
function DiskQueue:get_nowait()
  local v = got(self, self._queue:get_nowait())
  return v
end

-- dq:task_done(): the oldest item the calling task got (else the oldest got
-- by any task) is processed: its row is deleted. Returns true once that is
-- committed (yields, as put does), or nil, err when the file cannot be
-- written.
function DiskQueue:task_done()
  local me = current()
  if not me then
    error("DiskQueue:task_done() waits for the commit, so it must be called from an aqueue task, "
      .. "not from a coroutine the script created itself: use aqueue.spawn", 2)
  end
  if not core.can_yield() then -- before the item is marked done
    error("DiskQueue:task_done(): attempt to yield across C-call boundary (it waits for the commit, "
      .. "and cannot from a table.sort comparator, a string.gsub callback, a __gc or other "
      .. "metamethod called from C)", 2)
  end
  local mine = self._mine[me]
  local id = mine and mine[1]
  if not id then
    if self._got_head == self._got_tail then
      error("DiskQueue:task_done() called more times than items were got", 2)
    end
    id = self._got[self._got_head]
  end
  forget(self, id)
  self._db:write(self._delete, id)
  self._queue:task_done()
  local ok, err = self._db:flush()
  return ok, err
end

-- dq:join(): waits until every item put (or loaded at open) is marked done,
-- and their removal committed.
function DiskQueue:join()
  self._queue:join()
  self._db:flush()
end

function DiskQueue:qsize()
  return self._queue:qsize()
end

function DiskQueue:empty()
  return self._queue:empty()
end

function DiskQueue:full()
  return self._queue:full()
end

function DiskQueue:__tostring()
  local q = self._queue
  return ("DiskQueue(%s: size %d of %s, %d unfinished)"):format(self.path, q:qsize(),
    self.maxsize > 0 and tostring(self.maxsize) or "unbounded", q._unfinished)
end

---------------------------------------------------------------------------
-- Opening

local function check_options(opts)
  if opts == nil then
    return 0
  end
  if type(opts) ~= "table" then
    error(USAGE .. ": the options must be a table, got " .. type(opts), 3)
  end
  for k in pairs(opts) do
    if k ~= "maxsize" then
      error(USAGE .. ": unknown option " .. tostring(k), 3)
    end
  end
  local maxsize = opts.maxsize
  if maxsize == nil then
    return 0
  end
  if type(maxsize) ~= "number" or maxsize < 0 or maxsize ~= floor(maxsize) then
    error(USAGE .. ": maxsize must be a whole number >= 0 (0 or nil: unbounded), got " .. tostring(maxsize), 3)
  end
  return maxsize == huge and 0 or maxsize
end

-- diskqueue.open(path [, { maxsize = n }]) -> the queue, with the items left
-- in the file (in order). Raises when the file cannot be used (not an aqueue
-- disk queue file, in use by another process, ...), leaving it as it is.
local function open(path, opts, ...)
  if type(path) ~= "string" or path == "" then
    error(USAGE .. ": path must be a non-empty string, got " .. tostring(path), 2)
  end
  if select("#", ...) > 0 then
    error(USAGE .. ": too many arguments", 2)
  end
  local maxsize = check_options(opts)
  local dq = opened[path]
  if dq then
    if dq.maxsize ~= maxsize then
      error(("%s: %s is already open with maxsize %d, not %d"):format(USAGE, path, dq.maxsize, maxsize), 2)
    end
    return dq
  end
  local db = statefile.open(path, "diskqueue", 2)
  local q = sync.Queue() -- unbounded while the file's items are loaded
  local last = 0
  for id, json in db:rows("SELECT id, value FROM queue ORDER BY id") do
    q:put_nowait({ id = id, json = json })
    last = id
  end
  q.maxsize = maxsize -- may be below what was loaded: puts wait until it is not
  dq = setmetatable({
    path = path,
    maxsize = maxsize,
    _db = db,
    _insert = db:prepare(INSERT_SQL),
    _delete = db:prepare(DELETE_SQL),
    _queue = q,
    _next_id = last + 1,
    _owner = {}, _mine = {},
    _got = {}, _got_head = 1, _got_tail = 1,
  }, DiskQueue)
  q._disk = dq
  q._entering = entering
  opened[path] = dq
  return dq
end

return {
  open = open,
  QueueFull = sync.QueueFull,
  QueueEmpty = sync.QueueEmpty,
}
