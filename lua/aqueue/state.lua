-- aqueue.state: the run's state file (SPEC section 5), the Lua half of
-- engine/modules/statedb/item_rows.c. run_queue calls in here at each step of an item's life;
-- each call appends to the file's next group commit and never waits.
--
-- An item's row (table `items`) is written when it is enqueued (pending),
-- when its process() ends (open: done or failed, with the error) or schedules
-- a retry (attempts), and when its subtree is finished (its hook ran). Rows
-- are kept after that: finished ones for dedup keys and for recognizing the
-- children of a parent that runs again after a crash.
--
-- Identity: an item's row id (`_aq_pid`) is new with each enqueue; a child is
-- also known by (parent row, ordinal): the nth enqueue made by its parent.
-- When a parent whose completion was not committed runs again, its nth
-- enqueue is the same item as its nth child recorded before (when the class
-- matches), so the child is not enqueued twice.
local ffi = require("ffi")
local cjson = require("cjson").new()
local statedb = require("aqueue.statedb")
local statefile = require("aqueue.statefile")
local keys = require("aqueue.keys")

ffi.cdef(statedb.ffi_cdef) -- engine/modules/statedb/statedb_ffi.h
local C = ffi.C
local encode, add_item = statedb.encode, statedb.add_item
local type, rawget, next, huge = type, rawget, next, math.huge

-- An item row's state and outcome: the engine's values (statedb.h).
local PENDING, OPEN, FINISHED = statedb.STATE_PENDING, statedb.STATE_OPEN, statedb.STATE_FINISHED
local NO_OUTCOME, DONE, FAILED = statedb.OUTCOME_NONE, statedb.OUTCOME_DONE, statedb.OUTCOME_FAILED
local ROW_VALUES = {
  PENDING = PENDING, OPEN = OPEN, FINISHED = FINISHED,
  NO_OUTCOME = NO_OUTCOME, DONE = DONE, FAILED = FAILED,
}

-- the run being persisted
local db = nil   -- its open file (aqueue.statedb), nil when the run has none
local ptr = nil  -- db's pointer for the FFI
local path = nil
local next_pid = 1
local root_ordinal = 0
local known = {} -- parent pid -> { [ordinal] = { class =, item = live item | false, error = } }
local finished_here = {} -- state files whose run ended in this process

local M = {}

-- `text` with each $NAME of a state or outcome (PENDING, OPEN, FINISHED,
-- NO_OUTCOME, DONE, FAILED) replaced by its value, for SQL on the items table.
function M.sql(text)
  return (text:gsub("%$([%u_]+)", function(name)
    return tostring(assert(ROW_VALUES[name], name))
  end))
end
M.PENDING, M.OPEN, M.FINISHED = PENDING, OPEN, FINISHED
M.NO_OUTCOME, M.DONE, M.FAILED = NO_OUTCOME, DONE, FAILED

local key_text, key_value = keys.text, keys.value

-- Opens `file` for a run. Options: fresh (discard its run), retry_failed (put
-- failed items back). Returns whether the file holds a run to resume. Raises
-- (at `level`) when the file cannot be used, leaving it as it was.
function M.start(file, fresh, retry_failed, level)
  if db then
    error("run_queue: a run with state file " .. path .. " is already running", level + 1)
  end
  if finished_here[file] then
    error(("run_queue: %s holds the run of an earlier run_queue call of this script; "
      .. "give each run_queue call its own state file"):format(file), level + 1)
  end
  local d = statefile.open(file, "state", level + 1)
  if not fresh then
    local problem, advice = M.check_rows(d)
    if problem then
      error(("run_queue: cannot resume the run in %s: %s (the file is left as it was; %s)")
        :format(file, problem, advice and advice .. ", or start anew with --fresh" or "start anew with --fresh"),
        level + 1)
    end
  end
  if fresh then
    assert(d:exec("DELETE FROM items"))
  elseif retry_failed then
    local n = M.put_back_failed(d)
    require("aqueue.core").log(("aqueue: %d failed item%s of %s put back to be run again"):format(n,
      n == 1 and "" or "s", file))
  end
  db, ptr, path = d, ffi.cast("struct aq_statedb *", d:pointer()), file
  next_pid, root_ordinal, known = 1, 0, {}
  local max_pid = d:rows("SELECT coalesce(max(pid), 0) FROM items")()
  next_pid = max_pid + 1
  statefile.set_active_state(file)
  return max_pid > 0
end

