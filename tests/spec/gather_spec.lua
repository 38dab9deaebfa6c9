-- aqueue.gather, aqueue.wait_any, aqueue.with_timeout: waiting for several
-- tasks at once, or for one with a time limit.
local aqueue = require("aqueue")
local capture_stderr = require("tests.support.capture").stderr

local function pack(...)
  return { n = select("#", ...), ... }
end

local raised = require("tests.support.runs").error_of -- the error a call raises (it must raise)

-- A function that sleeps `s` seconds, notes `name` in `log` and returns `...`.
local function after(log, name, s, ...)
  local values = pack(...)
  return function()
    aqueue.sleep(s)
    log[#log + 1] = name
    return unpack(values, 1, values.n)
  end
end

describe("aqueue.gather", function()
  it("returns one value per argument, in argument order, whatever order they finish in", function()
    local log = {}
    local r = pack(aqueue.gather(after(log, "slow", 0.06, "a", "dropped"), after(log, "fast", 0, "b"),
      after(log, "middle", 0.03, "c")))
    assert.are.same({ n = 3, "a", "b", "c" }, r)
    assert.are.same({ "fast", "middle", "slow" }, log)
  end)

  it("runs the functions concurrently: all start before any finishes", function()
    local log = {}
    local function step(name)
      return function()
        log[#log + 1] = "start " .. name
        aqueue.sleep(0.02)
        log[#log + 1] = "end " .. name
      end
    end
    aqueue.gather(step("1"), step("2"))
    assert.are.same({ "start 1", "start 2", "end 1", "end 2" }, log)
  end)

  it("keeps the place of a nil result", function()
    local r = pack(aqueue.gather(function() return nil end, function() return 2 end, function() end))
    assert.are.same({ n = 3, nil, 2, nil }, r)
  end)

  it("returns nothing for no arguments", function()
    assert.are.equal(0, select("#", aqueue.gather()))
  end)

  it("takes handles from aqueue.spawn, finished or not, mixed with functions", function()
    local done = aqueue.spawn(function() return "done" end)
    assert.are.equal("done", done:result())
    local running = aqueue.spawn(function() aqueue.sleep(0.02) return "running" end)
    local r = pack(aqueue.gather(running, function() return "fn" end, done))
    assert.are.same({ n = 3, "running", "fn", "done" }, r)
  end)

  it("takes item handles: an item gathers its children, even with one worker", function()
    local Parent = aqueue.Item:extend("GatherParent")
    local Child = aqueue.Item:extend("GatherChild")
    function Child:process()
      aqueue.sleep(0.01 * self.n)
      return self.n * 10
    end
    local got
    function Parent:process(enqueue)
      got = pack(aqueue.gather(enqueue(Child{ n = 3 }), enqueue(Child{ n = 1 }), function() return "fn" end))
    end
    local s = aqueue.run_queue{ initial_items = { Parent{} }, num_workers = 1, progress = "none" }
    assert.are.same({ n = 3, 30, 10, "fn" }, got)
    assert.are.equal(3, s.processed)
  end)

  it("after all have finished, returns nil, err of the first failed argument in argument order", function()
    local log = {}
    local r = pack(aqueue.gather(
      function() return "fine" end,
      function() aqueue.sleep(0.04) log[#log + 1] = "second fails" error("second", 0) end,
      function() log[#log + 1] = "third fails" error("third", 0) end,
      after(log, "fourth done", 0.08, "late")))
    assert.are.same({ n = 2, nil, "second" }, r)
    assert.are.same({ "third fails", "second fails", "fourth done" }, log)
  end)

  it("reports a failed item and a cancelled task as failures", function()
    local h = aqueue.spawn(function() aqueue.sleep(10) end)
    aqueue.spawn(function() h:cancel() end)
    local r = pack(aqueue.gather(function() return 1 end, h))
    assert.are.same({ n = 2, nil, "cancelled" }, r)
  end)

  it("does not print the errors it returns as unwatched task errors", function()
    local text, r = capture_stderr(function()
      return pack(aqueue.gather(function() error("quiet", 0) end, function() error("also quiet", 0) end))
    end)
    assert.are.same({ n = 2, nil, "quiet" }, r)
    assert.is_nil(text:find("error in a spawned task", 1, true))
  end)

  it("cancels the tasks it spawned when the gathering task is cancelled; handles it was given go on", function()
    local log = {}
    local given = aqueue.spawn(after(log, "given", 0.05, "given"))
    local outer = aqueue.spawn(function()
      aqueue.gather(after(log, "spawned", 0.05), given)
    end)
    aqueue.sleep(0.01)
    outer:cancel()
    assert.are.equal("given", given:result())
    aqueue.sleep(0.1)
    assert.are.same({ "given" }, log)
  end)

  it("raises for an argument that is neither a function nor a handle, naming it", function()
    local err = raised(function() local v = aqueue.gather(function() end, 42) return v end)
    assert.matches("aqueue.gather%(fn_or_handle, ...%): argument #2 must be a function or a handle", err)
    assert.matches("gather_spec.lua", err)
  end)

  it("raises in a coroutine the script made itself", function()
    local err = coroutine.wrap(function()
      return select(2, pcall(aqueue.gather, function() end))
    end)()
    assert.matches("must be called from an aqueue task", err)
  end)
end)

describe("aqueue.wait_any", function()
  it("returns the first handle to finish and its index; the others go on", function()
    local log = {}
    local hs = {
      aqueue.spawn(after(log, "slow", 0.08, "slow")),
      aqueue.spawn(after(log, "fast", 0.01, "fast")),
      aqueue.spawn(after(log, "middle", 0.04, "middle")),
    }
    local h, i = aqueue.wait_any(hs)
    assert.are.equal(hs[2], h)
    assert.are.equal(2, i)
    assert.are.equal("fast", h:result())
    assert.are.same({ "fast" }, log)
    assert.are.equal("slow", hs[1]:result())
    assert.are.same({ "fast", "middle", "slow" }, log)
  end)

  it("returns the first already finished handle in list order, at once", function()
    local a = aqueue.spawn(function() return "a" end)
    local b = aqueue.spawn(function() return "b" end)
    local waiting = aqueue.spawn(function() aqueue.sleep(10) end)
    a:result()
    b:result()
    local h, i = aqueue.wait_any({ waiting, b, a })
    assert.are.equal(b, h)
    assert.are.equal(2, i)
    waiting:cancel()
  end)

  it("counts a failure as finishing; its result() is nil, err", function()
    local h, i = aqueue.wait_any({ aqueue.spawn(function() aqueue.sleep(1) end),
                                   aqueue.spawn(function() error("failed first", 0) end) })
    assert.are.equal(2, i)
    assert.are.same({ n = 2, nil, "failed first" }, pack(h:result()))
  end)

  it("returns nil, \"timeout\", \"ETIMEDOUT\" when none finished in time", function()
    local slow = aqueue.spawn(function() aqueue.sleep(0.2) return "slow" end)
    local t0 = aqueue.now()
    assert.are.same({ n = 3, nil, "timeout", "ETIMEDOUT" }, pack(aqueue.wait_any({ slow }, 0.05)))
    assert.is_true(aqueue.now() - t0 >= 0.05)
    assert.are.equal("slow", slow:result())
  end)

  it("a handle that finishes after wait_any returned does not wake the task's next wait", function()
    local fast = aqueue.spawn(function() aqueue.sleep(0.01) return "fast" end)
    local slow = aqueue.spawn(function() aqueue.sleep(0.03) return "slow" end)
    local later = aqueue.spawn(function() aqueue.sleep(0.08) return "later" end)
    assert.are.equal(fast, (aqueue.wait_any({ fast, slow })))
    -- slow finishes while this task waits for `later`
    assert.are.same({ n = 1, "later" }, pack(later:result()))
    local q = aqueue.Queue()
    local timed = aqueue.spawn(function() aqueue.sleep(0.05) q:put("put") end)
    local a = aqueue.spawn(function() aqueue.sleep(0.01) end)
    local b = aqueue.spawn(function() aqueue.sleep(0.02) end)
    aqueue.wait_any({ a, b })
    assert.are.equal("put", q:get()) -- b finishes while this task waits in get
    timed:result()
  end)

  it("works on item handles from process, with one worker or several", function()
    local Parent = aqueue.Item:extend("WaitAnyParent")
    local Child = aqueue.Item:extend("WaitAnyChild")
    function Child:process()
      aqueue.sleep(self.s)
      return self.name
    end
    local first
    function Parent:process(enqueue)
      local h = aqueue.wait_any({ enqueue(Child{ s = 0.06, name = "slow" }), enqueue(Child{ s = 0.01, name = "fast" }) })
      first = h:result()
    end
    -- one worker: the children run one after the other, slow first (fifo)
    aqueue.run_queue{ initial_items = { Parent{} }, num_workers = 1, order = "fifo", progress = "none" }
    assert.are.equal("slow", first)
    -- two workers: they run at once (the waiting parent holds no slot)
    aqueue.run_queue{ initial_items = { Parent{} }, num_workers = 2, order = "fifo", progress = "none" }
    assert.are.equal("fast", first)
  end)

  it("raises for an empty list, a non-handle or a bad timeout", function()
    assert.matches("handles must be a non%-empty list of handles, got an empty table",
      raised(aqueue.wait_any, {}))
    assert.matches("handles must be a non%-empty list", raised(aqueue.wait_any, nil))
    assert.matches("handles%[2%] must be a handle", raised(aqueue.wait_any, { aqueue.spawn(function() end), 7 }))
    assert.matches("timeout must be a number of seconds >= 0",
      raised(aqueue.wait_any, { aqueue.spawn(function() end) }, -1))
  end)
end)

describe("aqueue.with_timeout", function()
  it("returns all of fn's results when it finishes in time, passing the arguments", function()
    local r = pack(aqueue.with_timeout(5, function(a, b)
      aqueue.sleep(0.01)
      return b, nil, a
    end, "x", "y"))
    assert.are.same({ n = 3, "y", nil, "x" }, r)
  end)

  it("returns an I/O failure of fn as it is", function()
    local r = pack(aqueue.with_timeout(5, function() return nil, "refused", "ECONNREFUSED" end))
    assert.are.same({ n = 3, nil, "refused", "ECONNREFUSED" }, r)
  end)

  it("returns nil, \"timeout\", \"ETIMEDOUT\" after that long, and the late work never goes on", function()
    local log = {}
    local t0 = aqueue.now()
    local r = pack(aqueue.with_timeout(0.05, function()
      log[#log + 1] = "started"
      aqueue.sleep(0.1)
      log[#log + 1] = "went on"
    end))
    assert.are.same({ n = 3, nil, "timeout", "ETIMEDOUT" }, r)
    assert.is_true(aqueue.now() - t0 >= 0.05)
    aqueue.sleep(0.15)
    assert.are.same({ "started" }, log)
  end)

  it("cancels the late work's pending I/O: a subprocess is killed", function()
    local dir = os.tmpname()
    os.remove(dir)
    local r = pack(aqueue.with_timeout(0.1, aqueue.exec, { "sh", "-c", "sleep 0.5; touch " .. dir }))
    assert.are.equal("timeout", r[2])
    aqueue.sleep(0.8)
    assert.is_nil(io.open(dir), "the subprocess was not killed")
  end)

  it("raises fn's error again, as it was raised", function()
    local e = setmetatable({}, { __tostring = function() return "an error object" end })
    local ok, got = pcall(aqueue.with_timeout, 1, function() aqueue.sleep(0) error(e) end)
    assert.is_false(ok)
    assert.are.equal(e, got)
    local ok2, msg = pcall(aqueue.with_timeout, 1, function() error("plain") end)
    assert.is_false(ok2)
    assert.matches("gather_spec.lua:%d+: plain", msg)
  end)

  it("a waiting task cancelled by its item's timeout cancels fn's task too", function()
    local log = {}
    local Slow = aqueue.Item:extend("WithTimeoutItemTimeout")
    Slow.timeout = 0.05
    function Slow:process()
      aqueue.with_timeout(10, function()
        aqueue.sleep(0.2)
        log[#log + 1] = "went on"
      end)
    end
    local s = capture_stderr(function()
      return aqueue.run_queue{ initial_items = { Slow{} }, progress = "none" }
    end)
    assert.is_string(s)
    aqueue.sleep(0.3)
    assert.are.same({}, log)
  end)

  it("does not hold the item's worker slot while it waits", function()
    local Waiter = aqueue.Item:extend("WithTimeoutWaiter")
    local Other = aqueue.Item:extend("WithTimeoutOther")
    local log = {}
    function Waiter:process(enqueue)
      enqueue(Other{})
      aqueue.with_timeout(1, function() aqueue.sleep(0.05) end)
      log[#log + 1] = "waiter"
    end
    function Other:process()
      log[#log + 1] = "other"
    end
    aqueue.run_queue{ initial_items = { Waiter{} }, num_workers = 1, progress = "none" }
    assert.are.same({ "other", "waiter" }, log)
  end)

  it("raises for bad seconds or fn", function()
    assert.matches("seconds must be a number >= 0, got %-1", raised(aqueue.with_timeout, -1, print))
    assert.matches("seconds must be a number >= 0, got nan", raised(aqueue.with_timeout, 0 / 0, print))
    assert.matches("fn must be a function, got nil", raised(aqueue.with_timeout, 1))
  end)
end)
