-- aqueue.sleep(seconds): yields the running task for at least that long.
local aqueue = require("aqueue")

local function timed(fn, ...)
  local t0 = aqueue.now()
  fn(...)
  return aqueue.now() - t0
end

describe("aqueue.sleep", function()
  it("yields for at least the time asked, and ends before a longer sleep begun with it", function()
    for _, s in ipairs({ 0.001, 0.01, 0.05 }) do
      local longer_done = false
      local longer = aqueue.spawn(function() aqueue.sleep(s + 0.25) longer_done = true end)
      local elapsed = timed(aqueue.sleep, s)
      assert.is_true(elapsed >= s, ("sleep(%g) took only %g s"):format(s, elapsed))
      assert.is_false(longer_done, ("sleep(%g) ended after a sleep(%g) begun with it"):format(s, s + 0.25))
      longer:result()
    end
  end)

  it("never ends early, over many short sleeps", function()
    for i = 1, 50 do
      local s = 0.001 + (i % 3) * 0.0007
      local elapsed = timed(aqueue.sleep, s)
      assert.is_true(elapsed >= s, ("sleep(%g) took only %g s"):format(s, elapsed))
    end
  end)

  it("never ends early while other tasks' timers wake the loop", function()
    local early = {}
    local handles = {}
    for i = 1, 60 do
      handles[i] = aqueue.spawn(function()
        aqueue.sleep((i % 7) * 0.0003) -- start at different points within a millisecond
        local s = 0.005 + (i % 13) * 0.001
        local t0 = aqueue.now()
        aqueue.sleep(s)
        local elapsed = aqueue.now() - t0
        if elapsed < s then
          early[#early + 1] = ("sleep(%g) took %.6f s"):format(s, elapsed)
        end
      end)
    end
    for i = 1, 60 do handles[i]:result() end
    assert.are.same({}, early)
  end)

  it("rounds a fraction of a millisecond up, not down to nothing", function()
    local elapsed = timed(aqueue.sleep, 0.0004)
    assert.is_true(elapsed >= 0.0004, "sleep(0.0004) took only " .. elapsed .. " s")
  end)

  it("with 0 or a negative time returns at once but lets other tasks run", function()
    for _, s in ipairs({ 0, -1, -math.huge }) do
      local ran, timer_done = false, false
      local timer = aqueue.spawn(function() aqueue.sleep(0.05) timer_done = true end)
      aqueue.spawn(function() ran = true end)
      aqueue.sleep(s)
      assert.is_true(ran, "sleep(" .. s .. ") did not give the other task a turn")
      assert.is_false(timer_done, "sleep(" .. s .. ") waited for a timer")
      timer:result()
    end
  end)

  it("lets many tasks sleep at the same time", function()
    local handles, asleep, most = {}, 0, 0
    for i = 1, 100 do
      handles[i] = aqueue.spawn(function()
        asleep = asleep + 1
        most = math.max(most, asleep)
        aqueue.sleep(0.05)
        asleep = asleep - 1
      end)
    end
    for i = 1, 100 do handles[i]:result() end
    assert.are.equal(100, most)
  end)

  it("wakes shorter sleeps first", function()
    local woke = {}
    local handles = {}
    for _, ms in ipairs({ 30, 10, 40, 20 }) do
      handles[#handles + 1] = aqueue.spawn(function()
        aqueue.sleep(ms / 1000)
        woke[#woke + 1] = ms
      end)
    end
    for _, h in ipairs(handles) do h:result() end
    assert.are.same({ 10, 20, 30, 40 }, woke)
  end)

  it("returns nothing", function()
    assert.are.equal(0, select("#", aqueue.sleep(0.001)))
  end)

  it("raises for a value that is not a number", function()
    for _, bad in ipairs({ "soon", {}, true }) do
      local ok = pcall(aqueue.sleep, bad)
      assert.is_false(ok, "sleep(" .. tostring(bad) .. ") did not raise")
    end
    assert.is_false((pcall(aqueue.sleep)))
    assert.is_false((pcall(aqueue.sleep, nil)))
  end)

  it("raises for NaN", function()
    local ok, err = pcall(aqueue.sleep, 0 / 0)
    assert.is_false(ok)
    assert.matches("NaN", err)
  end)

  it("raises from a coroutine the script made itself, pointing to aqueue.spawn", function()
    local ok, err = pcall(coroutine.wrap(function() aqueue.sleep(0.001) end))
    assert.is_false(ok)
    assert.matches("aqueue.spawn", err, 1, true)
  end)

  it("holds the worker slot of an item: items that sleep run num_workers at a time", function()
    local Napper = aqueue.Item:extend("SleepNapper")
    local running, most_at_once = 0, 0
    function Napper:process()
      running = running + 1
      most_at_once = math.max(most_at_once, running)
      aqueue.sleep(0.03)
      running = running - 1
    end
    local items = {}
    for i = 1, 4 do items[i] = Napper{} end
    local t0 = aqueue.now()
    aqueue.run_queue{ initial_items = items, num_workers = 2 }
    local elapsed = aqueue.now() - t0
    -- two rounds of 0.03 s, not one
    assert.is_true(elapsed >= 0.05, "4 items sleeping 0.03 s on 2 workers took only " .. elapsed .. " s")
    assert.are.equal(2, most_at_once)
  end)
end)

describe("aqueue.now", function()
  it("is a clock in seconds that never goes back", function()
    local a = aqueue.now()
    assert.are.equal("number", type(a))
    local last = a
    for _ = 1, 1000 do
      local t = aqueue.now()
      assert.is_true(t >= last)
      last = t
    end
    aqueue.sleep(0.02)
    local b = aqueue.now()
    -- seconds, not milliseconds (that would read 20; under 10 even on a loaded
    -- machine): the sleep's own precision is tested above
    assert.is_true(b - a >= 0.019 and b - a < 10, "0.02 s of sleep measured as " .. (b - a))
  end)
end)
