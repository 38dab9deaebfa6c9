-- The seed's example: a root item enqueues five children; its
-- after_children_processed runs once they have all been processed.
--   aqueue-run examples/hello.lua
local aqueue = require("aqueue")

local RootItem = aqueue.Item:extend("RootItem")
local ChildItem = aqueue.Item:extend("ChildItem")

function RootItem:process(enqueue, set_desc)
  -- what this worker is doing, for the worker rows of the display
  set_desc("Processing RootItem")

  -- make an HTTP request, parse it, etc.
  aqueue.sleep(0.2)

  -- when you discover more items you want to process, enqueue them:
  for i = 1, 5 do
    enqueue(ChildItem{ n = i })
  end
end

function RootItem:after_children_processed()
  -- runs when this item and all the items it enqueued are done
  print("All done!")
end

-- track the enqueueing and completion of these items in the overall progress
ChildItem.track_overall = true

function ChildItem:process(enqueue, set_desc)
  set_desc("Processing ChildItem " .. self.n)
  aqueue.sleep(0.1 * self.n)
  print("child " .. self.n .. " done")
end

aqueue.run_queue{
  initial_items = { RootItem() },
  num_workers = 2,
}
