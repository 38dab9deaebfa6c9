-- A process that enqueues a very large number of children does not hold the
-- loop thread until it is done: every few thousand enqueues it gives other
-- tasks and the loop (timers, signals, the display) a turn, where it may
-- yield, and goes on without one where it may not.
local aqueue = require("aqueue")
local run = require("tests.support.runs").quiet

describe("enqueueing many children", function()
  it("gives the loop a turn: a timer fires and other tasks run during the enqueue loop", function()
    local N = 200000
    local ticks, turns, done = 0, 0, false
    local during = {}
    local Child = aqueue.Item:extend("TurnsChild")
    function Child:process() end
    local Parent = aqueue.Item:extend("TurnsParent")
    function Parent:process(enqueue)
      local ticks0, turns0 = ticks, turns
      for i = 1, N do
        enqueue(Child{ i = i })
      end
      during.ticks, during.turns = ticks - ticks0, turns - turns0
      done = true
    end
    -- a timer: counts the loop's turns through its timers
    local timer = aqueue.spawn(function()
      while not done do
        aqueue.sleep(0.001)
        ticks = ticks + 1
      end
    end)
    -- a ready task: counts the turns other tasks get
    local other = aqueue.spawn(function()
      while not done do
        coroutine.yield()
        turns = turns + 1
      end
    end)
    local s = run({ Parent{} }, { num_workers = 1 })
    timer:result()
    other:result()
    assert.are.equal(N + 1, s.processed)
    -- one turn every 4096 enqueues at least
    assert.is_true(during.turns >= math.floor(N / 4096) - 1,
      ("other tasks ran only %d times during the enqueue loop"):format(during.turns))
    assert.is_true(during.ticks >= 1, "the timer never fired during the enqueue loop")
  end)

  it("gives turns with the method form self:enqueue(child) too", function()
    local N = 20000
    local turns, done = 0, false
    local during
    local Child = aqueue.Item:extend("TurnsMethodChild")
    function Child:process() end
    local Parent = aqueue.Item:extend("TurnsMethodParent")
    function Parent:process()
      local turns0 = turns
      for _ = 1, N do
        self:enqueue(Child{})
      end
      during = turns - turns0
      done = true
    end
    local other = aqueue.spawn(function()
      while not done do
        coroutine.yield()
        turns = turns + 1
      end
    end)
    local s = run({ Parent{} }, { num_workers = 1 })
    other:result()
    assert.are.equal(N + 1, s.processed)
    assert.is_true(during >= math.floor(N / 4096) - 1, ("other tasks ran only %d times"):format(during))
  end)

  it("takes no turn while run_queue enqueues its initial items: all are queued before the first starts", function()
    local N = 10000
    local order = {}
    local Item = aqueue.Item:extend("TurnsInitial")
    function Item:process() order[#order + 1] = self.n end
    local items = {}
    for i = 1, N do items[i] = Item{ n = i } end
    run(items, { num_workers = 4, order = "lifo" })
    assert.are.equal(N, #order)
    assert.are.equal(N, order[1]) -- lifo: the last initial item started first
  end)

  it("goes on without a turn where it cannot yield: in a table.sort comparator", function()
    local Child = aqueue.Item:extend("TurnsSortChild")
    function Child:process() end
    local Parent = aqueue.Item:extend("TurnsSortParent")
    local enqueued = 0
    function Parent:process(enqueue)
      local list = {}
      for i = 1, 3000 do list[i] = (i * 7919) % 3001 end
      table.sort(list, function(a, b)
        assert(enqueue(Child{}))
        enqueued = enqueued + 1
        return a < b
      end)
    end
    local s = run({ Parent{} }, { num_workers = 1 })
    assert.is_true(enqueued > 4096 * 2, "the comparator ran too few times to test anything")
    assert.are.equal(enqueued + 1, s.processed)
    assert.are.equal(0, s.failed)
  end)

  it("goes on without a turn in a coroutine the script made itself", function()
    local Child = aqueue.Item:extend("TurnsCoChild")
    function Child:process() end
    local Parent = aqueue.Item:extend("TurnsCoParent")
    function Parent:process(enqueue)
      local co = coroutine.wrap(function()
        for _ = 1, 10000 do assert(enqueue(Child{})) end
        return "finished"
      end)
      assert(co() == "finished")
    end
    local s = run({ Parent{} }, { num_workers = 1 })
    assert.are.equal(10001, s.processed)
    assert.are.equal(0, s.failed)
  end)
end)
