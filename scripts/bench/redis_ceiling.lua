-- The server's own ceiling for the shared run's script calls, and Redis's
-- memory per item, for the shared-run benchmark (scripts/bench/run_all
-- --only redis_processes), against the benchmark's private redis-server:
--   aqueue-run scripts/bench/redis_ceiling.lua URL PORT ITEMS BATCH
-- On a run of its own (aqueue.redis_run, the data layer the processes use):
--   * memory: INFO memory's used_memory before and after ITEMS items are
--     enqueued (queued), then after they are claimed and completed (done),
--     per item;
--   * ceiling: redis-benchmark -P 16 running EVALSHA of the real enqueue
--     script (a batch of BATCH new items) and of the real claim script
--     (BATCH jobs), the script loaded first with SCRIPT LOAD, in items/s.
--     A busy process makes an enqueue (its children travel with a
--     completion), a claim and a completion per item: the claim and enqueue
--     ceilings bound what the server can do, 1 / (1/enqueue + 1/claim) is
--     the two together (the completion, which redis-benchmark cannot repeat
--     with fresh tokens, comes on top).
-- Prints one line of key=value figures (read by run_all).
local aqueue = require("aqueue")
local redis_run = require("aqueue.redis_run")
local scripts = require("aqueue.redis_run.scripts")

local url, port = assert(arg[1]), assert(arg[2])
local items = tonumber(arg[3]) or 100000
local batch = tonumber(arg[4]) or 128

local client = assert(aqueue.redis.connect(url))
local function open(name)
  return assert(redis_run.open(client, name, { classes = { "Leaf" }, fresh = true, order = "lifo" }))
end
local function used_memory()
  local text = assert(client:call("INFO", "memory"))
  return assert(tonumber(text:match("used_memory:(%d+)")))
end

local BATCH = {}
for i = 1, batch do BATCH[i] = { class = "Leaf", fields = "{}" } end

-- memory per queued and per finished item
local run = open("bench-memory")
assert(run:enqueue(BATCH)) -- the run's keys exist: what follows is per item
local calls = math.ceil(items / batch)
local function drain()
  while true do
    local jobs = assert(run:claim(batch))
    if #jobs == 0 then return end
    local results = {}
    for i, j in ipairs(jobs) do results[i] = { id = j.id, token = j.token, outcome = "done" } end
    assert(run:complete(results))
  end
end
drain()
local before = used_memory()
for _ = 1, calls do assert(run:enqueue(BATCH)) end
local queued = used_memory()
drain()
local done = used_memory()
local n = calls * batch
assert(run:drop())

-- redis-benchmark's items/s for a script of `r` with these arguments.
local function bench(r, script, args)
  local sha = assert(client:script_load(script.text))
  local argv = { "redis-benchmark", "-h", "127.0.0.1", "-p", tostring(port), "-q", "-P", "16", "-c", "4",
    "-n", tostring(calls), "EVALSHA", sha, tostring(#r.keys) }
  for _, k in ipairs(r.keys) do argv[#argv + 1] = k end
  argv[#argv + 1] = r.order
  argv[#argv + 1] = tostring(r.process_id)
  for _, a in ipairs(args) do argv[#argv + 1] = tostring(a) end
  local res = assert(aqueue.exec(argv))
  local rps = res.stdout:gsub("\r", "\n"):match("([%d.]+) requests per second")
  assert(rps, "redis-benchmark output: " .. res.stdout .. res.stderr)
  return tonumber(rps) * batch
end
run = open("bench-ceiling")
local entry_args = {}
for _ = 1, batch do
  for _, a in ipairs({ "", "Leaf", "{}", "", 0, 0, "", 1, "0" }) do entry_args[#entry_args + 1] = a end
end
local enqueue = bench(run, scripts.enqueue, entry_args)
local claim = bench(run, scripts.claim, { batch, 15, 0, 0, "" })
local c = assert(run:counters())
assert(c.queued == 0, "redis-benchmark's claims took every item it enqueued")
assert(run:drop())
client:close()
print(("redis_ceiling enqueue_per_s=%.0f claim_per_s=%.0f both_per_s=%.0f bytes_queued=%.0f bytes_done=%.0f"):format(
  enqueue, claim, 1 / (1 / enqueue + 1 / claim), (queued - before) / n, (done - before) / n))
