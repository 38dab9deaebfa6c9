-- The HTTP client benchmark (issue 17): `tasks` tasks each looping
-- aqueue.http.get on one small file of a private nginx with one worker
-- (keep-alive), against `wrk -t1` on the same URL in the same run, at the same
-- number of connections: 16 (max_per_host's default) and 100. Both sides are
-- one thread: wrk's one thread against aqueue's loop thread. Prints one line
-- of key=value figures (read by run_all): for each connection count the
-- requests/s and the CPU-seconds per 1000 requests of each (all of this
-- process's threads for aqueue: the loop and libcurl's resolver; wrk's
-- process for wrk), medians of `runs`, the two interleaved. Beside them, the
-- requests/s of curl alone: its multi-socket API on libuv with nothing else
-- (bench_curl_loop, built from scripts/bench/curl_loop.c beside aqueue-run),
-- the ceiling of any client that hands each transfer to curl.
--   aqueue-run scripts/bench/http_client.lua [seconds=3] [tasks=100] [runs=3]
local aqueue = require("aqueue")
local root = (arg[0]:match("^(.*)/scripts/bench/[^/]*$") or ".")
package.path = root .. "/?.lua;" .. package.path
local nginx = require("tests.support.nginx")

local seconds = tonumber(arg[1]) or 3
local tasks = tonumber(arg[2]) or 100
local runs = tonumber(arg[3]) or 3

local get_loop = require("scripts.bench.get_loop")
local crawl_site = require("scripts.bench.crawl_site")
local curl_loop = crawl_site.aqueue_run():gsub("[^/]*$", "") .. "bench_curl_loop"

-- This process's CPU-seconds so far: its own threads' (utime + stime) and its
-- reaped children's (cutime + cstime), from /proc/self/stat.
local TICKS = 100 -- sysconf(_SC_CLK_TCK) on Linux
local function cpu_seconds()
  local f = assert(io.open("/proc/self/stat"))
  local stat = f:read("*a")
  f:close()
  local fields = {}
  for w in stat:gsub("^.*%) ", ""):gmatch("%S+") do fields[#fields + 1] = w end
  -- fields[1] is the state (field 3 of proc(5)): utime is field 14 there
  local own = (tonumber(fields[12]) + tonumber(fields[13])) / TICKS
  local children = (tonumber(fields[14]) + tonumber(fields[15])) / TICKS
  return own, children
end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'") == 0)
local f = assert(io.open(dir .. "/small.txt", "w"))
f:write(("x"):rep(100), "\n") -- a small body: the cost is the request's, not the bytes'
f:close()

-- `tasks` tasks getting url for `seconds`, on at most `conns` connections:
-- requests/s, CPU-seconds per 1000 requests.
local function aqueue_figures(url, conns)
  aqueue.http.configure{ max_per_host = conns, max_connections = conns }
  local cpu0 = cpu_seconds()
  local t0 = aqueue.now()
  local count = get_loop(url, tasks, seconds)
  local elapsed, cpu = aqueue.now() - t0, cpu_seconds() - cpu0
  return count / elapsed, cpu / count * 1000
end

-- wrk -t1 -c`conns` on url for `seconds`: requests/s, CPU-seconds per 1000 requests.
local function wrk_figures(url, conns)
  local _, children0 = cpu_seconds()
  local res = assert(aqueue.exec{ "wrk", "-t1", "-c" .. conns, "-d" .. seconds .. "s", url })
  local _, children1 = cpu_seconds()
  local rate = assert(tonumber(res.stdout:match("Requests/sec:%s*([%d.]+)")), res.stdout .. res.stderr)
  local total = tonumber(res.stdout:match("(%d+) requests in"))
  return rate, (children1 - children0) / total * 1000
end

-- bench_curl_loop on url at conns connections: requests/s.
local function curl_figures(url, conns)
  local res = assert(aqueue.exec{ curl_loop, url, tostring(tasks), tostring(seconds), tostring(conns) })
  return assert(tonumber(res.stdout:match("rate=([%d.]+)")), res.stdout .. res.stderr)
end

local server = nginx.start{ root = dir }
local figures = require("scripts.bench.figures").new()
local ok, err = pcall(function()
  local url = server.url .. "/small.txt"
  aqueue_figures(url, 16) -- warm-up: connections, libcurl's caches, traces
  for _ = 1, runs do
    for _, conns in ipairs{ 16, 100 } do
      local rate, cpu = aqueue_figures(url, conns)
      figures:add("aqueue_c" .. conns, rate)
      figures:add("aqueue_cpu_c" .. conns, cpu)
      rate, cpu = wrk_figures(url, conns)
      figures:add("wrk_c" .. conns, rate)
      figures:add("wrk_cpu_c" .. conns, cpu)
      figures:add("curl_c" .. conns, curl_figures(url, conns))
    end
  end
end)
server:stop()
os.execute("rm -rf '" .. dir .. "'")
assert(ok, err)
local line = { ("http_client seconds=%g tasks=%d runs=%d"):format(seconds, tasks, runs) }
for _, conns in ipairs{ 16, 100 } do
  for _, key in ipairs{ "aqueue_c", "wrk_c", "aqueue_cpu_c", "wrk_cpu_c", "curl_c" } do
    local k = key .. conns
    line[#line + 1] = ("%s=%.4g"):format(k, figures:median(k))
  end
end
print(table.concat(line, " "))
