-- A call that waits, made where the task cannot yield (a table.sort comparator,
-- a string.gsub callback, a __gc), raises "attempt to yield across C-call
-- boundary" and leaves nothing behind: no timer, request, process or waiter
-- armed that could later wake the task early or touch it once it has ended.
local aqueue = require("aqueue")

local BOUNDARY = "attempt to yield across C%-call boundary"
-- How long the checks below wait after a failed call: three times the waits
-- those calls ask for (0.05 s), so anything they left armed would wake the
-- task before its end, and a wait that lasts its whole time shows nothing was.
local SETTLE = 0.15

-- Calls `wait` from inside a table.sort comparator, under pcall.
local function in_sort(wait)
  return pcall(table.sort, { 3, 1, 2 }, function(a, b)
    wait()
    return a < b
  end)
end

-- Calls `wait` from inside a string.gsub callback, under pcall.
local function in_gsub(wait)
  return pcall(string.gsub, "abc", "%w", function(c)
    wait()
    return c
  end)
end

-- Calls `wait` from a __gc finalizer, under pcall (LuaJIT passes a
-- finalizer's error on to the collectgarbage call that ran it).
local function in_gc(wait)
  return pcall(function()
    local proxy = newproxy(true)
    getmetatable(proxy).__gc = function()
      wait()
    end
    proxy = nil -- luacheck: ignore (dropped so that the collection finalizes it)
    collectgarbage()
    collectgarbage()
  end)
end

-- The task is whole afterwards: a sleep lasts as long as it says (a timer
-- left armed by the failed call would wake it early).
local function assert_sleeps_fully()
  local t0 = aqueue.now()
  aqueue.sleep(SETTLE)
  local elapsed = aqueue.now() - t0
  assert.is_true(elapsed >= SETTLE, ("sleep(%g) after the failed call took only %.3f s"):format(SETTLE, elapsed))
end

local function assert_boundary_error(ok, err)
  assert.is_false(ok, "the call that cannot wait there returned")
  assert.matches(BOUNDARY, tostring(err))
end

describe("a wait where the task cannot yield", function()
  local short_sleep = function() aqueue.sleep(0.05) end

  it("raises from a table.sort comparator and leaves no timer armed", function()
    assert_boundary_error(in_sort(short_sleep))
    assert_sleeps_fully()
  end)

  it("raises from a string.gsub callback and leaves no timer armed", function()
    assert_boundary_error(in_gsub(short_sleep))
    assert_sleeps_fully()
  end)

  it("raises from a __gc finalizer and leaves no timer armed", function()
    assert_boundary_error(in_gc(short_sleep))
    assert_sleeps_fully()
  end)

  it("raises from an __lt metamethod that table.sort calls, and leaves no timer armed", function()
    local mt = { __lt = function(a, b) aqueue.sleep(0.05) return a.v < b.v end }
    local list = { setmetatable({ v = 2 }, mt), setmetatable({ v = 1 }, mt), setmetatable({ v = 3 }, mt) }
    assert_boundary_error(pcall(table.sort, list))
    assert_sleeps_fully()
  end)

  it("raises again each time, and the task ends cleanly afterwards", function()
    for _ = 1, 20 do
      assert_boundary_error(in_sort(short_sleep))
    end
    assert_sleeps_fully()
  end)

  it("leaves the task whole in a spawned task and an item's process", function()
    local h = aqueue.spawn(function()
      local ok, err = in_sort(short_sleep)
      local t0 = aqueue.now()
      aqueue.sleep(SETTLE)
      return ok, tostring(err), aqueue.now() - t0
    end)
    local ok, err, elapsed = h:result()
    assert_boundary_error(ok, err)
    assert.is_true(elapsed >= SETTLE)

    local Page = aqueue.Item:extend("BoundaryPage")
    local seen = {}
    function Page:process()
      local ok2, err2 = in_sort(short_sleep)
      local t0 = aqueue.now()
      aqueue.sleep(SETTLE)
      seen[#seen + 1] = { ok2, tostring(err2), aqueue.now() - t0 }
    end
    local stats = aqueue.run_queue({ initial_items = { Page({}) }, progress = "none" })
    assert.are.equal(1, stats.processed)
    assert.are.equal(0, stats.failed)
    assert_boundary_error(seen[1][1], seen[1][2])
    assert.is_true(seen[1][3] >= SETTLE)
  end)

  describe("for every binding that waits, from a table.sort comparator", function()
    local waits = {
      ["aqueue.fs.read"] = function() aqueue.fs.read("/dev/null") end,
      ["aqueue.exec"] = function() aqueue.exec({ "true" }) end,
      ["aqueue.http.get"] = function() aqueue.http.get("http://127.0.0.1:9/", { timeout = 0.05 }) end,
      ["aqueue.work"] = function() aqueue.work(function() return 1 end) end,
    }
    for name, wait in pairs(waits) do
      it(name .. " raises and starts nothing", function()
        assert_boundary_error(in_sort(wait))
        assert_sleeps_fully()
      end)
    end

    it("Queue:get raises and leaves no waiter that a later put would wake", function()
      local q = aqueue.Queue()
      assert_boundary_error(in_sort(function() q:get() end))
      q:put("first")
      assert.are.equal("first", q:get())
      assert.are.equal(0, q:qsize())
      -- A getter left listed would take the next put's value and wake this
      -- task from whatever it waits on then.
      aqueue.spawn(function()
        aqueue.sleep(SETTLE)
        q:put("second")
      end)
      local t0 = aqueue.now()
      assert.are.equal("second", q:get())
      assert.is_true(aqueue.now() - t0 >= SETTLE)
    end)

    it("Event:wait raises and leaves no waiter that set() would wake", function()
      local ev = aqueue.Event()
      assert_boundary_error(in_sort(function() ev:wait() end))
      local q = aqueue.Queue()
      aqueue.spawn(function()
        ev:set() -- would wake this task, waiting in q:get(), if it were still listed
        aqueue.sleep(SETTLE)
        q:put("late")
      end)
      local t0 = aqueue.now()
      assert.are.equal("late", q:get())
      assert.is_true(aqueue.now() - t0 >= SETTLE)
    end)

    it("handle:result raises and leaves no waiter that the task's end would wake", function()
      local h = aqueue.spawn(function()
        aqueue.sleep(0.05)
        return "done"
      end)
      assert_boundary_error(in_sort(function() h:result() end))
      local t0 = aqueue.now()
      aqueue.sleep(SETTLE) -- h ends meanwhile: a stale waiter entry would wake this sleep
      assert.is_true(aqueue.now() - t0 >= SETTLE)
      assert.are.equal("done", h:result())
    end)
  end)
end)
