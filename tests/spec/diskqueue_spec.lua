-- aqueue.diskqueue.open(path [, { maxsize = n }]): a durable FIFO with the
-- aiodiskqueue interface (SPEC section 5). What survives a restart (or a
-- kill -9) is checked across processes: a child aqueue-run uses the file,
-- this spec opens it afterwards (tests/support/child.lua).
local diskqueue = require("aqueue.diskqueue")
local aqueue = require("aqueue")
local files = require("tests.support.files")
local child = require("tests.support.child")
local error_of = require("tests.support.runs").error_of

local open = diskqueue.open

-- The child's side: `arg[1]` is the queue file.
local HEADER = [[
local aqueue = require("aqueue")
local dq = require("aqueue.diskqueue").open(arg[1])
]]

-- Lets every ready task run until it waits again.
local function settle()
  aqueue.sleep(0)
  aqueue.sleep(0)
end

-- Everything left in the queue, taken with get_nowait (and marked done).
local function drain(dq)
  local out = {}
  while not dq:empty() do
    out[#out + 1] = dq:get_nowait()
    dq:task_done()
  end
  return out
end

describe("aqueue.diskqueue", function()
  local dir

  before_each(function()
    dir = files.temp_dir()
  end)

  after_each(function()
    files.remove_tree(dir)
  end)

  describe("as a queue", function()
    it("gives items back in FIFO order, values of every JSON kind and nil", function()
      local dq = open(dir .. "/q.db")
      local values = { "a", 2, 0.1, true, { 1, { x = "y" } }, {} }
      for _, v in ipairs(values) do dq:put(v) end
      dq:put_nowait(nil)
      dq:put_nowait("last")
      assert.are.equal(8, dq:qsize())
      for _, v in ipairs(values) do
        assert.are.same(v, dq:get())
        dq:task_done()
      end
      assert.is_nil(dq:get_nowait())
      assert.are.equal("last", dq:get())
    end)

    it("get returns a copy of what was put", function()
      local dq = open(dir .. "/q.db")
      local t = { n = 1 }
      dq:put_nowait(t)
      t.n = 2
      assert.are.same({ n = 1 }, dq:get_nowait())
    end)

    it("get waits while the queue is empty", function()
      local dq = open(dir .. "/q.db")
      local got = "nothing yet"
      local h = aqueue.spawn(function() got = dq:get() end)
      settle()
      assert.are.equal("nothing yet", got)
      dq:put("hello")
      h:result()
      assert.are.equal("hello", got)
    end)

    it("a getter cancelled while waiting does not lose the next item", function()
      local dq = open(dir .. "/q.db")
      local h = aqueue.spawn(function() return dq:get() end)
      settle()
      h:cancel()
      dq:put_nowait("kept")
      assert.are.equal(1, dq:qsize())
      assert.are.equal("kept", dq:get_nowait())
    end)

    it("get_nowait raises QueueEmpty, put_nowait QueueFull: aqueue's values", function()
      local dq = open(dir .. "/q.db", { maxsize = 1 })
      local ok, err = pcall(dq.get_nowait, dq)
      assert.is_false(ok)
      assert.are.equal(aqueue.QueueEmpty, err)
      assert.are.equal(diskqueue.QueueEmpty, err)
      dq:put_nowait("one")
      ok, err = pcall(dq.put_nowait, dq, "two")
      assert.is_false(ok)
      assert.are.equal(aqueue.QueueFull, err)
      assert.are.equal(diskqueue.QueueFull, err)
      assert.are.equal(1, dq:qsize())
      assert.are.equal("one", dq:get_nowait())
    end)

    it("maxsize holds put back until a get makes room; qsize, empty, full count items not yet got", function()
      local dq = open(dir .. "/q.db", { maxsize = 2 })
      assert.are.equal(2, dq.maxsize)
      assert.is_true(dq:empty())
      dq:put(1)
      dq:put(2)
      assert.is_true(dq:full())
      local returned = false
      local h = aqueue.spawn(function()
        dq:put(3)
        returned = true
      end)
      settle()
      assert.is_false(returned)
      assert.are.equal(2, dq:qsize())
      assert.are.equal(1, dq:get())
      h:result()
      assert.is_true(returned)
      assert.is_true(dq:full()) -- 2 and 3; 1 was got (not done) and counts no more
      assert.are.same({ 2, 3 }, { dq:get_nowait(), dq:get_nowait() })
      assert.is_true(dq:empty())
    end)

    it("join waits until every item put was marked done", function()
      local dq = open(dir .. "/q.db")
      dq:join() -- nothing put: at once
      for i = 1, 3 do dq:put_nowait(i) end
      local joined = false
      local h = aqueue.spawn(function()
        dq:join()
        joined = true
      end)
      dq:get_nowait()
      dq:get_nowait()
      dq:get_nowait()
      dq:task_done()
      dq:task_done()
      settle()
      assert.is_false(joined) -- got, but one not done
      dq:task_done()
      h:result()
      assert.is_true(joined)
    end)

    it("task_done raises when no item got is outstanding", function()
      local dq = open(dir .. "/q.db")
      dq:put_nowait("x")
      assert.matches("diskqueue_spec.lua:%d+: DiskQueue:task_done%(%) called more times than items were got",
        error_of(function() dq:task_done() end))
      dq:get_nowait()
      dq:task_done()
      assert.matches("called more times", error_of(dq.task_done, dq), 1, true)
    end)

    it("task_done outside a task raises and marks nothing done", function()
      local dq = open(dir .. "/q.db")
      dq:put_nowait("x")
      dq:get_nowait()
      local err = coroutine.wrap(function() return error_of(dq.task_done, dq) end)()
      assert.matches("must be called from an aqueue task", err, 1, true)
      dq:task_done() -- the item is still outstanding
    end)

    it("producers and consumers through a small queue deliver every item once", function()
      local dq = open(dir .. "/q.db", { maxsize = 3 })
      local seen, handles = {}, {}
      for p = 1, 3 do
        handles[#handles + 1] = aqueue.spawn(function()
          for i = 1, 20 do dq:put(p * 100 + i) end
        end)
      end
      for _ = 1, 2 do
        aqueue.spawn(function()
          while true do
            local v = dq:get()
            seen[#seen + 1] = v
            aqueue.sleep(0)
            dq:task_done()
          end
        end)
      end
      for _, h in ipairs(handles) do h:result() end
      dq:join()
      table.sort(seen)
      local want = {}
      for p = 1, 3 do for i = 1, 20 do want[#want + 1] = p * 100 + i end end
      assert.are.same(want, seen)
    end)

    it("prints its file, size and bound", function()
      local dq = open(dir .. "/q.db", { maxsize = 5 })
      dq:put_nowait(1)
      assert.are.equal(("DiskQueue(%s/q.db: size 1 of 5, 1 unfinished)"):format(dir), tostring(dq))
    end)
  end)

  describe("opening", function()
    it("the same path twice gives the same queue; another maxsize is refused", function()
      local dq = open(dir .. "/q.db", { maxsize = 3 })
      assert.are.equal(dq, open(dir .. "/q.db", { maxsize = 3 }))
      assert.matches("already open with maxsize 3, not 0", error_of(open, dir .. "/q.db"), 1, true)
    end)

    it("refuses bad arguments, blaming the caller", function()
      local p = dir .. "/q.db"
      assert.matches("diskqueue_spec.lua:%d+: aqueue.diskqueue.open%(path %[, { maxsize = n }%]%): path must be",
        error_of(function() open("") end))
      assert.matches("diskqueue_spec.lua:%d+: .*maxsize must be a whole number >= 0",
        error_of(function() open(p, { maxsize = -1 }) end))
      assert.matches("maxsize must be a whole number", error_of(open, p, { maxsize = 1.5 }), 1, true)
      assert.matches("maxsize must be a whole number", error_of(open, p, { maxsize = "2" }), 1, true)
      assert.matches("unknown option max_size", error_of(open, p, { max_size = 2 }), 1, true)
      assert.matches("the options must be a table, got number", error_of(open, p, 5), 1, true)
      assert.matches("too many arguments", error_of(open, p, nil, 1), 1, true)
    end)

    it("refuses a value that cannot be saved, naming the queue and the field", function()
      local dq = open(dir .. "/q.db")
      local err = error_of(function() dq:put({ job = { run = print } }) end)
      assert.matches(("diskqueue_spec.lua:%%d+: diskqueue %s/q.db: the value cannot be saved: field job.run is a function")
        :format(dir:gsub("%p", "%%%0")), err)
      assert.matches("it is a function", error_of(dq.put_nowait, dq, print), 1, true)
      assert.is_true(dq:empty())
    end)

    it("refuses a foreign file, naming it and leaving it as it was", function()
      local path = dir .. "/notes.txt"
      local text = ("not a queue\n"):rep(500)
      files.write(path, text)
      local err = error_of(open, path)
      assert.matches(path, err, 1, true)
      assert.matches("left as it is", err, 1, true)
      assert.are.equal(text, files.read(path))
    end)

    it("refuses a store's file, leaving it as it was", function()
      local path = dir .. "/s.store"
      child.ok(dir, [[ require("aqueue.store")("s", arg[1]).k = "v" ]], path)
      local before = files.read(path)
      assert.matches(path .. " is an aqueue store file, not a diskqueue file; it was left as it is",
        error_of(open, path), 1, true)
      assert.are.equal(before, files.read(path))
    end)
  end)

  describe("across a restart", function()
    it("keeps the FIFO order of what another process put; new puts go after", function()
      local path = dir .. "/q.db"
      child.ok(dir, HEADER .. [[
        for i = 1, 5 do dq:put_nowait(i) end
        dq:put({ six = 6 })
        assert(dq:get() == 1); dq:task_done()
      ]], path)
      child.ok(dir, HEADER .. [[
        assert(dq:get() == 2); dq:task_done()
        dq:put("seven")
      ]], path)
      local dq = open(path)
      assert.are.equal(5, dq:qsize())
      dq:put("eight")
      assert.are.same({ 3, 4, 5, { six = 6 }, "seven", "eight" }, drain(dq))
    end)

    it("delivers again an item got but not marked done", function()
      local path = dir .. "/q.db"
      child.ok(dir, HEADER .. [[
        dq:put("a"); dq:put("b"); dq:put("c")
        assert(dq:get() == "a"); dq:task_done()
        assert(dq:get() == "b") -- never marked done
      ]], path)
      local dq = open(path)
      local joined = false
      local h = aqueue.spawn(function() dq:join(); joined = true end)
      settle()
      assert.is_false(joined) -- the loaded items count for join
      assert.are.same({ "b", "c" }, drain(dq))
      h:result()
    end)

    it("task_done marks the calling task's item, else the oldest outstanding one", function()
      local path = dir .. "/q.db"
      child.ok(dir, HEADER .. [[
        for _, v in ipairs({ "a", "b", "c", "d" }) do dq:put(v) end
        local ta = aqueue.spawn(function() assert(dq:get() == "a"); aqueue.sleep(60) end)
        aqueue.sleep(0)
        local tb = aqueue.spawn(function() assert(dq:get() == "b"); dq:task_done() end) -- b, not a
        tb:result()
        assert(dq:get() == "c")
        aqueue.spawn(function() dq:task_done() end):result() -- holds none: the oldest, a
        ta:cancel()
      ]], path)
      -- c (got by the main chunk, never done) and d remain
      assert.are.same({ "c", "d" }, drain(open(path)))
    end)

    it("put has committed the item when it returns: it survives a kill -9", function()
      local path = dir .. "/q.db"
      local res = child.run(dir, HEADER .. [[
        dq:put("durable")
      ]] .. child.KILL_SELF, path)
      assert.are.equal(9, res.signal)
      assert.are.same({ "durable" }, drain(open(path)))
    end)

    it("task_done has committed the removal when it returns: the item is not delivered again", function()
      local path = dir .. "/q.db"
      local res = child.run(dir, HEADER .. [[
        dq:put("done"); dq:put("pending")
        assert(dq:get() == "done")
        assert(dq:task_done() == true)
      ]] .. child.KILL_SELF, path)
      assert.are.equal(9, res.signal)
      assert.are.same({ "pending" }, drain(open(path)))
    end)

    it("an item being processed at a kill -9 is delivered again", function()
      local path = dir .. "/q.db"
      local res = child.run(dir, HEADER .. [[
        dq:put("first"); dq:put("second")
        assert(dq:get() == "first")
      ]] .. child.KILL_SELF, path)
      assert.are.equal(9, res.signal)
      assert.are.same({ "first", "second" }, drain(open(path)))
    end)

    it("loads every item even past a smaller maxsize; put waits until there is room", function()
      local path = dir .. "/q.db"
      child.ok(dir, HEADER .. [[ for i = 1, 4 do dq:put(i) end ]], path)
      local dq = open(path, { maxsize = 2 })
      assert.are.equal(4, dq:qsize())
      assert.is_true(dq:full())
      assert.are.equal(aqueue.QueueFull, select(2, pcall(dq.put_nowait, dq, 5)))
      local h = aqueue.spawn(function() dq:put(5) end)
      dq:get_nowait(); dq:get_nowait()
      settle()
      assert.are.equal(2, dq:qsize()) -- 3 and 4: still full, 5 waits
      dq:get_nowait()
      h:result()
      assert.are.same({ 4, 5 }, { dq:get_nowait(), dq:get_nowait() })
    end)
  end)
end)
