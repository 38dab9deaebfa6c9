-- aqueue.run_queue{...}: options, the concurrency bound, the summary, failures,
-- and running several queues one after the other.
local aqueue = require("aqueue")
local capture_stderr = require("tests.support.capture").stderr

local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function noop_class(name)
  local Cls = aqueue.Item:extend(name)
  function Cls:process() end
  return Cls
end

-- A class whose items sleep `self.wait` seconds inside process and record the
-- most items inside process at once in the returned `stats.max`.
local function gauged_class(name)
  local Cls = aqueue.Item:extend(name)
  local stats = { inside = 0, max = 0, count = 0 }
  function Cls:process()
    stats.inside = stats.inside + 1
    stats.count = stats.count + 1
    if stats.inside > stats.max then stats.max = stats.inside end
    aqueue.sleep(self.wait or 0.02)
    stats.inside = stats.inside - 1
  end
  return Cls, stats
end

local function many(Cls, n, fields)
  local items = {}
  for i = 1, n do
    local item = Cls{ n = i }
    for k, v in pairs(fields or {}) do item[k] = v end
    items[i] = item
  end
  return items
end

describe("run_queue options", function()
  it("rejects an unknown option, naming it", function()
    local Cls = noop_class("RqUnknownOpt")
    local err = error_of(aqueue.run_queue, { initial_items = { Cls{} }, workers = 3 })
    assert.matches("unknown option", err)
    assert.matches("workers", err)
  end)

  it("rejects a num_workers that is not a whole number >= 1", function()
    local Cls = noop_class("RqBadWorkers")
    for _, bad in ipairs({ 0, -1, 1.5, "3", 0 / 0, true }) do
      local err = error_of(aqueue.run_queue, { initial_items = { Cls{} }, num_workers = bad })
      assert.matches("num_workers", err)
    end
  end)

  it("rejects an unknown order, naming the valid ones", function()
    local Cls = noop_class("RqBadOrder")
    for _, bad in ipairs({ "random", "LIFO", 1 }) do
      local err = error_of(aqueue.run_queue, { initial_items = { Cls{} }, order = bad })
      assert.matches("order", err)
      assert.matches("lifo", err)
    end
  end)

  it("rejects initial items that are not items", function()
    local err = error_of(aqueue.run_queue, { initial_items = { { url = "x" } } })
    assert.matches("initial_items%[1%]", err)
    local Cls = noop_class("RqNotItemSecond")
    err = error_of(aqueue.run_queue, { initial_items = { Cls{}, "text" } })
    assert.matches("initial_items%[2%]", err)
    err = error_of(aqueue.run_queue, { initial_items = "not a list" })
    assert.matches("initial_items", err)
  end)

  it("rejects an initial item whose class has no process method, naming the class", function()
    local NoProcess = aqueue.Item:extend("RqNoProcess")
    local err = error_of(aqueue.run_queue, { initial_items = { NoProcess{} } })
    assert.matches("RqNoProcess", err, 1, true)
    assert.matches("process", err)
  end)

  it("rejects options that are not a table", function()
    assert.matches("table", error_of(aqueue.run_queue, "fast"))
  end)

  it("rejects the same item twice in initial_items", function()
    local Cls = noop_class("RqTwiceInitial")
    local item = Cls{}
    assert.matches("already enqueued", error_of(aqueue.run_queue, { initial_items = { item, item } }))
  end)

  it("reports bad options at the line that called run_queue", function()
    local Cls = noop_class("RqWhere")
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(function() aqueue.run_queue{ initial_items = { Cls{} }, order = "sideways" } end)
    assert.is_false(ok)
    assert.matches("run_queue_spec.lua:" .. line .. ":", err, 1, true)
    local item = Cls{}
    line = debug.getinfo(1, "l").currentline + 1
    ok, err = pcall(function() aqueue.run_queue{ initial_items = { item, item } } end)
    assert.is_false(ok)
    assert.matches("run_queue_spec.lua:" .. line .. ":", err, 1, true)
  end)

  it("can run again after rejecting options", function()
    local Cls = noop_class("RqAfterReject")
    pcall(aqueue.run_queue, { initial_items = { Cls{} }, order = "bad" })
    pcall(aqueue.run_queue, { initial_items = { Cls{} }, num_workers = 0 })
    local item = Cls{}
    pcall(aqueue.run_queue, { initial_items = { Cls{}, item, item } })
    local summary = aqueue.run_queue{ initial_items = { Cls{}, Cls{} } }
    assert.are.equal(2, summary.processed)
    assert.are.equal(2, summary.enqueued)
  end)

  it("runs an empty queue, with or without options", function()
    local s1 = aqueue.run_queue{}
    local s2 = aqueue.run_queue()
    local s3 = aqueue.run_queue{ initial_items = {} }
    for _, s in ipairs({ s1, s2, s3 }) do
      assert.are.equal(0, s.processed)
      assert.are.equal(0, s.failed)
      assert.are.equal(0, s.enqueued)
    end
  end)
end)

