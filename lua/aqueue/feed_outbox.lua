-- aqueue.feed_outbox: the lines of aqueue.feed written exactly once, with a
-- state file (SPEC sections 5 and 11). aqueue.feed formats the lines; the
-- sqlite backend (aqueue.backends.sqlite) tells this module when an item's
-- process() ended.
--
-- The protocol. A feed file F bound to a state file S has, in S:
--   feed_outbox(feed, seq, line)  lines committed but maybe not yet in F
--   feed_marks(feed, seq, size)   the last line known to be in F (by its seq),
--                                 and F's size in bytes right after it
-- 1. A line an item writes in its process() waits in memory, under the item.
--    A failed attempt (raised, timed out, retried) drops its lines.
-- 2. When process() succeeds, its lines get the feed's next seqs and go to
--    feed_outbox in the same transaction as the item's completion: the batch
--    is held (aq__statedb_hold) from the first insert to the completion. So a
--    completion committed has its lines in the outbox, and lines in the
--    outbox belong to a completion committed: an item that runs again after a
--    crash had none there.
-- 3. Once that commit is done (a pump task waits for it with db:flush();
--    the run's end also appends what is committed), the lines are appended to F, each with
--    one write(2), and the mark (last seq, F's size) is written with a delete
--    of the outbox rows up to it: that is a later commit. Appending and
--    writing the mark happen with no task running between, so the marks, in
--    commit order, always describe F as it was.
-- 4. On start (the feed's open), F is cut back to the mark's size (what was
--    appended after the last mark that committed, a partial line included),
--    then the outbox lines after the mark's seq are appended again, in seq
--    order, and marked. Each line is thus in F exactly once whatever moment
--    the process was killed at.
-- Lines written outside an item (the main chunk, a hook, a spawned task) are
-- appended at once and marked: they are not tied to a completion (a rerun
-- writes them again). A file shorter than its mark was changed by something
-- else (or lost by a power failure: the marks do not wait for fsync): that is
-- an error, and both files are left as they are.
--
-- Ownership: a bound feed's state (`p`, made by bind) belongs to its
-- aqueue.feed object; this module keeps the lines waiting for a commit
-- (queue) and for a completion (pending, weak by item), and the three
-- statements it prepares in each state file.
local ffi = require("ffi")
local core = require("aqueue.core")
local statedb = require("aqueue.statedb")
local statefile = require("aqueue.statefile")
local spawn = require("aqueue.handle").spawn

ffi.cdef(statedb.ffi_cdef) -- engine/modules/statedb/statedb_ffi.h
local C = ffi.C

local INSERT_SQL = "INSERT OR REPLACE INTO feed_outbox(feed, seq, line) VALUES (?, ?, ?)"
local MARK_SQL = "INSERT INTO feed_marks(feed, seq, size) VALUES (?, ?, ?) "
  .. "ON CONFLICT(feed) DO UPDATE SET seq = excluded.seq, size = excluded.size"
local DELETE_SQL = "DELETE FROM feed_outbox WHERE feed = ? AND seq <= ?"

local statements = {} -- db -> { insert =, mark =, delete = }
local pending = setmetatable({}, { __mode = "k" }) -- item -> { p, line, p, line, ... }
local queue, head, tail = {}, 1, 0 -- committing lines: { p =, seq =, line =, commit = }
local run_db, run_ptr = nil, nil   -- the state file of the run going on, if any
local pumping = false              -- a pump task is waiting for the lines' commit

local M = {}

local function prepared(db)
  local st = statements[db]
  if not st then
    st = { insert = db:prepare(INSERT_SQL), mark = db:prepare(MARK_SQL), delete = db:prepare(DELETE_SQL) }
    statements[db] = st
  end
  return st
end

-- Writes p's mark: its last appended line and its size (the next commit).
local function mark(p)
  p.db:write(p.stmts.mark, p.path, p.appended, p.size)
  p.db:write(p.stmts.delete, p.path, p.appended)
end

-- Appends `line` to p's file, counting its size. Returns true, or nil, err, code.
local function append(p, line)
  local ok, err, code = p.fh:append(line)
  if not ok then
    return nil, err, code
  end
  p.size = p.size + #line
  return true
end

-- The feed file `fh` at `path`, bound to this process's state file: cut
-- back to its mark and given the lines committed after it (step 4). Returns
-- its state, or nil when there is no state file. Raises at `level` when the
-- file is shorter than its mark or cannot be written.
function M.bind(path, fh, level)
  local file = statefile.state_path()
  if not file then
    return nil
  end
  local db = statefile.open(file, "state", level + 1)
  local p = { path = path, fh = fh, db = db, stmts = prepared(db) }
  local seq, size = db:rows("SELECT seq, size FROM feed_marks WHERE feed = ?", path)()
  local now = assert(fh:size())
  if seq == nil then
    seq, size = 0, now -- new to this state file: what it holds stays
  elseif now < size then
    error(("aqueue.feed.open: %s is %d bytes, shorter than the %d bytes the state file %s recorded: "
      .. "it was changed by something else (both files are left as they are: put the feed file back as it was, "
      .. "or start the run anew with another state file)"):format(path, now, size, file), level + 1)
  elseif now > size then
    local ok, err = fh:truncate(size)
    if not ok then
      error("aqueue.feed.open: " .. err, level + 1)
    end
  end
  p.appended, p.size = seq, size
  for s, line in db:rows("SELECT seq, line FROM feed_outbox WHERE feed = ? AND seq > ? ORDER BY seq", path, seq) do
    local ok, err = append(p, line)
    if not ok then
      error("aqueue.feed.open: " .. err, level + 1)
    end
    p.appended = s
  end
  p.seq = p.appended
  mark(p)
  return p
end

-- Appends a line written outside an item at once, and marks it.
-- Returns true, or nil, err, code.
function M.direct(p, line)
  local ok, err, code = append(p, line)
  if not ok then
    return nil, err, code
  end
  mark(p)
  return true
end

-- True when p's file is the running run's state file: a line an item's
-- process() writes then waits for the item's completion (step 1, M.add).
function M.in_run(p)
  return p.db == run_db
end

function M.add(p, item, line)
  local lines = pending[item]
  if not lines then
    lines = {}
    pending[item] = lines
  end
  lines[#lines + 1] = p
  lines[#lines + 1] = line
end

-- The lines whose commit is done go to their files (step 3).
local function pump()
  local done = C.aq__statedb_committed(run_ptr)
  local touched = {}
  while head <= tail and queue[head].commit <= done do
    local e = queue[head]
    queue[head] = nil
    head = head + 1
    local p = e.p
    if not p.closed and not p.failed then
      local ok, err = append(p, e.line)
      if ok then
        p.appended = e.seq
        touched[p] = true
      else
        p.failed = err
        core.log(("aqueue: feed %s: %s; its lines stay in the state file, to be appended on the next start")
          :format(p.path, err))
      end
    end
  end
  for p in pairs(touched) do
    mark(p)
  end
end

-- The pump task: while lines wait for their commit, waits for it and
-- appends them. Ends when none wait (or the run ended, or the file failed).
local function pump_task(db)
  while head <= tail and db == run_db do
    if not db:flush() or db ~= run_db then
      break
    end
    pump()
  end
  pumping = false
end

-- Item `item`'s process() ended (sqlite backend): on success its lines go
-- to the outbox (step 2). Returns true when the batch is then held: the
-- caller writes the completion and calls release().
function M.commit(item, ok)
  local lines = pending[item]
  if not lines then
    return false
  end
  pending[item] = nil
  if not ok then
    return false
  end
  C.aq__statedb_hold(run_ptr, 1)
  local commit = C.aq__statedb_pending_commit(run_ptr)
  for i = 1, #lines, 2 do
    local p, line = lines[i], lines[i + 1]
    -- (a state file that can no longer be written stops the run: then the
    -- completion does not commit either, and the item runs again next time)
    if p.db:write(p.stmts.insert, p.path, p.seq + 1, line) then
      p.seq = p.seq + 1
      tail = tail + 1
      queue[tail] = { p = p, seq = p.seq, line = line, commit = commit }
    end
  end
  if not pumping then
    pumping = true
    spawn(pump_task, run_db)
  end
  return true
end

function M.release()
  C.aq__statedb_hold(run_ptr, 0)
end

-- An attempt failed and will be retried: its lines are dropped (step 1).
function M.drop(item)
  pending[item] = nil
end

-- A run with state file `db` starts.
function M.run_started(db)
  run_db, run_ptr = db, ffi.cast("struct aq_statedb *", db:pointer())
end

-- The run ended; `committed` when everything it wrote is committed: its
-- lines are then appended. Lines left (a failed commit) stay in the outbox
-- only, for the next start.
function M.run_ended(committed)
  if committed and run_ptr then
    pump()
  end
  run_db, run_ptr = nil, nil
  queue, head, tail = {}, 1, 0
end

-- p's feed is closed: its lines still waiting stay in the outbox, for the
-- next start. Before closing, lines committed are appended.
function M.close(p)
  if run_ptr and p.db == run_db and head <= tail then
    pump()
  end
  p.closed = true
end

return M
