-- The shared run's data layer benchmark (info only: the targets of issue 15
-- are for whole processes, which the Redis backend will measure): items/s
-- through enqueue -> claim -> complete of aqueue.redis_run, batches of
-- `batch` (complete and the next claim in one script), from 1, 2 and 4 tasks
-- each with its own client (a process each, for the run), against one
-- private redis-server (appendfsync everysec, like a throughput-minded
-- deployment); and 2 tasks again against a server with appendfsync always
-- (kill -9 of Redis loses nothing; its directory is in /tmp, so what an fsync
-- costs depends on what /tmp is). Next to them, the server's own ceiling for
-- the same script calls:
--   * server_per_s: 1 / the server's time per item inside those scripts
--     (INFO commandstats: the usec of EVALSHA and EVAL over the measured runs
--     divided by the items), i.e. what one redis-server core could do if the
--     network and the clients cost nothing;
--   * bench_enqueue_per_s, bench_claim_per_s: redis-benchmark -P 16 running
--     EVALSHA of the real enqueue script (a batch of `batch` new items) and of
--     the real claim script (`batch` jobs) on a run it fills itself, in items/s.
-- And Redis's memory per item (INFO memory used_memory) with 100k items
-- queued, then with them finished (done).
-- Prints one line of key=value figures (read by run_all); each rate is the
-- median of `runs`.
--   aqueue-run scripts/bench/redis_run.lua [items=100000] [batch=128] [runs=3]
local aqueue = require("aqueue")
local cjson = require("cjson")
local root = (arg[0]:match("^(.*)/scripts/bench/[^/]*$") or ".")
package.path = root .. "/?.lua;" .. package.path
local redis_server = require("tests.support.redis_server")
local redis_run = require("aqueue.redis_run")
local scripts = require("aqueue.redis_run.scripts")

local items = tonumber(arg[1]) or 100000
local batch = tonumber(arg[2]) or 128
local runs = tonumber(arg[3]) or 3
local FIELDS = '{"url":"https://example.com/page/000000"}' -- a typical small item

local median = require("scripts.bench.median")

local function entries(n)
  local list = {}
  for i = 1, n do list[i] = { class = "Page", fields = FIELDS } end
  return list
end
local BATCH = entries(batch)

local function open(url, name, fresh)
  local client = assert(aqueue.redis.connect(url))
  return assert(redis_run.open(client, name, { classes = { "Page" }, fresh = fresh, order = "fifo" })), client
end

-- Completes `jobs` (done) and claims up to `batch` more in the same script,
-- as a busy process does: returns the new jobs.
local function work(run, jobs)
  local results = {}
  for i, j in ipairs(jobs) do results[i] = { id = j.id, token = j.token, outcome = "done" } end
  local _, claimed = run:complete(results, batch)
  return assert(claimed)
end

-- `items` items through enqueue -> claim -> complete from `tasks` tasks:
-- items/s. Each task enqueues its share a batch at a time, completing its
-- last batch and claiming the next after each, then works until nothing is
-- left: two round trips per batch.
local function cycle_rate(server, tasks)
  local name = "bench-" .. tasks
  local runs_of = {}
  for t = 1, tasks do runs_of[t] = { open(server.url, name, t == 1) } end
  local per_task = math.ceil(items / tasks / batch)
  local t0 = aqueue.now()
  local handles = {}
  for t = 1, tasks do
    handles[t] = aqueue.spawn(function()
      local run, jobs = runs_of[t][1], {}
      for _ = 1, per_task do
        assert(run:enqueue(BATCH))
        jobs = work(run, jobs)
      end
      repeat jobs = work(run, jobs) until #jobs == 0
      return true
    end)
  end
  for t = 1, tasks do assert(handles[t]:result()) end
  local elapsed = aqueue.now() - t0
  local c = assert(runs_of[1][1]:counters())
  assert(c.done == per_task * tasks * batch and c.finished, "the run did not finish every item")
  for t = 1, tasks do runs_of[t][2]:close() end
  return c.done / elapsed
end

local function info_number(client, section, field)
  local text = assert(client:call("INFO", section))
  return assert(tonumber(text:match(field .. ":(%d+)")), field)
end

-- usec spent in EVALSHA and EVAL (the scripts) since the last CONFIG RESETSTAT.
local function script_usec(client)
  local text = assert(client:call("INFO", "commandstats"))
  local usec = 0
  for name, n in text:gmatch("cmdstat_(%w+):calls=%d+,usec=(%d+)") do
    if name == "evalsha" or name == "eval" then usec = usec + tonumber(n) end
  end
  return usec
end