describe("num_workers", function()
  it("bounds how many items are inside process at once", function()
    local Cls, stats = gauged_class("RqBound3")
    local t0 = aqueue.now()
    aqueue.run_queue{ initial_items = many(Cls, 9), num_workers = 3 }
    local elapsed = aqueue.now() - t0
    assert.are.equal(9, stats.count)
    assert.are.equal(3, stats.max)
    -- three rounds of 0.02 s, not two
    assert.is_true(elapsed >= 0.05, "9 items of 0.02 s on 3 workers took only " .. elapsed .. " s")
  end)

  it("is 5 by default", function()
    local Cls, stats = gauged_class("RqBoundDefault")
    aqueue.run_queue{ initial_items = many(Cls, 12) }
    assert.are.equal(5, stats.max)
  end)

  it("runs one item at a time with num_workers = 1", function()
    local Cls, stats = gauged_class("RqBound1")
    aqueue.run_queue{ initial_items = many(Cls, 4, { wait = 0.005 }), num_workers = 1 }
    assert.are.equal(1, stats.max)
    assert.are.equal(4, stats.count)
  end)

  it("still bounds the items running once waiting parents resume", function()
    local Parent = aqueue.Item:extend("RqBoundParent")
    local Child = aqueue.Item:extend("RqBoundChild")
    local active, max = 0, 0
    local function enter()
      active = active + 1
      if active > max then max = active end
    end
    function Child:process()
      enter()
      aqueue.sleep(0.01 * self.n)
      active = active - 1
      return self.n
    end
    function Parent:process(enqueue)
      enter()
      local h = enqueue(Child{ n = self.n })
      active = active - 1 -- waiting does not hold a worker
      local v = h:result()
      enter()
      aqueue.sleep(0.02)
      active = active - 1
      return v
    end
    local summary = aqueue.run_queue{ initial_items = many(Parent, 6), num_workers = 2 }
    assert.are.equal(12, summary.processed)
    assert.are.equal(2, max)
  end)

  it("uses all workers for children enqueued while the queue runs", function()
    local Cls, stats = gauged_class("RqBoundChildren")
    local Root = aqueue.Item:extend("RqBoundChildrenRoot")
    function Root:process(enqueue)
      for i = 1, 12 do enqueue(Cls{ n = i }) end
    end
    aqueue.run_queue{ initial_items = { Root{} }, num_workers = 4 }
    assert.are.equal(4, stats.max)
    assert.are.equal(12, stats.count)
  end)
end)

