-- aqueue.backends.redis: the queue of a run shared by several processes
-- through Redis (--redis URL --run NAME, SPEC section 10; aqueue.queue_backend
-- has the interface). It connects with aqueue.redis, opens the run with
-- aqueue.redis_run (the server-side scripts), and is a shared_run backend
-- over it: batches of enqueues, claims and completions, the lease's
-- heartbeat, the reaper.
local core = require("aqueue.core")
local redis = require("aqueue.redis")
local redis_run = require("aqueue.redis_run")
local shared_run = require("aqueue.backends.shared_run")

local M = {}

-- The message and exit status 2 of a run that cannot be used: the process
-- ends at once (bad input, as a usage error; SPEC section 10).
-- (The message names the run and the server without the URL's password.)
function M.refuse(_, _, err)
  io.stderr:write(("aqueue-run: %s\n"):format(tostring(err)))
  os.exit(2)
end

-- A client of `url`, or the refusal.
function M.connect(url, name)
  local client, err = redis.connect(url)
  if not client then
    M.refuse(url, name, err)
  end
  return client
end

-- Puts the failed items of `run` (named `name`) back in its queue and says
-- how many; refuses (exit 2) when the store cannot do it.
function M.retry_failed(url, name, run)
  local n, err = run:retry_failed()
  if not n then
    run.client:close()
    M.refuse(url, name, err)
  end
  core.log(("aqueue: %d failed item%s of run %s put back to be run again"):format(n, n == 1 and "" or "s", name))
  return n
end

-- Opens run `name` at `url` (opts: fresh, retry_failed, order, limits,
-- lease, heartbeat, classes: the names of the script's item classes).
function M.open(url, name, opts)
  local client = M.connect(url, name)
  local run, err = redis_run.open(client, name, { classes = opts.classes, fresh = opts.fresh == true,
    order = opts.order, limits = opts.limits, lease = opts.lease, heartbeat = opts.heartbeat })
  if not run then
    client:close()
    M.refuse(url, name, err)
  end
  if opts.retry_failed then
    M.retry_failed(url, name, run)
  end
  local b = shared_run.new(run, { name = "redis", durable = true, url = url, run_name = name })
  b.client = client
  return b
end

return M
