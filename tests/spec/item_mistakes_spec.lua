-- Mistakes a new user makes with items get a clear error instead of a silent
-- surprise: one item as initial_items, process written with a dot, a
-- misspelt scheduling field on a class or an instance.
local aqueue = require("aqueue")
local runs = require("tests.support.runs")
local run, error_of = runs.quiet, runs.error_of

describe("initial_items", function()
  it("accepts one item as a list of one", function()
    local One = aqueue.Item:extend("MisOne")
    local ran = 0
    function One:process() ran = ran + 1 end
    local s = aqueue.run_queue{ initial_items = One{}, progress = "none" }
    assert.are.equal(1, s.processed)
    assert.are.equal(1, ran)
  end)

  it("rejects a value that is not a list, saying what it got", function()
    local Cls = aqueue.Item:extend("MisNotList")
    function Cls:process() end
    assert.matches("run_queue: initial_items must be a list of items (or one item), got a string",
      error_of(aqueue.run_queue, { initial_items = "x", progress = "none" }), 1, true)
    assert.matches('run_queue: initial_items must be a list of items (or one item), got a table with the key "url"',
      error_of(aqueue.run_queue, { initial_items = { url = "x" }, progress = "none" }), 1, true)
    local holey = { Cls{}, Cls{}, Cls{}, Cls{} }
    holey[2] = nil
    local err = error_of(aqueue.run_queue, { initial_items = holey, progress = "none" })
    assert.is_truthy(err:find("run_queue: initial_items[2] is nil: initial_items must be a list of items", 1, true)
      or err:find("run_queue: initial_items must be a list of items (or one item), got a table with the key ", 1,
        true), err)
  end)
end)

describe("process defined with a dot", function()
  it("is an error at the definition that says how to write it", function()
    local Page = aqueue.Item:extend("MisDotPage")
    local err = error_of(function()
      function Page.process(enqueue, set_desc) end -- luacheck: ignore
    end)
    assert.matches("item_mistakes_spec.lua:%d+: MisDotPage.process is defined with a dot: "
      .. "write function MisDotPage:process%(enqueue, set_desc%)", err)
  end)

  it("accepts the colon form, a dot form with an explicit self, and no parameters", function()
    local A = aqueue.Item:extend("MisDotOk")
    function A:process(enqueue) end
    local B = aqueue.Item:extend("MisDotSelf")
    function B.process(self, enqueue) end -- luacheck: ignore
    local C = aqueue.Item:extend("MisDotNone")
    function C.process() end
    local s = run({ A{}, B{}, C{} })
    assert.are.equal(3, s.processed)
  end)
end)

describe("a misspelt scheduling field", function()
  local cases = {
    retires = "retries", timout = "timeout", retry_backof = "retry_backoff", prioirty = "priority",
    delya = "delay", track_overal = "track_overall", after_children_process = "after_children_processed",
  }

  it("on a class is an error at the line that sets it, naming the field meant", function()
    for wrong, meant in pairs(cases) do
      local Cls = aqueue.Item:extend("MisClass_" .. wrong)
      local err = error_of(function() Cls[wrong] = 1 end)
      assert.matches(("item_mistakes_spec.lua:%%d+: MisClass_%s.%s: unknown field, did you mean %s%%?")
        :format(wrong, wrong, meant), err)
    end
  end)

  it("on an instance is an error at enqueue, naming the field meant", function()
    local Cls = aqueue.Item:extend("MisInstance")
    function Cls:process() end
    for wrong, meant in pairs(cases) do
      local err = error_of(run, { Cls{ [wrong] = 1 } })
      assert.matches(("enqueue: MisInstance.%s: unknown field, did you mean %s?"):format(wrong, meant), err, 1, true)
    end
    local Parent = aqueue.Item:extend("MisInstanceParent")
    local err
    function Parent:process(enqueue)
      local ok, e = pcall(enqueue, Cls{ retires = 2 })
      err = not ok and tostring(e)
    end
    run({ Parent{} })
    assert.matches("item_mistakes_spec.lua:%d+: enqueue: MisInstance.retires: unknown field, did you mean retries%?", err)
  end)

  it("leaves the user's own fields alone, the known ones too", function()
    local Cls = aqueue.Item:extend("MisOwnFields")
    Cls.retries = 1
    Cls.retry_backoff = 0.01
    Cls.entries, Cls.metrics, Cls.processed, Cls.progress, Cls.depth = {}, {}, false, 0, 1
    local seen = 0
    function Cls:process() seen = seen + 1 end
    local s = run({ Cls{ url = "http://127.0.0.1/", delta = 1, results = {}, title = "t", timeout = 5, delay = 0,
      priority = 1, track_overall = true } })
    assert.are.equal(1, s.processed)
    assert.are.equal(1, seen)
  end)
end)

describe("self.attempt", function()
  it("is the attempt number inside process: 1 on the first run, then 2, 3 on retries", function()
    local Flaky = aqueue.Item:extend("MisAttempt")
    Flaky.retries = 3
    Flaky.retry_backoff = 0.001
    local seen = {}
    function Flaky:process()
      seen[#seen + 1] = self.attempt
      if self.attempt < 3 then error("not yet") end
    end
    local s = run({ Flaky{} })
    assert.are.same({ 1, 2, 3 }, seen)
    assert.are.equal(1, s.processed)
    assert.are.equal(2, s.retried)
  end)

  it("counts attempts cut short by a timeout", function()
    local Slow = aqueue.Item:extend("MisAttemptTimeout")
    Slow.retries = 1
    Slow.retry_backoff = 0.001
    Slow.timeout = 0.05
    local seen = {}
    function Slow:process()
      seen[#seen + 1] = self.attempt
      if self.attempt == 1 then aqueue.sleep(10) end
    end
    local s = run({ Slow{} })
    assert.are.same({ 1, 2 }, seen)
    assert.are.equal(1, s.processed)
  end)
end)
