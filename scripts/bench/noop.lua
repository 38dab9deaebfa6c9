-- No-op throughput: N items that do nothing, at W workers, in one order.
--   aqueue-run scripts/bench/noop.lua [N=1000000] [order=lifo] [workers=100]
-- A Root item enqueues the N no-op children; every 4096 enqueues it gives the
-- other tasks a turn, so runners start on the children while it goes on
-- (with workers = 1 the root holds the only slot: all are queued before the
-- first starts). The time is the engine's own
-- run_queue elapsed, which covers creating, enqueueing and processing the N
-- items. Prints one line of key=value figures on stdout (read by run_all).
local aqueue = require("aqueue")

local N = tonumber(arg and arg[1]) or 1000000
local order = (arg and arg[2]) or "lifo"
local workers = tonumber(arg and arg[3]) or 100

local Noop = aqueue.Item:extend("Noop")
function Noop:process(enqueue, set_desc) end

local Root = aqueue.Item:extend("Root")
function Root:process(enqueue)
  for i = 1, N do
    enqueue(Noop{ i = i })
  end
end

local s = aqueue.run_queue{ initial_items = { Root() }, num_workers = workers, order = order }
assert(s.processed == N + 1 and s.failed == 0, "unexpected summary")
print(("noop impl=aqueue order=%s n=%d workers=%d elapsed=%.6f items_per_s=%.0f")
  :format(order, N, workers, s.elapsed, N / s.elapsed))
