-- run_queue's remote path (aqueue.run_remote): a run whose queue is kept by a
-- store (a backend with local_queue false), here the in-process store of
-- tests/support/local_remote_backend.lua, which has redis_run's API and job
-- shapes and records what it was asked.
local aqueue = require("aqueue")
local runs = require("tests.support.runs")
local local_remote = require("tests.support.local_remote_backend")

local function count(list, value)
  local n = 0
  for _, v in ipairs(list) do
    if v == value then n = n + 1 end
  end
  return n
end

describe("a run whose queue is remote", function()
  local uninstall
  setup(function() uninstall = local_remote.install() end)
  teardown(function() uninstall() end)

  it("claims in batches, never more than its workers and min(workers, 128) prefetched", function()
    local Leaf = aqueue.Item:extend("RemoteBatchLeaf")
    local ran = 0
    function Leaf:process() ran = ran + 1 end
    local Root = aqueue.Item:extend("RemoteBatchRoot")
    function Root:process(enqueue)
      for i = 1, 1000 do enqueue(Leaf{ i = i }) end
    end
    local s = runs.quiet({ Root{} }, { num_workers = 10 })
    assert.are.equal(1000, ran)
    assert.are.equal(1001, s.processed)
    local store = local_remote.store
    assert.are.equal(1001, count(store.outcomes, "done"))
    for i, n in ipairs(store.claims) do
      assert.is_true(n <= 20, ("claim %d asked for %d jobs"):format(i, n))
    end
    -- a claim asks for at least half the prefetch (or for all when none is
    -- in hand): far fewer round trips than items
    assert.is_true(#store.claims <= 1001 / 5 + 10, #store.claims .. " claims")
    assert.are.same({ done = 1001, failed = 0, pending = 0 }, s.counters)
  end)

  it("sends the children of a parent ahead of its completion when they are too many for one call", function()
    local Leaf = aqueue.Item:extend("RemoteManyLeaf")
    function Leaf:process() end
    local log = {}
    local Root = aqueue.Item:extend("RemoteManyRoot")
    function Root:process(enqueue)
      for i = 1, 2000 do enqueue(Leaf{ i = i }) end
    end
    function Root:after_children_processed() log[#log + 1] = "hook" end
    local s = runs.quiet({ Root{} }, { num_workers = 20 })
    assert.are.equal(2001, s.processed)
    assert.are.same({ "hook" }, log)
    assert.are.same({ done = 2001, failed = 0, pending = 0 }, s.counters)
  end)

  it("runs each hook once, as a hook job, after its subtree, whichever the order", function()
    for _, order in ipairs({ "lifo", "fifo", "priority" }) do
      local log = {}
      local Leaf = aqueue.Item:extend("RemoteHookLeaf" .. order)
      function Leaf:process() log[#log + 1] = "leaf " .. self.p end
      local Mid = aqueue.Item:extend("RemoteHookMid" .. order)
      function Mid:process(enqueue)
        log[#log + 1] = "mid " .. self.p
        for _ = 1, 3 do enqueue(Leaf{ p = self.p }) end
      end
      function Mid:after_children_processed() log[#log + 1] = "hook " .. self.p end
      local Root = aqueue.Item:extend("RemoteHookRoot" .. order)
      function Root:process(enqueue)
        for p = 1, 4 do enqueue(Mid{ p = p }) end
      end
      function Root:after_children_processed() log[#log + 1] = "hook root" end
      local s = runs.quiet({ Root{} }, { num_workers = 3, order = order })
      assert.are.equal(17, s.processed)
      assert.are.equal("hook root", log[#log])
      for p = 1, 4 do
        local leaves, hook_at = 0, nil
        for i, line in ipairs(log) do
          if line == "leaf " .. p then
            assert.is_nil(hook_at, "a leaf of Mid " .. p .. " after its hook")
            leaves = leaves + 1
          elseif line == "hook " .. p then
            assert.is_nil(hook_at, "the hook of Mid " .. p .. " twice")
            hook_at = i
          end
        end
        assert.are.equal(3, leaves)
        assert.is_not_nil(hook_at)
      end
      assert.are.equal(5, count(local_remote.store.outcomes, "hook_done"))
    end
  end)

  it("hands a failed attempt back to the store, which runs it again", function()
    local Flaky = aqueue.Item:extend("RemoteFlaky")
    Flaky.retries = 3
    Flaky.retry_backoff = 0.001
    local attempts = {}
    function Flaky:process()
      attempts[#attempts + 1] = self.attempt
      if self.attempt < 3 then error("not yet") end
    end
    local Broken = aqueue.Item:extend("RemoteBroken")
    Broken.retries = 1
    Broken.retry_backoff = 0.001
    function Broken:process() error("never") end
    local s = runs.quiet({ Flaky{}, Broken{} }, { num_workers = 1, order = "fifo" })
    assert.are.same({ 1, 2, 3 }, attempts)
    assert.are.equal(1, s.processed)
    assert.are.equal(1, s.failed)
    assert.are.equal(3, s.retried) -- Flaky twice, Broken once
    local outcomes = local_remote.store.outcomes
    assert.are.equal(3, count(outcomes, "retry"))
    assert.are.equal(1, count(outcomes, "done"))
    assert.are.equal(1, count(outcomes, "failed"))
    assert.are.same({ done = 1, failed = 1, pending = 0 }, s.counters)
  end)

  it("fails an attempt that passes its timeout, and the store runs it again", function()
    local Slow = aqueue.Item:extend("RemoteSlow")
    Slow.timeout = 0.05
    Slow.retries = 1
    Slow.retry_backoff = 0.001
    local attempts = {}
    function Slow:process()
      attempts[#attempts + 1] = self.attempt
      if self.attempt == 1 then aqueue.sleep(30) end
    end
    local s = runs.quiet({ Slow{} }, { num_workers = 1 })
    assert.are.same({ 1, 2 }, attempts)
    assert.are.equal(1, s.processed)
    assert.are.same({ "retry", "done" }, local_remote.store.outcomes)
  end)

  it("hands the claimed jobs it did not start back at once when it stops", function()
    local Job = aqueue.Item:extend("RemoteStopJob")
    local ran = 0
    function Job:process()
      ran = ran + 1
      aqueue.sleep(0.6) -- both workers are busy when max_time stops the run
    end
    local items = {}
    for i = 1, 50 do items[i] = Job{ i = i } end
    local s = runs.quiet(items, { num_workers = 2, max_time = 0.3, order = "fifo" })
    assert.are.equal(2, ran)
    assert.are.equal("max_time", s.stopped)
    local store = local_remote.store
    assert.are.equal(2, store.released) -- the 2 prefetched ones
    assert.are.equal(0, store.running) -- every claimed job came back: done or released
    assert.are.same({ done = 2, failed = 0, pending = 48 }, s.counters)
  end)

  it("counts max_time from the run's session start, in the store's clock", function()
    local Job = aqueue.Item:extend("RemoteMaxTimeJob")
    local ran = 0
    function Job:process()
      ran = ran + 1
      aqueue.sleep(0.6)
    end
    local items = {}
    for i = 1, 10 do items[i] = Job{ i = i } end
    local_remote.session_elapsed = 100 -- the run began 100 s ago: 0.3 s are left
    local ok, s = pcall(runs.quiet, items, { num_workers = 2, max_time = 100.3, order = "fifo" })
    local_remote.session_elapsed = nil
    assert(ok, s)
    assert.are.equal(2, ran)
    assert.are.equal("max_time", s.stopped)
  end)

  it("counts max_items in the store: it hands out that many first attempts, and the run stops", function()
    local Job = aqueue.Item:extend("RemoteMaxItemsJob")
    local ran = 0
    function Job:process() ran = ran + 1 end
    local items = {}
    for i = 1, 50 do items[i] = Job{ i = i } end
    local s = runs.quiet(items, { num_workers = 2, max_items = 3, order = "fifo" })
    local store = local_remote.store
    assert.are.equal(3, ran)
    assert.are.equal(3, store.started)
    assert.are.equal(0, store.released) -- none past the 3 was handed out
    assert.are.equal("max_items", s.stopped)
    assert.are.same({ done = 3, failed = 0, pending = 47 }, s.counters)
  end)

  it("sends every completion it holds when it stops, however many batches they take", function()
    local Job = aqueue.Item:extend("RemoteStopBurstJob")
    local ran = 0
    function Job:process() ran = ran + 1 end
    local items = {}
    for i = 1, 600 do items[i] = Job{ i = i } end
    -- 300 workers: 300 jobs claimed at once, done in one turn of the loop,
    -- and max_items stops the run with their completions buffered (more than
    -- the 128 one call sends)
    local s = runs.quiet(items, { num_workers = 300, max_items = 300, order = "fifo" })
    local store = local_remote.store
    assert.are.equal(300, ran)
    assert.are.equal(300, store.done)
    assert.are.equal(300, #store.outcomes)
    assert.are.equal(0, store.running)
    assert.are.same({ done = 300, failed = 0, pending = 300 }, s.counters)
  end)

  it("claims again as soon as its own completions are sent, not after its wait for new work", function()
    -- Every wait after an empty claim is 60 s here: a run of three levels,
    -- one worker, whose every next job comes from the completion before it,
    -- would take minutes if those waits ran out. A completion made while a
    -- claim waits is sent at once and ends that wait, so the next job (or
    -- the end of the run) follows it.
    local Leaf = aqueue.Item:extend("RemoteWakeLeaf")
    local order = {}
    function Leaf:process() order[#order + 1] = "leaf" end
    local Mid = aqueue.Item:extend("RemoteWakeMid")
    function Mid:process(enqueue)
      aqueue.sleep(0.05) -- a claim is out and waiting meanwhile
      order[#order + 1] = "mid"
      enqueue(Leaf{})
    end
    local Root = aqueue.Item:extend("RemoteWakeRoot")
    function Root:process(enqueue)
      order[#order + 1] = "root"
      enqueue(Mid{})
    end
    local t0 = aqueue.now()
    local_remote.claim_poll_s = 60
    local ok, s = pcall(runs.quiet, { Root{} }, { num_workers = 1 })
    local_remote.claim_poll_s = nil
    assert(ok, s)
    assert.are.same({ "root", "mid", "leaf" }, order)
    assert.are.same({ done = 3, failed = 0, pending = 0 }, s.counters)
    assert.is_true(aqueue.now() - t0 < 30, "the run waited out a claim's wait")
  end)

  it("gives a child's outcome to handle:result(), from the store, without holding the worker", function()
    local Child = aqueue.Item:extend("RemoteResultChild")
    function Child:process()
      if self.fail then error("child fails") end
      return { twice = self.n * 2 }
    end
    function Child:key() return self.n end
    local got = {}
    local Parent = aqueue.Item:extend("RemoteResultParent")
    function Parent:process(enqueue)
      local h = enqueue(Child{ n = 21 })
      local bad = enqueue(Child{ n = 5, fail = true })
      got.value = h:result()
      got.fail = { bad:result() }
    end
    -- one worker: the parent waits while its children run in its slot
    local s = runs.quiet({ Parent{} }, { num_workers = 1 })
    assert.are.same({ twice = 42 }, got.value)
    assert.are.equal(nil, got.fail[1])
    assert.matches("child fails", got.fail[2], 1, true)
    assert.are.equal(2, s.processed)
    assert.are.equal(1, s.failed)
  end)

  it("refuses an item whose fields another process could not rebuild", function()
    local Odd = aqueue.Item:extend("RemoteOdd")
    function Odd:process() end
    local err = runs.error_of(runs.quiet, { Odd{ fn = print } })
    assert.matches("RemoteOdd.fn cannot be saved in a shared run: it is a function", err, 1, true)
  end)
end)