-- What is wrong with the first row (in row order) that aqueue did not write
-- as it is, e.g. one edited by hand: "item 17 has fields that are not JSON:
-- ...", or nil when every row can be loaded. One pass over the table, reading
-- only; run before anything is written to the file.
local ROW_PROBLEM_SQL = M.sql([[
SELECT pid, problem, state, outcome, attempts, ordinal, class, parent, key, fields FROM (
  SELECT pid, state, outcome, attempts, ordinal, class, parent, key, fields, CASE
    WHEN typeof(state) <> 'integer' OR state NOT IN ($PENDING, $OPEN, $FINISHED) THEN 'state'
    WHEN typeof(outcome) <> 'integer' OR outcome NOT IN ($NO_OUTCOME, $DONE, $FAILED) THEN 'outcome'
    WHEN typeof(attempts) <> 'integer' OR attempts < 0 THEN 'attempts'
    WHEN typeof(ordinal) <> 'integer' THEN 'ordinal'
    WHEN typeof(class) <> 'text' OR class = '' THEN 'class'
    WHEN typeof(parent) <> 'integer' OR parent < 0 THEN 'parent'
    WHEN parent <> 0 AND NOT EXISTS (SELECT 1 FROM items p WHERE p.pid = i.parent) THEN 'parent_missing'
    WHEN parent >= pid AND parent <> 0 THEN 'parent_after'
    WHEN key IS NOT NULL AND (typeof(key) <> 'text' OR NOT (key GLOB 's:*' OR key GLOB 'n:?*')) THEN 'key'
    WHEN (state <> $FINISHED OR outcome = $FAILED) AND typeof(fields) <> 'text' THEN 'fields_missing'
    WHEN (state <> $FINISHED OR outcome = $FAILED) AND NOT json_valid(fields) THEN 'fields_json'
    WHEN (state <> $FINISHED OR outcome = $FAILED) AND json_type(fields) <> 'object' THEN 'fields_object'
  END AS problem FROM items i)
WHERE problem IS NOT NULL ORDER BY pid LIMIT 1]])
local STATES_SHOWN = ("%d pending, %d open, %d finished"):format(PENDING, OPEN, FINISHED)
local OUTCOMES_SHOWN = ("%d none yet, %d done, %d failed"):format(NO_OUTCOME, DONE, FAILED)

