-- The HTTP crawl benchmark (issue 17): the HTTP path of a crawl measured
-- against the wire, one event-loop thread against wrk's one thread, on one
-- nginx with one worker, in the same run. The crawl is
-- scripts/bench/crawl_gmatch.lua (the example's links found by gmatch: no
-- parser, so the figure is the HTTP client's) over a generated 20,000-page
-- site, 100 workers, key() dedup, no delay:
--   * at the default 16 connections against wrk -t1 -c16, and at 100
--     against wrk -t1 -c100 (the same count on both sides);
--   * against the same site served with 20 ms of latency per response
--     (echo_sleep, Debian's libnginx-mod-http-echo, which nginx-light
--     brings): requests/s against the latency-bound ceiling workers / 20 ms;
--   * the peak RSS of a process with 1000 requests in flight (1000 tasks
--     looping aqueue.http.get on the 20 ms server, 1000 connections).
-- Prints one line of key=value figures (read by run_all), each the median
-- of `runs`, interleaved.
--   aqueue-run scripts/bench/http_crawl.lua [pages=20000] [runs=3]
--   aqueue-run scripts/bench/http_crawl.lua inflight URL TASKS SECONDS   (the RSS child)
local aqueue = require("aqueue")
local root = (arg[0]:match("^(.*)/scripts/bench/[^/]*$") or ".")
package.path = root .. "/?.lua;" .. package.path
local crawl_site = require("scripts.bench.crawl_site")
local get_loop = require("scripts.bench.get_loop")

-- The peak RSS child: TASKS tasks looping GET on URL for SECONDS; prints
-- requests and VmHWM (KB).
if arg[1] == "inflight" then
  local url, tasks, seconds = arg[2], tonumber(arg[3]), tonumber(arg[4])
  aqueue.http.configure{ max_per_host = tasks, max_connections = tasks }
  local count = get_loop(url, tasks, seconds)
  local f = assert(io.open("/proc/self/status"))
  local status = f:read("*a")
  f:close()
  print(("inflight requests=%d peak_rss_kb=%s"):format(count, status:match("VmHWM:%s*(%d+)")))
  return
end

local nginx = require("tests.support.nginx")
local pages = tonumber(arg[1]) or 20000
local runs = tonumber(arg[2]) or 3
local WORKERS, LATENCY, INFLIGHT = 100, 0.02, 1000
local dir = crawl_site.site(pages) -- (shared with scripts/bench/crawl.lua)

-- One crawl of the site at url by crawl_gmatch.lua: its requests/s.
local function crawl_rate(url, connections)
  return crawl_site.crawl_rate(root .. "/scripts/bench/crawl_gmatch.lua", url,
    { "--workers", tostring(WORKERS), "--connections", tostring(connections) })
end

local function wrk_rate(url, connections)
  local res = assert(aqueue.exec{ "wrk", "-t1", "-c" .. connections, "-d3s", url .. "/page/1.html" })
  return assert(tonumber(res.stdout:match("Requests/sec:%s*([%d.]+)")), res.stdout .. res.stderr)
end

local server = nginx.start{ root = dir }
local delayed = nginx.start{ root = dir, connections = 2 * INFLIGHT,
  main = "load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;",
  -- every response after LATENCY seconds, then the file (a named location
  -- serves the same URI from root)
  server = ("location / { echo_sleep %g; echo_exec @file; } location @file { }"):format(LATENCY),
  http = "keepalive_timeout 60s;" }
local figures = require("scripts.bench.figures").new()
local ok, err = pcall(function()
  for round = 1, runs do
    local order = round % 2 == 1 and { 16, 100 } or { 100, 16 }
    for _, conns in ipairs(order) do
      figures:add("crawl_c" .. conns, crawl_rate(server.url, conns))
      figures:add("wrk_c" .. conns, wrk_rate(server.url, conns))
    end
    figures:add("latency_crawl", crawl_rate(delayed.url, WORKERS))
  end
  local child = assert(aqueue.exec{ crawl_site.aqueue_run(), "--progress", "none",
    root .. "/scripts/bench/http_crawl.lua", "inflight",
    delayed.url .. "/page/1.html", tostring(INFLIGHT), "3" })
  local requests, kb = child.stdout:match("requests=(%d+) peak_rss_kb=(%d+)")
  assert(kb, "inflight output: " .. child.stdout .. child.stderr)
  figures:add("inflight_requests", tonumber(requests))
  figures:add("inflight_rss_mb", tonumber(kb) / 1024)
end)
server:stop()
delayed:stop()
assert(ok, err)
local line = { ("http_crawl pages=%d workers=%d runs=%d latency=%g ceiling=%g inflight=%d"):format(pages, WORKERS,
  runs, LATENCY, WORKERS / LATENCY, INFLIGHT) }
for _, key in ipairs{ "crawl_c16", "wrk_c16", "crawl_c100", "wrk_c100", "latency_crawl", "inflight_requests",
  "inflight_rss_mb" } do
  line[#line + 1] = ("%s=%.4g"):format(key, figures:median(key))
end
print(table.concat(line, " "))
