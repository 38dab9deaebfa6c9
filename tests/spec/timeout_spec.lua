-- Item.timeout, retries and their backoff (SPEC section 4): a process() call
-- that runs past its timeout is destroyed with what it waits on (a sleep, an
-- HTTP transfer, a child process, a CPU job, a Queue or Semaphore wait), the
-- attempt fails with "timed out after <t> s", and it is retried after a
-- jittered backoff while it has retries left.
local aqueue = require("aqueue")
local ffi = require("ffi")
local files = require("tests.support.files")
local tcp = require("tests.support.tcp")
local capture_stderr = require("tests.support.capture").stderr
local longer_wait = require("tests.support.longer_wait")
local wait_until = require("tests.support.wait").until_true

pcall(ffi.cdef, "int kill(int pid, int sig);")

-- That a timeout cut a wait short is shown by comparing with a longer wait
-- begun with the run (tests.support.longer_wait), never by a wall-clock
-- upper bound that a loaded machine can break.

-- Runs the queue with stderr captured; returns the summary and the text.
local function run(opts)
  opts.progress = opts.progress or "none"
  local text, summary = capture_stderr(function()
    return aqueue.run_queue(opts)
  end)
  return summary, text
end

local function pack(...)
  return { n = select("#", ...), ... }
end

-- A root item that enqueues `child` and keeps what its handle returns in
-- out.result ({ n =, ... }).
local function root_of(name, child, out)
  local Root = aqueue.Item:extend(name)
  function Root:process(enqueue)
    local h = enqueue(child)
    out.result = pack(h:result())
  end
  return Root
end

