-- No-op throughput with and without a state file (SPEC sections 5 and 8).
--   aqueue-run [--state FILE] scripts/bench/state.lua [N=1000000] [order=lifo] [workers=100]
-- The same workload as noop.lua: a Root item enqueues N no-op children (all
-- queued before the first one starts: enqueue does not yield), each with one
-- small field ({ i = i }, so there is something to save). Run with --state
-- FILE, every item is persisted (its row written when enqueued, updated when
-- processed and finished, group-committed by the writer thread); run without,
-- nothing is. Prints one line of key=value figures on stdout (read by run_all):
--   elapsed      the engine's own run_queue elapsed (as noop.lua)
--   call         run_queue's call, start to return: also the final commit of
--                the state file, which run_queue waits for before returning
--   items_per_s  N / elapsed, as noop.lua
-- run_all times the whole process as well (spawn to exit), which also covers
-- closing the file at exit.
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

local t0 = aqueue.now()
local s = aqueue.run_queue{ initial_items = { Root() }, num_workers = workers, order = order }
local call = aqueue.now() - t0
assert(s.processed == N + 1 and s.failed == 0, "unexpected summary")
print(("state impl=aqueue order=%s n=%d workers=%d persist=%d elapsed=%.6f call=%.6f items_per_s=%.0f")
  :format(order, N, workers, s.state and 1 or 0, s.elapsed, call, N / s.elapsed))
