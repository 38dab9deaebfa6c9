-- Two run_queue calls in one script share nothing: each run starts from its
-- own empty state (keys seen, limit keys, failures, counters, the checks of
-- instances, the count of enqueues between turns), whether the second run
-- comes from the same task or from another one.
local aqueue = require("aqueue")
local runs = require("tests.support.runs")
local capture_stderr = require("tests.support.capture").stderr

local run = runs.quiet

local function noop_class(name)
  local Cls = aqueue.Item:extend(name)
  function Cls:process() end
  return Cls
end

-- A class whose items have key() = self.k.
local function keyed_class(name, seen)
  local Cls = aqueue.Item:extend(name)
  function Cls:key() return self.k end
  function Cls:process() seen[#seen + 1] = self.k end
  return Cls
end

-- A class whose items raise "boom <n>".
local function failing_class(name)
  local Cls = aqueue.Item:extend(name)
  function Cls:process() error("boom " .. self.n, 0) end
  return Cls
end

describe("two runs in one script", function()
  it("dedup by key() only within a run: the second run takes the first run's keys again", function()
    local seen = {}
    local Keyed = keyed_class("ApartKeyed", seen)
    local s1 = run({ Keyed{ k = "a" }, Keyed{ k = "a" }, Keyed{ k = "b" } })
    local s2 = run({ Keyed{ k = "a" }, Keyed{ k = "b" }, Keyed{ k = "b" } })
    assert.are.equal(2, s1.processed)
    assert.are.equal(1, s1.duplicates)
    assert.are.equal(2, s2.processed)
    assert.are.equal(1, s2.duplicates)
    table.sort(seen)
    assert.are.same({ "a", "a", "b", "b" }, seen)
  end)

  it("keep their own failure lists: the second run's failures do not reach the first run's summary", function()
    local Failing = failing_class("ApartFailing")
    local s1, s2
    capture_stderr(function()
      s1 = run({ Failing{ n = 1 } })
      s2 = run({ Failing{ n = 2 }, Failing{ n = 3 } })
    end)
    assert.are.equal(1, #s1.errors)
    assert.are.equal("boom 1", s1.errors[1].error)
    assert.are.equal(2, #s2.errors)
    local messages = { s2.errors[1].error, s2.errors[2].error }
    table.sort(messages)
    assert.are.same({ "boom 2", "boom 3" }, messages)
    assert.are_not.equal(s1.errors, s2.errors)
    assert.are.equal(1, s1.failed)
    assert.are.equal(2, s2.failed)
  end)

  it("keep their own limit keys: the second run's limits for a key hold, not the first run's", function()
    local inside, most = 0, 0
    local Limited = aqueue.Item:extend("ApartLimited")
    function Limited:limit_key() return "k" end
    function Limited:process()
      inside = inside + 1
      if inside > most then most = inside end
      aqueue.sleep(0.05) -- long enough for every item the limit lets in to be inside at once
      inside = inside - 1
    end
    local function batch(n)
      local items = {}
      for i = 1, n do items[i] = Limited{ i = i } end
      return items
    end
    run(batch(6), { num_workers = 4, limits = { per_key = 1 } })
    assert.are.equal(1, most)
    most = 0
    run(batch(6), { num_workers = 4, limits = { keys = { k = { per_key = 3 } } } })
    assert.are.equal(3, most)
  end)

  it("check the first instances of a class for misspelt fields in each run, not only in the first", function()
    -- A run checks every one of the first 1000 instances of a class, then
    -- one in 1024: a second run starts counting anew.
    local Checked = noop_class("ApartChecked")
    local first = {}
    for i = 1, 1001 do first[i] = Checked{ i = i } end
    assert.are.equal(1001, run(first).processed)
    local err = runs.error_of(run, { Checked{ retires = 2 } })
    assert.matches("enqueue: ApartChecked.retires: unknown field, did you mean retries?", err, 1, true)
  end)

  it("count enqueues between turns within a run: a second run's first enqueues give no turn", function()
    -- Enqueue gives other tasks a turn every 4096 enqueues of one job. The
    -- first run's root enqueues 4000 (no turn); in the second run, the root
    -- (the same item id, so the same job number) enqueues 200 more: a count
    -- carried over from the first run would give a turn there.
    local Child = noop_class("ApartTurnsChild")
    local n, enqueuing = 0, false
    local turns_during = {}
    local Root = aqueue.Item:extend("ApartTurnsRoot")
    function Root:process(enqueue)
      enqueuing = true
      for i = 1, n do enqueue(Child{ i = i }) end
      enqueuing = false
    end
    local function run_counting_turns(children)
      n = children
      local turns, done = 0, false
      local other = aqueue.spawn(function()
        while not done do
          coroutine.yield()
          if enqueuing then turns = turns + 1 end
        end
      end)
      local s = run({ Root{} }, { num_workers = 2 })
      done = true
      other:result()
      turns_during[#turns_during + 1] = turns
      return s
    end
    assert.are.equal(4001, run_counting_turns(4000).processed)
    assert.are.equal(201, run_counting_turns(200).processed)
    assert.are.same({ 0, 0 }, turns_during)
  end)

  it("share nothing when the second run comes from another task", function()
    local seen = {}
    local Keyed = keyed_class("ApartTaskKeyed", seen)
    local Failing = failing_class("ApartTaskFailing")
    local s1, s2
    capture_stderr(function()
      s1 = aqueue.spawn(function()
        return run({ Keyed{ k = "x" }, Failing{ n = 1 } })
      end):result()
      s2 = aqueue.spawn(function()
        return run({ Keyed{ k = "x" }, Keyed{ k = "x" } })
      end):result()
    end)
    assert.are.equal(1, s1.processed)
    assert.are.equal(1, #s1.errors)
    assert.are.equal(1, s2.processed)
    assert.are.equal(1, s2.duplicates)
    assert.are.same({}, s2.errors)
    assert.are.same({ "x", "x" }, seen)
  end)

  it("leave no way into an ended run: enqueue kept from the first run raises between runs", function()
    local Child = noop_class("ApartKeptChild")
    local kept
    local Keeper = aqueue.Item:extend("ApartKeeper")
    function Keeper:process(enqueue) kept = enqueue end
    run({ Keeper{} })
    local err = runs.error_of(kept, Child{})
    assert.matches("no queue is running", err, 1, true)
  end)
end)