-- The "retrying in X s" waits that the retry log lines announce, in order,
-- with the attempt number and the message of each line (after the item's
-- short view, which names its class: these specs' items have no ":" in it).
local function retry_lines(text, class)
  local lines = {}
  for attempt, of, wait, msg in text:gmatch("aqueue: " .. class
      .. ":process failed %(attempt (%d+) of (%d+)%), retrying in ([%d.]+) s: " .. class .. "[^:\n]*: ([^\n]*)") do
    lines[#lines + 1] = { attempt = tonumber(attempt), of = tonumber(of), wait = tonumber(wait), msg = msg }
  end
  return lines
end

describe("Item.timeout", function()
  it("cancels an aqueue.sleep: the code after it never runs, and the item fails with 'timed out after'", function()
    local Sleeper = aqueue.Item:extend("ToASleeper")
    Sleeper.timeout = 0.05
    local log = {}
    function Sleeper:process()
      log[#log + 1] = "before"
      aqueue.sleep(1)
      log[#log + 1] = "after the sleep"
      return "not reached"
    end
    local out = {}
    local Root = aqueue.Item:extend("ToASleeperRoot")
    function Root:process(enqueue)
      local h = enqueue(Sleeper{})
      out.result = pack(h:result())
    end
    local t0 = aqueue.now()
    local longer = longer_wait.start(1)
    local summary, text = run{ initial_items = { Root{} } }
    assert.is_false(longer:ended(), "the run ended after a 1 s wait begun with it: the timeout did not cut the 1 s sleep")
    assert.are.same({ n = 2, nil, "timed out after 0.05 s" }, out.result)
    assert.are.equal(1, summary.processed)
    assert.are.equal(1, summary.failed)
    assert.are.equal(0, summary.retried)
    assert.are.equal(1, #summary.errors)
    local e = summary.errors[1]
    assert.are.equal("ToASleeper", e.class)
    assert.are.equal("process", e.phase)
    assert.are.equal("timed out after 0.05 s", e.error)
    assert.are.equal(1, e.attempts)
    assert.matches("aqueue: ToASleeper:process failed: ToASleeper{}: timed out after 0.05 s", text, 1, true)
    assert.are.same({ "before" }, log)
    -- well past the end of the original sleep: its timer was cancelled with
    -- the task, so the rest of process never runs
    while aqueue.now() - t0 < 1.3 do aqueue.sleep(0.05) end
    assert.are.same({ "before" }, log)
  end)

  it("an instance's timeout overrides the class's (and nil there means the class's)", function()
    local Cls = aqueue.Item:extend("ToAOverride")
    Cls.timeout = 5
    local finished = {}
    function Cls:process()
      aqueue.sleep(0.3)
      finished[#finished + 1] = self.name
    end
    local summary = run{ initial_items = { Cls{ name = "short", timeout = 0.05 }, Cls{ name = "class" } },
      num_workers = 2 }
    assert.are.same({ "class" }, finished)
    assert.are.equal(1, summary.processed)
    assert.are.equal(1, summary.failed)
    assert.are.equal("timed out after 0.05 s", summary.errors[1].error)
  end)

  it("cancels an HTTP request to a server that never answers, and curl goes on working after", function()
    local server = tcp.stalled_listener()
    local Fetch = aqueue.Item:extend("ToAFetch")
    Fetch.timeout = 0.2
    local log = {}
    function Fetch:process()
      log[#log + 1] = "request"
      local res, err = aqueue.http.get(server.url)
      log[#log + 1] = "returned " .. tostring(res) .. " " .. tostring(err)
    end
    local longer = longer_wait.start(30) -- the requests would wait forever
    local summary = run{ initial_items = { Fetch{}, Fetch{}, Fetch{} }, num_workers = 3 }
    assert.is_false(longer:ended(), "the run ended after a 30 s wait begun with it")
    longer:stop()
    assert.are.same({ "request", "request", "request" }, log)
    assert.are.equal(3, summary.failed)
    for i = 1, 3 do
      assert.are.equal("timed out after 0.2 s", summary.errors[i].error)
    end
    -- the cancelled transfers are gone from curl: a new one runs (and ends
    -- with its own timeout, the server still never answers)
    local res, err = aqueue.http.get(server.url, { timeout = 0.2 })
    assert.is_nil(res)
    assert.matches("Timeout was reached", err, 1, true)
    aqueue.sleep(0.3)
    assert.are.equal(3, #log)
    server:close()
  end)

  it("kills the child process of an aqueue.exec", function()
    local dir = files.temp_dir()
    local pidfile = dir .. "/pid"
    local Child = aqueue.Item:extend("ToAExec")
    Child.timeout = 0.5
    local log = {}
    function Child:process()
      local res, err = aqueue.exec{ "sh", "-c", 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0"; exec sleep 30', pidfile }
      log[#log + 1] = "exec returned " .. tostring(res) .. " " .. tostring(err)
    end
    local longer = longer_wait.start(30) -- as long as the child's sleep
    local summary = run{ initial_items = { Child{} } }
    assert.is_false(longer:ended(), "the run ended after a 30 s wait begun with it: the child was not killed")
    longer:stop()
    assert.are.equal(1, summary.failed)
    assert.are.equal("timed out after 0.5 s", summary.errors[1].error)
    local pid = tonumber(files.read(pidfile) or "")
    files.remove_tree(dir)
    assert.is_number(pid, "the child wrote no pid: it had not started within the timeout")
    -- killed and reaped: no process with that pid any more (not even a zombie)
    wait_until(function() return not files.exists("/proc/" .. pid) end, "process " .. pid .. " to be gone")
    assert.are_not.equal(0, ffi.C.kill(pid, 0))
    aqueue.sleep(0.05)
    assert.are.same({}, log)
  end)

  it("drops an aqueue.work result: the task never resumes", function()
    local Cpu = aqueue.Item:extend("ToAWork")
    Cpu.timeout = 0.1
    local log = {}
    local function spin(seconds)
      local ffi = require("ffi") -- in the pool thread's own Lua state
      pcall(ffi.cdef, "int usleep(unsigned int usec);")
      ffi.C.usleep(seconds * 1e6)
      return "spun"
    end
    function Cpu:process()
      local r = aqueue.work(spin, 0.4)
      log[#log + 1] = "work returned " .. tostring(r)
    end
    local summary = run{ initial_items = { Cpu{} } }
    assert.are.equal(1, summary.failed)
    assert.are.equal("timed out after 0.1 s", summary.errors[1].error)
    -- the work finishes on its thread; its result is dropped
    assert.are.equal("spun", aqueue.work(spin, 0))
    aqueue.sleep(0.5)
    assert.are.same({}, log)
  end)

  it("takes an aqueue.fs request waiting for a pool thread off the pool: it never happens", function()
    local dir = files.temp_dir()
    local path = dir .. "/never-written"
    local release = dir .. "/release"
    -- every pool thread busy until the spec creates `release`: the write
    -- waits behind them
    local function block(until_exists)
      local ffi = require("ffi")
      pcall(ffi.cdef, "int usleep(unsigned int usec);")
      local f = io.open(until_exists)
      while not f do
        ffi.C.usleep(1000)
        f = io.open(until_exists)
      end
      f:close()
      return "blocked"
    end
    local blockers, blockers_done = {}, 0
    for i = 1, require("aqueue.work").pool_size() do
      blockers[i] = aqueue.spawn(function()
        local r = aqueue.work(block, release)
        blockers_done = blockers_done + 1
        return r
      end)
    end
    aqueue.sleep(0.02)
    local Writer = aqueue.Item:extend("ToAFsWriter")
    Writer.timeout = 0.1
    local log = {}
    function Writer:process()
      local ok, err = aqueue.fs.write(path, "data")
      log[#log + 1] = "write returned " .. tostring(ok) .. " " .. tostring(err)
    end
    local summary = run{ initial_items = { Writer{} } }
    assert.are.equal(0, blockers_done, "the run ended after a pool thread was free: the timeout waited for the pool")
    assert.are.equal(1, summary.failed)
    assert.are.equal("timed out after 0.1 s", summary.errors[1].error)
    files.write(release, "")
    for i = 1, #blockers do assert.are.equal("blocked", blockers[i]:result()) end
    -- the pool is free again: a request queued after the dropped one ran
    assert.is_true(aqueue.fs.write(dir .. "/later", "later"))
    aqueue.sleep(0.05)
    assert.is_false(files.exists(path), "the cancelled write happened anyway")
    assert.are.same({}, log)
    files.remove_tree(dir)
  end)

  it("cancels a Queue:get wait: a later put goes to the next getter, not to the dead one", function()
    local q = aqueue.Queue()
    local Getter = aqueue.Item:extend("ToAGetter")
    local Putter = aqueue.Item:extend("ToAPutter")
    local got = {}
    local state = {}
    function Getter:process()
      if self.delay_get then aqueue.sleep(self.delay_get) end
      local v = q:get()
      got[#got + 1] = self.name .. "=" .. tostring(v)
    end
    function Putter:process()
      -- A waits first (and times out at 0.1 s), B waits behind it
      aqueue.sleep(0.3)
      state.waiting_b = not got[1]
      q:put("x")
      aqueue.sleep(0.05)
      if #got == 0 then
        -- "x" went to the dead getter: unstick B so the run can end
        state.lost = true
        q:put("unstick")
      end
    end
    local summary = run{
      initial_items = { Getter{ name = "A", timeout = 0.1 }, Getter{ name = "B", delay_get = 0.02 }, Putter{} },
      num_workers = 3, order = "fifo",
    }
    assert.is_true(state.waiting_b)
    assert.is_nil(state.lost, "the item put went to the getter that had timed out")
    assert.are.same({ "B=x" }, got)
    assert.are.equal(0, q:qsize())
    assert.are.equal(2, summary.processed)
    assert.are.equal(1, summary.failed)
    assert.are.equal("ToAGetter", summary.errors[1].class)
    assert.are.equal("timed out after 0.1 s", summary.errors[1].error)
  end)

  it("cancels a Semaphore:acquire wait: the released permit goes to the next waiter", function()
    local sem = aqueue.Semaphore(0)
    local Acq = aqueue.Item:extend("ToAAcquirer")
    local Rel = aqueue.Item:extend("ToAReleaser")
    local got = {}
    function Acq:process()
      if self.delay_acquire then aqueue.sleep(self.delay_acquire) end
      sem:acquire()
      got[#got + 1] = self.name
    end
    function Rel:process()
      aqueue.sleep(0.3)
      sem:release()
      aqueue.sleep(0.05)
      if #got == 0 then sem:release() end -- the permit was lost: unstick B
    end
    local summary = run{
      initial_items = { Acq{ name = "A", timeout = 0.1 }, Acq{ name = "B", delay_acquire = 0.02 }, Rel{} },
      num_workers = 3, order = "fifo",
    }
    assert.are.same({ "B" }, got)
    assert.are.equal(0, sem:available(), "the permit went to B, and only one was given")
    assert.are.equal(1, summary.failed)
  end)

  it("a timeout that does not expire is stopped: the next item on the same worker runs in full", function()
    local Cls = aqueue.Item:extend("ToAReuse")
    local log = {}
    function Cls:process()
      if self.nap then aqueue.sleep(self.nap) end
      log[#log + 1] = self.name
      return self.name
    end
    local summary = run{
      initial_items = {
        Cls{ name = "A", timeout = 0.05 },             -- returns at once
        Cls{ name = "A2", timeout = 0.05, nap = 0.01 }, -- yields, returns in time
        Cls{ name = "B", nap = 0.15 },                 -- no timeout: must not be cut at 0.05 s
        Cls{ name = "C", timeout = 1, nap = 0.15 },    -- its own timeout, not A's
      },
      num_workers = 1, order = "fifo",
    }
    assert.are.same({ "A", "A2", "B", "C" }, log)
    assert.are.equal(4, summary.processed)
    assert.are.equal(0, summary.failed)
    assert.are.same({}, summary.errors)
  end)

  it("a hook still runs exactly once, and children enqueued before the timeout still run", function()
    local Parent = aqueue.Item:extend("ToAParent")
    local Kid = aqueue.Item:extend("ToAKid")
    Parent.timeout = 0.1
    local log = {}
    function Parent:process(enqueue)
      enqueue(Kid{ n = 1 })
      enqueue(Kid{ n = 2 })
      aqueue.sleep(1)
      log[#log + 1] = "parent after sleep"
      enqueue(Kid{ n = 3 })
    end
    function Parent:after_children_processed()
      log[#log + 1] = "parent hook"
    end
    function Kid:process()
      aqueue.sleep(0.3) -- still running when the parent times out
      log[#log + 1] = "kid " .. self.n
    end
    local summary = run{ initial_items = { Parent{} }, num_workers = 3 }
    assert.are.equal(3, #log)
    assert.are.same({ ["kid 1"] = true, ["kid 2"] = true }, { [log[1]] = true, [log[2]] = true })
    assert.are.equal("parent hook", log[3], "the hook runs once, after the children")
    assert.are.equal(2, summary.processed)
    assert.are.equal(1, summary.failed)
    aqueue.sleep(0.1)
    assert.are.equal(3, #log)
  end)

  it("with a retry: the hook runs once, after both attempts and the children of both", function()
    local Parent = aqueue.Item:extend("ToARetryParent")
    local Kid = aqueue.Item:extend("ToARetryKid")
    Parent.timeout = 0.1
    Parent.retries = 1
    Parent.retry_backoff = 0.01
    local log = {}
    local attempts = 0
    function Parent:process(enqueue)
      attempts = attempts + 1
      enqueue(Kid{ n = attempts })
      if attempts == 1 then aqueue.sleep(1) end
      return "parent ok"
    end
    function Parent:after_children_processed()
      log[#log + 1] = "parent hook"
    end
    function Kid:process()
      aqueue.sleep(0.2)
      log[#log + 1] = "kid " .. self.n
    end
    local summary = run{ initial_items = { Parent{} }, num_workers = 3 }
    assert.are.equal(2, attempts)
    assert.are.equal(3, #log)
    assert.are.equal("parent hook", log[3], "the hook runs after both children")
    assert.are.equal(3, summary.processed)
    assert.are.equal(0, summary.failed)
    assert.are.equal(1, summary.retried)
  end)

  it("bad values raise from enqueue, naming the class and the field", function()
    local Bad = aqueue.Item:extend("ToABad")
    function Bad:process() end
    local errs = {}
    local Root = aqueue.Item:extend("ToABadRoot")
    function Root:process(enqueue)
      for _, v in ipairs{ 0, -1, "1", 0 / 0, math.huge, true } do
        local ok, err = pcall(enqueue, Bad{ timeout = v })
        errs[#errs + 1] = { ok = ok, err = tostring(err), v = tostring(v) }
      end
      return "root ok"
    end
    local summary = run{ initial_items = { Root{} } }
    assert.are.equal(6, #errs)
    for _, e in ipairs(errs) do
      assert.is_false(e.ok, "timeout = " .. e.v .. " was accepted")
      assert.matches("enqueue: ToABad.timeout must be", e.err, 1, true)
    end
    assert.are.equal(1, summary.processed) -- only the root: no bad item ran
    assert.are.equal(0, summary.failed)
    -- a class field too, and from run_queue's initial items
    local BadClass = aqueue.Item:extend("ToABadClass")
    BadClass.timeout = -0.5
    function BadClass:process() end
    local ok, err = pcall(aqueue.run_queue, { initial_items = { BadClass{} }, progress = "none" })
    assert.is_false(ok)
    assert.matches("ToABadClass.timeout must be", tostring(err), 1, true)
  end)
end)

describe("retries", function()
  it("a first attempt that times out is retried: the second attempt's result counts", function()
    local Flaky = aqueue.Item:extend("ToAFlaky")
    Flaky.timeout = 0.1
    Flaky.retries = 2
    Flaky.retry_backoff = 0.05
    local attempts, log = 0, {}
    function Flaky:process()
      attempts = attempts + 1
      if attempts == 1 then
        aqueue.sleep(1)
        log[#log + 1] = "first attempt went on"
        return "first"
      end
      return "second", attempts
    end
    local out = {}
    local Root = aqueue.Item:extend("ToAFlakyRoot")
    function Root:process(enqueue)
      local h = enqueue(Flaky{})
      out.result = pack(h:result())
    end
    local t0 = aqueue.now()
    local longer = longer_wait.start(1) -- as long as the first attempt's sleep
    local summary, text = run{ initial_items = { Root{} } }
    assert.is_false(longer:ended(), "the run ended after a 1 s wait begun with it: the timeout did not cut the sleep")
    assert.are.equal(2, attempts)
    assert.are.same({ n = 2, "second", 2 }, out.result)
    assert.are.equal(2, summary.processed)
    assert.are.equal(0, summary.failed)
    assert.are.equal(1, summary.retried)
    assert.are.same({}, summary.errors)
    local lines = retry_lines(text, "ToAFlaky")
    assert.are.equal(1, #lines)
    assert.are.same({ 1, 3, "timed out after 0.1 s" }, { lines[1].attempt, lines[1].of, lines[1].msg })
    assert.is_true(lines[1].wait <= 0.05)
    assert.not_matches("ToAFlaky:process failed:", text, 1, true)
    aqueue.sleep(1.1 - (aqueue.now() - t0))
    assert.are.same({}, log)
  end)

  it("an item whose every attempt times out fails after all of them", function()
    local Slow = aqueue.Item:extend("ToASlow")
    Slow.timeout = 0.05
    Slow.retries = 2
    Slow.retry_backoff = 0.01
    local attempts = 0
    function Slow:process()
      attempts = attempts + 1
      aqueue.sleep(1)
    end
    local out = {}
    local Root = root_of("ToASlowRoot", Slow{}, out)
    local summary, text = run{ initial_items = { Root{} } }
    assert.are.equal(3, attempts)
    assert.are.equal(nil, out.result[1])
    assert.are.equal("timed out after 0.05 s", out.result[2])
    assert.are.equal(1, summary.processed)
    assert.are.equal(1, summary.failed)
    assert.are.equal(2, summary.retried)
    assert.are.equal(1, #summary.errors)
    local e = summary.errors[1]
    assert.are.same({ "ToASlow", "process", "timed out after 0.05 s", 3 }, { e.class, e.phase, e.error, e.attempts })
    local lines = retry_lines(text, "ToASlow")
    assert.are.equal(2, #lines)
    assert.are.same({ 1, 3 }, { lines[1].attempt, lines[1].of })
    assert.are.same({ 2, 3 }, { lines[2].attempt, lines[2].of })
    assert.matches("aqueue: ToASlow:process failed (after 3 attempts): ToASlow{}: timed out after 0.05 s", text, 1, true)
    assert.are.equal(1, summary.classes.ToASlow.failed)
    assert.are.equal(2, summary.classes.ToASlow.retried)
  end)

  it("no retry waits longer than retry_backoff_max", function()
    local Fail = aqueue.Item:extend("ToACapped")
    Fail.retries = 4
    Fail.retry_backoff = 10   -- uncapped, the waits would be seconds
    Fail.retry_backoff_max = 0.05
    -- Each failure begins a 5 s wait (100 times the cap; uncapped, a wait is
    -- uniform under 10, 20, 40, 80 s): the retry must start before it ends.
    local starts, retried_in_time, longer = {}, {}, nil
    function Fail:process()
      starts[#starts + 1] = aqueue.now()
      if longer then
        retried_in_time[#retried_in_time + 1] = not longer:ended()
        longer:stop()
      end
      longer = longer_wait.start(5)
      error("capped failure")
    end
    local summary, text = run{ initial_items = { Fail{} } }
    longer:stop()
    assert.are.equal(5, #starts)
    assert.are.same({ true, true, true, true }, retried_in_time)
    assert.are.equal(1, summary.failed)
    assert.are.equal(4, summary.retried)
    assert.are.equal(5, summary.errors[1].attempts)
    local lines = retry_lines(text, "ToACapped")
    assert.are.equal(4, #lines)
    for k = 1, 4 do
      assert.is_true(lines[k].wait <= 0.05, ("retry %d waits %.2f s"):format(k, lines[k].wait))
      local gap = starts[k + 1] - starts[k]
      -- never earlier than announced (to the 0.01 s the log rounds to)
      assert.is_true(gap >= lines[k].wait - 0.006, ("retry %d: %.3f s after, announced %.2f"):format(k, gap,
        lines[k].wait))
    end
    assert.matches("aqueue: ToACapped:process failed (after 5 attempts): ", text, 1, true)
    assert.matches("capped failure", text, 1, true)
  end)

  it("the waits grow as retry_backoff * 2^(k-1) (each uniform under that ceiling)", function()
    local Fail = aqueue.Item:extend("ToAGrowing")
    Fail.retries = 5
    Fail.retry_backoff = 0.01
    function Fail:process() error("again") end
    local summary, text = run{ initial_items = { Fail{} } }
    assert.are.equal(5, summary.retried)
    local lines = retry_lines(text, "ToAGrowing")
    assert.are.equal(5, #lines)
    for k = 1, 5 do
      local ceiling = 0.01 * 2 ^ (k - 1)
      -- %.2f rounds: allow half a hundredth
      assert.is_true(lines[k].wait <= ceiling + 0.005, ("retry %d waits %.2f s, more than %.2f"):format(k,
        lines[k].wait, ceiling))
    end
  end)

  it("the waits are jittered: 40 items failing together do not retry together", function()
    local Fail = aqueue.Item:extend("ToAJitter")
    Fail.retries = 1
    Fail.retry_backoff = 0.2
    local failed_at, retried_at = {}, {}
    function Fail:process()
      if not failed_at[self.n] then
        failed_at[self.n] = aqueue.now()
        error("jitter " .. self.n)
      end
      retried_at[self.n] = aqueue.now()
    end
    local items = {}
    for n = 1, 40 do items[n] = Fail{ n = n } end
    local summary, text = run{ initial_items = items, num_workers = 40 }
    assert.are.equal(40, summary.processed)
    assert.are.equal(40, summary.retried)
    assert.are.equal(0, summary.failed)
    local waits, short, long = {}, 0, 0
    for wait, n in text:gmatch("ToAJitter:process failed %(attempt 1 of 2%), retrying in ([%d.]+) s: [^\n]*jitter (%d+)") do
      n, wait = tonumber(n), tonumber(wait)
      waits[n] = wait
      assert.is_true(wait <= 0.2, "a wait over retry_backoff: " .. wait)
      local gap = retried_at[n] - failed_at[n]
      assert.is_true(gap >= wait - 0.006, ("item %d retried %.3f s after, announced %.2f"):format(n, gap, wait))
      if wait < 0.1 then short = short + 1 else long = long + 1 end
    end
    for n = 1, 40 do assert.is_number(waits[n], "no retry line for item " .. n) end
    assert.is_true(short > 0 and long > 0, ("the 40 waits are not spread: %d under 0.1 s, %d over"):format(short, long))
    local seen, distinct = {}, 0
    for n = 1, 40 do
      if not seen[waits[n]] then
        seen[waits[n]] = true
        distinct = distinct + 1
      end
    end
    assert.is_true(distinct >= 10, "only " .. distinct .. " distinct waits among 40")
  end)
end)

describe("a timeout counts from the start of the attempt", function()
  it("also when the worker computed without yielding just before", function()
    local Busy = aqueue.Item:extend("ToStaleBusy")
    local Quick = aqueue.Item:extend("ToStaleQuick")
    Quick.timeout = 0.15
    function Busy:process()
      local t = aqueue.now()
      while aqueue.now() - t < 0.4 do end -- the loop's clock is 0.4 s old after this
    end
    function Quick:process()
      aqueue.sleep(0.05)
      return "in time"
    end
    local Root = aqueue.Item:extend("ToStaleRoot")
    local got
    function Root:process(enqueue)
      local q = enqueue(Quick{})
      enqueue(Busy{})
      got = { q:result() }
    end
    -- lifo, one worker: Busy runs, then Quick on the same worker at once
    local summary = aqueue.run_queue{ initial_items = { Root{} }, num_workers = 1, progress = "none" }
    assert.are.same({ "in time" }, got)
    assert.are.equal(0, summary.failed)
  end)
end)
