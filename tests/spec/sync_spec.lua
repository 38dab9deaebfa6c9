-- aqueue.Queue, aqueue.Semaphore, aqueue.Event: the semantics of Python's
-- asyncio.Queue / Semaphore / Event, for tasks (the main chunk, spawned tasks,
-- items' process).
local aqueue = require("aqueue")
local capture_stderr = require("tests.support.capture").stderr

local Queue, Semaphore, Event = aqueue.Queue, aqueue.Semaphore, aqueue.Event

-- Lets every ready task run until it waits again.
local function settle()
  aqueue.sleep(0)
  aqueue.sleep(0)
end

-- Waits for a spawned task's results, at most 2 s: a task still waiting by
-- then is stuck (a lost item or permit), which fails the test instead of
-- hanging the suite.
local function finish(h)
  local stuck = false
  local watchdog = aqueue.spawn(function()
    aqueue.sleep(2)
    stuck = true
    h:cancel()
  end)
  local r = (function(...) return { n = select("#", ...), ... } end)(h:result())
  watchdog:cancel()
  assert(not stuck, "the task was still waiting after 2 s")
  return unpack(r, 1, r.n)
end

local raised = require("tests.support.runs").error_of -- the error a call raises (it must raise)

-- Runs fn in a coroutine the script made itself (not a task).
local function in_plain_coroutine(fn)
  return coroutine.wrap(fn)()
end

local capture_stdout = require("tests.support.capture").stdout

describe("aqueue.Queue", function()
  describe("construction", function()
    it("is unbounded with no maxsize or 0", function()
      for _, q in ipairs({ Queue(), Queue(0) }) do
        assert.are.equal(0, q.maxsize)
        for i = 1, 1000 do q:put_nowait(i) end
        assert.is_false(q:full())
        assert.are.equal(1000, q:qsize())
      end
    end)

    it("keeps a positive whole maxsize", function()
      assert.are.equal(3, Queue(3).maxsize)
    end)

    it("rejects a negative, fractional, NaN or non-number maxsize, blaming the caller", function()
      for _, bad in ipairs({ -1, 1.5, 0 / 0, "3", true, {} }) do
        local err = raised(function() local q = Queue(bad) return q end)
        assert.matches("maxsize must be a whole number >= 0", err)
        assert.matches("sync_spec.lua", err)
      end
    end)

    it("prints its size and bound", function()
      local q = Queue(4)
      q:put_nowait("a")
      assert.are.equal("Queue(size 1 of 4, 1 unfinished)", tostring(q))
      assert.are.equal("Queue(size 0 of unbounded, 0 unfinished)", tostring(Queue()))
    end)
  end)

  describe("qsize, empty, full", function()
    it("follow puts and gets", function()
      local q = Queue(2)
      assert.is_true(q:empty())
      assert.is_false(q:full())
      assert.are.equal(0, q:qsize())
      q:put_nowait(1)
      assert.is_false(q:empty())
      assert.is_false(q:full())
      assert.are.equal(1, q:qsize())
      q:put_nowait(2)
      assert.is_true(q:full())
      assert.are.equal(2, q:qsize())
      q:get_nowait()
      assert.is_false(q:full())
      q:get_nowait()
      assert.is_true(q:empty())
    end)
  end)

  describe("without waiting", function()
    it("gives items back in FIFO order", function()
      local q = Queue()
      for i = 1, 10 do q:put(i) end
      for i = 1, 10 do assert.are.equal(i, q:get()) end
      for i = 11, 15 do q:put_nowait(i) end
      for i = 11, 15 do assert.are.equal(i, q:get_nowait()) end
    end)

    it("stores nil like any other value", function()
      local q = Queue(3)
      q:put(nil)
      q:put_nowait("x")
      q:put(nil)
      assert.are.equal(3, q:qsize())
      assert.is_true(q:full())
      local a, b, c = q:get(), q:get_nowait(), q:get()
      assert.is_nil(a)
      assert.are.equal("x", b)
      assert.is_nil(c)
      assert.is_true(q:empty())
    end)

    it("hands nil to a waiting getter", function()
      local q = Queue()
      local h = aqueue.spawn(function() return "got", q:get() end)
      settle()
      q:put(nil)
      local tag, v = finish(h)
      assert.are.equal("got", tag)
      assert.is_nil(v)
    end)

    it("get_nowait raises aqueue.QueueEmpty itself on an empty queue", function()
      local q = Queue()
      local ok, e = pcall(q.get_nowait, q)
      assert.is_false(ok)
      assert.are.equal(aqueue.QueueEmpty, e)
      assert.are.equal("QueueEmpty", tostring(e))
    end)

    it("put_nowait raises aqueue.QueueFull itself on a full queue, and leaves it unchanged", function()
      local q = Queue(1)
      q:put_nowait("kept")
      local ok, e = pcall(q.put_nowait, q, "refused")
      assert.is_false(ok)
      assert.are.equal(aqueue.QueueFull, e)
      assert.are.equal("QueueFull", tostring(e))
      assert.are.equal(1, q:qsize())
      assert.are.equal("kept", q:get_nowait())
      assert.is_true(q:empty())
      q:task_done()
      assert.has_no.errors(function() q:join() end) -- the refused put did not count
    end)

    it("QueueFull and QueueEmpty are distinct values", function()
      assert.are_not.equal(aqueue.QueueFull, aqueue.QueueEmpty)
      assert.are.equal(require("aqueue.sync").QueueEmpty, aqueue.QueueEmpty)
    end)

    it("QueueEmpty raised in process shows as QueueEmpty in the item's failure", function()
      local Job = aqueue.Item:extend("SyncQueueEmptyInProcess")
      local q = Queue()
      function Job:process()
        q:get_nowait()
      end
      local text, summary = capture_stderr(function()
        return aqueue.run_queue{ initial_items = { Job{} }, num_workers = 1, progress = "none" }
      end)
      assert.are.equal(1, summary.failed)
      assert.are.equal("QueueEmpty", summary.errors[1].error)
      assert.matches("SyncQueueEmptyInProcess:process failed: SyncQueueEmptyInProcess{}: QueueEmpty", text, 1, true)
    end)

    it("keeps FIFO order over many wrap-arounds of its indexes", function()
      local q = Queue(7)
      local next_in, next_out = 1, 1
      for round = 1, 200 do
        for _ = 1, round % 7 + 1 do
          if q:full() then break end
          q:put_nowait(next_in)
          next_in = next_in + 1
        end
        for _ = 1, round % 5 + 1 do
          if q:empty() then break end
          assert.are.equal(next_out, q:get_nowait())
          next_out = next_out + 1
        end
      end
      while not q:empty() do
        assert.are.equal(next_out, q:get_nowait())
        next_out = next_out + 1
      end
      assert.are.equal(next_in, next_out)
    end)
  end)

  describe("get", function()
    it("waits while the queue is empty and returns the next item put", function()
      local q = Queue()
      local log = {}
      local h = aqueue.spawn(function()
        log[#log + 1] = "get starts"
        local v = q:get()
        log[#log + 1] = "got " .. v
      end)
      settle()
      log[#log + 1] = "put"
      q:put("a")
      finish(h)
      assert.are.same({ "get starts", "put", "got a" }, log)
      assert.is_true(q:empty())
    end)

    it("serves waiting getters in the order they started waiting", function()
      local q = Queue()
      local got = {}
      local hs = {}
      for i = 1, 5 do
        hs[i] = aqueue.spawn(function() got[i] = q:get() end)
        settle() -- getter i waits before getter i + 1
      end
      for i = 1, 5 do q:put_nowait("v" .. i) end
      for i = 1, 5 do finish(hs[i]) end
      assert.are.same({ "v1", "v2", "v3", "v4", "v5" }, got)
    end)
  end)

  describe("put", function()
    it("waits while the queue is full: the producer is held back by maxsize", function()
      local q = Queue(2)
      local log = {}
      local producer = aqueue.spawn(function()
        for i = 1, 5 do
          q:put(i)
          log[#log + 1] = "put " .. i
        end
      end)
      settle()
      assert.are.same({ "put 1", "put 2" }, log) -- the third put waits
      assert.is_true(q:full())
      local most = 0
      for i = 1, 5 do
        assert.are.equal(i, q:get())
        most = math.max(most, q:qsize())
        settle()
      end
      finish(producer)
      assert.are.equal(5, #log)
      assert.is_true(most <= 2)
      assert.is_true(q:empty())
    end)

    it("serves waiting putters in the order they started waiting", function()
      local q = Queue(1)
      q:put("first")
      local hs = {}
      for i = 1, 4 do
        hs[i] = aqueue.spawn(function() q:put("p" .. i) end)
        settle()
      end
      local got = {}
      for _ = 1, 5 do got[#got + 1] = q:get() end
      for i = 1, 4 do finish(hs[i]) end
      assert.are.same({ "first", "p1", "p2", "p3", "p4" }, got)
      assert.is_true(q:empty())
    end)

    it("a waiting putter's item counts once for join", function()
      local q = Queue(1)
      q:put("a")
      local h = aqueue.spawn(function() q:put("b") end)
      settle()
      assert.are.equal("a", q:get())
      q:task_done()
      finish(h)
      assert.are.equal("b", q:get())
      q:task_done()
      q:join() -- returns: both were done
      assert.has_error(function() q:task_done() end)
    end)
  end)

  describe("several producers and consumers", function()
    it("deliver every item exactly once through a small queue", function()
      local q = Queue(3)
      local seen, per_consumer = {}, {}
      local producers, consumers = {}, {}
      for p = 1, 3 do
        producers[p] = aqueue.spawn(function()
          for i = 1, 100 do
            q:put(p * 1000 + i)
            if i % 10 == 0 then aqueue.sleep(0) end
          end
        end)
      end
      for c = 1, 4 do
        per_consumer[c] = 0
        consumers[c] = aqueue.spawn(function()
          while true do
            local v = q:get()
            if v == nil then return end -- the stop signal
            assert(not seen[v], "delivered twice")
            seen[v] = true
            per_consumer[c] = per_consumer[c] + 1
            assert(q:qsize() <= 3)
            q:task_done()
            if v % 7 == 0 then aqueue.sleep(0) end
          end
        end)
      end
      for p = 1, 3 do finish(producers[p]) end
      q:join()
      for _ = 1, 4 do q:put(nil) end
      for c = 1, 4 do
        local ok, err = finish(consumers[c])
        assert.is_nil(err)
        assert.is_nil(ok)
      end
      local n = 0
      for p = 1, 3 do
        for i = 1, 100 do
          assert.is_true(seen[p * 1000 + i])
          n = n + 1
        end
      end
      assert.are.equal(300, n)
      local total = 0
      for c = 1, 4 do
        assert.is_true(per_consumer[c] > 0, "consumer " .. c .. " got nothing")
        total = total + per_consumer[c]
      end
      assert.are.equal(300, total)
    end)
  end)

  describe("task_done and join", function()
    it("join returns at once when nothing was put", function()
      Queue():join()
    end)

    it("join waits until every item put has been marked done", function()
      local q = Queue()
      for i = 1, 3 do q:put(i) end
      local joined = false
      local joiner = aqueue.spawn(function()
        q:join()
        joined = true
      end)
      for _ = 1, 3 do
        settle()
        assert.is_false(joined)
        q:get()
        settle()
        assert.is_false(joined) -- got, not yet done
        q:task_done()
      end
      finish(joiner)
      assert.is_true(joined)
    end)

    it("wakes every joiner", function()
      local q = Queue()
      q:put("x")
      local hs = {}
      for i = 1, 3 do hs[i] = aqueue.spawn(function() q:join() return i end) end
      settle()
      q:get()
      q:task_done()
      for i = 1, 3 do assert.are.equal(i, finish(hs[i])) end
    end)

    it("counts items put after an earlier join returned", function()
      local q = Queue()
      q:put(1)
      q:get()
      q:task_done()
      q:join()
      q:put(2)
      local joined = false
      local h = aqueue.spawn(function() q:join() joined = true end)
      settle()
      assert.is_false(joined)
      q:get()
      q:task_done()
      finish(h)
      assert.is_true(joined)
    end)

    it("task_done raises when called more times than items were put", function()
      local q = Queue()
      local err = raised(q.task_done, q)
      assert.matches("more times than there were items put", err)
      q:put(1)
      q:get()
      q:task_done()
      err = raised(function() q:task_done() end)
      assert.matches("more times than there were items put", err)
      assert.matches("sync_spec.lua", err) -- blames the caller
    end)
  end)

  describe("cancellation", function()
    it("a getter cancelled while waiting is skipped: the item goes to the next getter", function()
      local q = Queue()
      local g1 = aqueue.spawn(function() return q:get() end)
      local g2 = aqueue.spawn(function() return q:get() end)
      settle()
      assert.is_true(g1:cancel())
      q:put("item")
      assert.are.equal("item", finish(g2))
      assert.is_true(q:empty())
    end)

    it("a getter cancelled after it was handed an item does not lose it: the next getter gets it", function()
      local q = Queue()
      local g1 = aqueue.spawn(function() return q:get() end)
      local g2 = aqueue.spawn(function() return q:get() end)
      settle()
      q:put("item") -- handed to g1, which has not run yet
      assert.is_true(g1:cancel())
      assert.are.equal("item", finish(g2))
      assert.are.same({ nil, "cancelled" }, { finish(g1) })
    end)

    it("an item handed to a cancelled getter goes back to the front of the queue when no one else waits", function()
      local q = Queue()
      local g1 = aqueue.spawn(function() return q:get() end)
      settle()
      q:put("first") -- handed to g1
      q:put("second") -- no getter left: queued
      g1:cancel()
      settle()
      assert.are.equal(2, q:qsize())
      assert.are.equal("first", q:get_nowait())
      assert.are.equal("second", q:get_nowait())
    end)

    it("the hand-off moves on through several cancelled getters", function()
      local q = Queue()
      local gs = {}
      for i = 1, 4 do
        gs[i] = aqueue.spawn(function() return q:get() end)
      end
      settle()
      q:put("a")
      q:put("b")
      gs[1]:cancel()
      gs[2]:cancel()
      gs[3]:cancel()
      assert.are.equal("a", finish(gs[4]))
      assert.are.equal("b", q:get_nowait())
    end)

    it("keeps the order of the items whatever the cancelled getters were promised", function()
      local q = Queue()
      local gs = {}
      for i = 1, 3 do
        gs[i] = aqueue.spawn(function() return q:get() end)
      end
      settle()
      q:put("a") -- promised to gs[1]
      q:put("b") -- promised to gs[2]
      q:put("c") -- promised to gs[3]
      q:put("d") -- no getter left: free
      gs[1]:cancel()
      gs[2]:cancel()
      assert.are.equal("a", finish(gs[3])) -- the front item, not the one promised
      settle()
      assert.are.equal(3, q:qsize())
      assert.are.same({ "b", "c", "d" }, { q:get_nowait(), q:get_nowait(), q:get_nowait() })
    end)

    it("passes a promise on to a getter that started waiting after the hand-off", function()
      local q = Queue()
      local g1 = aqueue.spawn(function() return q:get() end)
      settle()
      q:put("a") -- promised to g1
      local g2 = aqueue.spawn(function() return q:get() end)
      g1:cancel()
      assert.are.equal("a", finish(g2))
      assert.is_true(q:empty())
    end)

    it("an item promised to a waiting getter is not taken by a get that comes later", function()
      local q = Queue()
      local g = aqueue.spawn(function() return q:get() end)
      settle()
      q:put("promised")
      assert.is_true(q:empty())
      assert.are.equal(aqueue.QueueEmpty, select(2, pcall(q.get_nowait, q)))
      assert.are.equal("promised", finish(g))
    end)

    it("a putter cancelled while waiting never adds its item; the next putter's goes in", function()
      local q = Queue(1)
      q:put("a")
      local p1 = aqueue.spawn(function() q:put("cancelled") end)
      local p2 = aqueue.spawn(function() q:put("b") end)
      settle()
      p1:cancel()
      assert.are.equal("a", q:get())
      finish(p2)
      assert.are.equal("b", q:get())
      assert.is_true(q:empty())
      q:task_done()
      q:task_done()
      q:join() -- the cancelled put did not count
    end)

    it("a putter cancelled after its item went in leaves it in the queue once", function()
      local q = Queue(1)
      q:put("a")
      local p1 = aqueue.spawn(function() q:put("b") end)
      settle()
      assert.are.equal("a", q:get()) -- moves "b" in and wakes p1
      p1:cancel()
      settle()
      assert.are.equal(1, q:qsize())
      assert.are.equal("b", q:get())
      assert.is_true(q:empty())
    end)

    it("does not leave other waiters stuck", function()
      local q = Queue(2)
      local consumers = {}
      local got = {}
      for i = 1, 6 do
        consumers[i] = aqueue.spawn(function()
          local v = q:get()
          got[#got + 1] = v
          return v
        end)
      end
      settle()
      for i = 1, 6 do
        q:put(i)
        if i % 2 == 1 then consumers[i]:cancel() end -- woken and not yet run
      end
      for i = 2, 6, 2 do finish(consumers[i]) end
      settle()
      table.sort(got)
      -- 6 items, 3 live consumers: each got one; the other 3 items stay queued
      assert.are.equal(3, #got)
      assert.are.equal(3, q:qsize())
      local rest = {}
      while not q:empty() do rest[#rest + 1] = q:get_nowait() end
      local all = {}
      for _, v in ipairs(got) do all[#all + 1] = v end
      for _, v in ipairs(rest) do all[#all + 1] = v end
      table.sort(all)
      assert.are.same({ 1, 2, 3, 4, 5, 6 }, all)
    end)

    it("a joiner cancelled while waiting does not stop the others", function()
      local q = Queue()
      q:put(1)
      local j1 = aqueue.spawn(function() q:join() end)
      local j2 = aqueue.spawn(function() q:join() return "joined" end)
      settle()
      j1:cancel()
      q:get()
      q:task_done()
      assert.are.equal("joined", finish(j2))
    end)
  end)

  describe("outside a task", function()
    it("the waiting methods raise a clear error in a coroutine the script made", function()
      local q = Queue(1)
      for _, m in ipairs({ "put", "get", "join" }) do
        local ok, err = in_plain_coroutine(function() return pcall(q[m], q, 1) end)
        assert.is_false(ok)
        assert.matches("Queue:" .. m .. "%(%) waits", err)
        assert.matches("aqueue.spawn", err)
      end
    end)

    it("the nowait methods and task_done work there", function()
      local q = Queue(1)
      local v = in_plain_coroutine(function()
        q:put_nowait("x")
        local got = q:get_nowait()
        q:task_done()
        return got
      end)
      assert.are.equal("x", v)
    end)
  end)

  describe("between items", function()
    -- The slot rule: a task waiting in a Queue gives its worker slot back, so
    -- a producer and a consumer that are both items work with one worker.
    it("a producer item and a consumer item work with num_workers = 1", function()
      local q = Queue(1)
      local got = {}
      local Producer = aqueue.Item:extend("SyncProducer")
      function Producer:process()
        for i = 1, 20 do q:put(i) end
        q:put(nil)
      end
      local Consumer = aqueue.Item:extend("SyncConsumer")
      function Consumer:process()
        while true do
          local v = q:get()
          if v == nil then return end
          got[#got + 1] = v
          q:task_done()
        end
      end
      for _, order in ipairs({ "fifo", "lifo" }) do
        got = {}
        local summary = aqueue.run_queue{ initial_items = { Consumer{}, Producer{} },
          num_workers = 1, order = order, progress = "none" }
        assert.are.equal(0, summary.failed)
        assert.are.equal(2, summary.processed)
        assert.are.equal(20, #got)
        for i = 1, 20 do assert.are.equal(i, got[i]) end
      end
    end)

    it("items waiting on a Queue do not count against num_workers", function()
      -- Three waiters start first and wait; with num_workers = 2 the six
      -- workers can only run if the waiters gave their slots back. The last
      -- worker feeds the waiters.
      local q = Queue()
      local running, most, finished = 0, 0, 0
      local Waiter = aqueue.Item:extend("SyncSlotWaiter")
      function Waiter:process()
        return q:get()
      end
      local Worker = aqueue.Item:extend("SyncSlotWorker")
      function Worker:process()
        running = running + 1
        most = math.max(most, running)
        aqueue.sleep(0.002)
        running = running - 1
        finished = finished + 1
        if finished == 6 then
          for i = 1, 3 do q:put(i) end
        end
      end
      local items = { Waiter{}, Waiter{}, Waiter{} }
      for _ = 1, 6 do items[#items + 1] = Worker{} end
      local summary = aqueue.run_queue{ initial_items = items, num_workers = 2,
        order = "fifo", progress = "none" }
      assert.are.equal(0, summary.failed)
      assert.are.equal(9, summary.processed)
      assert.are.equal(2, most)
      assert.is_true(q:empty())
    end)

    it("a waiting item is woken and continues with its item", function()
      local q = Queue()
      local Getter = aqueue.Item:extend("SyncItemGetter")
      local results = {}
      function Getter:process()
        local v = q:get()
        results[#results + 1] = v * 10
      end
      local Root = aqueue.Item:extend("SyncItemGetterRoot")
      function Root:process(enqueue)
        local hs = {}
        for i = 1, 4 do hs[i] = enqueue(Getter{}) end
        aqueue.sleep(0.01)
        for i = 1, 4 do q:put(i) end
        for i = 1, 4 do hs[i]:result() end
      end
      aqueue.run_queue{ initial_items = { Root{} }, num_workers = 3, order = "fifo", progress = "none" }
      table.sort(results)
      assert.are.same({ 10, 20, 30, 40 }, results)
    end)
  end)
end)

describe("aqueue.Semaphore", function()
  it("defaults to one permit and rejects a bad count", function()
    assert.are.equal(1, Semaphore():available())
    assert.are.equal(0, Semaphore(0):available())
    for _, bad in ipairs({ -1, 2.5, 0 / 0, math.huge, "2" }) do
      local err = raised(function() local s = Semaphore(bad) return s end)
      assert.matches("n must be a whole number >= 0", err)
      assert.matches("sync_spec.lua", err)
    end
  end)

  it("acquire takes a permit without waiting while there is one; locked and available follow", function()
    local s = Semaphore(2)
    assert.is_false(s:locked())
    assert.is_true(s:acquire())
    assert.are.equal(1, s:available())
    assert.is_true(s:acquire())
    assert.is_true(s:locked())
    assert.are.equal(0, s:available())
    s:release()
    assert.is_false(s:locked())
    s:release()
    assert.are.equal(2, s:available())
    assert.are.equal("Semaphore(2 available)", tostring(s))
  end)

  it("acquire waits while no permit is left; release wakes the waiters in FIFO order", function()
    local s = Semaphore(0)
    local order = {}
    local hs = {}
    for i = 1, 4 do
      hs[i] = aqueue.spawn(function()
        s:acquire()
        order[#order + 1] = i
      end)
      settle()
    end
    assert.are.same({}, order)
    for i = 1, 4 do
      s:release()
      settle()
      assert.are.equal(i, #order)
    end
    for i = 1, 4 do finish(hs[i]) end
    assert.are.same({ 1, 2, 3, 4 }, order)
    assert.are.equal(0, s:available())
  end)

  it("release hands the permit to the first waiter, not to a task that asks right after", function()
    local s = Semaphore(0)
    local w = aqueue.spawn(function() s:acquire() return "waiter" end)
    settle()
    s:release()
    assert.is_true(s:locked())
    assert.are.equal(0, s:available())
    assert.are.equal("waiter", finish(w))
  end)

  it("release without waiters raises the count past its start, as asyncio.Semaphore does", function()
    local s = Semaphore(1)
    s:release()
    assert.are.equal(2, s:available())
  end)

  it("bounds how many tasks are inside at once", function()
    local s = Semaphore(3)
    local inside, most = 0, 0
    local hs = {}
    for i = 1, 20 do
      hs[i] = aqueue.spawn(function()
        s:acquire()
        inside = inside + 1
        most = math.max(most, inside)
        aqueue.sleep(0.001 * (i % 3))
        inside = inside - 1
        s:release()
      end)
    end
    for i = 1, 20 do finish(hs[i]) end
    assert.are.equal(3, most)
    assert.are.equal(3, s:available())
  end)

  it("bounds items in run_queue below num_workers", function()
    local s = Semaphore(2)
    local inside, most = 0, 0
    local Job = aqueue.Item:extend("SyncSemaphoreJob")
    function Job:process()
      s:acquire()
      inside = inside + 1
      most = math.max(most, inside)
      aqueue.sleep(0.002)
      inside = inside - 1
      s:release()
    end
    local items = {}
    for i = 1, 30 do items[i] = Job{} end
    local summary = aqueue.run_queue{ initial_items = items, num_workers = 10, progress = "none" }
    assert.are.equal(30, summary.processed)
    assert.are.equal(0, summary.failed)
    assert.are.equal(2, most)
  end)

  it("a waiter cancelled while waiting does not take a permit", function()
    local s = Semaphore(0)
    local w1 = aqueue.spawn(function() s:acquire() end)
    local w2 = aqueue.spawn(function() s:acquire() return "acquired" end)
    settle()
    w1:cancel()
    s:release()
    assert.are.equal("acquired", finish(w2))
    assert.are.equal(0, s:available())
  end)

  it("a permit handed to a waiter cancelled before it ran is not lost", function()
    local s = Semaphore(0)
    local w1 = aqueue.spawn(function() s:acquire() end)
    settle()
    s:release() -- handed to w1
    w1:cancel()
    settle()
    assert.are.equal(1, s:available())
    local w2 = aqueue.spawn(function() s:acquire() end)
    local w3 = aqueue.spawn(function() s:acquire() return "w3" end)
    settle()
    s:release() -- handed to w2
    w2:cancel()
    assert.are.equal("w3", finish(w3))
  end)

  it("acquire raises a clear error in a coroutine the script made; release works there", function()
    local s = Semaphore(1)
    local ok, err = in_plain_coroutine(function() return pcall(s.acquire, s) end)
    assert.is_false(ok)
    assert.matches("Semaphore:acquire%(%) waits", err)
    in_plain_coroutine(function() s:release() end)
    assert.are.equal(2, s:available())
  end)
end)

describe("aqueue.Event", function()
  it("starts clear; set, clear and is_set", function()
    local e = Event()
    assert.is_false(e:is_set())
    e:set()
    assert.is_true(e:is_set())
    assert.are.equal("Event(set)", tostring(e))
    e:clear()
    assert.is_false(e:is_set())
    assert.are.equal("Event(clear)", tostring(e))
  end)

  it("wait returns at once when set", function()
    local e = Event()
    e:set()
    assert.is_true(e:wait())
  end)

  it("set wakes every waiter", function()
    local e = Event()
    local woke = {}
    local hs = {}
    for i = 1, 5 do
      hs[i] = aqueue.spawn(function()
        e:wait()
        woke[#woke + 1] = i
      end)
    end
    settle()
    assert.are.same({}, woke)
    e:set()
    for i = 1, 5 do finish(hs[i]) end
    assert.are.same({ 1, 2, 3, 4, 5 }, woke)
  end)

  it("waiters woken by set return even if clear follows at once; later waits wait again", function()
    local e = Event()
    local h = aqueue.spawn(function() return e:wait() end)
    settle()
    e:set()
    e:clear()
    assert.is_true(finish(h))
    local waited = false
    local h2 = aqueue.spawn(function() e:wait() waited = true end)
    settle()
    assert.is_false(waited)
    e:set()
    finish(h2)
    assert.is_true(waited)
  end)

  it("a cancelled waiter does not stop the others from waking", function()
    local e = Event()
    local w1 = aqueue.spawn(function() e:wait() end)
    local w2 = aqueue.spawn(function() e:wait() return "woke" end)
    settle()
    w1:cancel()
    e:set()
    assert.are.equal("woke", finish(w2))
  end)

  it("wakes items waiting in run_queue (they hold no worker slot meanwhile)", function()
    local e = Event()
    local Waiter = aqueue.Item:extend("SyncEventWaiter")
    function Waiter:process() e:wait() end
    local Setter = aqueue.Item:extend("SyncEventSetter")
    function Setter:process() e:set() end
    local summary = aqueue.run_queue{ initial_items = { Waiter{}, Waiter{}, Setter{} },
      num_workers = 1, order = "fifo", progress = "none" }
    assert.are.equal(3, summary.processed)
    assert.are.equal(0, summary.failed)
  end)

  it("wait raises a clear error in a coroutine the script made; set works there", function()
    local e = Event()
    local ok, err = in_plain_coroutine(function() return pcall(e.wait, e) end)
    assert.is_false(ok)
    assert.matches("Event:wait%(%) waits", err)
    in_plain_coroutine(function() e:set() end)
    assert.is_true(e:is_set())
  end)
end)

describe("examples/producer_consumer.lua", function()
  it("a pusher and two pullers share the items, each exactly once", function()
    local chunk = assert(loadfile("examples/producer_consumer.lua"))
    local out, got = capture_stdout(function()
      return chunk("12", "0.002", "0.004")
    end)
    local seen, n = {}, 0
    for _, name in ipairs({ "Fred", "George" }) do
      assert.is_true(#got[name] > 0, name .. " got nothing")
      for _, v in ipairs(got[name]) do
        assert.is_nil(seen[v])
        seen[v] = true
        n = n + 1
      end
    end
    assert.are.equal(12, n)
    for i = 0, 11 do assert.is_true(seen[i]) end
    assert.matches("%[ Fred %] Got item: %d+ %(size %d+%)", out)
    assert.matches("%[George%] Got item: %d+ %(size %d+%)", out)
    assert.matches("Fred got:", out)
    assert.matches("George got:", out)
  end)
end)
