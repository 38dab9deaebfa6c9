-- Workloads for the display benchmark (run_all's `display`: the same run with
-- --progress tty into a pseudo-terminal and with --progress none, side by side).
--   aqueue-run --progress tty|none scripts/bench/display.lua KIND [N] [workers=100]
-- KIND:
--   sleep0   N items (default 100000) that each call aqueue.sleep(0): every item
--            goes through the event loop once, where the display's timer runs.
--   chunked  N no-op items (default 5000000), enqueued 5000 at a time by N/5000
--            Chunk items (lifo, so each chunk's no-ops run before the next chunk
--            starts). Unlike noop.lua, whose root enqueues all N items in one
--            process() call that never returns to the event loop (so the display
--            can hardly draw), the work is cut into short items and the engine
--            goes back to the loop at every 10 ms slice: about 10 frames a second
--            get drawn for the whole run.
-- (plain no-op throughput, the N items enqueued by one root item, is noop.lua.)
-- Every item calls set_desc, so that the worker rows of the panel have text.
-- Prints one line of key=value figures on stdout (read by run_all); elapsed is
-- the engine's run_queue time.
local aqueue = require("aqueue")

local kind = arg and arg[1] or "chunked"
local workers = tonumber(arg and arg[3]) or 100
local CHUNK = 5000

local sleep = aqueue.sleep

local Noop = aqueue.Item:extend("Noop")
function Noop:process(enqueue, set_desc) end

local Sleeper = aqueue.Item:extend("Sleeper")
function Sleeper:process(enqueue, set_desc)
  set_desc("sleep(0)")
  sleep(0)
end

local Chunk = aqueue.Item:extend("Chunk")
function Chunk:process(enqueue, set_desc)
  set_desc("enqueueing a chunk")
  for i = 1, CHUNK do
    enqueue(Noop{ i = i })
  end
end

local N, expected
local Root = aqueue.Item:extend("Root")
if kind == "sleep0" then
  N = tonumber(arg and arg[2]) or 100000
  expected = N + 1
  function Root:process(enqueue)
    for i = 1, N do
      enqueue(Sleeper{ i = i })
    end
  end
elseif kind == "chunked" then
  N = tonumber(arg and arg[2]) or 5000000
  local chunks = math.ceil(N / CHUNK)
  N = chunks * CHUNK
  expected = N + chunks + 1
  function Root:process(enqueue)
    for i = 1, chunks do
      enqueue(Chunk{ i = i })
    end
  end
else
  error("display.lua: KIND must be sleep0 or chunked, got " .. tostring(kind))
end

local s = aqueue.run_queue{ initial_items = { Root() }, num_workers = workers, order = "lifo" }
assert(s.processed == expected and s.failed == 0, "unexpected summary")
print(("display impl=aqueue kind=%s n=%d workers=%d elapsed=%.6f items_per_s=%.0f")
  :format(kind, N, workers, s.elapsed, N / s.elapsed))
