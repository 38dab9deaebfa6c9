-- Timer-bound items: N items that each aqueue.sleep(S), at W workers.
--   aqueue-run scripts/bench/sleep.lua [N=10000] [S=0.01] [workers=1000] [ready]
-- Used by run_all for three benchmarks:
--   10k x sleep(0.01) at 1000 workers     (ideal: 10 rounds of 0.01 s = 0.10 s)
--   100k x sleep(1) at 100k workers       (all sleeping at once: wall time, peak RSS)
--   10k x sleep(3) at 10k workers, ready  (idle CPU: with `ready`, the last item to start
--                                          prints "ready" on stdout just before it sleeps,
--                                          so a driver knows every task waits on a timer)
-- Prints one line of key=value figures on stdout; elapsed is the engine's run_queue time.
local aqueue = require("aqueue")

local N = tonumber(arg and arg[1]) or 10000
local S = tonumber(arg and arg[2]) or 0.01
local workers = tonumber(arg and arg[3]) or 1000
local ready = arg and arg[4] == "ready"

local sleep = aqueue.sleep
local started = 0

local Sleeper = aqueue.Item:extend("Sleeper")
if ready then
  function Sleeper:process()
    started = started + 1
    if started == N then
      io.stdout:write("ready\n")
      io.stdout:flush()
    end
    sleep(S)
  end
else
  function Sleeper:process()
    sleep(S)
  end
end

local Root = aqueue.Item:extend("Root")
function Root:process(enqueue)
  for i = 1, N do
    enqueue(Sleeper{ i = i })
  end
end

local s = aqueue.run_queue{ initial_items = { Root() }, num_workers = workers, order = "fifo" }
assert(s.processed == N + 1 and s.failed == 0, "unexpected summary")
print(("sleep impl=aqueue n=%d seconds=%g workers=%d elapsed=%.6f"):format(N, S, workers, s.elapsed))