-- A column's value as the message shows it: text quoted, shortened.
local function shown(v)
  if type(v) == "string" then
    return ("%q"):format(#v > 60 and v:sub(1, 57) .. "..." or v)
  end
  return tostring(v)
end

-- The message for item `pid`'s fields, which cjson could not decode or did
-- not decode to an object.
local function fields_problem(pid, fields, decode_error)
  if decode_error then
    return ("item %d has fields that are not JSON: %s (%s)"):format(pid, shown(fields), decode_error)
  end
  return ("item %d has fields that are not a JSON object: %s"):format(pid, shown(fields))
end

local function find_problem(d)
  local pid, problem, st, outcome, attempts, ordinal, class, parent, key, fields = d:rows(ROW_PROBLEM_SQL)()
  if pid then
    if problem == "state" then
      return ("item %d has an unknown state %s (%s)"):format(pid, shown(st), STATES_SHOWN)
    elseif problem == "outcome" then
      return ("item %d has an unknown outcome %s (%s)"):format(pid, shown(outcome), OUTCOMES_SHOWN)
    elseif problem == "attempts" then
      return ("item %d has attempts %s, not a count"):format(pid, shown(attempts))
    elseif problem == "ordinal" then
      return ("item %d has an ordinal %s, not a whole number"):format(pid, shown(ordinal))
    elseif problem == "class" then
      return ("item %d has a class %s, not a class name"):format(pid, shown(class))
    elseif problem == "parent" then
      return ("item %d has a parent %s, not an item id (0 for none)"):format(pid, shown(parent))
    elseif problem == "parent_after" then
      return ("item %d has a parent, item %d, that comes after it"):format(pid, parent)
    elseif problem == "parent_missing" then
      return ("item %d has a parent, item %d, that is not in the file"):format(pid, parent)
    elseif problem == "key" then
      return ("item %d has a key %s that aqueue did not write (s:TEXT or n:NUMBER)"):format(pid, shown(key))
    elseif problem == "fields_missing" then
      if fields == nil then
        return ("item %d has no fields (NULL), and it is not finished"):format(pid)
      end
      return ("item %d has fields %s that are not JSON text"):format(pid, shown(fields))
    end
    local ok, decoded = pcall(cjson.decode, fields)
    return fields_problem(pid, fields, not ok and tostring(decoded):gsub("^.-: ", "") or nil)
  end
  for id, k in d:rows("SELECT pid, key FROM items WHERE key GLOB 'n:*' ORDER BY pid") do
    if key_value(k) == nil then
      return ("item %d has a key %s that aqueue did not write (s:TEXT or n:NUMBER)"):format(id, shown(k))
    end
  end
  return nil
end

-- nil when every row of the file can be loaded, else what is wrong, and
-- "fix or delete that row" when it is a row (not a damaged file), for the
-- caller's message.
function M.check_rows(d)
  local ok, problem = pcall(find_problem, d)
  if not ok then
    return tostring(problem) -- a damaged file: "cannot read FILE: ..."
  end
  return problem, problem and "fix or delete that row"
end

-- Failed items become pending again, with their attempts reset. Returns how
-- many. Their hooks and their parents' hooks, if already run, do not run again.
local PUT_BACK_FAILED_SQL = M.sql(
  "UPDATE items SET state = $PENDING, outcome = $NO_OUTCOME, attempts = 0, error = NULL WHERE outcome = $FAILED")
function M.put_back_failed(d)
  return assert(d:exec(PUT_BACK_FAILED_SQL))
end

-- The file's figures: items done and failed for good, and items left to run.
local COUNTS_SQL = M.sql("SELECT count(CASE WHEN state <> $PENDING AND outcome = $DONE THEN 1 END), "
  .. "count(CASE WHEN state <> $PENDING AND outcome = $FAILED THEN 1 END), "
  .. "count(CASE WHEN state = $PENDING THEN 1 END) FROM items")
local function counts_of(d)
  local done, failed, pending = d:rows(COUNTS_SQL)()
  return { done = done, failed = failed, pending = pending }
end

-- The run ended: commit what it wrote (yields until then) and let go.
-- Returns true and the file's figures ({ done, failed, pending }), or nil
-- and why the file could not be written.
function M.finish()
  local d = db
  finished_here[path] = true
  db, ptr, path, known = nil, nil, nil, {}
  statefile.set_active_state(nil)
  local ok, why = d:flush()
  if not ok then
    return nil, why
  end
  return true, nil, counts_of(d)
end

-- The run could not start (a class is missing...): let go, writing nothing.
function M.abandon()
  db, ptr, path, known = nil, nil, nil, {}
  statefile.set_active_state(nil)
end

local function unsavable(class_name, field, problem, level, where)
  error(("enqueue: %s.%s cannot be saved in %s: it %s"):format(class_name, field, where or "the state file", problem),
    level + 1)
end

-- Checks that a new item's fields can be saved; raises at `level` naming the
-- field that cannot (and `where`, "the state file" unless given: a shared
-- run keeps its items' fields as JSON too). Plain fields are checked here, in Lua the JIT compiles;
-- tables by the C encoder. The loop calls next() itself rather than using
-- `for k, v in next, child`: LuaJIT 2.1 (Debian's 2022 snapshot) specialises
-- that form (ITERN), and after the specialisation is undone on a hot trace the
-- loop can be handed a key that is not in the table (the state_kill test saw
-- `Leaf.[6.9e-310]`). Explicit next() calls are compiled by another path.
function M.check(child, class_name, level, where)
  local k, v = next(child)
  while k ~= nil do
    local tv = type(v)
    if type(k) ~= "string" then
      unsavable(class_name, "[" .. tostring(k) .. "]", "is not a field with a string name", level + 1, where)
    elseif tv == "number" then
      if v ~= v or v == huge or v == -huge then
        unsavable(class_name, k, "is not a finite number (JSON cannot hold it)", level + 1, where)
      end
    elseif tv == "table" then
      if k ~= "parent" then
        local json, problem, at = encode(v)
        if not json then
          local sep = (at == "" or at:sub(1, 1) == "[") and "" or "."
          unsavable(class_name, k .. sep .. at, problem, level + 1, where)
        end
      end
    elseif tv ~= "string" and tv ~= "boolean" and k ~= "parent" then
      unsavable(class_name, k, "is a " .. tv, level + 1, where)
    end
    k, v = next(child, k)
  end
end

-- The ordinal of the next child `parent` enqueues (a run-wide one for roots).
function M.next_ordinal(parent)
  if parent == nil then
    root_ordinal = root_ordinal + 1
    return root_ordinal
  end
  local n = (rawget(parent, "_aq_nchildren") or 0) + 1
  parent._aq_nchildren = n
  return n
end

-- The item a re-running parent enqueued before the restart as its `ordinal`th
-- child, when of class `class_name`: the live item, or false when it finished
-- (then also its error, if it failed). nil when there is none.
function M.known_child(parent, ordinal, class_name)
  local children = known[rawget(parent, "_aq_pid")]
  local k = children and children[ordinal]
  if not k or k.class ~= class_name then
    return nil
  end
  children[ordinal] = nil
  return k.item, k.error
end

-- A new item was enqueued: its row id. The caller then writes the row:
--   statedb.add_item(state.db(), child, pid, parent_pid, ordinal, class_name, key_text)
-- as the last thing it does: a C function ends the JIT's trace, and what
-- follows it up to the caller's loop runs in the interpreter.
function M.new_row(child, parent, key)
  local pid = next_pid
  next_pid = pid + 1
  child._aq_pid = pid
  return pid, parent and rawget(parent, "_aq_pid") or 0, key ~= nil and key_text(key) or nil
end

function M.db()
  return db
end

M.add_item = add_item

function M.retrying(item, attempts)
  C.aq__statedb_item_attempts(ptr, item._aq_pid, attempts)
end

function M.processed(item, ok, attempts, err)
  if ok then
    C.aq__statedb_item_processed(ptr, item._aq_pid, 1, attempts, nil, 0)
  else
    C.aq__statedb_item_processed(ptr, item._aq_pid, 0, attempts, err, #err)
  end
end

function M.finished(item)
  local pid = rawget(item, "_aq_pid")
  if pid then
    item._aq_pid = false -- written once
    C.aq__statedb_item_finished(ptr, pid)
  end
end

local FINISHED_COUNTS_SQL = M.sql(
  "SELECT class, outcome, count(*) FROM items WHERE state = $FINISHED GROUP BY 1, 2")
local UNFINISHED_CLASSES_SQL = M.sql("SELECT DISTINCT class FROM items WHERE state <> $FINISHED")
local UNFINISHED_ROWS_SQL = M.sql("SELECT pid, parent, ordinal, class, fields, state, outcome, attempts FROM items "
  .. "WHERE state <> $FINISHED ORDER BY pid")
local FINISHED_CHILDREN_OF_PENDING_SQL = M.sql("SELECT pid, parent, ordinal, class, outcome, error FROM items "
  .. "WHERE state = $FINISHED AND parent IN (SELECT pid FROM items WHERE state = $PENDING)")

-- Loads the run to resume. For each unfinished row, in row order (a parent
-- before its children), builds the item and calls
--   restore(item, parent_item_or_nil, open, attempts)
-- which puts it in the scheduler: pending items to run, open ones to wait for
-- their children and hook. Returns the keys seen before (for dedup) and the
-- counts of the rows: { pending =, open =, done =, failed =, tracked_done = }.
-- `classes` maps names to item classes; a missing one raises at `level`.
function M.load(classes, restore, level)
  local seen_keys = {}
  for k in db:rows("SELECT key FROM items WHERE key IS NOT NULL") do
    seen_keys[key_value(k)] = true
  end
  local counts = { pending = 0, open = 0, done = 0, failed = 0, tracked_done = 0 }
  for class_name, outcome, n in db:rows(FINISHED_COUNTS_SQL) do
    local cls = classes[class_name]
    if outcome == DONE then
      counts.done = counts.done + n
      if cls and cls.track_overall then
        counts.tracked_done = counts.tracked_done + n
      end
    elseif outcome == FAILED then
      counts.failed = counts.failed + n
    end
  end
  local missing = {}
  for class_name in db:rows(UNFINISHED_CLASSES_SQL) do
    if not classes[class_name] then
      missing[#missing + 1] = class_name
    end
  end
  if #missing > 0 then
    error(("run_queue: cannot resume the run in %s: its items are of class%s %s, which this script does not define "
      .. "(Item:extend(%q)); --fresh starts anew"):format(path, #missing > 1 and "es" or "",
      table.concat(missing, ", "), missing[1]), level + 1)
  end
  local live = {} -- pid -> item, for the unfinished ones
  local pending_parents = {}
  for pid, parent_pid, ordinal, class_name, fields, state, outcome, attempts in db:rows(UNFINISHED_ROWS_SQL) do
    -- check_rows found every row loadable; cjson may still refuse what
    -- SQLite's json_valid took (nesting deeper than it allows).
    local ok, decoded = pcall(cjson.decode, fields)
    if not ok or type(decoded) ~= "table" then
      error(("run_queue: cannot resume the run in %s: %s (fix or delete that row, or start anew with --fresh)")
        :format(path, fields_problem(pid, fields, not ok and tostring(decoded) or nil)), level + 1)
    end
    local item = setmetatable(decoded, classes[class_name])
    item._aq_pid = pid
    local parent = live[parent_pid] -- nil for a root, or a retried failed item whose parent finished
    if parent then
      item.parent = parent
      if pending_parents[parent_pid] then
        known[parent_pid][ordinal] = { class = class_name, item = item }
      end
    end
    live[pid] = item
    if state == PENDING then
      pending_parents[pid] = true
      known[pid] = {}
      counts.pending = counts.pending + 1
    else
      counts.open = counts.open + 1
      if outcome == FAILED then
        counts.failed = counts.failed + 1
      else
        counts.done = counts.done + 1
      end
    end
    restore(item, parent, state == OPEN, attempts)
  end
  for pid, parent_pid, ordinal, class_name, outcome, err in db:rows(FINISHED_CHILDREN_OF_PENDING_SQL) do
    known[parent_pid][ordinal] = { class = class_name, item = false, error = outcome == FAILED and err or nil }
  end
  return seen_keys, counts
end

return M
