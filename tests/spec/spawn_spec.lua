-- aqueue.spawn(fn, ...): a background task with a handle (:result(), :cancel()).
local aqueue = require("aqueue")
local capture_stderr = require("tests.support.capture").stderr

local function pack(...)
  return { n = select("#", ...), ... }
end

describe("aqueue.spawn", function()
  it("runs fn with the given arguments and result() returns all of its values", function()
    local h = aqueue.spawn(function(a, b, c)
      return c, nil, a + b
    end, 1, 2, "three")
    local got = pack(h:result())
    assert.are.equal(3, got.n)
    assert.are.equal("three", got[1])
    assert.is_nil(got[2])
    assert.are.equal(3, got[3])
  end)

  it("passes nil arguments through", function()
    local h = aqueue.spawn(function(...) return select("#", ...), (select(2, ...)) end, nil, "second", nil)
    local n, second = h:result()
    assert.are.equal(3, n)
    assert.are.equal("second", second)
  end)

  it("returns no values for a function that returns none", function()
    local h = aqueue.spawn(function() end)
    assert.are.equal(0, select("#", h:result()))
  end)

  it("runs the task concurrently with the one that spawned it", function()
    local log = {}
    local h = aqueue.spawn(function()
      log[#log + 1] = "task starts"
      aqueue.sleep(0.02)
      log[#log + 1] = "task ends"
    end)
    log[#log + 1] = "spawner continues"
    aqueue.sleep(0.005)
    log[#log + 1] = "spawner slept"
    h:result()
    local at = {}
    for i, e in ipairs(log) do at[e] = i end
    assert.are.equal(4, #log)
    assert.is_true(at["task starts"] < at["spawner slept"])
    assert.is_true(at["spawner continues"] < at["spawner slept"])
    assert.is_true(at["spawner slept"] < at["task ends"])
  end)

  it("runs many tasks at the same time", function()
    local handles, asleep, most = {}, 0, 0
    for i = 1, 50 do
      handles[i] = aqueue.spawn(function()
        asleep = asleep + 1
        most = math.max(most, asleep)
        aqueue.sleep(0.05)
        asleep = asleep - 1
        return i
      end)
    end
    local sum = 0
    for i = 1, 50 do sum = sum + handles[i]:result() end
    assert.are.equal(1275, sum)
    assert.are.equal(50, most) -- all 50 were asleep at once
  end)

  it("result() gives nil and the error message when fn raised", function()
    local h = aqueue.spawn(function() error("spawned failure") end)
    local v, err = h:result()
    assert.is_nil(v)
    assert.matches("spawned failure", err)
  end)

  it("result() gives the error message itself, as an item handle does, not a traceback", function()
    local h = aqueue.spawn(function() error("just the message", 0) end)
    local v, err = h:result()
    assert.is_nil(v)
    assert.are.equal("just the message", err)
  end)

  it("result() after the task ended gives the same values again", function()
    local h = aqueue.spawn(function() return "done" end)
    aqueue.sleep(0.01)
    assert.are.equal("done", h:result())
    assert.are.equal("done", h:result())
  end)

  it("can be waited on by several tasks", function()
    local h = aqueue.spawn(function() aqueue.sleep(0.02) return "shared" end)
    local w1 = aqueue.spawn(function() return h:result() end)
    local w2 = aqueue.spawn(function() return h:result() end)
    assert.are.equal("shared", h:result())
    assert.are.equal("shared", w1:result())
    assert.are.equal("shared", w2:result())
  end)

  it("rejects a non-function", function()
    local ok, err = pcall(aqueue.spawn, "not a function")
    assert.is_false(ok)
    assert.matches("function", err)
  end)

  it("prints an error nobody waits on", function()
    local text = capture_stderr(function()
      aqueue.spawn(function() error("unwatched spawned error") end)
      aqueue.sleep(0.01)
    end)
    assert.matches("unwatched spawned error", text)
  end)

  it("can be used from inside an item's process", function()
    local Job = aqueue.Item:extend("SpawnInsideProcess")
    function Job:process()
      local a = aqueue.spawn(function() aqueue.sleep(0.01) return self.n * 2 end)
      local b = aqueue.spawn(function() return self.n + 1 end)
      return a:result() + b:result()
    end
    local Root = aqueue.Item:extend("SpawnInsideProcessRoot")
    local got
    function Root:process(enqueue)
      got = enqueue(Job{ n = 5 }):result()
    end
    aqueue.run_queue{ initial_items = { Root{} }, num_workers = 1 }
    assert.are.equal(16, got)
  end)
end)

describe("handle:cancel()", function()
  it("stops a running task at once: its sleep is cancelled and result() gives nil, \"cancelled\"", function()
    local reached_end = false
    local h = aqueue.spawn(function()
      aqueue.sleep(10)
      reached_end = true
    end)
    aqueue.sleep(0.01)
    -- a task made ready now runs only when this one yields
    local other_ran = false
    aqueue.spawn(function() other_ran = true end)
    assert.is_true(h:cancel())
    local v, err = h:result()
    assert.is_false(other_ran, "cancel() and result() waited")
    assert.is_nil(v)
    assert.are.equal("cancelled", err)
    aqueue.sleep(0.02)
    assert.is_false(reached_end)
  end)

  it("stops a task that has not started yet", function()
    local started = false
    local h = aqueue.spawn(function() started = true end)
    assert.is_true(h:cancel())
    aqueue.sleep(0.01)
    assert.is_false(started)
    assert.are.same({ nil, "cancelled" }, { h:result() })
  end)

  it("returns false for a task that has already finished, and keeps its results", function()
    local h = aqueue.spawn(function() return "finished" end)
    assert.are.equal("finished", h:result())
    assert.is_false(h:cancel())
    assert.are.equal("finished", h:result())
  end)

  it("returns false the second time", function()
    local h = aqueue.spawn(function() aqueue.sleep(10) end)
    aqueue.sleep(0.005)
    assert.is_true(h:cancel())
    assert.is_false(h:cancel())
  end)

  it("wakes the tasks waiting on the cancelled task with nil, \"cancelled\"", function()
    local h = aqueue.spawn(function() aqueue.sleep(10) end)
    local waiter = aqueue.spawn(function() return pack(h:result()) end)
    aqueue.sleep(0.01)
    h:cancel()
    local got = waiter:result()
    assert.is_nil(got[1])
    assert.are.equal("cancelled", got[2])
  end)

  it("stops a task that waits on another task", function()
    local slow = aqueue.spawn(function() aqueue.sleep(0.05) return "slow" end)
    local continued = false
    local waiter = aqueue.spawn(function()
      slow:result()
      continued = true
    end)
    aqueue.sleep(0.01)
    assert.is_true(waiter:cancel())
    assert.are.equal("slow", slow:result())
    aqueue.sleep(0.01)
    assert.is_false(continued)
  end)

  it("raises when a task cancels itself", function()
    local h
    h = aqueue.spawn(function()
      aqueue.sleep(0.005)
      local ok, err = pcall(h.cancel, h)
      return ok, err
    end)
    local ok, err = h:result()
    assert.is_false(ok)
    assert.matches("itself", err)
  end)

  it("does not print the cancellation as an error", function()
    local text = capture_stderr(function()
      local h = aqueue.spawn(function() aqueue.sleep(10) end)
      aqueue.sleep(0.005)
      h:cancel()
      aqueue.sleep(0.005)
    end)
    assert.are.equal("", text)
  end)
end)
