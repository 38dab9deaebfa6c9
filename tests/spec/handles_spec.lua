-- Item handles: enqueue(child) returns a handle; handle:result() yields until
-- the child's process has finished and returns its results, or nil, err.
local aqueue = require("aqueue")

local function pack(...)
  return { n = select("#", ...), ... }
end

-- Runs one initial item whose process is `fn` (with the usual arguments) and
-- returns the summary and what fn returned, packed with its count.
local function run_parent(class_name, fn, num_workers)
  local Parent = aqueue.Item:extend(class_name)
  local out
  function Parent:process(enqueue, set_desc)
    out = pack(fn(self, enqueue, set_desc))
  end
  local summary = aqueue.run_queue{ initial_items = { Parent{} }, num_workers = num_workers or 1 }
  return summary, out
end

-- A child class whose process returns the values in its `returns` field
-- (packed), after sleeping `sleep` seconds, or raises `raise`.
local function child_class(name)
  local Child = aqueue.Item:extend(name)
  function Child:process()
    if self.sleep then aqueue.sleep(self.sleep) end
    if self.raise then error(self.raise) end
    if self.returns then return unpack(self.returns, 1, self.returns.n) end
  end
  return Child
end

describe("handle:result()", function()
  it("returns every value the child's process returned, nils included", function()
    local Child = child_class("HandleAllValues")
    local got
    run_parent("HandleAllValuesParent", function(_, enqueue)
      got = pack(enqueue(Child{ returns = pack(1, nil, "three", nil) }):result())
    end)
    assert.are.equal(4, got.n)
    assert.are.equal(1, got[1])
    assert.is_nil(got[2])
    assert.are.equal("three", got[3])
    assert.is_nil(got[4])
  end)

  it("returns tables by reference", function()
    local Child = aqueue.Item:extend("HandleTableValue")
    local made
    function Child:process()
      made = { answer = 42 }
      return made
    end
    local got
    run_parent("HandleTableValueParent", function(_, enqueue)
      got = enqueue(Child{}):result()
    end)
    assert.are.equal(made, got)
  end)

  it("returns no values when the child's process returned none", function()
    local Child = child_class("HandleNoValues")
    local got
    run_parent("HandleNoValuesParent", function(_, enqueue)
      got = pack(enqueue(Child{}):result())
    end)
    assert.are.equal(0, got.n)
  end)

  it("returns nil and the error message when the child's process raised", function()
    local Child = child_class("HandleFailed")
    local got
    local summary = run_parent("HandleFailedParent", function(_, enqueue)
      got = pack(enqueue(Child{ raise = "disk on fire" }):result())
    end)
    assert.are.equal(2, got.n)
    assert.is_nil(got[1])
    assert.are.equal("string", type(got[2]))
    assert.matches("disk on fire", got[2])
    assert.are.equal(1, summary.failed)
    assert.are.equal(1, summary.processed) -- the parent, which handled the failure
  end)

  it("gives exactly the error message, without a traceback", function()
    local Child = aqueue.Item:extend("HandleExactError")
    function Child:process() error("exact message", 0) end
    local got
    run_parent("HandleExactErrorParent", function(_, enqueue)
      got = pack(enqueue(Child{}):result())
    end)
    assert.are.same(pack(nil, "exact message"), got)
  end)

  it("gives a readable message for a non-string error value", function()
    local Child = aqueue.Item:extend("HandleTableError")
    function Child:process()
      error(setmetatable({}, { __tostring = function() return "custom error object" end }))
    end
    local got
    run_parent("HandleTableErrorParent", function(_, enqueue)
      got = pack(enqueue(Child{}):result())
    end)
    assert.is_nil(got[1])
    assert.matches("custom error object", tostring(got[2]))
  end)

  it("waits until the child has finished", function()
    local Child = child_class("HandleWaits")
    local waited
    run_parent("HandleWaitsParent", function(_, enqueue)
      local h = enqueue(Child{ sleep = 0.05, returns = pack("late") })
      local t0 = aqueue.now()
      assert.are.equal("late", h:result())
      waited = aqueue.now() - t0
    end, 2)
    assert.is_true(waited >= 0.045, "waited only " .. waited .. " s")
  end)

  it("waits for the child's process only, not for the child's own children or hook", function()
    local Child = aqueue.Item:extend("HandleNotSubtree")
    local Grandchild = aqueue.Item:extend("HandleNotSubtreeGrand")
    local log = {}
    function Child:process(enqueue)
      enqueue(Grandchild{})
      return "child returned"
    end
    function Child:after_children_processed()
      log[#log + 1] = "child hook"
    end
    function Grandchild:process()
      aqueue.sleep(0.05)
      log[#log + 1] = "grandchild done"
    end
    run_parent("HandleNotSubtreeParent", function(_, enqueue)
      log[#log + 1] = enqueue(Child{}):result()
    end, 3)
    assert.are.same({ "child returned", "grandchild done", "child hook" }, log)
  end)

  it("returns at once when the child has already finished", function()
    local Child = child_class("HandleAlready")
    local got, waited
    run_parent("HandleAlreadyParent", function(_, enqueue)
      local h = enqueue(Child{ returns = pack("early") })
      aqueue.sleep(0.05) -- the child runs on the other worker meanwhile
      -- a task made ready now runs only when this one yields
      local other_ran = false
      aqueue.spawn(function() other_ran = true end)
      got = h:result()
      waited = other_ran
    end, 2)
    assert.are.equal("early", got)
    assert.is_false(waited, "result() yielded for a child that had finished")
  end)

  it("gives the same values every time it is called", function()
    local Child = child_class("HandleTwice")
    local first, second
    run_parent("HandleTwiceParent", function(_, enqueue)
      local h = enqueue(Child{ returns = pack("x", 2) })
      first = pack(h:result())
      second = pack(h:result())
    end)
    assert.are.same(pack("x", 2), first)
    assert.are.same(first, second)
  end)

  it("still gives the results after the run has ended", function()
    local Child = child_class("HandleAfterRun")
    local ok_handle, failed_handle
    run_parent("HandleAfterRunParent", function(_, enqueue)
      ok_handle = enqueue(Child{ returns = pack("kept", 7) })
      failed_handle = enqueue(Child{ raise = "kept failure" })
    end)
    assert.are.same(pack("kept", 7), pack(ok_handle:result()))
    local v, err = failed_handle:result()
    assert.is_nil(v)
    assert.matches("kept failure", err)
  end)

  it("of an item from an earlier run does not wait for an item of a later run", function()
    local Child = child_class("HandleStaleChild")
    local stale
    run_parent("HandleStaleParent", function(_, enqueue)
      stale = enqueue(Child{ returns = pack("old result") })
    end)
    -- A later run whose items take the place the old child had.
    local Busy = aqueue.Item:extend("HandleStaleBusy")
    local got, busy_done_then
    local busy_done = 0
    function Busy:process()
      aqueue.sleep(0.2)
      busy_done = busy_done + 1
    end
    local watcher = aqueue.spawn(function()
      aqueue.sleep(0.02) -- the later run's items are running now
      got = pack(stale:result())
      busy_done_then = busy_done
    end)
    aqueue.run_queue{ initial_items = { Busy{}, Busy{} }, num_workers = 2 }
    watcher:result()
    assert.are.same(pack("old result"), got)
    assert.are.equal(0, busy_done_then, "an old handle waited for an unrelated item")
  end)
end)

describe("waiting on a handle", function()
  it("does not hold a worker slot: a parent can wait on its child with num_workers = 1", function()
    local Child = child_class("HandleOneWorker")
    local got
    local summary = run_parent("HandleOneWorkerParent", function(_, enqueue)
      got = enqueue(Child{ returns = pack(21) }):result() * 2
    end, 1)
    assert.are.equal(42, got)
    assert.are.equal(2, summary.processed)
  end)

  it("does not deadlock down a chain of depth 4 with num_workers = 1", function()
    local Link = aqueue.Item:extend("HandleChain")
    function Link:process(enqueue)
      if self.depth == 4 then return "bottom" end
      local below = enqueue(Link{ depth = self.depth + 1 }):result()
      return below .. "<" .. self.depth
    end
    local top
    run_parent("HandleChainTop", function(_, enqueue)
      top = enqueue(Link{ depth = 1 }):result()
    end, 1)
    assert.are.equal("bottom<3<2<1", top)
  end)

  it("lets other items use the slot meanwhile", function()
    local Child = child_class("HandleSlotReuse")
    local Other = aqueue.Item:extend("HandleSlotOther")
    local log = {}
    function Other:process() log[#log + 1] = "other" end
    local summary = run_parent("HandleSlotReuseParent", function(_, enqueue)
      local h = enqueue(Child{ sleep = 0.02 })
      enqueue(Other{})
      enqueue(Other{})
      h:result()
      log[#log + 1] = "parent resumed"
    end, 1)
    assert.are.same({ "other", "other", "parent resumed" }, log)
    assert.are.equal(4, summary.processed)
  end)

  it("collects the results of many children with fewer workers than children", function()
    local Square = aqueue.Item:extend("HandleSquares")
    function Square:process()
      aqueue.sleep(0.005)
      return self.n * self.n
    end
    local sum
    run_parent("HandleSquaresParent", function(_, enqueue)
      local handles = {}
      for n = 1, 10 do handles[n] = enqueue(Square{ n = n }) end
      sum = 0
      for n = 10, 1, -1 do sum = sum + handles[n]:result() end
    end, 2)
    assert.are.equal(385, sum)
  end)

  it("wakes every task waiting on the same handle", function()
    local Child = child_class("HandleManyWaiters")
    local got = {}
    run_parent("HandleManyWaitersParent", function(_, enqueue)
      local h = enqueue(Child{ sleep = 0.02, returns = pack("shared") })
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = aqueue.spawn(function() got[i] = h:result() end)
      end
      got[4] = h:result()
      for i = 1, 3 do tasks[i]:result() end
    end, 2)
    assert.are.same({ "shared", "shared", "shared", "shared" }, got)
  end)

  it("raises when called from a coroutine the script made itself", function()
    local Child = child_class("HandleCoroutine")
    local ok, err
    run_parent("HandleCoroutineParent", function(_, enqueue)
      local h = enqueue(Child{ sleep = 0.01 })
      ok, err = pcall(coroutine.wrap(function() return h:result() end))
      h:result()
    end, 2)
    assert.is_false(ok)
    assert.matches("aqueue task", tostring(err))
  end)
end)
