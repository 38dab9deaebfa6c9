-- Item.timeout for a process() that does not yield: no timer can fire while
-- it runs, yet the attempt fails with "timed out after <t> s" all the same:
-- interrupted by the watchdog's hook in interpreted code, or, in a loop the
-- JIT compiled (where no hook runs), as soon as it yields or returns. It never
-- counts as processed.
local aqueue = require("aqueue")
local capture_stderr = require("tests.support.capture").stderr

-- A tight loop the JIT compiles (no hook runs inside it).
local function spin_compiled(seconds)
  local t0, x = aqueue.now(), 0
  while aqueue.now() - t0 < seconds do x = x + 1 end
  return x
end

-- A loop the JIT leaves to the interpreter (it makes a closure each turn).
local function spin_interpreted(seconds)
  local t0, x = aqueue.now(), 0
  while not seconds or aqueue.now() - t0 < seconds do
    local step = function(v) return v + 1 end
    x = step(x)
  end
  return x
end

-- Runs one item of a new class with that process and timeout; returns the
-- summary, what the run printed on stderr, and what the process reached.
local function run_one(name, timeout, process, retries)
  local Class = aqueue.Item:extend(name)
  Class.timeout = timeout
  Class.retries = retries or 0
  Class.retry_backoff = 0.01
  local reached = {}
  function Class:process()
    return process(reached)
  end
  local text, summary = capture_stderr(function()
    return aqueue.run_queue({ initial_items = { Class({}) }, progress = "none" })
  end)
  return summary, text, reached
end

describe("an item's timeout, when process does not yield", function()
  it("fails the attempt when a compiled loop ran past it, though process returns", function()
    local summary, text = run_one("NoYieldReturns", 0.2, function()
      spin_compiled(0.6)
      return "returned"
    end)
    assert.are.equal(0, summary.processed)
    assert.are.equal(1, summary.failed)
    assert.matches("timed out after 0.2 s", text, 1, true)
  end)

  it("fails the attempt when process yields after running past it, and runs nothing after the yield", function()
    local summary, text, reached = run_one("NoYieldThenSleeps", 0.2, function(reached)
      spin_compiled(0.6)
      aqueue.sleep(0.01)
      reached.after_sleep = true
    end)
    assert.are.equal(0, summary.processed)
    assert.are.equal(1, summary.failed)
    assert.matches("timed out after 0.2 s", text, 1, true)
    assert.is_nil(reached.after_sleep)
  end)

  it("interrupts an interpreted loop that would never end", function()
    local summary, text = run_one("NoYieldForever", 0.2, function()
      spin_interpreted()
    end)
    assert.are.equal(0, summary.processed)
    assert.are.equal(1, summary.failed)
    assert.matches("timed out after 0.2 s", text, 1, true)
  end)

  it("retries an interrupted attempt like any timed-out one", function()
    local attempts = 0
    local summary, text = run_one("NoYieldRetried", 0.2, function()
      attempts = attempts + 1
      if attempts == 1 then spin_interpreted() end
      return "second time"
    end, 1)
    assert.are.equal(2, attempts)
    assert.are.equal(1, summary.processed)
    assert.are.equal(0, summary.failed)
    assert.are.equal(1, summary.retried)
    assert.matches("timed out after 0.2 s", text, 1, true)
  end)

  it("leaves an attempt that ends within its timeout alone", function()
    local summary = run_one("NoYieldInTime", 5, function()
      spin_interpreted(0.05)
      spin_compiled(0.05)
    end)
    assert.are.equal(1, summary.processed)
    assert.are.equal(0, summary.failed)
  end)
end)
