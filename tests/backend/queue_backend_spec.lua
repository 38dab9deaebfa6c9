-- The queue-backend interface (lua/aqueue/queue_backend.lua), one spec for
-- every backend: ctest runs this file once per backend, naming it in
-- AQUEUE_TEST_BACKEND (tests/CMakeLists.txt). A run's steps go through the
-- backend: enqueue with dedup, complete / fail / retry, subtree finished,
-- the counters, and what a later run resumes.
local aqueue = require("aqueue")
local queue_backend = require("aqueue.queue_backend")
local files = require("tests.support.files")
local child = require("tests.support.child")
local runs = require("tests.support.runs")

local BACKEND = os.getenv("AQUEUE_TEST_BACKEND") or "memory"
-- The remote backends run run_queue's remote path (aqueue.run_remote):
--   local_remote  on an in-process store with redis_run's API
--                 (tests/support/local_remote_backend.lua); it keeps nothing
--                 after its process, as memory
--   redis         on a private redis-server of this spec (a "state file" is a
--                 run's name there: tests/support/redis_backend.lua)
local REMOTE = BACKEND == "local_remote" or BACKEND == "redis"
local DURABLE = BACKEND == "sqlite" or BACKEND == "redis"
-- What a child process's script starts with to use the same backend.
local ROOT = debug.getinfo(1, "S").source:match("^@(.*)/tests/backend/[^/]*$")
local CHILD_PRELUDE = ""
local server = nil
if BACKEND == "local_remote" then
  require("tests.support.local_remote_backend").install()
  CHILD_PRELUDE = ('package.path = %q .. package.path; require("tests.support.local_remote_backend").install()\n')
    :format(ROOT .. "/?.lua;")
elseif BACKEND == "redis" then
  server = require("tests.support.redis_server").start{}
  require("tests.support.redis_backend").install(server.url)
  CHILD_PRELUDE = ('package.path = %q .. package.path; require("tests.support.redis_backend").install(%q)\n')
    :format(ROOT .. "/?.lua;", server.url)
end

local dir = files.temp_dir()
local count = 0
-- A state file of its own for each run of a durable backend, nil for memory.
local function new_state()
  if not DURABLE then
    return nil
  end
  count = count + 1
  if BACKEND == "redis" then
    return ("spec-%d-run%d"):format(os.time(), count)
  end
  return ("%s/run%d.state"):format(dir, count)
end

-- run_queue on the backend under test, without the display.
local function run(items, opts)
  opts = opts or {}
  opts.state = new_state()
  return runs.quiet(items, opts)
end

-- After a complete run, the queue's counters agree with the scheduler's
-- summary, and nothing is left pending.
local function assert_counters_agree(summary)
  assert.are.equal(BACKEND, summary.backend)
  assert.are.same({ done = summary.processed, failed = summary.failed, pending = 0 }, summary.counters)
end

describe("the " .. BACKEND .. " queue backend", function()
  teardown(function()
    if server then
      server:stop()
    end
  end)

  it("has every method of the interface", function()
    local b = queue_backend.open(new_state(), {}, 1)
    assert.are.equal(BACKEND, b.name)
    assert.are.equal(not REMOTE, b.local_queue)
    assert.are.equal(DURABLE, b.durable)
    for _, method in ipairs(queue_backend.METHODS) do
      assert.are.equal("function", type(b[method]), method)
    end
    for _, method in ipairs(queue_backend.LOCAL_METHODS) do
      assert.are.equal(REMOTE and "nil" or "function", type(b[method]), method)
    end
    for _, method in ipairs(queue_backend.REMOTE_METHODS) do
      assert.are.equal(REMOTE and "function" or "nil", type(b[method]), method)
    end
    b:abandon()
  end)

  it("records each enqueue once, and refuses a key it saw", function()
    local Page = aqueue.Item:extend("BackendPage")
    function Page:key()
      return self.url
    end
    local ran, outcomes = {}, {}
    local links = { ["/"] = { "/a", "/b" }, ["/a"] = { "/", "/b", "/c" }, ["/b"] = { "/c" } }
    function Page:process(enqueue)
      ran[#ran + 1] = self.url
      for _, link in ipairs(links[self.url] or {}) do
        local h, err = enqueue(Page{ url = link })
        outcomes[#outcomes + 1] = link .. ": " .. (h and "enqueued" or err)
      end
    end
    local s = run({ Page{ url = "/" }, Page{ url = "/" } }, { order = "fifo" })
    assert.are.same({ "/", "/a", "/b", "/c" }, ran)
    assert.are.same({ "/a: enqueued", "/b: enqueued", "/: duplicate", "/b: duplicate", "/c: enqueued",
      "/c: duplicate" }, outcomes)
    assert.are.equal(4, s.enqueued)
    assert.are.equal(4, s.duplicates) -- the second initial "/" too
    assert_counters_agree(s)
  end)

  it("records done, failed and retried attempts", function()
    local Job = aqueue.Item:extend("BackendJob")
    Job.retry_backoff = 0
    local tries = {}
    function Job:process()
      tries[self.name] = (tries[self.name] or 0) + 1
      if self.name == "flaky" and tries.flaky == 1 then
        error("first try fails")
      elseif self.name == "broken" then
        error("always fails")
      end
    end
    local s = run({ Job{ name = "ok" }, Job{ name = "flaky", retries = 1 }, Job{ name = "broken", retries = 2 } })
    assert.are.same({ ok = 1, flaky = 2, broken = 3 }, tries)
    assert.are.equal(1, s.failed)
    assert.are.equal(3, s.retried) -- flaky once, broken twice
    assert_counters_agree(s)
    assert.are.same({ done = 2, failed = 1, pending = 0 }, s.counters)
  end)

  it("finishes a subtree once: the hook after every child, each item finished once", function()
    local log = {}
    local Leaf = aqueue.Item:extend("BackendLeaf")
    function Leaf:process()
      log[#log + 1] = "leaf " .. self.i
      aqueue.sleep(0.001 * self.i)
    end
    local Mid = aqueue.Item:extend("BackendMid")
    function Mid:process(enqueue)
      for i = 1, 3 do
        enqueue(Leaf{ i = i })
      end
    end
    function Mid:after_children_processed()
      log[#log + 1] = "mid done"
    end
    local Root = aqueue.Item:extend("BackendRoot")
    function Root:process(enqueue)
      enqueue(Mid{})
      enqueue(Mid{})
    end
    function Root:after_children_processed()
      log[#log + 1] = "root done"
    end
    local s = run({ Root{} }, { num_workers = 4 })
    assert.are.equal(9, s.processed)
    assert.are.equal("root done", log[#log])
    local leaves_before_mid, mids = 0, 0
    for _, line in ipairs(log) do
      if line == "mid done" then
        mids = mids + 1
        assert.is_true(leaves_before_mid >= 3 * mids, "a Mid's hook ran before its leaves")
      elseif line:find("^leaf") then
        leaves_before_mid = leaves_before_mid + 1
      end
    end
    assert.are.equal(2, mids)
    assert_counters_agree(s)
  end)

  -- Two processes, one after the other: the first stops after 3 of 6 items
  -- (max_items), the second runs the same script. A durable backend resumes
  -- the rest, each item processed once in all; a memory one starts anew.
  it(not DURABLE and "keeps nothing for a later run" or "resumes what a stopped run left", function()
    local script = CHILD_PRELUDE .. [[
      local aqueue = require("aqueue")
      local Job = aqueue.Item:extend("BackendResumeJob")
      function Job:process() print("ran " .. self.n) end
      local items = {}
      for n = 1, 6 do items[n] = Job{ n = n } end
      local s = aqueue.run_queue{ initial_items = items, order = "fifo", num_workers = 1, progress = "none",
        state = arg[1] ~= "" and arg[1] or nil, max_items = tonumber(arg[2]) }
      local c = s.counters
      print(("backend %s processed %d resumed %s; done %d pending %d"):format(s.backend, s.processed,
        tostring(s.resumed ~= nil), c.done, c.pending))
    ]]
    local state = new_state() or ""
    local first = child.ok(dir, script, state, "3")
    if not DURABLE then -- a remote store still holds the 3 items for other processes
      assert.are.equal(("ran 1\nran 2\nran 3\nbackend %s processed 3 resumed false; done 3 pending %d\n")
        :format(BACKEND, REMOTE and 3 or 0), first)
    else -- the 3 items not started are kept
      assert.are.equal(("ran 1\nran 2\nran 3\nbackend %s processed 3 resumed false; done 3 pending 3\n")
        :format(BACKEND), first)
    end
    local second = child.ok(dir, script, state, "")
    if not DURABLE then
      assert.are.equal("ran 1\nran 2\nran 3\nran 4\nran 5\nran 6\n"
        .. ("backend %s processed 6 resumed false; done 6 pending 0\n"):format(BACKEND), second)
    else -- the run's counters count the first process's items too
      assert.are.equal(("ran 4\nran 5\nran 6\nbackend %s processed 3 resumed true; done 6 pending 0\n")
        :format(BACKEND), second)
    end
  end)

  -- Two parents name the same keyed child after the run began to stop
  -- (max_items): a durable backend keeps one copy for the next run, which
  -- processes it once; a memory one keeps none.
  it("keeps one copy of a key named twice while the run stops", function()
    local script = CHILD_PRELUDE .. [[
      local aqueue = require("aqueue")
      local Image = aqueue.Item:extend("BackendImage")
      function Image:key() return self.url end
      function Image:process() print("fetched " .. self.url) end
      local Page = aqueue.Item:extend("BackendStoppingPage")
      function Page:process(enqueue)
        if self.wait and arg[2] == "first" then
          aqueue.sleep(0.2) -- the run stops meanwhile
          print("enqueue: " .. tostring(select(2, enqueue(Image{ url = "/logo" }))))
        end
      end
      local s = aqueue.run_queue{ initial_items = { Page{}, Page{ wait = true }, Page{ wait = true } },
        num_workers = 3, progress = "none", order = "fifo",
        state = arg[1] ~= "" and arg[1] or nil, max_items = arg[2] == "first" and 3 or nil }
      print(("processed %d pending %d"):format(s.processed, s.counters.pending))
    ]]
    local state = new_state() or ""
    local first = child.ok(dir, script, state, "first")
    -- the third start stops the run (max_items); the two waiting Pages
    -- enqueue the image while it stops: a durable backend keeps the first
    -- and knows the second for a duplicate
    if not DURABLE then
      assert.are.equal("enqueue: stopped\nenqueue: stopped\nprocessed 3 pending 0\n", first)
    else
      assert.are.equal("enqueue: stopped\nenqueue: duplicate\nprocessed 3 pending 1\n", first)
    end
    local second = child.ok(dir, script, state, "second")
    if not DURABLE then
      assert.are.equal("processed 3 pending 0\n", second)
    else
      assert.are.equal("fetched /logo\nprocessed 1 pending 0\n", second)
    end
  end)

  it("starts a second run of one script from nothing but what it keeps", function()
    local Once = aqueue.Item:extend("BackendOnce")
    function Once:key()
      return "the key"
    end
    local ran = 0
    function Once:process()
      ran = ran + 1
    end
    local first = run({ Once{} })
    local second = run({ Once{} }) -- each run has its own state file: its own keys
    assert.are.equal(2, ran)
    assert.are.same({ done = 1, failed = 0, pending = 0 }, first.counters)
    assert.are.same(first.counters, second.counters)
  end)
end)
