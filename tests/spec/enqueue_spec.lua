-- enqueue: its two forms, item.parent, and what misuse raises (SPEC section 2).
local aqueue = require("aqueue")

-- Runs fn(self, enqueue, set_desc) as the process of one initial item and
-- returns the summary, plus what fn returned (packed) and the error it raised.
local function inside_process(class_name, fn, opts)
  local Cls = aqueue.Item:extend(class_name)
  local out = {}
  function Cls:process(enqueue, set_desc)
    out.results = { pcall(fn, self, enqueue, set_desc) }
  end
  opts = opts or {}
  opts.initial_items = { Cls{} }
  opts.num_workers = opts.num_workers or 1
  local summary = aqueue.run_queue(opts)
  return summary, out.results
end

-- The message of the error fn raised inside a process.
local function error_inside_process(class_name, fn)
  local _, results = inside_process(class_name, fn)
  assert.is_false(results[1], "expected an error")
  return tostring(results[2])
end

describe("enqueue inside process", function()
  it("adds a child with the function argument", function()
    local Parent = aqueue.Item:extend("EnqFnParent")
    local Child = aqueue.Item:extend("EnqFnChild")
    local seen = {}
    function Parent:process(enqueue)
      enqueue(Child{ n = 1 })
      enqueue(Child{ n = 2 })
    end
    function Child:process()
      seen[#seen + 1] = self.n
    end
    local summary = aqueue.run_queue{ initial_items = { Parent{} }, num_workers = 1 }
    table.sort(seen)
    assert.are.same({ 1, 2 }, seen)
    assert.are.equal(3, summary.processed)
    assert.are.equal(3, summary.enqueued)
  end)

  it("adds a child with the method form self:enqueue(child)", function()
    local Parent = aqueue.Item:extend("EnqMethodParent")
    local Child = aqueue.Item:extend("EnqMethodChild")
    local parents = {}
    local root
    function Parent:process()
      root = self
      self:enqueue(Child{})
    end
    function Child:process()
      parents[#parents + 1] = self.parent
    end
    local summary = aqueue.run_queue{ initial_items = { Parent{} }, num_workers = 1 }
    assert.are.equal(2, summary.processed)
    assert.are.equal(1, #parents)
    assert.are.equal(root, parents[1])
  end)

  it("gives set_desc both as an argument and as a method", function()
    local _, results = inside_process("EnqSetDesc", function(self, _, set_desc)
      set_desc("fetching page 1")
      self:set_desc("fetching page 2")
      set_desc(42) -- anything printable
      return "ok"
    end)
    assert.are.same({ true, "ok" }, results)
  end)

  it("returns a handle for the child", function()
    local _, results = inside_process("EnqHandleParent", function(self, enqueue)
      local Child = aqueue.Item:extend("EnqHandleChild")
      function Child:process() return "from child" end
      local h1 = enqueue(Child{})
      local h2 = self:enqueue(Child{})
      return h1:result(), h2:result()
    end)
    assert.are.same({ true, "from child", "from child" }, results)
  end)

  it("lets children start before the parent's process returns", function()
    local Parent = aqueue.Item:extend("EnqEarlyParent")
    local Child = aqueue.Item:extend("EnqEarlyChild")
    local parent_running, child_saw_parent_running = false, nil
    function Parent:process(enqueue)
      parent_running = true
      enqueue(Child{})
      aqueue.sleep(0.05)
      parent_running = false
    end
    function Child:process()
      child_saw_parent_running = parent_running
    end
    aqueue.run_queue{ initial_items = { Parent{} }, num_workers = 2 }
    assert.is_true(child_saw_parent_running)
  end)
end)

describe("item.parent", function()
  it("is nil for initial items and the enqueuing item for children, at every depth", function()
    local Root = aqueue.Item:extend("EnqParentRoot")
    local Mid = aqueue.Item:extend("EnqParentMid")
    local Leaf = aqueue.Item:extend("EnqParentLeaf")
    local root = Root{}
    local mids, leaves = {}, {}
    function Root:process(enqueue)
      local mid = Mid{}
      mids[#mids + 1] = mid
      enqueue(mid)
    end
    function Mid:process()
      local leaf = Leaf{}
      leaves[#leaves + 1] = leaf
      self:enqueue(leaf)
    end
    function Leaf:process() end
    local summary = aqueue.run_queue{ initial_items = { root }, num_workers = 2 }
    assert.are.equal(3, summary.processed)
    assert.is_nil(root.parent)
    assert.are.equal(root, mids[1].parent)
    assert.are.equal(mids[1], leaves[1].parent)
    assert.are.equal(root, leaves[1].parent.parent)
  end)

  it("is already set when the child's process runs", function()
    local Parent = aqueue.Item:extend("EnqParentSeenParent")
    local Child = aqueue.Item:extend("EnqParentSeenChild")
    local seen
    function Parent:process(enqueue)
      enqueue(Child{ from = self })
    end
    function Child:process()
      seen = rawequal(self.parent, self.from)
    end
    aqueue.run_queue{ initial_items = { Parent{} }, num_workers = 1 }
    assert.is_true(seen)
  end)
end)

describe("enqueue from a spawned task", function()
  it("adds a root item (no parent) that the running queue processes", function()
    local Starter = aqueue.Item:extend("EnqSpawnStarter")
    local Root = aqueue.Item:extend("EnqSpawnRoot")
    local spawned_item, processed = nil, false
    function Starter:process(enqueue)
      local task = aqueue.spawn(function()
        spawned_item = Root{}
        return enqueue(spawned_item):result()
      end)
      return task:result()
    end
    function Root:process()
      processed = true
      return "root done"
    end
    local summary = aqueue.run_queue{ initial_items = { Starter{} }, num_workers = 1 }
    assert.is_true(processed)
    assert.is_nil(spawned_item.parent)
    assert.are.equal(2, summary.processed)
  end)
end)

describe("enqueue misuse", function()
  it("rejects a value that is not an item", function()
    local e1 = error_inside_process("EnqNotItemA", function(_, enqueue) enqueue({ url = "x" }) end)
    assert.matches("expected an item", e1)
    assert.matches("plain table", e1)
    local e2 = error_inside_process("EnqNotItemB", function(_, enqueue) enqueue(42) end)
    assert.matches("expected an item", e2)
    assert.matches("number", e2)
    local e3 = error_inside_process("EnqNotItemC", function(self) self:enqueue(nil) end)
    assert.matches("expected an item", e3)
  end)

  it("rejects an item whose class has no process method, naming the class", function()
    local NoProcess = aqueue.Item:extend("EnqNoProcess")
    local err = error_inside_process("EnqNoProcessParent", function(_, enqueue) enqueue(NoProcess{}) end)
    assert.matches("EnqNoProcess", err, 1, true)
    assert.matches("process", err)
  end)

  it("rejects an item that was already enqueued", function()
    local Child = aqueue.Item:extend("EnqTwiceChild")
    function Child:process() end
    local err = error_inside_process("EnqTwiceParent", function(_, enqueue)
      local child = Child{}
      enqueue(child)
      enqueue(child)
    end)
    assert.matches("already enqueued", err)
  end)

  it("rejects enqueueing an initial item as a child", function()
    local Cls = aqueue.Item:extend("EnqInitialAgain")
    local err
    function Cls:process(enqueue)
      err = select(2, pcall(enqueue, self))
    end
    aqueue.run_queue{ initial_items = { Cls{} }, num_workers = 1 }
    assert.matches("already enqueued", tostring(err))
  end)

  it("rejects a child whose priority is not a number", function()
    local Child = aqueue.Item:extend("EnqBadPriorityChild")
    function Child:process() end
    local err = error_inside_process("EnqBadPriority", function(_, enqueue)
      enqueue(Child{ priority = "high" })
    end)
    assert.matches("priority", err)
  end)

  it("rejects a child of an item whose subtree has completed (from its hook)", function()
    local Child = aqueue.Item:extend("EnqFromHookChild")
    function Child:process() end
    local Parent = aqueue.Item:extend("EnqFromHookParent")
    local err
    function Parent:process() end
    function Parent:after_children_processed()
      err = select(2, pcall(self.enqueue, self, Child{}))
    end
    local summary = aqueue.run_queue{ initial_items = { Parent{} }, num_workers = 1 }
    assert.matches("completed", tostring(err))
    assert.are.equal(1, summary.enqueued)
  end)

  it("rejects a child of an item from an earlier run", function()
    local Old = aqueue.Item:extend("EnqOldParent")
    function Old:process() end
    local old = Old{}
    aqueue.run_queue{ initial_items = { old } }
    local Child = aqueue.Item:extend("EnqOldChild")
    function Child:process() end
    local err = error_inside_process("EnqOldRunner", function()
      old:enqueue(Child{})
    end)
    assert.matches("completed", err)
  end)

  it("rejects a child of an item that was never enqueued", function()
    local Loose = aqueue.Item:extend("EnqLooseParent")
    function Loose:process() end
    local Child = aqueue.Item:extend("EnqLooseChild")
    function Child:process() end
    local err = error_inside_process("EnqLooseRunner", function()
      Loose{}:enqueue(Child{})
    end)
    assert.matches("not enqueued", err)
  end)

  it("reports the error at the line that called enqueue", function()
    local Child = aqueue.Item:extend("EnqWhereChild")
    function Child:process() end
    local line
    local e1 = error_inside_process("EnqWhereFn", function(_, enqueue)
      line = debug.getinfo(1, "l").currentline + 1
      enqueue("not an item")
    end)
    assert.matches("enqueue_spec.lua:" .. line .. ":", e1, 1, true)
    local e2 = error_inside_process("EnqWhereMethod", function(self)
      line = debug.getinfo(1, "l").currentline + 1
      self:enqueue("not an item")
    end)
    assert.matches("enqueue_spec.lua:" .. line .. ":", e2, 1, true)
  end)

  it("leaves the queue running: the failed enqueue adds nothing and other children run", function()
    local Child = aqueue.Item:extend("EnqAfterMisuseChild")
    local ran = 0
    function Child:process() ran = ran + 1 end
    local summary = inside_process("EnqAfterMisuse", function(_, enqueue)
      pcall(enqueue, {})
      enqueue(Child{})
    end)
    assert.are.equal(1, ran)
    assert.are.equal(2, summary.enqueued)
    assert.are.equal(2, summary.processed)
    assert.are.equal(0, summary.failed)
  end)
end)
