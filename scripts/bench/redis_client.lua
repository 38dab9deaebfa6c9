-- The Redis client benchmark (info only, no target yet): PING and INCR round
-- trips per second through aqueue.redis, `tasks` tasks calling at once on one
-- client (their calls pipeline on the connection), against
-- `redis-benchmark -q -t ping,incr -P 16` on the same private redis-server in
-- the same run. Prints one line of key=value figures (read by run_all), each
-- the median of `runs`, interleaved.
--   aqueue-run scripts/bench/redis_client.lua [calls=200000] [tasks=100] [runs=3]
local aqueue = require("aqueue")
local root = (arg[0]:match("^(.*)/scripts/bench/[^/]*$") or ".")
package.path = root .. "/?.lua;" .. package.path
local redis_server = require("tests.support.redis_server")

local calls = tonumber(arg[1]) or 200000
local tasks = tonumber(arg[2]) or 100
local runs = tonumber(arg[3]) or 3

local median = require("scripts.bench.median")

-- `calls` calls of {command, args...} spread over `tasks` tasks on one
-- client: calls/s.
local function aqueue_rate(client, ...)
  local per_task = math.ceil(calls / tasks)
  local command = { ... }
  local t0 = aqueue.now()
  local handles = {}
  for i = 1, tasks do
    handles[i] = aqueue.spawn(function()
      for _ = 1, per_task do
        assert(client:call(unpack(command)))
      end
      return true
    end)
  end
  for i = 1, tasks do assert(handles[i]:result()) end
  return per_task * tasks / (aqueue.now() - t0)
end

-- redis-benchmark's requests/s for PING (multi-bulk, as the client sends it) and INCR.
local function reference_rates(server)
  local res = assert(aqueue.exec{ "redis-benchmark", "-h", "127.0.0.1", "-p", tostring(server.port), "-q",
    "-t", "ping,incr", "-P", "16", "-n", tostring(calls) })
  local out = res.stdout:gsub("\r", "\n")
  local ping = out:match("PING_MBULK: ([%d.]+) requests per second")
  local incr = out:match("INCR: ([%d.]+) requests per second")
  assert(ping and incr, "redis-benchmark output: " .. res.stdout .. res.stderr)
  return tonumber(ping), tonumber(incr)
end

local server = redis_server.start{ appendfsync = "everysec" }
local rates = { ping = {}, incr = {}, ref_ping = {}, ref_incr = {} }
local ok, err = pcall(function()
  local client = assert(aqueue.redis.connect(server.url))
  aqueue_rate(client, "PING") -- warm-up
  for _ = 1, runs do
    local ping, incr = reference_rates(server)
    table.insert(rates.ref_ping, ping)
    table.insert(rates.ref_incr, incr)
    table.insert(rates.ping, aqueue_rate(client, "PING"))
    table.insert(rates.incr, aqueue_rate(client, "INCR", "bench:counter"))
  end
  client:close()
end)
server:stop()
assert(ok, err)
local ping, incr, ref_ping, ref_incr = median(rates.ping), median(rates.incr), median(rates.ref_ping), median(rates.ref_incr)
print(("redis calls=%d tasks=%d ping_per_s=%.0f ref_ping_per_s=%.0f ping_ratio=%.3f incr_per_s=%.0f ref_incr_per_s=%.0f incr_ratio=%.3f")
  :format(calls, tasks, ping, ref_ping, ping / ref_ping, incr, ref_incr, incr / ref_incr))
