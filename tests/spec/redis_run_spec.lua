-- aqueue.redis_run: a run shared by processes, against a private redis-server
-- (tests/support/redis_server.lua, appendonly with appendfsync always). Two
-- clients opening the same run are two processes.
local aqueue = require("aqueue")
local redis_run = require("aqueue.redis_run")
local redis_server = require("tests.support.redis_server")
local wait = require("tests.support.wait")

local server
local clients = {}

local function client()
  local c = assert(aqueue.redis.connect(server.url, { timeout = 30, backoff_min = 0.05, backoff_max = 0.2 }))
  clients[#clients + 1] = c
  return c
end

-- A process of run `name`: its own client. heartbeat 0.01 keeps the reaper's
-- guard short, so the tests may reap again at once.
local function process(name, opts)
  opts = opts or {}
  opts.classes = opts.classes or { "Page", "Site" }
  if opts.heartbeat == nil then opts.heartbeat = 0.01 end
  return assert(redis_run.open(client(), name, opts))
end

local function page(t)
  t = t or {}
  t.class = t.class or "Page"
  t.fields = t.fields or "{}"
  return t
end

local function ids_of(jobs)
  local ids = {}
  for i, j in ipairs(jobs) do ids[i] = j.id end
  return ids
end

local function done(run, job, extra)
  local r = { id = job.id, token = job.token, outcome = job.kind == "hook" and "hook_done" or "done" }
  for k, v in pairs(extra or {}) do r[k] = v end
  local replies = assert(run:complete{ r })
  return replies[1]
end

-- Claims until `what` holds for the claimed jobs (a delay or a lease lapsing).
local function claim_eventually(run, n, what)
  local jobs
  wait.until_true(function()
    jobs = assert(run:claim(n))
    return #jobs > 0
  end, what)
  return jobs
end

local function server_time()
  local t = assert(clients[1]:call("TIME"))
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end

describe("aqueue.redis_run", function()
  setup(function()
    server = redis_server.start()
  end)

  teardown(function()
    for _, c in ipairs(clients) do c:close() end
    server:stop()
  end)

  describe("open", function()
    it("creates a run, and later processes join it with their own numbers", function()
      local a = process("join")
      local b = process("join")
      assert.is_true(a.first)
      assert.is_false(b.first)
      assert.are.equal(1, a.process_id)
      assert.are.equal(2, b.process_id)
      assert.are.equal("aqueue-run", server:cli("HGET", "aq:{join}:meta", "format"))
      assert.are.equal("Page\nSite", server:cli("HGET", "aq:{join}:meta", "classes"))
    end)

    it("takes the class set in any order, and refuses another set or another order", function()
      process("classes", { classes = { "Site", "Page" } })
      assert.is_false(process("classes", { classes = { "Page", "Site" } }).first)
      local run, err, code = redis_run.open(client(), "classes", { classes = { "Page", "Image" } })
      assert.is_nil(run)
      assert.are.equal("EAQRUN", code)
      assert.are.equal("EAQRUN: run classes: the run's item classes are Page, Site; this script's are Image, Page", err)
      run, err, code = redis_run.open(client(), "classes", { classes = { "Page", "Site" }, order = "fifo" })
      assert.is_nil(run)
      assert.are.equal("EAQRUN", code)
      assert.matches("the run's order is lifo; this script's is fifo", err, 1, true)
    end)

    it("refuses a run whose keys hold foreign data", function()
      server:cli("SET", "aq:{foreign}:items", "not a hash")
      local run, err, code = redis_run.open(client(), "foreign", { classes = { "Page" } })
      assert.is_nil(run)
      assert.are.equal("EAQRUN", code)
      assert.are.equal("EAQRUN: run foreign: key aq:{foreign}:items holds a string, not the hash of an aqueue run", err)
      server:cli("HSET", "aq:{foreign2}:meta", "owner", "someone else")
      run, err, code = redis_run.open(client(), "foreign2", { classes = { "Page" } })
      assert.is_nil(run)
      assert.are.equal("EAQRUN", code)
      assert.matches("key aq:{foreign2}:meta is not the meta of an aqueue run (no format marker)", err, 1, true)
      server:cli("RPUSH", "aq:{foreign3}:failed", "1")
      run, err = redis_run.open(client(), "foreign3", { classes = { "Page" } })
      assert.is_nil(run)
      assert.matches("key aq:{foreign3}:failed exists but aq:{foreign3}:meta does not: not an aqueue run", err, 1, true)
      -- Nothing was written.
      assert.are.equal("0", server:cli("EXISTS", "aq:{foreign3}:meta"))
    end)

    it("refuses a run written by another format version", function()
      process("version")
      server:cli("HSET", "aq:{version}:meta", "version", "99")
      local run, err, code = redis_run.open(client(), "version", { classes = { "Page", "Site" } })
      assert.is_nil(run)
      assert.are.equal("EAQRUN", code)
      assert.matches("run written by format version 99; this aqueue reads version " .. redis_run.VERSION, err, 1, true)
    end)

    it("fresh drops the run's keys first, and drop leaves no key of the run", function()
      local a = process("fresh")
      assert(a:enqueue{ page{ key = "k" }, page{ key = "l", delay = 60 } })
      assert.are.equal(1, #assert(a:claim(1)))
      server:cli("SET", "aq:{fresh2}:items", "another run's")
      local b = process("fresh", { fresh = true })
      assert.is_true(b.first)
      local c = assert(b:counters())
      assert.are.same({ 0, 0, 0, 0 }, { c.queued, c.delayed, c.running, c.enqueued })
      assert.are.same({ 1 }, assert(b:enqueue{ page{ key = "k" } })) -- the key is free, ids start again
      assert(b:drop() > 0)
      assert.are.equal("", server:cli("KEYS", "aq:{fresh}:*"))
      assert.are.equal("another run's", server:cli("GET", "aq:{fresh2}:items"))
    end)
  end)

  describe("enqueue and claim", function()
    it("dedups keys across processes, one script call per batch", function()
      local a = process("dedup")
      local b = process("dedup")
      assert.are.same({ 1, false, 2 }, assert(a:enqueue{ page{ key = "x" }, page{ key = "x" }, page{ key = 7 } }))
      assert.are.same({ false, 3, false }, assert(b:enqueue{ page{ key = "x" }, page{ key = "y" }, page{ key = "7" } }))
      local c = assert(b:counters())
      assert.are.equal(3, c.enqueued)
      assert.are.equal(3, c.duplicates)
      assert.are.equal(3, c.queued)
      assert.are.equal(3, c.per_class.Page.queued)
    end)

    it("refuses a batch with a missing parent, writing nothing", function()
      local a = process("orphan")
      local ids, err, code = a:enqueue{ page{ key = "first" }, page{ parent = 42 } }
      assert.is_nil(ids)
      assert.are.equal("EAQRUN", code)
      assert.matches("no item 42 in this run", err, 1, true)
      assert.are.same({ 1 }, assert(a:enqueue{ page{ key = "first" } }))
    end)

    it("takes children of a running parent (enqueued before its process() returns), and none of a finished one", function()
      local run = process("streamed", { order = "fifo" })
      assert(run:enqueue{ page() })
      local root = assert(run:claim(1))[1]
      assert.are.same({ 2 }, assert(run:enqueue{ page{ parent = 1 } }))
      assert.are.same({}, done(run, root))
      assert.are.equal(1, assert(run:counters()).waiting) -- the root waits for its child
      local child = assert(run:claim(1))[1]
      assert.are.same({ 2, 1 }, { child.id, child.parent })
      done(run, child)
      assert.is_true(assert(run:counters()).finished)
      local ids, err, code = run:enqueue{ page{ parent = 1 } }
      assert.is_nil(ids)
      assert.are.equal("EAQRUN", code)
      assert.matches("item 1's subtree is finished", err, 1, true)
    end)

    it("hands out jobs in lifo, fifo and priority order", function()
      local function order_of(order, entries)
        local run = process("order-" .. order, { order = order })
        assert(run:enqueue(entries))
        local claimed = {}
        for _ = 1, 3 do
          for _, id in ipairs(ids_of(assert(run:claim(2)))) do claimed[#claimed + 1] = id end
        end
        return claimed
      end
      local plain = { page(), page(), page(), page(), page() }
      assert.are.same({ 5, 4, 3, 2, 1 }, order_of("lifo", plain))
      assert.are.same({ 1, 2, 3, 4, 5 }, order_of("fifo", plain))
      assert.are.same({ 4, 2, 5, 1, 3 }, order_of("priority", {
        page{ priority = 3 }, page{ priority = 1 }, page{ priority = 5 }, page{ priority = -2 }, page{ priority = 1 },
      }))
    end)

    it("returns each job's class, fields, parent, attempt and token: one token per claim, a new one at every claim", function()
      local run = process("jobs", { order = "fifo" })
      assert(run:enqueue{ page{ fields = '{"url":"/"}', max_attempts = 3 }, page{ class = "Site" } })
      local jobs = assert(run:claim(5))
      assert.are.equal(2, #jobs)
      local j = jobs[1]
      assert.are.same({ 1, "process", "Page", '{"url":"/"}', nil, 1, 3 },
        { j.id, j.kind, j.class, j.fields, j.parent, j.attempt, j.max_attempts })
      assert.are.equal("Site", jobs[2].class)
      assert.are.equal(jobs[1].token, jobs[2].token) -- (a lease is "id:token": it names the job and the claim)
      assert.are.equal(1, run:release{ j })
      local again = assert(run:claim(1))[1]
      assert.are.equal(1, again.id)
      assert.are.equal(1, again.attempt) -- a release is no attempt
      assert.is_true(again.token > j.token)
      assert.is_false(done(run, j)) -- the first claim's token is stale
      assert.are.same({}, done(run, again))
    end)

    it("keeps a delayed entry until it is due (by the server's clock)", function()
      local run = process("delay", { order = "fifo" })
      local t0 = server_time()
      assert(run:enqueue{ page{ delay = 0.2 }, page() })
      assert.are.same({ 2 }, ids_of(assert(run:claim(5))))
      local c = assert(run:counters())
      assert.are.same({ 1, 0, 1 }, { c.delayed, c.queued, c.running })
      local jobs = claim_eventually(run, 5, "the delayed entry")
      assert.is_true(server_time() - t0 >= 0.2)
      assert.are.same({ 1 }, ids_of(jobs))
      assert.are.equal(0, assert(run:counters()).delayed)
    end)
  end)

  describe("limits for the whole run", function()
    it("runs at most per_key jobs of a key at once across processes", function()
      local limits = { per_key = 2 }
      local a = process("per-key", { order = "fifo", limits = limits })
      local b = process("per-key", { order = "fifo", limits = limits })
      assert(a:enqueue{ page{ limit_key = "h" }, page{ limit_key = "h" }, page{ limit_key = "h" },
        page{ limit_key = "g" }, page{ limit_key = "h" }, page() })
      -- A takes two of h, then the others; h's last two wait.
      local first = assert(a:claim(3))
      assert.are.same({ 1, 2, 4 }, ids_of(first))
      assert.are.same({ 6 }, ids_of(assert(b:claim(5))))
      assert.are.same({}, assert(b:claim(5)))
      assert.are.equal(2, assert(b:counters()).queued)
      done(a, first[1])
      assert.are.same({ 3 }, ids_of(assert(b:claim(5))))
      assert.are.same({}, assert(a:claim(5)))
      done(a, first[2])
      assert.are.same({ 5 }, ids_of(assert(a:claim(5))))
    end)

    it("starts a key's jobs at most `rate` per second for the whole run, by the server's clock", function()
      local rate, n = 20, 6
      local limits = { rate = 1000, keys = { slow = { rate = rate } } }
      local procs = { process("rate", { limits = limits }), process("rate", { limits = limits }) }
      local entries = {}
      for _ = 1, n do entries[#entries + 1] = page{ limit_key = "slow" } end
      entries[#entries + 1] = page{ limit_key = "fast" }
      assert(procs[1]:enqueue(entries))
      -- Each slow job's start (its claim's time + its start_in) lies between
      -- the server's time before its claim and after it, + start_in.
      local earliest, latest = {}, {}
      local fast, calls = 0, 0
      while #earliest < n do
        local before = server_time()
        local jobs = assert(procs[calls % 2 + 1]:claim(10))
        local after = server_time()
        calls = calls + 1
        for _, j in ipairs(jobs) do
          if j.id <= n then
            local wait_s = j.start_in or 0
            assert.is_true(wait_s <= 0.05 + 1 / rate) -- handed out at most RATE_AHEAD before it is due
            earliest[#earliest + 1], latest[#latest + 1] = before + wait_s, after + wait_s
          else
            fast = fast + 1
            assert.is_nil(j.start_in) -- a key with room starts at once
          end
        end
        aqueue.sleep(0.001)
      end
      -- Whichever process claimed them: consecutive starts at least 1/rate
      -- apart (the next one's latest bound past the previous one's earliest).
      for k = 2, n do
        assert.is_true(latest[k] - earliest[k - 1] >= 1 / rate - 1e-6, "start " .. k)
      end
      assert.is_true(latest[n] - earliest[1] >= (n - 1) / rate - 1e-6)
      assert.are.equal(1, fast)
      assert.is_true(calls > 2) -- claims came away with part of the key's jobs
    end)
  end)

  describe("max_items and max_time for the whole run", function()
    it("hands out max_items first attempts across processes; a release gives one back; hooks still go", function()
      local a = process("max-items", { order = "fifo" })
      local b = process("max-items", { order = "fifo" })
      a.max_items, b.max_items = 3, 3
      local ids = assert(a:enqueue{ page{ has_hook = true }, page(), page(), page(), page() })
      local jobs, reached = a:claim(2)
      local with_hook = jobs[1]
      assert.are.same({ 1, 2 }, ids_of(jobs))
      assert.is_false(reached)
      local more
      more, reached = b:claim(5) -- one left for the run, whichever process asks
      assert.are.same({ 3 }, ids_of(more))
      assert.is_true(reached)
      jobs, reached = a:claim(5)
      assert.are.same({}, jobs)
      assert.is_true(reached)
      assert.are.equal(1, a:release{ more[1] }) -- not started: it does not count
      jobs, reached = a:claim(5)
      assert.are.same({ 3 }, ids_of(jobs))
      assert.is_true(reached)
      -- once reached, no process job starts, a retry neither
      local replies = assert(b:complete{ { id = jobs[1].id, token = jobs[1].token, outcome = "retry", retry_delay = 0 } })
      assert.is_table(replies[1])
      jobs, reached = b:claim(5)
      assert.are.same({}, jobs)
      assert.is_true(reached)
      -- a hook due after the limit is handed out, no process job
      done(a, with_hook)
      jobs, reached = a:claim(5)
      assert.are.equal(1, #jobs)
      assert.are.same({ ids[1], "hook" }, { jobs[1].id, jobs[1].kind })
      assert.is_true(reached)
      assert.are.equal("3", server:cli("HGET", "aq:{max-items}:meta", "started"))
    end)

    it("counts from a new session when a process opens a run no process is alive in", function()
      local a = process("session", { order = "fifo" })
      a.max_items = 1
      assert(a:enqueue{ page(), page() })
      local _, reached = a:claim(5)
      assert.is_true(reached)
      assert(a:close())
      aqueue.sleep(0.05)
      local b = process("session", { order = "fifo" })
      assert.is_true(b.session_elapsed < 0.05)
      b.max_items = 1
      local jobs
      jobs, reached = b:claim(5)
      assert.are.same({ 2 }, ids_of(jobs))
      assert.is_true(reached)
      -- a process joining one that is alive keeps its session
      local c = process("session", { order = "fifo" })
      assert.are.equal("1", server:cli("HGET", "aq:{session}:meta", "started"))
      assert.is_true(c.session_elapsed >= 0)
    end)
  end)

  describe("complete", function()
    it("records children and queues a hook once, after the last child's subtree", function()
      local run = process("hooks", { order = "fifo" })
      assert(run:enqueue{ page{ has_hook = true, key = "root" } })
      local root = assert(run:claim(1))[1]
      assert.are.same({ 2, 3, false, 4 }, done(run, root, {
        result = '{"n":3}',
        children = { page{ key = "a" }, page{ key = "b" }, page{ key = "root" }, page{ key = "c", class = "Site" } },
      }))
      local kids = assert(run:claim(10))
      assert.are.same({ 2, 3, 4 }, ids_of(kids))
      assert.are.equal(1, kids[1].parent)
      assert.are.equal(1, assert(run:counters()).waiting)
      done(run, kids[1])
      done(run, kids[3], { outcome = "failed", error = "boom" })
      assert.are.same({}, assert(run:claim(10)))
      done(run, kids[2])
      local hooks = assert(run:claim(10))
      assert.are.equal(1, #hooks)
      assert.are.same({ 1, "hook", '{}' }, { hooks[1].id, hooks[1].kind, hooks[1].fields })
      assert.is_false(assert(run:counters()).finished)
      done(run, hooks[1])
      assert.are.same({}, assert(run:claim(10)))
      local c = assert(run:counters())
      assert.are.same({ true, 3, 1, 1, 0, 0, 0 }, { c.finished, c.done, c.failed, c.hooks_done, c.queued, c.running, c.waiting })
      assert.are.same({ queued = 0, delayed = 0, running = 0, done = 0, failed = 1 }, c.per_class.Site)
      assert.are.same({ "done", '{"n":3}' }, { run:result(1) })
      assert.are.same({ "failed", nil, "boom" }, { run:result(4) })
    end)

    it("walks up a nested tree: a child's hook runs before its parent's", function()
      local run = process("nested", { order = "lifo" })
      assert(run:enqueue{ page{ has_hook = true } })
      local hooks_seen = {}
      local steps = 0
      while true do
        local jobs = assert(run:claim(1))
        if #jobs == 0 then break end
        steps = steps + 1
        local j = jobs[1]
        if j.kind == "hook" then
          hooks_seen[#hooks_seen + 1] = j.id
          done(run, j)
        elseif j.id == 1 then
          done(run, j, { children = { page{ has_hook = true }, page() } }) -- 2 (hook), 3
        elseif j.id == 2 then
          done(run, j, { children = { page{ has_hook = true }, page() } }) -- 4 (hook), 5
        else
          done(run, j)
        end
      end
      assert.are.same({ 4, 2, 1 }, hooks_seen)
      assert.are.equal(5 + 3, steps)
      assert.is_true(assert(run:counters()).finished)
    end)

    it("claims the next jobs in the same script, after the completions", function()
      local run = process("complete-claim", { order = "fifo", limits = { per_key = 1 } })
      assert(run:enqueue{ page{ has_hook = true, limit_key = "h" }, page{ limit_key = "h" } })
      local root = assert(run:claim(5))
      assert.are.same({ 1 }, ids_of(root))
      -- Completing 1 frees h's slot for 2, and its child 3 is queued behind it.
      local replies, jobs = run:complete({ { id = 1, token = root[1].token, outcome = "done",
        children = { page() } } }, 5)
      assert.are.same({ { 3 } }, replies)
      assert.are.same({ 2, 3 }, ids_of(jobs))
      local results = {}
      for i, j in ipairs(jobs) do results[i] = { id = j.id, token = j.token, outcome = "done" } end
      replies, jobs = run:complete(results, 5)
      assert.are.same({ {}, {} }, replies)
      assert.are.same({ { 1, "hook" } }, { { jobs[1].id, jobs[1].kind } })
      assert.are.equal(1, #jobs)
      replies, jobs = run:complete({ { id = 1, token = jobs[1].token, outcome = "hook_done" } }, 5)
      assert.are.same({ {} }, replies)
      assert.are.same({}, jobs)
      assert.is_true(assert(run:counters()).finished)
    end)

    it("keeps a tree's accounting across two processes: outcomes, duplicates, retries, hooks once, after their subtree", function()
      local procs = { process("tree", { order = "fifo" }), process("tree", { order = "fifo" }) }
      math.randomseed(15)
      local children_of, has_hook, outcome, hooks_run = {}, {}, {}, {}
      local duplicates, retried = 0, 0
      local roots = {}
      for i = 1, 4 do roots[i] = page{ has_hook = true, key = "root" .. i, fields = '{"depth":0}' } end
      for i, id in ipairs(assert(procs[1]:enqueue(roots))) do
        has_hook[id] = true
        children_of[id] = {}
        assert.are.equal(i, id)
      end
      -- Every item and hook of id's subtree is over.
      local function subtree_over(id)
        for _, c in ipairs(children_of[id]) do
          if not outcome[c] or (has_hook[c] and hooks_run[c] ~= 1) or not subtree_over(c) then return false end
        end
        return true
      end
      local turn, jobs_of = 0, { {}, {} }
      while true do
        turn = turn + 1
        local p = turn % 2 + 1
        local results = {}
        for i, j in ipairs(jobs_of[p]) do
          local r = { id = j.id, token = j.token }
          if j.kind == "hook" then
            assert.is_true(has_hook[j.id])
            assert.is_truthy(outcome[j.id])
            assert.is_true(subtree_over(j.id), "hook of " .. j.id .. " before its subtree was over")
            hooks_run[j.id] = (hooks_run[j.id] or 0) + 1
            r.outcome = "hook_done"
          else
            local depth = tonumber(j.fields:match('"depth":(%d+)'))
            local roll = math.random()
            if j.attempt == 1 and roll < 0.15 then
              r.outcome, r.retry_delay = "retry", 0
              retried = retried + 1
            else
              r.outcome = roll > 0.9 and "failed" or "done"
              r.error = r.outcome == "failed" and "bad luck" or nil
              r.children = {}
              if depth < 3 then
                for c = 1, 3 do
                  r.children[c] = page{ key = "k" .. math.random(1, 120), has_hook = c == 1,
                    fields = ('{"depth":%d}'):format(depth + 1) }
                end
              end
            end
          end
          results[i] = r
        end
        local replies, jobs = procs[p]:complete(results, math.random(1, 7))
        assert(replies, jobs)
        for i, reply in ipairs(replies) do
          local r = results[i]
          assert.is_truthy(reply, "a fresh token is never refused")
          if r.outcome == "done" or r.outcome == "failed" then
            outcome[r.id] = r.outcome
            for c, child in ipairs(r.children) do
              if reply[c] then
                children_of[r.id][#children_of[r.id] + 1] = reply[c]
                children_of[reply[c]] = {}
                has_hook[reply[c]] = child.has_hook or nil
              else
                duplicates = duplicates + 1
              end
            end
          end
        end
        jobs_of[p] = jobs
        if #jobs_of[1] == 0 and #jobs_of[2] == 0 and assert(procs[1]:counters()).finished then break end
      end
      local done_n, failed_n, items_n, hooks_n = 0, 0, 0, 0
      for id in pairs(children_of) do
        items_n = items_n + 1
        if outcome[id] == "done" then done_n = done_n + 1 else failed_n = failed_n + 1 end
        assert.are.equal(outcome[id], (procs[2]:result(id)))
        if has_hook[id] then
          assert.are.equal(1, hooks_run[id], "hook of " .. id)
          hooks_n = hooks_n + 1
        end
      end
      local c = assert(procs[2]:counters())
      assert.is_true(items_n > 30)
      assert.is_true(duplicates > 0 and retried > 0 and failed_n > 0)
      assert.are.same({ items_n, done_n, failed_n, duplicates, retried, hooks_n, 0, 0, 0, 0, 0 },
        { c.enqueued, c.done, c.failed, c.duplicates, c.retried, c.hooks_done, c.queued, c.delayed, c.running,
          c.waiting, c.hooks_failed })
      assert.are.equal(failed_n, assert(procs[1]:status()).failed_total)
    end)

    it("puts a retry back in the delayed set and counts its attempt", function()
      local run = process("retry")
      assert(run:enqueue{ page() })
      local first = assert(run:claim(1))[1]
      done(run, first, { outcome = "retry", retry_delay = 0.05, error = "flaky" })
      local c = assert(run:counters())
      assert.are.same({ 1, 1, 0 }, { c.delayed, c.retried, c.running })
      local again = claim_eventually(run, 1, "the retry")[1]
      assert.are.equal(2, again.attempt)
      done(run, again)
      assert.is_true(assert(run:counters()).finished)
    end)
  end)

  describe("retry_failed", function()
    it("puts failed items back: attempts reset, counters moved, finished subtrees open again, no hook twice", function()
      local run = process("retry-failed", { order = "fifo" })
      local root = assert(run:enqueue{ page{ has_hook = true } })[1]
      local r = assert(run:claim(1))[1]
      -- the root names a Mid (with a hook) that fails after naming a Leaf, and a Leaf that fails
      local kids = done(run, r, { children = { page{ class = "Site", has_hook = true }, page() } })
      local jobs = assert(run:claim(2))
      local mid_job, leaf_job = jobs[1], jobs[2]
      assert.are.same(kids, { mid_job.id, leaf_job.id })
      local grandkids = done(run, mid_job, { outcome = "failed", error = "mid broke", children = { page() } })
      done(run, leaf_job, { outcome = "failed", error = "leaf broke" })
      done(run, assert(run:claim(1))[1]) -- the Mid's child
      local mid_hook = assert(run:claim(1))[1]
      assert.are.same({ mid_job.id, "hook" }, { mid_hook.id, mid_hook.kind })
      done(run, mid_hook)
      local root_hook = assert(run:claim(1))[1]
      assert.are.same({ root, "hook" }, { root_hook.id, root_hook.kind })
      done(run, root_hook)
      local c = assert(run:counters())
      assert.is_true(c.finished)
      assert.are.same({ 2, 2 }, { c.done, c.failed })

      assert.are.equal(2, run:retry_failed())
      c = assert(run:counters())
      assert.is_false(c.finished)
      assert.are.same({ 2, 0, 2, 1 }, { c.done, c.failed, c.queued, c.waiting }) -- the root is open again
      assert.are.same({ state = "queued" }, { state = (run:result(kids[1])) })
      local again = assert(run:claim(5))
      assert.are.same(kids, ids_of(again))
      assert.are.same({ 1, 1 }, { again[1].attempt, again[2].attempt })
      assert.are.same({}, done(run, again[1])) -- the Mid, done this time; its hook ran: not again
      done(run, again[2])
      c = assert(run:counters())
      assert.is_true(c.finished)
      assert.are.same({ 4, 0, 0, 0 }, { c.done, c.failed, c.queued, c.waiting })
      assert.are.same({}, assert(run:claim(5))) -- no hook runs twice
      assert.are.equal(1, #grandkids)
      assert.are.equal("done", (run:result(kids[2])))
      assert.are.equal(0, run:retry_failed())
    end)
  end)

  describe("leases", function()
    it("refuses a late completion after the job was reaped and claimed by another process", function()
      local a = process("stale", { lease = 0.2 })
      local b = process("stale", { lease = 30 })
      assert(a:enqueue{ page() })
      local job_a = assert(a:claim(1))[1]
      assert.are.equal(0, (assert(b:reap()))) -- not expired yet
      wait.until_true(function() return assert(b:reap()) == 1 end, "the lease to lapse")
      local job_b = assert(b:claim(1))[1]
      assert.are.equal(job_a.id, job_b.id)
      assert.are.equal(2, job_b.attempt) -- the lost lease counted
      assert.is_false(done(a, job_a, { children = { page{ key = "from-a" } } }))
      assert.are.same({ 2 }, done(b, job_b, { children = { page{ key = "from-b" } } }))
      local c = assert(a:counters())
      assert.are.same({ 1, 2, 1 }, { c.done, c.enqueued, c.queued })
    end)

    it("keeps a lease alive by heartbeat past its first expiry", function()
      local run = process("heartbeat", { lease = 0.5 })
      assert(run:enqueue{ page() })
      local job = assert(run:claim(1))[1]
      local t0 = server_time()
      while server_time() - t0 < 1.2 do -- more than twice the lease
        assert.are.equal(1, run:heartbeat{ job })
        aqueue.sleep(0.05)
        local requeued = assert(run:reap())
        assert.are.equal(0, requeued)
      end
      assert.are.same({}, done(run, job))
    end)

    it("a retry due at once, claimed again by the same complete_claim, holds its new lease", function()
      local run = process("reclaim", { lease = 0.3 })
      assert(run:enqueue{ page() })
      local job = assert(run:claim(1))[1]
      local retry = { id = job.id, token = job.token, outcome = "retry", retry_delay = 0 }
      local replies, again = assert(run:complete({ retry }, 1))
      assert.are.same({}, replies[1])
      assert.are.equal(job.id, again[1].id)
      assert.are.equal(2, again[1].attempt)
      assert.are.equal(0, run:heartbeat{ job }) -- the first claim's lease is gone
      assert.are.equal(1, run:heartbeat{ again[1] })
      local t0 = server_time()
      while server_time() - t0 < 0.6 do -- twice the lease: the heartbeat keeps it
        assert.are.equal(1, run:heartbeat{ again[1] })
        aqueue.sleep(0.05)
        assert.are.equal(0, (assert(run:reap())))
      end
      assert.are.same({}, done(run, again[1]))
      local c = assert(run:counters())
      assert.are.same({ 1, 0, 0 }, { c.done, c.running, c.queued })
    end)

    it("renews only the jobs the process names: a job of a claim whose reply was lost expires", function()
      local run = process("lost_reply", { lease = 0.3 })
      assert(run:enqueue{ page(), page() })
      local known = assert(run:claim(1))[1]
      local lost = assert(run:claim(1))[1] -- as if its reply never came: the process does not name it
      local other = process("lost_reply", { lease = 0.3 })
      local t0 = server_time()
      local requeued = 0
      while server_time() - t0 < 1 do -- more than three leases
        assert.are.equal(1, run:heartbeat{ known, { id = 999999, token = known.token } }) -- (a lease not held is not renewed)
        aqueue.sleep(0.05)
        requeued = requeued + assert(run:reap())
      end
      assert.are.equal(1, requeued)
      local again = assert(other:claim(1))[1]
      assert.are.equal(lost.id, again.id)
      assert.are_not.equal(lost.token, again.token)
      assert.are.same({}, done(run, known))
      assert.are.same({}, done(other, again))
    end)

    it("fails a job with \"stalled\" after 3 lost leases, and goes on with its tree", function()
      local run = process("stalled", { lease = 0.05 })
      assert(run:enqueue{ page{ has_hook = true } })
      local root = assert(run:claim(1))[1]
      done(run, root, { children = { page() } })
      local job = assert(run:claim(1))[1]
      local lost = 0
      while lost < 3 do
        assert.are.equal(lost + 1, job.attempt)
        local requeued, failed
        wait.until_true(function()
          requeued, failed = assert(run:reap())
          return requeued + failed > 0
        end, "the lease to lapse")
        lost = lost + 1
        if lost < 3 then
          assert.are.same({ 1, 0 }, { requeued, failed })
          job = assert(run:claim(1))[1]
        else
          assert.are.same({ 0, 1 }, { requeued, failed })
        end
      end
      assert.are.same({ "failed", nil, "stalled" }, { run:result(job.id) })
      local hook = assert(run:claim(1))[1]
      assert.are.same({ 1, "hook" }, { hook.id, hook.kind })
      done(run, hook)
      local st = assert(run:status())
      assert.are.same({ { id = 2, class = "Page", error = "stalled" } }, st.failed)
      assert.is_true(st.counters.finished)
    end)

    it("releases claimed jobs at once, to the front of the queue", function()
      local a = process("release", { order = "fifo" })
      local b = process("release", { order = "fifo" })
      assert(a:enqueue{ page(), page(), page(), page() })
      local jobs = assert(a:claim(3))
      assert.are.equal(2, a:release{ jobs[2], jobs[3] })
      assert.are.equal(0, a:release{ jobs[2] }) -- already back
      local c = assert(b:counters())
      assert.are.same({ 3, 1 }, { c.queued, c.running })
      local taken = assert(b:claim(3))
      assert.are.same({ 2, 3, 4 }, ids_of(taken))
      assert.are.same({ 1, 1, 1 }, { taken[1].attempt, taken[2].attempt, taken[3].attempt })
    end)
  end)

  describe("what the run holds", function()
    it("counts processes alive within a lease, and reports them with their age", function()
      local a = process("alive", { lease = 0.3 })
      local b = process("alive", { lease = 0.3 })
      assert.are.equal(2, assert(a:counters()).processes_alive)
      assert(b:close())
      assert.are.equal(1, assert(a:counters()).processes_alive)
      wait.until_true(function() return assert(a:counters()).processes_alive == 0 end, "a's heartbeat to age")
      a:heartbeat{}
      local st = assert(a:status())
      assert.are.equal(1, st.counters.processes_alive)
      assert.are.equal(1, #st.processes)
      assert.are.equal(a.process_id, st.processes[1].id)
      assert.is_true(st.processes[1].age < 0.3)
    end)

    it("looks at a run without joining it: its classes, order and figures, and nothing written", function()
      local a = process("look", { order = "fifo", lease = 0.3 })
      assert(a:enqueue{ page(), page() })
      assert(a:close())
      wait.until_true(function() return assert(a:counters()).processes_alive == 0 end, "a's sign of life to age")
      local admin = client()
      local function snapshot()
        return { assert(admin:call("HGETALL", "aq:{look}:meta")), assert(admin:call("ZRANGE", "aq:{look}:procs", 0, -1)) }
      end
      local before = snapshot()
      local run = assert(redis_run.look(client(), "look"))
      assert.are.same({ 0, "fifo", { "Page", "Site" } }, { run.process_id, run.order, run.classes })
      local st = assert(run:status())
      assert.are.same({ 2, 0, 0 }, { st.counters.queued, st.counters.processes_alive, #st.processes })
      assert(run:close())
      assert.are.same(before, snapshot()) -- no process joined, no session began (max_items, max_time)
      local none, err, code = redis_run.look(client(), "nothing")
      assert.is_nil(none)
      assert.are.same({ "EAQRUN", "EAQRUN: run nothing: no such run in this Redis" }, { code, err })
      server:cli("HSET", "aq:{foreign}:meta", "x", "1")
      none, err = redis_run.look(client(), "foreign")
      assert.is_nil(none)
      assert.matches("is not the meta of an aqueue run", err, 1, true)
    end)

    it("caps the failed items status lists, and counts them all", function()
      local run = process("status", { order = "fifo" })
      local entries = {}
      for i = 1, 25 do entries[i] = page() end
      assert(run:enqueue(entries))
      local results = {}
      for i, j in ipairs(assert(run:claim(25))) do
        results[i] = { id = j.id, token = j.token, outcome = "failed", error = "e" .. j.id }
      end
      assert(run:complete(results))
      local st = assert(run:status())
      assert.are.equal(25, st.failed_total)
      assert.are.equal(redis_run.STATUS_CAP, #st.failed)
      assert.are.same({ id = 1, class = "Page", error = "e1" }, st.failed[1])
      assert.are.equal(25, st.counters.per_class.Page.failed)
      assert(run:enqueue{ page() })
      assert.are.same({ "queued" }, { run:result(26) })
      assert.is_nil(run:result(99))
    end)

    it("goes on across a redis-server restart", function()
      local a = process("restart", { order = "fifo" })
      assert(a:enqueue{ page{ has_hook = true }, page() })
      local jobs = assert(a:claim(1))
      server:kill()
      -- The client sees the drop (a call already on its way would fail with
      -- ECONNRESET: redis_spec); the next one waits for the server.
      wait.until_true(function() return a.client:state() == "connecting" end, "the drop")
      server:start_again() -- appendfsync always: nothing was lost
      assert.are.same({ 3 }, done(a, jobs[1], { children = { page() } }))
      local b = process("restart", { order = "fifo" })
      assert.is_false(b.first)
      local rest = assert(b:claim(5))
      assert.are.same({ 2, 3 }, ids_of(rest))
      for _, j in ipairs(rest) do done(b, j) end
      local hook = assert(a:claim(5))[1]
      assert.are.same({ 1, "hook" }, { hook.id, hook.kind })
      done(a, hook)
      local c = assert(b:counters())
      assert.are.same({ true, 3, 1 }, { c.finished, c.done, c.hooks_done })
    end)
  end)
end)
