-- The items of the shared-run benchmark (scripts/bench/run_all --only redis_processes),
-- run by every process of the run with --redis URL --run NAME:
--   aqueue-run --redis URL --run NAME scripts/bench/redis_tree.lua N WORKERS [SLEEP]
-- A Root enqueues N / PER_GROUP Groups, each enqueues PER_GROUP Leaves (a
-- completion's children travel in one script call, so a parent's children
-- stay below what one call takes); a Leaf does nothing, or sleeps SLEEP s.
-- The Root keeps the run open while the tree is built, so a process that
-- joins early finds work. Prints this process's figures on one line.
local aqueue = require("aqueue")

local n = assert(tonumber(arg[1]), "redis_tree.lua N WORKERS [SLEEP]")
local workers = assert(tonumber(arg[2]), "redis_tree.lua N WORKERS [SLEEP]")
local pause = tonumber(arg[3]) or 0
local PER_GROUP = 500

local Leaf = aqueue.Item:extend("Leaf")
if pause > 0 then
  function Leaf:process() aqueue.sleep(pause) end
else
  function Leaf:process() end
end

local Group = aqueue.Item:extend("Group")
function Group:process(enqueue)
  for _ = 1, self.n do enqueue(Leaf{}) end
end

local Root = aqueue.Item:extend("Root")
function Root:process(enqueue)
  local left = n
  while left > 0 do
    enqueue(Group{ n = math.min(PER_GROUP, left) })
    left = left - PER_GROUP
  end
end

local s = aqueue.run_queue{ initial_items = { Root{} }, num_workers = workers }
print(("redis_tree processed=%d elapsed=%.3f run_done=%d run_failed=%d"):format(s.processed, s.elapsed,
  s.counters.done, s.counters.failed))
