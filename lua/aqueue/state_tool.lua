-- aqueue.state_tool: the command-line tools on a state file that run no
-- script: `aqueue-run --state FILE --status` and `--retry-failed` without a
-- script (engine_load_tool runs main(command)).
local core = require("aqueue.core")
local statefile = require("aqueue.statefile")
local state = require("aqueue.state")
local shorten = require("aqueue.status_text").shorten

local MAX_LISTED = 50 -- failed items printed by --status
local OPEN, FINISHED = state.OPEN, state.FINISHED
local DONE, FAILED = state.DONE, state.FAILED
local FAILED_ROWS_SQL = state.sql(
  "SELECT pid, class, fields, attempts, error FROM items WHERE outcome = $FAILED ORDER BY pid LIMIT ?")

local function fail(message, status)
  io.stderr:write("aqueue-run: ", message, "\n")
  os.exit(status)
end

local function open_existing(path)
  local f = io.open(path, "rb")
  if not f then
    fail(path .. " does not exist (no run was saved there)", 2)
  end
  f:close()
  local ok, db = pcall(statefile.open, path, "state", 1)
  if not ok then
    fail(db, 1)
  end
  local problem, advice = state.check_rows(db)
  if problem then
    fail(("%s: %s (the file is left as it was%s)"):format(path, problem, advice and "; " .. advice or ""), 1)
  end
  return db
end

local function status(path)
  local db = open_existing(path)
  local by_class, order = {}, {}
  local total = { pending = 0, done = 0, failed = 0 }
  local open_rows, unfinished = 0, 0 -- rows waiting for children or hooks; rows not finished
  for class, st, outcome, n in db:rows("SELECT class, state, outcome, count(*) FROM items GROUP BY 1, 2, 3 ORDER BY 1") do
    local c = by_class[class]
    if not c then
      c = { pending = 0, done = 0, failed = 0 }
      by_class[class] = c
      order[#order + 1] = class
    end
    -- an item counts once: failed or done once its process ended, else to run
    local what = outcome == FAILED and "failed" or outcome == DONE and "done" or "pending"
    c[what] = c[what] + n
    total[what] = total[what] + n
    if st == OPEN then
      open_rows = open_rows + n
    end
    if st ~= FINISHED then
      unfinished = unfinished + n
    end
  end
  local out = {}
  out[#out + 1] = ("state file %s"):format(path)
  if #order == 0 then
    out[#out + 1] = "  no run saved yet"
  else
    out[#out + 1] = ("  %s: %d to run, %d done, %d failed (%d waiting for their children or hooks)"):format(
      unfinished == 0 and "complete" or "unfinished", total.pending, total.done, total.failed, open_rows)
    out[#out + 1] = ("  %-24s %9s %9s %9s"):format("class", "to run", "done", "failed")
    for _, class in ipairs(order) do
      local c = by_class[class]
      out[#out + 1] = ("  %-24s %9d %9d %9d"):format(shorten(class, 24), c.pending, c.done, c.failed)
    end
  end
  if total.failed > 0 then
    out[#out + 1] = ("failed items (%d):"):format(total.failed)
    local listed = 0
    for pid, class, fields, attempts, err in db:rows(FAILED_ROWS_SQL, MAX_LISTED) do
      listed = listed + 1
      local after = attempts > 1 and (" (after %d attempts)"):format(attempts) or ""
      out[#out + 1] = ("  %s #%d %s%s: %s"):format(class, pid, shorten(fields or "", 60), after,
        shorten(err or "?", 200))
    end
    if total.failed > listed then
      out[#out + 1] = ("  ... and %d more"):format(total.failed - listed)
    end
    out[#out + 1] = "--retry-failed puts them back to be run again."
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
end

local function retry_failed(path)
  local n = state.put_back_failed(open_existing(path))
  core.log(("aqueue: %d failed item%s of %s put back: run the script with --state %s to run them")
    :format(n, n == 1 and "" or "s", path, path))
end

local M = {}

function M.main(command)
  local path = select(4, core.defaults())
  if command == "status" then
    status(path)
  else
    retry_failed(path)
  end
end

return M
