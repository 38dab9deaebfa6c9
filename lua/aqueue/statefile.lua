-- aqueue.statefile: the SQLite files of this process (engine/modules/statedb/statedb.c), one
-- open connection per path, shared by whoever uses it: a run's state, the
-- stores kept in it. Files stay open until the engine exits, which commits
-- what is left.
local core = require("aqueue.core")
local statedb = require("aqueue.statedb")

local open_files = {} -- path -> { db = , kind = }
local active_state = nil -- the path of the running run_queue's state file

local M = {}

-- The open db of `path`, opened as `kind` ("state", "store", "diskqueue").
-- A file that cannot be used (damaged, foreign, newer, read-only, in use)
-- raises the reason at `level`; the file is left as it was.
function M.open(path, kind, level)
  if type(path) ~= "string" or path == "" then
    error(("a %s file path must be a non-empty string, got %s"):format(kind, tostring(path)), level + 1)
  end
  local f = open_files[path]
  if f then
    if f.kind ~= kind then
      error(("%s is already open as a %s file, not a %s file"):format(path, f.kind, kind), level + 1)
    end
    return f.db
  end
  local db, err = statedb.open(path, kind)
  if not db then
    error(err, level + 1)
  end
  open_files[path] = { db = db, kind = kind }
  return db
end

-- The state file of this process: the running run_queue's, else --state's
-- (nil for none).
function M.state_path()
  return active_state or select(4, core.defaults())
end

function M.set_active_state(path)
  active_state = path
end

return M
