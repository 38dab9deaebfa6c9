-- Limits of a whole run and of when an item may start (SPEC section 4):
-- run_queue{ max_items = n, max_time = t } stop the run cleanly, like a first
-- Ctrl-C; an item's `delay` holds it back (without holding a worker).
local aqueue = require("aqueue")
local capture_stderr = require("tests.support.capture").stderr
local longer_wait = require("tests.support.longer_wait")

local now = aqueue.now

local runs = require("tests.support.runs")
local run, error_of = runs.quiet, runs.error_of

describe("run_queue{ max_items = n }", function()
  it("starts exactly n items, lets them finish with their hooks, and drops the rest", function()
    local Root = aqueue.Item:extend("RlMaxRoot")
    local Job = aqueue.Item:extend("RlMaxJob")
    local started, hooks, results = {}, {}, {}
    function Job:process()
      started[#started + 1] = self.n
      aqueue.sleep(0.05)
      return "job " .. self.n
    end
    function Job:after_children_processed()
      hooks[#hooks + 1] = self.n
    end
    function Root:process(enqueue)
      local handles = {}
      for i = 1, 10 do handles[i] = assert(enqueue(Job{ n = i })) end
      -- waiting gives the root's worker away: jobs 1-3 start now, 4 and 5 when
      -- those end, and the 6th start (the root is the first) stops the run
      results.first = { handles[1]:result() }
      results.last = { handles[10]:result() }
      results.late = { enqueue(Job{ n = 11 }) }
    end
    local s = run({ Root{} }, { order = "fifo", num_workers = 3, max_items = 6 })

    table.sort(started)
    table.sort(hooks)
    assert.are.same({ 1, 2, 3, 4, 5 }, started)
    assert.are.same({ 1, 2, 3, 4, 5 }, hooks)
    assert.are.same({ "job 1" }, results.first)
    assert.is_nil(results.last[1])
    assert.are.equal("not started: the queue was stopped", results.last[2])
    assert.is_nil(results.late[1])
    assert.are.equal("stopped", results.late[2])

    assert.are.equal("max_items", s.stopped)
    assert.is_false(s.interrupted)
    assert.are.equal(6, s.processed)
    assert.are.equal(0, s.failed)
    assert.are.equal(5, s.not_started)
    assert.are.equal(11, s.enqueued)
    assert.are.equal(5, s.classes.RlMaxJob.done)
  end)

  it("counts items, not attempts, and retries nothing once stopped", function()
    local Root = aqueue.Item:extend("RlMaxRetryRoot")
    local Flaky = aqueue.Item:extend("RlMaxRetryFlaky")
    Flaky.retries = 3
    Flaky.retry_backoff = 0.01
    local calls, result = 0, nil
    function Flaky:process()
      calls = calls + 1
      error("always fails")
    end
    function Root:process(enqueue)
      result = { enqueue(Flaky{}):result() }
    end
    local s
    capture_stderr(function()
      s = run({ Root{} }, { max_items = 2 })
    end)
    assert.are.equal(1, calls) -- the second start stopped the run: no retry started
    assert.is_nil(result[1])
    assert.matches("not retried: the queue was stopped", result[2], 1, true)
    assert.matches("always fails", result[2], 1, true)
    assert.are.equal("max_items", s.stopped)
    assert.are.equal(1, s.not_started)
    assert.are.equal(1, s.processed)
  end)

  it("with n more than the number of items runs them all and does not stop", function()
    local Cls = aqueue.Item:extend("RlMaxEnough")
    local count = 0
    function Cls:process() count = count + 1 end
    local items = {}
    for i = 1, 5 do items[i] = Cls{} end
    local s = run(items, { max_items = 6 })
    assert.are.equal(5, count)
    assert.are.equal(5, s.processed)
    assert.are.equal(0, s.not_started)
    assert.is_nil(s.stopped)
    assert.is_false(s.interrupted)
  end)

  it("stops at exactly n with many items and one worker", function()
    local Cls = aqueue.Item:extend("RlMaxMany")
    local count = 0
    function Cls:process() count = count + 1 end
    local items = {}
    for i = 1, 1000 do items[i] = Cls{} end
    local s = run(items, { max_items = 137, num_workers = 1 })
    assert.are.equal(137, count)
    assert.are.equal(137, s.processed)
    assert.are.equal(1000 - 137, s.not_started)
  end)

  it("drops items held by a limit key and delayed items too", function()
    local Cls = aqueue.Item:extend("RlMaxHeld")
    local count = 0
    function Cls:limit_key() return self.lk end
    function Cls:process()
      count = count + 1
      aqueue.sleep(0.05)
    end
    local items = {}
    for i = 1, 4 do items[#items + 1] = Cls{ lk = "k" } end     -- 3 held by per_key
    for i = 1, 3 do items[#items + 1] = Cls{ delay = 10 } end   -- waiting out a delay
    items[#items + 1] = Cls{}
    local delays = longer_wait.start(10)
    local s = run(items, { order = "fifo", num_workers = 4, max_items = 2, limits = { per_key = 1 } })
    assert.are.equal(2, count)
    assert.are.equal(6, s.not_started)
    assert.are.equal("max_items", s.stopped)
    -- the delayed items were dropped, not waited for
    assert.is_false(delays:ended(), "the run waited for delayed items")
    delays:stop()
  end)
end)

describe("run_queue{ max_time = t }", function()
  it("stops after about t: running items finish with their hooks, waiting ones are dropped", function()
    local Cls = aqueue.Item:extend("RlTime")
    local starts, ends, hooks = 0, 0, 0
    local last_end
    function Cls:process()
      starts = starts + 1
      aqueue.sleep(0.12)
      ends = ends + 1
      last_end = now()
    end
    function Cls:after_children_processed() hooks = hooks + 1 end
    local items = {}
    for i = 1, 40 do items[i] = Cls{} end -- 2.4 s of work on 2 workers
    local t0 = now()
    local s = run(items, { order = "fifo", num_workers = 2, max_time = 0.3 })
    assert.are.equal("max_time", s.stopped)
    assert.is_false(s.interrupted)
    assert.is_true(s.elapsed >= 0.3, "stopped before max_time: " .. s.elapsed)
    -- it did stop: not all of the 40 items started
    assert.is_true(starts >= 2)
    assert.is_true(starts < 40)
    -- every started item finished, hook included, before run_queue returned
    assert.are.equal(starts, ends)
    assert.are.equal(starts, hooks)
    assert.are.equal(starts, s.processed)
    assert.are.equal(40 - starts, s.not_started)
    assert.is_true(last_end - t0 >= 0.3, "no item was running when max_time came")
  end)

  it("counts t from the call, even when the script kept the loop busy just before", function()
    local Cls = aqueue.Item:extend("RlTimeBusyBefore")
    local ran = 0
    function Cls:process()
      ran = ran + 1
      aqueue.sleep(0.05)
    end
    local items = {}
    for i = 1, 20 do items[i] = Cls{} end -- 1 s of work on one worker
    local t = now()
    while now() - t < 0.4 do end -- CPU work without yielding, e.g. building the items
    local s = run(items, { num_workers = 1, max_time = 0.3 })
    assert.are.equal("max_time", s.stopped)
    -- max_time counts from run_queue, not from when the loop last read its
    -- clock (0.4 s earlier here)
    assert.is_true(s.elapsed >= 0.3, ("stopped after %.3f s of a max_time of 0.3 s"):format(s.elapsed))
    assert.is_true(ran >= 2, "only " .. ran .. " items ran")
  end)

  it("makes enqueue return nil, 'stopped' afterwards", function()
    local Long = aqueue.Item:extend("RlTimeLong")
    local Child = aqueue.Item:extend("RlTimeChild")
    local late
    function Child:process() end
    function Long:process(enqueue)
      aqueue.sleep(0.3) -- max_time passes meanwhile
      late = { enqueue(Child{}) }
    end
    local s = run({ Long{} }, { max_time = 0.05 })
    assert.is_nil(late[1])
    assert.are.equal("stopped", late[2])
    assert.are.equal(1, s.processed)
    assert.are.equal("max_time", s.stopped)
  end)

  it("drops items waiting out a delay instead of waiting for them", function()
    local Cls = aqueue.Item:extend("RlTimeDelayed")
    local ran = 0
    function Cls:process() ran = ran + 1 end
    local delays = longer_wait.start(30)
    local s = run({ Cls{}, Cls{ delay = 30 }, Cls{ delay = 30 } }, { max_time = 0.1 })
    assert.is_false(delays:ended(), "the run waited for delayed items")
    delays:stop()
    assert.are.equal(1, ran)
    assert.are.equal(2, s.not_started)
    assert.are.equal("max_time", s.stopped)
  end)

  it("does not stop a run that ends before t", function()
    local Cls = aqueue.Item:extend("RlTimeShort")
    function Cls:process() aqueue.sleep(0.01) end
    -- (a max_time far over the run's 0.01 s, even on a loaded machine)
    local s = run({ Cls{}, Cls{} }, { max_time = 60 })
    assert.are.equal(2, s.processed)
    assert.is_nil(s.stopped)
    assert.is_true(s.elapsed < 60)
  end)
end)

describe("a following run_queue", function()
  it("runs normally after a run stopped by max_items with limits", function()
    local Cls = aqueue.Item:extend("RlNextA")
    local inside, max, calls = 0, 0, 0
    function Cls:limit_key()
      calls = calls + 1
      return "k"
    end
    function Cls:process()
      inside = inside + 1
      max = math.max(max, inside)
      aqueue.sleep(0.03)
      inside = inside - 1
    end
    local function items(n)
      local list = {}
      for i = 1, n do list[i] = Cls{} end
      return list
    end
    local s1 = run(items(6), { num_workers = 6, max_items = 2, limits = { per_key = 1 } })
    assert.are.equal("max_items", s1.stopped)
    assert.are.equal(1, max)

    -- no limits, no max_items: all six at once, limit_key not called
    inside, max, calls = 0, 0, 0
    local s2 = run(items(6), { num_workers = 6 })
    assert.are.equal(6, s2.processed)
    assert.are.equal(0, s2.not_started)
    assert.is_nil(s2.stopped)
    assert.is_false(s2.interrupted)
    assert.are.equal(0, calls)
    assert.are.equal(6, max)

    -- the same key with other limits: the new ones hold
    inside, max = 0, 0
    local s3 = run(items(6), { num_workers = 6, limits = { per_key = 3 } })
    assert.are.equal(6, s3.processed)
    assert.are.equal(3, max)
  end)

  it("is not stopped by an earlier run's max_time", function()
    local Cls = aqueue.Item:extend("RlNextTime")
    function Cls:process() aqueue.sleep(self.wait) end
    local s1 = run({ Cls{ wait = 0.01 } }, { max_time = 0.2 })
    assert.is_nil(s1.stopped)
    -- this run lasts past the moment the first one's max_time would have come
    local s2 = run({ Cls{ wait = 0.3 }, Cls{ wait = 0.3 } }, { num_workers = 1 })
    assert.are.equal(2, s2.processed)
    assert.is_nil(s2.stopped)

    local s3 = run({ Cls{ wait = 0.2 }, Cls{ wait = 0.2 } }, { num_workers = 1, max_time = 0.05 })
    assert.are.equal("max_time", s3.stopped)
    local s4 = run({ Cls{ wait = 0.1 }, Cls{ wait = 0.1 } }, { num_workers = 1 })
    assert.are.equal(2, s4.processed)
    assert.are.equal(0, s4.not_started)
    assert.is_nil(s4.stopped)
  end)
end)

describe("Item.delay", function()
  it("starts an item no earlier than its delay after it was enqueued", function()
    local Cls = aqueue.Item:extend("RlDelay")
    Cls.delay = 0.2
    local Spawner = aqueue.Item:extend("RlDelaySpawner")
    local t = {}
    function Cls:process() t[self.name] = now() end
    function Spawner:process(enqueue)
      aqueue.sleep(0.1)
      t.enqueued = now()
      enqueue(Cls{ name = "child" })
    end
    local t0 = now()
    run({ Cls{ name = "initial" }, Spawner{} }, { num_workers = 2 })
    assert.is_true(t.initial - t0 >= 0.2, "an initial item started after " .. (t.initial - t0) .. " s")
    assert.is_true(t.child - t.enqueued >= 0.2, "a child started after " .. (t.child - t.enqueued) .. " s")
  end)

  it("of an instance overrides its class's", function()
    local Cls = aqueue.Item:extend("RlDelayOverride")
    Cls.delay = 0.6
    local Plain = aqueue.Item:extend("RlDelayPlain")
    local t = {}
    function Cls:process() t[self.name] = now() end
    Plain.process = Cls.process
    local t0 = now()
    run({ Cls{ name = "short", delay = 0.05 }, Cls{ name = "none", delay = 0 }, Cls{ name = "class" },
      Plain{ name = "own", delay = 0.3 } }, { num_workers = 4 })
    assert.is_true(t.short - t0 >= 0.05)
    assert.is_true(t.short < t.own, "the instance's delay did not replace the class's")
    assert.is_true(t.none < t.short, "delay = 0 on the instance did not replace the class's")
    assert.is_true(t.class - t0 >= 0.6)
    assert.is_true(t.own - t0 >= 0.3)
    assert.is_true(t.short < t.own and t.own < t.class)
  end)

  it("holds no worker while it waits: with one worker, other items run meanwhile", function()
    local Cls = aqueue.Item:extend("RlDelayNoWorker")
    local log, t = {}, {}
    function Cls:process()
      log[#log + 1] = self.name
      t[self.name] = now()
      aqueue.sleep(0.02)
    end
    local items = { Cls{ name = "delayed", delay = 0.3 } }
    for i = 1, 5 do items[#items + 1] = Cls{ name = "o" .. i } end
    local t0 = now()
    local due = longer_wait.start(0.3) -- ends when the delayed item is due
    local s = run(items, { order = "fifo", num_workers = 1 })
    assert.are.equal(6, s.processed)
    assert.are.same({ "o1", "o2", "o3", "o4", "o5", "delayed" }, log)
    assert.is_true(t.o1 < due.ended_at, "the first other item waited for the delayed one")
    assert.is_true(t.delayed - t0 >= 0.3)
  end)

  it("of 0 starts the item at once, in queue order", function()
    local Cls = aqueue.Item:extend("RlDelayZero")
    local log = {}
    function Cls:process() log[#log + 1] = self.name end
    run({ Cls{ name = "a", delay = 0 }, Cls{ name = "b" }, Cls{ name = "c", delay = 0 } },
      { order = "fifo", num_workers = 1 })
    assert.are.same({ "a", "b", "c" }, log)
  end)

  it("of several items lets them start in the order they become due", function()
    local Cls = aqueue.Item:extend("RlDelayDue")
    local log = {}
    function Cls:process() log[#log + 1] = self.name end
    run({ Cls{ name = "d3", delay = 0.15 }, Cls{ name = "d1", delay = 0.05 }, Cls{ name = "d2", delay = 0.1 } },
      { order = "fifo", num_workers = 1 })
    assert.are.same({ "d1", "d2", "d3" }, log)
  end)
end)

describe("bad values", function()
  local Cls = aqueue.Item:extend("RlBad")
  function Cls:process() error("must not run") end

  it("rejects a max_items that is not a whole number >= 1", function()
    assert.matches("run_queue: max_items must be a whole number >= 1, got 0",
      error_of(run, { Cls{} }, { max_items = 0 }), 1, true)
    for _, bad in ipairs({ -1, 2.5, "3", 0 / 0, true }) do
      assert.matches("run_queue: max_items must be a whole number >= 1, got " .. tostring(bad),
        error_of(run, { Cls{} }, { max_items = bad }), 1, true)
    end
  end)

  it("rejects a max_time that is not a number of seconds > 0", function()
    assert.matches("run_queue: max_time must be a number of seconds > 0, got -1",
      error_of(run, { Cls{} }, { max_time = -1 }), 1, true)
    for _, bad in ipairs({ 0, "1", 0 / 0, math.huge, {} }) do
      assert.matches("run_queue: max_time must be a number of seconds > 0, got " .. tostring(bad),
        error_of(run, { Cls{} }, { max_time = bad }), 1, true)
    end
  end)

  it("rejects a lease or heartbeat (a shared run's) that is not a number of seconds > 0, or a heartbeat over half the lease", function()
    for _, bad in ipairs({ 0, -1, "15", 0 / 0, math.huge }) do
      assert.matches("run_queue: lease must be a number of seconds > 0, got " .. tostring(bad),
        error_of(run, { Cls{} }, { lease = bad }), 1, true)
      assert.matches("run_queue: heartbeat must be a number of seconds > 0, got " .. tostring(bad),
        error_of(run, { Cls{} }, { heartbeat = bad }), 1, true)
    end
    assert.matches("run_queue: heartbeat (1 s) must be at most half the lease (1.5 s)",
      error_of(run, { Cls{} }, { lease = 1.5 }), 1, true)
    assert.matches("run_queue: heartbeat (8 s) must be at most half the lease (15 s)",
      error_of(run, { Cls{} }, { heartbeat = 8 }), 1, true)
  end)

  it("rejects a delay that is not a number of seconds >= 0, from enqueue", function()
    local Bad = aqueue.Item:extend("RlBadDelay")
    function Bad:process() end
    assert.matches("enqueue: RlBadDelay.delay must be a number of seconds >= 0, got -1",
      error_of(run, { Bad{ delay = -1 } }), 1, true)
    for _, bad in ipairs({ "1", 0 / 0, math.huge, true }) do
      assert.matches("enqueue: RlBadDelay.delay must be a number of seconds >= 0, got " .. tostring(bad),
        error_of(run, { Bad{ delay = bad } }), 1, true)
    end
    -- a bad class field too, and from enqueue inside process
    local BadClass = aqueue.Item:extend("RlBadDelayClass")
    BadClass.delay = -0.5
    function BadClass:process() end
    local Spawner = aqueue.Item:extend("RlBadDelaySpawner")
    local caught
    function Spawner:process(enqueue)
      local ok, err = pcall(enqueue, BadClass{})
      caught = { ok, tostring(err) }
    end
    local s = run({ Spawner{} })
    assert.is_false(caught[1])
    assert.matches("enqueue: RlBadDelayClass.delay must be a number of seconds >= 0, got -0.5", caught[2], 1, true)
    assert.are.equal(1, s.enqueued)
  end)

  it("runs nothing when an option is bad", function()
    local ran = false
    local Probe = aqueue.Item:extend("RlBadNothing")
    function Probe:process() ran = true end
    pcall(run, { Probe{} }, { max_items = 0 })
    pcall(run, { Probe{} }, { max_time = 0 })
    pcall(run, { Probe{}, Probe{ delay = -1 } })
    assert.is_false(ran)
  end)
end)
