-- aqueue.redis_tool: `aqueue-run --redis URL --run NAME --status` and
-- `--retry-failed`, which run no script (engine_load_tool runs
-- main("status") or main("retry_failed")): the run's figures (all
-- processes), its classes, its failed items and its processes; or its failed
-- items put back in its queue.
local core = require("aqueue.core")
local redis_run = require("aqueue.redis_run")
local redis_backend = require("aqueue.backends.redis")
local shorten = require("aqueue.status_text").shorten

local M = {}

-- The lines of status `st` of run `name`.
local function report(name, st)
  local c = st.counters
  local out = {}
  out[#out + 1] = ("run %s"):format(name)
  out[#out + 1] = ("  %s: %d queued, %d delayed, %d running, %d done, %d failed (%d waiting for their children "
    .. "or hooks)"):format(c.finished and "complete" or "unfinished", c.queued, c.delayed, c.running, c.done,
    c.failed, c.waiting)
  out[#out + 1] = ("  %-24s %9s %9s %9s %9s"):format("class", "queued", "running", "done", "failed")
  local classes = {}
  for class in pairs(c.per_class) do
    classes[#classes + 1] = class
  end
  table.sort(classes)
  for _, class in ipairs(classes) do
    local pc = c.per_class[class]
    out[#out + 1] = ("  %-24s %9d %9d %9d %9d"):format(shorten(class, 24), pc.queued + pc.delayed, pc.running,
      pc.done, pc.failed)
  end
  local procs = {}
  for _, p in ipairs(st.processes) do
    procs[#procs + 1] = ("#%d (%.1f s ago)"):format(p.id, p.age)
  end
  out[#out + 1] = ("processes (%d): %s"):format(#procs, #procs > 0 and table.concat(procs, ", ") or "none")
  if st.failed_total > 0 then
    out[#out + 1] = ("failed items (%d):"):format(st.failed_total)
    for _, f in ipairs(st.failed) do
      out[#out + 1] = ("  %s #%d: %s"):format(f.class, f.id, shorten(f.error or "?", 200))
    end
    if st.failed_total > #st.failed then
      out[#out + 1] = ("  ... and %d more"):format(st.failed_total - #st.failed)
    end
  end
  return table.concat(out, "\n")
end

-- Run `name` at `url` as it is, looked at without joining it (the tools
-- run no script, so they are no process of the run: --status changes
-- nothing in it), or the refusal (exit 2). Returns the client and the run.
local function open_existing(url, name)
  local client = redis_backend.connect(url, name)
  local run, err = redis_run.look(client, name)
  if not run then
    client:close()
    redis_backend.refuse(url, name, err)
  end
  return client, run
end

local function status(url, name)
  local client, run = open_existing(url, name)
  local st, err = run:status()
  run:close()
  client:close()
  if not st then
    redis_backend.refuse(url, name, err)
  end
  io.stdout:write(report(name, st), "\n")
end

local function retry_failed(url, name)
  local client, run = open_existing(url, name)
  redis_backend.retry_failed(url, name, run)
  run:close()
  client:close()
end

-- command: "status" or "retry_failed".
function M.main(command)
  local url, name = select(9, core.defaults())
  if command == "status" then
    status(url, name)
  else
    retry_failed(url, name)
  end
end

return M