-- redis-benchmark's requests/s for `n` runs of a script with this run's KEYS and ARGV.
local function bench_script(server, run, script, args, n)
  local client = run.client
  local sha = assert(client:script_load(script.text))
  local argv = { "redis-benchmark", "-h", "127.0.0.1", "-p", tostring(server.port), "-q", "-P", "16",
    "-c", "4", "-n", tostring(n), "EVALSHA", sha, tostring(#run.keys) }
  for _, k in ipairs(run.keys) do argv[#argv + 1] = k end
  argv[#argv + 1] = run.order
  argv[#argv + 1] = tostring(run.process_id)
  for _, a in ipairs(args) do argv[#argv + 1] = tostring(a) end
  local res = assert(aqueue.exec(argv))
  local rps = res.stdout:gsub("\r", "\n"):match("([%d.]+) requests per second")
  assert(rps, "redis-benchmark output: " .. res.stdout .. res.stderr)
  return tonumber(rps)
end

-- The enqueue and claim scripts' items/s by redis-benchmark, on a run of its own.
local function reference_rates(server)
  local run, client = open(server.url, "bench-ref", true)
  local packed = {} -- (the enqueue script's argument: prelude.lua's ENTRY fields, one JSON text)
  for i, e in ipairs(BATCH) do packed[i] = { e.class, e.fields } end
  local args = { cjson.encode(packed) }
  local calls = math.ceil(items / batch)
  local enqueue = bench_script(server, run, scripts.enqueue, args, calls) * batch
  local claim = bench_script(server, run, scripts.claim, { batch, 15, 0, 0, "", 0 }, calls) * batch
  -- (redis-benchmark rounds the calls up to whole pipelines: as many claims as enqueues)
  local c = assert(run:counters())
  assert(c.running == c.enqueued and c.queued == 0, "every claim took a whole batch")
  assert(run:drop())
  client:close()
  return enqueue, claim
end

-- Redis bytes per item: queued, then finished (done). Run first, on an
-- empty server (a dropped run's keys may still be freed in the background).
local function memory_per_item(server)
  local run, client = open(server.url, "bench-memory", true)
  local n = math.ceil(items / batch) * batch
  assert(run:enqueue(BATCH)) -- the run's keys exist: what follows is per item
  local jobs = {}
  repeat jobs = work(run, jobs) until #jobs == 0
  local before = info_number(client, "memory", "used_memory")
  for _ = 1, n / batch do assert(run:enqueue(BATCH)) end
  local queued = info_number(client, "memory", "used_memory")
  repeat jobs = work(run, jobs) until #jobs == 0
  local finished = info_number(client, "memory", "used_memory")
  assert(run:drop())
  client:close()
  return (queued - before) / n, (finished - before) / n
end

local server = redis_server.start{ appendfsync = "everysec" }
local durable = redis_server.start{ appendfsync = "always" } -- every write on disk before its reply
local figures = {}
local ok, err = pcall(function()
  local admin = assert(aqueue.redis.connect(server.url))
  local rates = { [1] = {}, [2] = {}, [4] = {}, server = {}, enqueue = {}, claim = {}, always = {} }
  figures.queued_bytes, figures.finished_bytes = memory_per_item(server)
  cycle_rate(server, 1) -- warm-up
  for _ = 1, runs do
    for _, tasks in ipairs({ 1, 2, 4 }) do
      assert(admin:call("CONFIG", "RESETSTAT"))
      table.insert(rates[tasks], cycle_rate(server, tasks))
      -- (open, counters and the runs' creation are in the figure too: a few calls)
      table.insert(rates.server, items / (script_usec(admin) / 1e6))
    end
    table.insert(rates.always, cycle_rate(durable, 2))
    local enqueue, claim = reference_rates(server)
    table.insert(rates.enqueue, enqueue)
    table.insert(rates.claim, claim)
  end
  for _, tasks in ipairs({ 1, 2, 4 }) do figures["tasks" .. tasks .. "_per_s"] = median(rates[tasks]) end
  figures.server_per_s = median(rates.server)
  figures.always2_per_s = median(rates.always)
  figures.bench_enqueue_per_s = median(rates.enqueue)
  figures.bench_claim_per_s = median(rates.claim)
  admin:close()
end)
server:stop()
durable:stop()
assert(ok, err)
print(("redis_run items=%d batch=%d tasks1_per_s=%.0f tasks2_per_s=%.0f tasks4_per_s=%.0f server_per_s=%.0f"
  .. " ratio2=%.3f always2_per_s=%.0f bench_enqueue_per_s=%.0f bench_claim_per_s=%.0f queued_bytes=%.0f finished_bytes=%.0f")
  :format(items, batch, figures.tasks1_per_s, figures.tasks2_per_s, figures.tasks4_per_s, figures.server_per_s,
    figures.tasks2_per_s / figures.server_per_s, figures.always2_per_s, figures.bench_enqueue_per_s, figures.bench_claim_per_s,
    figures.queued_bytes, figures.finished_bytes))
