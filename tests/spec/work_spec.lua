-- aqueue.work(fn, ...): fn(...) computed on a thread-pool thread, in that
-- thread's own Lua state; only plain values cross.
local aqueue = require("aqueue")
local work = aqueue.work
local pool_size = require("aqueue.work").pool_size

local function pack(...)
  return { n = select("#", ...), ... }
end

-- Returns its arguments: what went to the pool thread and came back.
local function echo(...)
  return ...
end

-- Spins on the pool thread for `seconds` of wall time; returns when it
-- started and ended, on CLOCK_MONOTONIC. (It has no upvalues: the ffi and the
-- clock are looked up inside, in the pool thread's state.)
local function spin(seconds)
  local ffi = require("ffi")
  pcall(ffi.cdef, [[
    typedef struct { long tv_sec; long tv_nsec; } aq_spec_timespec;
    int clock_gettime(int clock, aq_spec_timespec *ts);
  ]])
  local ts = ffi.new("aq_spec_timespec")
  local function now()
    ffi.C.clock_gettime(1, ts)
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
  end
  local t0, x = now(), 0
  while now() - t0 < seconds do
    for i = 1, 1000 do x = x + i % 7 end
  end
  return t0, now()
end

-- The aqueue-run running this spec (aqueue-run or aqueue-run-asan), for
-- running scripts in a fresh process.
local function runner()
  local lowest = 0
  while arg[lowest - 1] do lowest = lowest - 1 end
  return arg[lowest]
end

-- Calls work(...), which must raise; returns the message.
local function refusal(...)
  local ok, err = pcall(work, ...)
  assert.is_false(ok, "aqueue.work accepted what it should refuse")
  return err
end

describe("aqueue.work", function()
  it("returns fn's result, computed from its arguments", function()
    assert.are.equal(5050, work(function(n)
      local s = 0
      for i = 1, n do s = s + i end
      return s
    end, 100))
  end)

  it("carries every plain type both ways", function()
    local values = { true, false, 0, -1, 3.25, 2 ^ 53, -1 / 0, 1 / 0, "", "text", 1e-300 }
    for _, v in ipairs(values) do
      local got = pack(work(echo, v))
      assert.are.equal(1, got.n)
      assert.are.equal(v, got[1])
      assert.are.equal(type(v), type(got[1]))
    end
    local nan = work(echo, 0 / 0)
    assert.is_true(nan ~= nan, "NaN came back as " .. tostring(nan))
    assert.are.same({ n = 1 }, pack(work(echo, nil)))
  end)

  it("returns several results, nil in the middle and at the end included", function()
    local got = pack(work(function(a, b) return a, nil, b, false, nil end, 1, "two"))
    assert.are.same({ n = 5, 1, nil, "two", false, nil }, got)
  end)

  it("passes nil arguments where they are, and returns nothing for no results", function()
    local got = pack(work(function(...) return select("#", ...), (select(2, ...)) end, nil, "second", nil))
    assert.are.same({ n = 2, 3, "second" }, got)
    assert.are.equal(0, select("#", work(function() end)))
  end)

  it("keeps the bytes of strings, NUL bytes and all 256 byte values included", function()
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local all = table.concat(bytes)
    assert.are.equal(all, work(echo, all))
    assert.are.equal("a\0b\0\0", work(function() return "a\0b\0\0" end))
    assert.are.equal(5, work(function(s) return #s end, "a\0b\0\0"))
  end)

  it("copies nested tables with any plain keys, both ways", function()
    local t = {
      1, 2, "three", { 4, { 5 } },
      name = "x", [true] = "yes", [2.5] = "float key", [-3] = "negative key",
      nested = { deeper = { deepest = { "bottom" } } },
      [{ "a table key" }] = "value of a table key",
    }
    local got = work(echo, t)
    assert.are_not.equal(t, got)
    local table_key
    for k in pairs(got) do
      if type(k) == "table" then table_key = k end
    end
    assert.are.same({ "a table key" }, table_key)
    got[table_key] = nil
    for k in pairs(t) do
      if type(k) == "table" then t[k] = nil end
    end
    assert.are.same(t, got)
  end)

  it("copies sparse arrays and their holes", function()
    local got = work(function()
      local t = { 1, nil, 3 }
      t[10] = 10
      t[1000000] = "far"
      return t
    end)
    assert.are.same({ [1] = 1, [3] = 3, [10] = 10, [1000000] = "far" }, got)
  end)

  it("copies a table reached twice as two tables, and drops metatables", function()
    local shared = { "shared" }
    local got = work(function(t) return t, getmetatable(t.a) end,
      { a = setmetatable(shared, { __index = {} }), b = shared })
    assert.are.same({ a = { "shared" }, b = { "shared" } }, got)
    assert.are_not.equal(got.a, got.b)
  end)

  it("gives fn the standard library, but not the aqueue library", function()
    local a, b, c = work(function()
      return math.floor(2.5), string.format("%03d", 7), table.concat({ "x", "y" }, "+")
    end)
    assert.are.same({ 2, "007", "x+y" }, { a, b, c })
    local ok, err = work(function() return pcall(require, "aqueue") end)
    assert.is_false(ok)
    assert.matches("module 'aqueue' not found", err)
  end)

  it("lets fn make closures of its own inside", function()
    assert.are.same({ 2, 4, 6 }, work(function(list)
      local function map(f, t)
        local out = {}
        for i, v in ipairs(t) do out[i] = f(v) end
        return out
      end
      local k = 2
      return map(function(v) return v * k end, list)
    end, { 1, 2, 3 }))
  end)

  it("returns nil, \"EWORK: \" .. fn's error message, \"EWORK\" when fn raises", function()
    local v, err, code = work(function(x) error("failed on " .. x) end, "input")
    assert.is_nil(v)
    assert.matches("^EWORK: .*work_spec.lua:%d+: failed on input$", err)
    assert.are.equal("EWORK", code)
    assert.are.same({ nil, "EWORK: no position", "EWORK" }, { work(function() error("no position", 0) end) })
    v, err = work(function() error({ code = 1 }) end)
    assert.is_nil(v)
    assert.matches("error object is a table value", err)
    v, err = work(function() local t = nil; return t.field end)
    assert.is_nil(v)
    assert.matches("attempt to index", err)
  end)

  it("returns large results: a 10 MB string and a table of 100k numbers", function()
    local s = work(function(n) return string.rep("0123456789", n) end, 1024 * 1024)
    assert.are.equal(10 * 1024 * 1024, #s)
    assert.are.equal("0123456789", s:sub(-10))
    local t = work(function(n)
      local t = {}
      for i = 1, n do t[i] = i * 0.5 end
      return t
    end, 100000)
    assert.are.equal(100000, #t)
    assert.are.equal(0.5, t[1])
    assert.are.equal(50000, t[100000])
  end)

  it("takes large arguments", function()
    local big = string.rep("x", 10 * 1024 * 1024)
    assert.are.equal(10 * 1024 * 1024, work(function(s) return #s end, big))
    local list = {}
    for i = 1, 100000 do list[i] = i end
    assert.are.equal(5000050000, work(function(t)
      local s = 0
      for i = 1, #t do s = s + t[i] end
      return s
    end, list))
  end)

  it("runs the same function many times, and many different functions", function()
    local function square(x) return x * x end
    for i = 1, 200 do
      assert.are.equal(i * i, work(square, i))
    end
    -- more distinct functions than a pool thread keeps loaded
    for i = 1, 100 do
      local f = assert(loadstring("return function(x) return x + " .. i .. " end"))()
      assert.are.equal(i + 1, work(f, 1))
    end
  end)

  it("reuses one Lua state per pool thread across calls", function()
    local function count_calls()
      calls = (calls or 0) + 1 -- a global of the pool thread's state
      return calls
    end
    local most = 0
    for _ = 1, 20 do
      most = math.max(most, work(count_calls))
    end
    assert.is_true(most >= math.ceil(20 / pool_size()),
      "the states were not reused: at most " .. most .. " calls in one")
  end)

  it("lets other tasks run while fn computes", function()
    local ticks, done = 0, false
    local ticker = aqueue.spawn(function()
      while not done do
        aqueue.sleep(0.01)
        ticks = ticks + 1
      end
    end)
    work(spin, 0.3)
    done = true
    ticker:result()
    assert.is_true(ticks >= 5, "the loop thread was blocked: " .. ticks .. " ticks")
  end)

  it("runs calls from several tasks in parallel on the pool threads", function()
    local n = pool_size()
    if n < 2 then
      pending("the pool has one thread on this machine")
      return
    end
    local handles = {}
    for i = 1, n do
      handles[i] = aqueue.spawn(function() return work(spin, 0.4) end)
    end
    -- every call started before any ended: all n ran at the same time (on a
    -- loaded machine too, where each just takes longer)
    local last_start, first_end = -math.huge, math.huge
    for i = 1, n do
      local started, ended = handles[i]:result()
      last_start = math.max(last_start, started)
      first_end = math.min(first_end, ended)
    end
    assert.is_true(last_start < first_end, "the calls did not overlap")
  end)

end)

describe("the pool", function()
  -- pool_size() as a fresh aqueue-run sees it, with `env` before it
  local function fresh_pool_size(env)
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write('print(require("aqueue.work").pool_size(), os.getenv("UV_THREADPOOL_SIZE"))')
    f:close()
    local p = assert(io.popen(("%s %q --progress none %q"):format(env, runner(), script)))
    local out = p:read("*a")
    p:close()
    os.remove(script)
    return out
  end

  it("has one thread per core by default, and sets UV_THREADPOOL_SIZE to say so", function()
    local p = assert(io.popen("nproc"))
    local cores = tonumber(p:read("*l"))
    p:close()
    assert.are.equal(("%d\t%d\n"):format(cores, cores), fresh_pool_size("env -u UV_THREADPOOL_SIZE"))
  end)

  it("follows the user's UV_THREADPOOL_SIZE", function()
    assert.are.equal("3\t3\n", fresh_pool_size("env UV_THREADPOOL_SIZE=3"))
  end)
end)

describe("aqueue.work refuses", function()
  it("a function with upvalues, naming them", function()
    local factor, offset = 3, 1
    local err = refusal(function(x) return x * factor + offset end, 2)
    assert.matches("fn has upvalues %(factor, offset%)", err)
    assert.matches("pass those values as arguments", err)
  end)

  it("a C function", function()
    assert.matches("fn is a C function", refusal(math.floor, 1.5))
    assert.matches("fn is a C function", refusal(string.rep, "a", 3))
  end)

  it("something that is not a function", function()
    assert.matches("fn must be a function %(got number%)", refusal(42))
    assert.matches("fn must be a function %(got nil%)", refusal(nil))
  end)

  it("an unsupported argument, naming the argument and where it is", function()
    local f = function() end
    assert.matches("fn's argument #1 is a function", refusal(echo, f))
    assert.matches("fn's argument #2 is a userdata", refusal(echo, 1, io.stdout))
    assert.matches("fn's argument #3 is a thread", refusal(echo, 1, 2, coroutine.create(f)))
    assert.matches("fn's argument #1 is a cdata", refusal(echo, require("ffi").new("int[1]")))
    assert.matches("fn's argument #2 holds a function at %.a%.b%[2%]", refusal(echo, 1, { a = { b = { 1, f } } }))
    assert.matches("fn's argument #1 holds a function used as a key at %.k",
      refusal(echo, { k = { [f] = true } }))
    assert.matches('at %["not an id"%]', refusal(echo, { ["not an id"] = f }))
  end)

  it("a table that contains itself, and tables nested too deep", function()
    local t = { inner = {} }
    t.inner.back = t
    assert.matches("fn's argument #1 holds a table that contains itself %(a cycle%) at %.inner%.back",
      refusal(echo, t))
    local deep = {}
    local cur = deep
    for _ = 1, 200 do
      cur.next = {}
      cur = cur.next
    end
    assert.matches("nested more than 100 deep", refusal(echo, deep))
  end)

  it("an unsupported result with nil and a message, not an error", function()
    local v, err, code = work(function() return 1, print end)
    assert.are.equal("EWORK", code)
    assert.is_nil(v)
    assert.matches("fn's result #2 is a function", err)
    v, err = work(function() return { x = { coroutine.create(print) } } end)
    assert.is_nil(v)
    assert.matches("fn's result #1 holds a thread at %.x%[1%]", err)
    v, err = work(function() local t = {}; t[1] = t; return t end)
    assert.is_nil(v)
    assert.matches("a cycle", err)
  end)

  it("to run outside an engine task", function()
    local ok, err = pcall(coroutine.wrap(function() return work(echo, 1) end))
    assert.is_false(ok)
    assert.matches("must be called from an aqueue task", err)
  end)

  it("nothing it refused leaves the engine unable to run more work", function()
    pcall(work, echo, print)
    pcall(work, function() return print end)
    assert.are.equal(7, work(echo, 7))
  end)
end)

describe("aqueue.work cancelled", function()
  it("while fn runs: the task never resumes, fn finishes, the engine goes on", function()
    local resumed = false
    local h = aqueue.spawn(function()
      work(spin, 0.3)
      resumed = true
    end)
    aqueue.sleep(0.05)
    assert.is_true(h:cancel())
    assert.are.same({ nil, "cancelled" }, { h:result() })
    aqueue.sleep(0.4) -- fn has finished meanwhile; its results were dropped
    assert.is_false(resumed)
    assert.are.equal("after", work(echo, "after"))
  end)

  it("while queued behind busy pool threads: fn never runs", function()
    local marker = os.tmpname()
    os.remove(marker)
    local busy = {}
    for i = 1, pool_size() do
      busy[i] = aqueue.spawn(function() return work(spin, 0.2) end)
    end
    aqueue.sleep(0.02)
    local resumed = false
    local queued = aqueue.spawn(function()
      work(function(path) assert(io.open(path, "w")):close() end, marker)
      resumed = true
    end)
    aqueue.sleep(0.01)
    assert.is_true(queued:cancel())
    for i = 1, #busy do busy[i]:result() end
    aqueue.sleep(0.05)
    assert.is_false(resumed)
    local f = io.open(marker)
    if f then
      f:close()
      os.remove(marker)
    end
    assert.is_nil(f, "the cancelled work ran")
    assert.are.equal("after", work(echo, "after"))
  end)
end)

-- The example renders through aqueue.work; run it as a user would.
describe("examples/mandelbrot.lua", function()
  it("writes a PPM image with the set in black", function()
    local out = os.tmpname()
    local cmd = ("%q --progress none examples/mandelbrot.lua 40 30 %q 2>&1"):format(runner(), out)
    local p = assert(io.popen(cmd))
    local text = p:read("*a")
    p:close()
    assert.matches("wrote " .. out:gsub("%p", "%%%0") .. ": 40x30, 30 rows", text)
    local f = assert(io.open(out, "rb"))
    local data = f:read("*a")
    f:close()
    os.remove(out)
    local header = "P6\n40 30\n255\n"
    assert.are.equal(header, data:sub(1, #header))
    assert.are.equal(#header + 40 * 30 * 3, #data)
    local function pixel(x, y)
      local at = #header + (y * 40 + x) * 3
      return { data:byte(at + 1, at + 3) }
    end
    assert.are.same({ 0, 0, 0 }, pixel(20, 15)) -- the centre, -0.6 + 0i: inside the set
    assert.are_not.same({ 0, 0, 0 }, pixel(0, 0)) -- a corner, far outside
  end)
end)