describe("the summary", function()
  it("counts processed, failed, enqueued items and reports the elapsed time", function()
    local Good = aqueue.Item:extend("RqSumGood")
    local Bad = aqueue.Item:extend("RqSumBad")
    local Root = aqueue.Item:extend("RqSumRoot")
    function Good:process() aqueue.sleep(0.01) end
    function Bad:process() error("bad item " .. self.n) end
    function Root:process(enqueue)
      for i = 1, 3 do enqueue(Good{ n = i }) end
      for i = 1, 2 do enqueue(Bad{ n = i }) end
    end
    local t0 = aqueue.now()
    local summary = aqueue.run_queue{ initial_items = { Root{}, Good{ n = 0 } }, num_workers = 2 }
    local wall = aqueue.now() - t0
    assert.are.equal(5, summary.processed)
    assert.are.equal(2, summary.failed)
    assert.are.equal(7, summary.enqueued)
    assert.are.equal(0, summary.retried)
    assert.are.equal(0, summary.not_started)
    assert.are.equal(0, summary.cancelled)
    assert.is_false(summary.interrupted)
    assert.are.equal("number", type(summary.elapsed))
    -- seconds (not milliseconds), and no more than the call took
    assert.is_true(summary.elapsed >= 0.009 and summary.elapsed <= wall)
  end)

  it("has per-class figures: done, failed and the most queued at once", function()
    local Root = aqueue.Item:extend("RqClassRoot")
    local Leaf = aqueue.Item:extend("RqClassLeaf")
    local Flaky = aqueue.Item:extend("RqClassFlaky")
    function Root:process(enqueue)
      for i = 1, 4 do enqueue(Leaf{ n = i }) end
      enqueue(Flaky{ fail = true })
      enqueue(Flaky{ fail = false })
    end
    function Leaf:process() end
    function Flaky:process() if self.fail then error("flaky") end end
    local summary = aqueue.run_queue{ initial_items = { Root{} }, num_workers = 1 }
    assert.are.same({ done = 1, failed = 0, retried = 0, max_queued = 1 }, summary.classes.RqClassRoot)
    assert.are.same({ done = 4, failed = 0, retried = 0, max_queued = 4 }, summary.classes.RqClassLeaf)
    assert.are.same({ done = 1, failed = 1, retried = 0, max_queued = 2 }, summary.classes.RqClassFlaky)
  end)

  it("lists each failure with its class, phase, message and item", function()
    local Broken = aqueue.Item:extend("RqErrBroken")
    function Broken:process() error("broken number " .. self.n) end
    local BadHook = aqueue.Item:extend("RqErrBadHook")
    function BadHook:process() end
    function BadHook:after_children_processed() error("hook gave up") end
    local b1, b2, h = Broken{ n = 1 }, Broken{ n = 2 }, BadHook{}
    local summary = aqueue.run_queue{ initial_items = { b1, b2, h }, num_workers = 1, order = "fifo" }
    assert.are.equal(3, #summary.errors)
    local e1, e2, e3 = summary.errors[1], summary.errors[2], summary.errors[3]
    assert.are.equal("RqErrBroken", e1.class)
    assert.are.equal("process", e1.phase)
    assert.matches("broken number 1", e1.error)
    assert.are.equal(b1, e1.item)
    assert.are.equal(b2, e2.item)
    assert.matches("broken number 2", e2.error)
    assert.are.equal("RqErrBadHook", e3.class)
    assert.are.equal("after_children_processed", e3.phase)
    assert.matches("hook gave up", e3.error)
    assert.are.equal(h, e3.item)
  end)

  it("has an empty error list when nothing failed", function()
    local Cls = noop_class("RqNoErrors")
    local summary = aqueue.run_queue{ initial_items = { Cls{} } }
    assert.are.same({}, summary.errors)
  end)

  it("starts from zero in each run and lists only the classes of that run", function()
    local First = noop_class("RqSeqFirst")
    local Second = aqueue.Item:extend("RqSeqSecond")
    function Second:process() error("second fails") end
    local s1 = aqueue.run_queue{ initial_items = many(First, 3) }
    local s2 = aqueue.run_queue{ initial_items = many(Second, 2) }
    local s3 = aqueue.run_queue{ initial_items = many(First, 1) }
    assert.are.equal(3, s1.processed)
    assert.are.equal(0, s1.failed)
    assert.are.equal(0, s2.processed)
    assert.are.equal(2, s2.failed)
    assert.are.equal(2, #s2.errors)
    assert.are.equal(1, s3.processed)
    assert.are.equal(0, s3.failed)
    assert.are.equal(1, s3.enqueued)
    assert.are.same({}, s3.errors)
    assert.is_nil(s2.classes.RqSeqFirst)
    assert.is_nil(s3.classes.RqSeqSecond)
    assert.are.same({ done = 1, failed = 0, retried = 0, max_queued = 1 }, s3.classes.RqSeqFirst)
  end)
end)

describe("a failing item", function()
  it("does not stop the rest of the queue", function()
    local Cls = aqueue.Item:extend("RqGoesOn")
    local done = {}
    function Cls:process()
      if self.n % 2 == 0 then error("even " .. self.n) end
      done[#done + 1] = self.n
    end
    local summary = aqueue.run_queue{ initial_items = many(Cls, 6), num_workers = 1, order = "fifo" }
    assert.are.same({ 1, 3, 5 }, done)
    assert.are.equal(3, summary.processed)
    assert.are.equal(3, summary.failed)
  end)

  it("has its message and traceback printed on stderr", function()
    local Cls = aqueue.Item:extend("RqPrinted")
    function Cls:process()
      local function deep_helper_function() error("printed failure") end
      deep_helper_function()
    end
    local text = capture_stderr(function()
      return aqueue.run_queue{ initial_items = { Cls{} } }
    end)
    assert.matches("RqPrinted", text, 1, true)
    assert.matches("printed failure", text, 1, true)
    assert.matches("traceback", text)
    assert.matches("deep_helper_function", text, 1, true)
  end)

  it("in a hook has its message printed on stderr", function()
    local Cls = aqueue.Item:extend("RqPrintedHook")
    function Cls:process() end
    function Cls:after_children_processed() error("printed hook failure") end
    local text = capture_stderr(function()
      return aqueue.run_queue{ initial_items = { Cls{} } }
    end)
    assert.matches("printed hook failure", text, 1, true)
    assert.matches("after_children_processed", text, 1, true)
  end)
end)

describe("run_queue", function()
  it("returns only when every item, including late children, is done", function()
    local Root = aqueue.Item:extend("RqWaitAll")
    local Late = aqueue.Item:extend("RqWaitAllLate")
    local finished = 0
    function Root:process(enqueue)
      aqueue.sleep(0.02)
      enqueue(Late{})
    end
    function Late:process()
      aqueue.sleep(0.02)
      finished = finished + 1
    end
    local summary = aqueue.run_queue{ initial_items = { Root{}, Root{} }, num_workers = 3 }
    assert.are.equal(2, finished)
    assert.are.equal(4, summary.processed)
  end)

  it("runs several queues one after the other", function()
    local Cls = aqueue.Item:extend("RqSequential")
    local runs = {}
    function Cls:process(enqueue)
      runs[#runs + 1] = self.run
      if self.children > 0 then enqueue(Cls{ run = self.run, children = self.children - 1 }) end
    end
    for run = 1, 3 do
      local summary = aqueue.run_queue{ initial_items = { Cls{ run = run, children = run } }, num_workers = run }
      assert.are.equal(run + 1, summary.processed)
      assert.are.equal(run + 1, summary.enqueued)
    end
    assert.are.same({ 1, 1, 2, 2, 2, 3, 3, 3, 3 }, runs)
  end)

  it("raises when called while a queue is already running", function()
    local Inner = noop_class("RqNestedInner")
    local Outer = aqueue.Item:extend("RqNestedOuter")
    local ok, err
    function Outer:process()
      ok, err = pcall(aqueue.run_queue, { initial_items = { Inner{} } })
    end
    local summary = aqueue.run_queue{ initial_items = { Outer{} } }
    assert.is_false(ok)
    assert.matches("already running", tostring(err))
    assert.are.equal(1, summary.processed)
    assert.is_nil(summary.classes.RqNestedInner)
  end)

  it("can be called from a spawned task", function()
    local Cls = noop_class("RqFromSpawn")
    local h = aqueue.spawn(function()
      return aqueue.run_queue{ initial_items = many(Cls, 3) }
    end)
    local summary = h:result()
    assert.are.equal(3, summary.processed)
  end)

  -- (how quickly: scripts/bench, not a wall-clock bound here)
  it("processes 20000 items enqueued by one item", function()
    local Cls = noop_class("RqMany")
    local Root = aqueue.Item:extend("RqManyRoot")
    function Root:process(enqueue)
      for i = 1, 20000 do enqueue(Cls{ n = i }) end
    end
    local summary = aqueue.run_queue{ initial_items = { Root{} }, num_workers = 100 }
    assert.are.equal(20001, summary.processed)
  end)
end)
