-- Memory with N items queued at once.
--   aqueue-run scripts/bench/queued.lua [N=1000000] [workers=100]
-- A Root item enqueues N no-op items from a coroutine of its own, where enqueue
-- takes no turns (it gives other tasks a turn every 4096 enqueues only where it
-- may yield), so all N are queued at the same time; then they are processed. Peak RSS is measured by the driver (run_all:
-- ru_maxrss from wait4). The script also reports VmRSS read from /proc/self/status
-- at the moment all N are queued, and VmHWM (the process's peak) at the end.
local aqueue = require("aqueue")

local N = tonumber(arg and arg[1]) or 1000000
local workers = tonumber(arg and arg[2]) or 100

local function status_kb(field)
  local f = io.open("/proc/self/status", "r")
  if not f then return -1 end
  local text = f:read("*a")
  f:close()
  return tonumber(text:match(field .. ":%s*(%d+)")) or -1
end

local Noop = aqueue.Item:extend("Noop")
function Noop:process(enqueue, set_desc) end

local rss_queued_kb = -1
local Root = aqueue.Item:extend("Root")
function Root:process(enqueue)
  coroutine.wrap(function()
    for i = 1, N do
      enqueue(Noop{ i = i })
    end
  end)()
  rss_queued_kb = status_kb("VmRSS")
end

local s = aqueue.run_queue{ initial_items = { Root() }, num_workers = workers, order = "fifo" }
assert(s.processed == N + 1 and s.failed == 0, "unexpected summary")
print(("queued impl=aqueue n=%d rss_queued_kb=%d hwm_kb=%d elapsed=%.6f")
  :format(N, rss_queued_kb, status_kb("VmHWM"), s.elapsed))
