-- Timeouts on the waits of aqueue.Queue, aqueue.Event and aqueue.Semaphore:
-- q:get([timeout]), ev:wait([timeout]), sem:acquire([timeout]) return as before,
-- or nil, "timeout", "ETIMEDOUT" after that many seconds. A waiter that timed
-- out has left the queue of waiters: it never takes a later item or permit.
local aqueue = require("aqueue")

local Queue, Semaphore, Event = aqueue.Queue, aqueue.Semaphore, aqueue.Event

local function pack(...)
  return { n = select("#", ...), ... }
end

-- Lets every ready task run until it waits again.
local function settle()
  aqueue.sleep(0)
  aqueue.sleep(0)
end

local raised = require("tests.support.runs").error_of -- the error a call raises (it must raise)

local function assert_timed_out(r)
  assert.are.equal(3, r.n)
  assert.is_nil(r[1])
  assert.are.equal("timeout", r[2])
  assert.are.equal("ETIMEDOUT", r[3])
end

describe("Queue:get([timeout])", function()
  it("returns nil, \"timeout\", \"ETIMEDOUT\" when no item came, after at least that long", function()
    local q = Queue()
    local t0 = aqueue.now()
    assert_timed_out(pack(q:get(0.1)))
    assert.is_true(aqueue.now() - t0 >= 0.1)
  end)

  it("returns an item put before the time is up", function()
    local q = Queue()
    local h = aqueue.spawn(function() return q:get(3600) end)
    settle()
    q:put("in time")
    assert.are.same({ n = 1, "in time" }, pack(h:result()))
  end)

  it("returns a queued item at once, even with a timeout of 0", function()
    local q = Queue()
    q:put("ready")
    assert.are.same({ n = 1, "ready" }, pack(q:get(0)))
    assert_timed_out(pack(q:get(0)))
  end)

  it("still returns a nil item as one nil value", function()
    local q = Queue()
    q:put(nil)
    assert.are.same({ n = 1 }, pack(q:get(1)))
  end)

  it("leaves a later put in the queue after timing out", function()
    local q = Queue()
    assert_timed_out(pack(q:get(0.01)))
    q:put("later")
    assert.are.equal(1, q:qsize())
    assert.are.equal("later", q:get_nowait())
  end)

  it("skips a timed-out getter between two waiting ones: items go to the others in order", function()
    local q = Queue()
    local order = {}
    local first = aqueue.spawn(function() local v = q:get() order[#order + 1] = "first:" .. v end)
    settle()
    local timed = aqueue.spawn(function() return q:get(0.02) end)
    settle()
    local last = aqueue.spawn(function() local v = q:get() order[#order + 1] = "last:" .. v end)
    settle()
    assert_timed_out(pack(timed:result()))
    q:put(1)
    q:put(2)
    q:put(3)
    first:result()
    last:result()
    assert.are.same({ "first:1", "last:2" }, order)
    assert.are.equal(1, q:qsize())
  end)

  it("keeps FIFO order through many timed-out getters at the front, middle and back", function()
    local q = Queue()
    local got = {}
    local function getter(name)
      return aqueue.spawn(function()
        local v = q:get()
        got[#got + 1] = name .. "=" .. v
      end)
    end
    local timed = {}
    local function timed_getters(n)
      for _ = 1, n do
        timed[#timed + 1] = aqueue.spawn(function() return q:get(0.02) end)
      end
      settle()
    end
    timed_getters(40)                 -- in front of everyone
    local a = getter("a")
    settle()
    timed_getters(60)                 -- between a and b
    local b = getter("b")
    settle()
    timed_getters(40)                 -- behind everyone
    for i = 1, #timed do
      assert_timed_out(pack(timed[i]:result()))
    end
    local c = getter("c")
    settle()
    for i = 1, 3 do q:put(i) end
    a:result()
    b:result()
    c:result()
    assert.are.same({ "a=1", "b=2", "c=3" }, got)
    assert.is_true(q:empty())
  end)

  it("a getter cancelled while it waits with a timeout takes nothing, and its timer is closed", function()
    local q = Queue()
    local h = aqueue.spawn(function() return q:get(3600) end)
    settle()
    h:cancel()
    q:put("kept")
    assert.are.equal(1, q:qsize())
    -- a timer left armed would keep the engine running for an hour after the spec
  end)

  it("math.huge means no limit", function()
    local q = Queue()
    local h = aqueue.spawn(function() return q:get(math.huge) end)
    aqueue.sleep(0.05)
    q:put("x")
    assert.are.equal("x", h:result())
  end)

  it("raises for a negative, NaN or non-number timeout, blaming the caller", function()
    local q = Queue()
    for _, bad in ipairs({ -1, 0 / 0, "1", true }) do
      local err = raised(function() local v = q:get(bad) return v end)
      assert.matches("Queue:get%(%[timeout%]%): timeout must be a number of seconds >= 0", err)
      assert.matches("timeouts_spec.lua", err)
    end
  end)

  it("works for a getter that is an item, without holding its worker slot", function()
    local q = Queue()
    local Getter = aqueue.Item:extend("TimeoutsGetter")
    local Other = aqueue.Item:extend("TimeoutsOther")
    local log = {}
    function Getter:process(enqueue)
      enqueue(Other{})
      local v, err = q:get(0.05)
      log[#log + 1] = tostring(v) .. "," .. tostring(err)
    end
    function Other:process()
      log[#log + 1] = "other ran"
    end
    local s = aqueue.run_queue{ initial_items = { Getter{} }, num_workers = 1, progress = "none" }
    assert.are.same({ "other ran", "nil,timeout" }, log)
    assert.are.equal(2, s.processed)
  end)
end)

describe("Semaphore:acquire([timeout])", function()
  it("returns nil, \"timeout\", \"ETIMEDOUT\" when no permit came, after at least that long", function()
    local sem = Semaphore(0)
    local t0 = aqueue.now()
    assert_timed_out(pack(sem:acquire(0.1)))
    assert.is_true(aqueue.now() - t0 >= 0.1)
  end)

  it("returns true with a free permit, or one released in time", function()
    local sem = Semaphore(1)
    assert.is_true(sem:acquire(0))
    local h = aqueue.spawn(function() return sem:acquire(3600) end)
    settle()
    sem:release()
    assert.is_true(h:result())
    assert.are.equal(0, sem:available())
  end)

  it("does not take a permit released after it timed out", function()
    local sem = Semaphore(0)
    assert_timed_out(pack(sem:acquire(0.01)))
    sem:release()
    assert.are.equal(1, sem:available())
  end)

  it("a timed-out acquirer between two waiting ones: permits go to the others", function()
    local sem = Semaphore(0)
    local order = {}
    local a = aqueue.spawn(function() sem:acquire() order[#order + 1] = "a" end)
    settle()
    local timed = aqueue.spawn(function() return sem:acquire(0.02) end)
    settle()
    local b = aqueue.spawn(function() sem:acquire() order[#order + 1] = "b" end)
    settle()
    assert_timed_out(pack(timed:result()))
    sem:release()
    sem:release()
    sem:release()
    a:result()
    b:result()
    assert.are.same({ "a", "b" }, order)
    assert.are.equal(1, sem:available())
  end)

  it("raises for a bad timeout", function()
    local err = raised(function() local ok = Semaphore(0):acquire(-0.5) return ok end)
    assert.matches("Semaphore:acquire%(%[timeout%]%): timeout must be", err)
  end)
end)

describe("Event:wait([timeout])", function()
  it("returns nil, \"timeout\", \"ETIMEDOUT\" when not set, after at least that long", function()
    local ev = Event()
    local t0 = aqueue.now()
    assert_timed_out(pack(ev:wait(0.1)))
    assert.is_true(aqueue.now() - t0 >= 0.1)
  end)

  it("returns true at once when set, and when set in time", function()
    local ev = Event()
    local h = aqueue.spawn(function() return ev:wait(3600) end)
    settle()
    ev:set()
    assert.is_true(h:result())
    assert.is_true(ev:wait(0))
  end)

  it("a waiter that timed out is not woken by a later set; the others are", function()
    local ev = Event()
    local woken = {}
    local timed = aqueue.spawn(function() return ev:wait(0.02) end)
    local other = aqueue.spawn(function() ev:wait() woken[#woken + 1] = "other" end)
    settle()
    assert_timed_out(pack(timed:result()))
    ev:set()
    other:result()
    assert.are.same({ "other" }, woken)
  end)

  it("raises for a bad timeout", function()
    local err = raised(function() local ok = Event():wait("soon") return ok end)
    assert.matches("Event:wait%(%[timeout%]%): timeout must be", err)
  end)
end)
