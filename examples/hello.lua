-- The seed's example, the README's tour: a root item enqueues five children;
-- its after_children_processed runs once they have all been processed.
--   build/aqueue-run examples/hello.lua
local aqueue = require("aqueue")

local RootItem = aqueue.Item:extend("RootItem")
local ChildItem = aqueue.Item:extend("ChildItem")
ChildItem.track_overall = true       -- count these in the overall progress

function RootItem:process(enqueue, set_desc)
  set_desc("Processing RootItem")    -- this worker's line in the display
  aqueue.sleep(0.2)                  -- yields: other items run meanwhile
  for i = 1, 5 do
    enqueue(ChildItem{ n = i })      -- children may start before this returns
  end
end

function RootItem:after_children_processed()
  print("All done!")                 -- once, after all five children are processed
end

function ChildItem:process(enqueue, set_desc)
  set_desc("Processing ChildItem " .. self.n)
  aqueue.sleep(0.1 * self.n)
  print("child " .. self.n .. " done")
end

aqueue.run_queue{ initial_items = { RootItem() }, num_workers = 2 }
