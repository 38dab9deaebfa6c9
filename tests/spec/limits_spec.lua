-- Per-key limits (SPEC section 4): Item:limit_key() with
-- run_queue{ limits = { per_key = n, rate = r, keys = { [key] = { ... } } } }.
-- At most n items of a key run at once, at most r start per second (spaced at
-- least 1/r s apart), and items of other keys are never stuck behind a limited
-- key, in every order.
local aqueue = require("aqueue")
local capture_stderr = require("tests.support.capture").stderr
local longer_wait = require("tests.support.longer_wait")

local now = aqueue.now

-- Rate spacing is checked against a lower bound no loaded machine can break:
-- a key's k-th start is due (k - 1) / rate after its first, its first comes
-- after its first item was enqueued (when limit_key() was first asked for
-- it), and aqueue.now() in process reads a time after the start. So the k-th
-- reading is at least `enqueued + (k - 1) / rate`, however late any reading
-- is. TOLERANCE covers only the clocks' granularity (the engine's timers
-- work in whole milliseconds).
local TOLERANCE = 0.002

local runs = require("tests.support.runs")
local run, error_of = runs.quiet, runs.error_of

-- A class whose items have the limit key `self.lk` (nil: none), sleep
-- `self.wait` seconds (if set) and record, per key ("-" for none): how many
-- were inside process at once at most (`max`), when each started and ended
-- (`starts`, `ends`, aqueue.now() readings, in start order), when its first
-- item was enqueued (`enqueued`) and the order of the names (`log`).
local function probe_class(name)
  local Cls = aqueue.Item:extend(name)
  local st = { inside = {}, max = {}, starts = {}, ends = {}, log = {}, count = 0, limit_key_calls = 0,
               enqueued = {} }
  function Cls:limit_key()
    st.limit_key_calls = st.limit_key_calls + 1
    if self.lk and not st.enqueued[self.lk] then st.enqueued[self.lk] = now() end
    return self.lk
  end
  function Cls:process()
    local k = self.lk or "-"
    st.count = st.count + 1
    st.inside[k] = (st.inside[k] or 0) + 1
    if st.inside[k] > (st.max[k] or 0) then st.max[k] = st.inside[k] end
    st.starts[k] = st.starts[k] or {}
    st.starts[k][#st.starts[k] + 1] = now()
    st.log[#st.log + 1] = self.name
    if self.wait then aqueue.sleep(self.wait) end
    st.inside[k] = st.inside[k] - 1
    st.ends[k] = st.ends[k] or {}
    st.ends[k][#st.ends[k] + 1] = now()
  end
  return Cls, st
end

-- n items of class Cls with limit key `lk` and the given fields, appended to `list`.
local function add(list, Cls, n, lk, fields)
  for i = 1, n do
    local item = Cls{ lk = lk, name = (lk or "-") .. i }
    for k, v in pairs(fields or {}) do item[k] = v end
    list[#list + 1] = item
  end
  return list
end

-- Asserts that key `key`'s i-th start reading in st is at least (i - 1) *
-- gap after the key's first enqueue: the key never started faster than its
-- rate. (Two starts may be closer than `gap` when the first came late: the
-- schedule keeps its due times, engine/core/rate_schedule.h.)
local function assert_spaced(st, key, gap, what)
  local times, since = st.starts[key], st.enqueued[key]
  for i = 2, #times do
    local d = times[i] - since
    assert.is_true(d >= (i - 1) * gap - TOLERANCE,
      ("%s: start %d only %.4f s after the first enqueue (want >= %.4f)"):format(what, i, d, (i - 1) * gap))
  end
end

local function max_of(list)
  local m = -math.huge
  for _, v in ipairs(list) do if v > m then m = v end end
  return m
end

describe("limits.per_key", function()
  it("runs at most per_key items of a key at once, and reaches that many with enough workers", function()
    local P, st = probe_class("LimPerKey")
    local items = {}
    add(items, P, 10, "a", { wait = 0.05 })
    add(items, P, 10, "b", { wait = 0.05 })
    local s = run(items, { num_workers = 20, limits = { per_key = 3 } })
    assert.are.equal(20, s.processed)
    assert.are.equal(20, st.count)
    assert.are.equal(3, st.max.a)
    assert.are.equal(3, st.max.b)
  end)

  it("with per_key = 1 runs a key's items one after the other", function()
    local P, st = probe_class("LimPerKeyOne")
    local items = add({}, P, 5, "solo", { wait = 0.02 })
    add(items, P, 5, "other", { wait = 0.02 })
    run(items, { num_workers = 10, order = "fifo", limits = { per_key = 1 } })
    assert.are.equal(1, st.max.solo)
    assert.are.equal(1, st.max.other)
    for i = 2, 5 do -- each started once the one before had ended
      assert.is_true(st.starts.solo[i] >= st.ends.solo[i - 1])
    end
    -- the two keys ran side by side: other's first item did not wait for solo
    assert.is_true(st.starts.other[1] < st.ends.solo[1])
  end)

  it("counts a number key like any other key", function()
    local P, st = probe_class("LimNumberKey")
    local items = add({}, P, 6, 42, { wait = 0.03 })
    add(items, P, 6, "42", { wait = 0.03 }) -- a different key
    run(items, { num_workers = 12, limits = { per_key = 2 } })
    assert.are.equal(2, st.max[42])
    assert.are.equal(2, st.max["42"])
  end)
end)

describe("limits.rate", function()
  it("spaces the starts of a key at least 1/rate apart", function()
    local P, st = probe_class("LimRate")
    local spacing = longer_wait.start(1 / 20)
    local s = run(add({}, P, 6, "a"), { num_workers = 6, limits = { rate = 20 } })
    assert.are.equal(6, s.processed)
    assert_spaced(st, "a", 1 / 20, "key a at 20/s")
    -- the first start is not held back: it comes before a 1/rate wait begun with the run ends
    assert.is_true(st.starts.a[1] < spacing.ended_at, "the first start waited")
  end)

  it("limits each key on its own: keys do not share one rate", function()
    local P, st = probe_class("LimRateKeys")
    local items = {}
    for _, k in ipairs({ "a", "b", "c" }) do add(items, P, 4, k) end
    run(items, { num_workers = 12, order = "fifo", limits = { rate = 10 } })
    local first_max, second_min = -math.huge, math.huge
    for _, k in ipairs({ "a", "b", "c" }) do
      assert.are.equal(4, #st.starts[k])
      assert_spaced(st, k, 1 / 10, "key " .. k .. " at 10/s")
      first_max = math.max(first_max, st.starts[k][1])
      second_min = math.min(second_min, st.starts[k][2])
    end
    -- every key started its first item before any key started its second one
    -- (with one rate shared by all keys, the second key would wait 0.1 s)
    assert.is_true(first_max < second_min, "a key's first start waited for another key")
  end)

  it("never starts faster than asked: N starts at rate r take at least (N - 1) / r", function()
    local P, st = probe_class("LimRateLong")
    -- 120 items at 200/s: the due times are 5 ms apart, a timer wakes every ms
    local s = run(add({}, P, 120, "k"), { num_workers = 4, limits = { rate = 200 } })
    assert.are.equal(120, s.processed)
    assert.are.equal(120, #st.starts.k)
    assert_spaced(st, "k", 1 / 200, "key k at 200/s")
  end)

  it("combines with per_key: both hold", function()
    local P, st = probe_class("LimRatePerKey")
    -- 6 items of 0.2 s, starting every 0.05 s: four would overlap without per_key
    run(add({}, P, 6, "k", { wait = 0.2 }), { num_workers = 6, limits = { per_key = 2, rate = 20 } })
    assert.are.equal(2, st.max.k)
    assert_spaced(st, "k", 1 / 20, "key k at 20/s")
  end)
end)

describe("items of other keys are never stuck behind a limited key", function()
  for _, order in ipairs({ "lifo", "fifo", "priority" }) do
    it(("in %s order"):format(order), function()
      local P = aqueue.Item:extend("LimStuck_" .. order)
      local slow_starts, slow_inside, slow_max, fast_ends = {}, 0, 0, {}
      function P:limit_key() return self.lk end
      function P:process()
        if self.slow then
          slow_inside = slow_inside + 1
          slow_max = math.max(slow_max, slow_inside)
          slow_starts[#slow_starts + 1] = now()
          -- holds its key until the 40 other items have ended (not a time
          -- that a loaded machine could outlast); were they stuck behind
          -- this key, they would not end, and it gives up after a while
          local deadline = now() + 20
          while #fast_ends < 40 and now() < deadline do aqueue.sleep(0.01) end
          slow_inside = slow_inside - 1
        else
          aqueue.sleep(0.01)
          fast_ends[#fast_ends + 1] = now()
        end
      end
      -- The slow key's items are where each order looks first: enqueued first
      -- and last, and with the lowest priority number.
      local items = {}
      local function slow()
        items[#items + 1] = P{ lk = "slow", slow = true, priority = -1 }
      end
      slow()
      slow()
      for i = 1, 40 do -- 30 of 10 other keys, 10 keyless
        items[#items + 1] = P{ lk = i % 4 ~= 0 and ("fast" .. (i % 10)) or nil }
      end
      slow()
      local s = run(items, { order = order, num_workers = 4, limits = { per_key = 1 } })
      assert.are.equal(43, s.processed)
      assert.are.equal(1, slow_max)
      assert.are.equal(3, #slow_starts)
      assert.are.equal(40, #fast_ends)
      table.sort(slow_starts)
      -- every other item had finished before the slow key's second item could
      -- even start
      local last_fast = max_of(fast_ends)
      assert.is_true(last_fast < slow_starts[2], ("the last fast item ended %.3f s after the slow key's second start")
        :format(last_fast - slow_starts[2]))
    end)
  end
end)

describe("limits with order = priority", function()
  it("starts the held items of a key in priority order, ties in enqueue order", function()
    local P, st = probe_class("LimPrioHeld")
    local Root = aqueue.Item:extend("LimPrioHeldRoot")
    -- "first" starts and takes the key's only slot; the others come while it
    -- runs and wait for it, held by the key
    function Root:process(enqueue)
      enqueue(P{ lk = "k", name = "first", priority = 3, wait = 0.05 })
      aqueue.sleep(0.01)
      for _, spec in ipairs({ { "p5", 5 }, { "p1", 1 }, { "p4", 4 }, { "p2a", 2 }, { "p3", 3 }, { "p2b", 2 } }) do
        enqueue(P{ lk = "k", name = spec[1], priority = spec[2] })
      end
    end
    run({ Root{} }, { order = "priority", num_workers = 4, limits = { per_key = 1 } })
    assert.are.same({ "first", "p1", "p2a", "p2b", "p3", "p4", "p5" }, st.log)
  end)

  it("starts a key's items in priority order when all were enqueued before any started", function()
    local P, st = probe_class("LimPrioAll")
    run({
      P{ lk = "k", name = "k-low", priority = 9 },
      P{ name = "o1", priority = 5 }, P{ name = "o2", priority = 5 }, P{ name = "o3", priority = 5 },
      P{ lk = "k", name = "k-urgent", priority = 0 },
    }, { order = "priority", num_workers = 1, limits = { per_key = 1 } })
    -- the key's first item must not take its slot while it waits behind
    -- o1-o3: k-urgent, queued before anything started, goes first
    assert.are.same({ "k-urgent", "o1", "o2", "o3", "k-low" }, st.log)
  end)

  it("does not delay a more urgent item of another key behind a limited key", function()
    local P, st = probe_class("LimPrioUrgent")
    local Spawner = aqueue.Item:extend("LimPrioUrgentSpawner")
    local urgent_enqueued
    function Spawner:process(enqueue)
      aqueue.sleep(0.05) -- the busy key is running and holding items by now
      urgent_enqueued = now()
      enqueue(P{ lk = "u", name = "urgent", priority = -10 })
    end
    local items = { Spawner{ priority = -100 } }
    -- the limited key's items come first in the queue's order...
    add(items, P, 4, "busy", { priority = 0, wait = 0.25 })
    -- ...and items of other keys with a worse priority come after them
    for i = 1, 6 do items[#items + 1] = P{ lk = "o" .. i, name = "o" .. i, priority = 10, wait = 0.01 } end
    run(items, { order = "priority", num_workers = 3, limits = { per_key = 1 } })
    assert.are.equal(1, st.max.busy)
    assert.are.equal(4, #st.starts.busy)
    -- the urgent item started while the busy key's first item still ran
    assert.is_true(st.starts.u[1] >= urgent_enqueued)
    assert.is_true(st.starts.u[1] < st.starts.busy[2], "the urgent item waited for the busy key")
    -- and the worse-priority items of other keys all ran before the busy key's third item
    for i = 1, 6 do
      assert.is_true(st.ends["o" .. i][1] < st.starts.busy[3], "o" .. i .. " waited behind the busy key")
    end
  end)
end)

describe("limits.keys", function()
  it("gives keys their own limits, field by field: a key with only a rate keeps the common per_key", function()
    local P, st = probe_class("LimKeys")
    local items = {}
    add(items, P, 8, "wide", { wait = 0.1 })
    add(items, P, 6, "plain", { wait = 0.1 })
    -- starts every 0.1 s, each lasting 0.35 s: four would overlap without per_key
    add(items, P, 6, "paced", { wait = 0.35 })
    run(items, {
      num_workers = 30,
      limits = { per_key = 2, keys = { wide = { per_key = 4 }, paced = { rate = 10 } } },
    })
    assert.are.equal(4, st.max.wide)
    assert.are.equal(2, st.max.plain)
    assert.are.equal(2, st.max.paced)
    assert_spaced(st, "paced", 1 / 10, "key paced at 10/s")
  end)

  it("a key with only per_key keeps the common rate; a key's own rate replaces it", function()
    local P, st = probe_class("LimKeysRate")
    local items = {}
    add(items, P, 5, "capped")
    add(items, P, 5, "fast")
    add(items, P, 5, "plain")
    run(items, {
      num_workers = 15,
      order = "fifo",
      limits = { rate = 10, keys = { capped = { per_key = 1 }, fast = { rate = 1000 } } },
    })
    assert_spaced(st, "capped", 1 / 10, "key capped at the common 10/s")
    assert_spaced(st, "plain", 1 / 10, "key plain at 10/s")
    -- "fast" starts far more often than the common rate allows: all five
    -- started before "plain" (which needs >= 0.4 s) started its third
    assert.is_true(max_of(st.starts.fast) < st.starts.plain[3], "key fast kept the common rate")
  end)

  it("leaves keys that are not listed and have no common limit unlimited", function()
    local P, st = probe_class("LimKeysOnly")
    local items = add({}, P, 4, "listed", { wait = 0.05 })
    add(items, P, 4, "free", { wait = 0.05 })
    run(items, { num_workers = 8, limits = { keys = { listed = { per_key = 1 } } } })
    assert.are.equal(1, st.max.listed)
    assert.are.equal(4, st.max.free)
  end)
end)

describe("Item:limit_key()", function()
  it("returning nil means no limit for that item", function()
    local P, st = probe_class("LimNilKey")
    local items = add({}, P, 6, nil, { wait = 0.05 })
    add(items, P, 4, "k", { wait = 0.05 })
    local s = run(items, { num_workers = 10, limits = { per_key = 1 } })
    assert.are.equal(10, s.processed)
    assert.are.equal(6, st.max["-"])
    assert.are.equal(1, st.max.k)
  end)

  it("is never called without limits, and nothing is limited", function()
    local P, st = probe_class("LimNoLimits")
    local s = run(add({}, P, 5, "k", { wait = 0.05 }), { num_workers = 5 })
    assert.are.equal(5, s.processed)
    assert.are.equal(0, st.limit_key_calls)
    assert.are.equal(5, st.max.k)
  end)

  it("is called once per item with limits", function()
    local P, st = probe_class("LimCalledOnce")
    run(add({}, P, 7, "k"), { limits = { per_key = 2 } })
    assert.are.equal(7, st.limit_key_calls)
  end)

  it("returning a table is an error from enqueue, naming the class", function()
    local Bad = aqueue.Item:extend("LimBadKey")
    function Bad:limit_key() return { "host" } end
    function Bad:process() end
    local Spawner = aqueue.Item:extend("LimBadKeySpawner")
    local caught
    function Spawner:process(enqueue)
      local ok, err = pcall(enqueue, Bad{})
      caught = { ok, tostring(err) }
    end
    local s = run({ Spawner{} }, { limits = { per_key = 1 } })
    assert.is_false(caught[1])
    assert.matches("enqueue: LimBadKey:limit_key() must return a string, a number or nil", caught[2], 1, true)
    assert.are.equal(1, s.processed)
    assert.are.equal(1, s.enqueued)
    -- as an initial item: run_queue raises, before anything runs
    local err = error_of(run, { Bad{} }, { limits = { per_key = 1 } })
    assert.matches("must return a string, a number or nil", err, 1, true)
  end)

  it("that is not a method is an error from enqueue", function()
    local Bad = aqueue.Item:extend("LimKeyNotMethod")
    Bad.limit_key = "host"
    function Bad:process() end
    local err = error_of(run, { Bad{} }, { limits = { per_key = 1 } })
    assert.matches("LimKeyNotMethod.limit_key must be a method", err, 1, true)
  end)
end)

describe("limits with retries", function()
  it("an item waiting out its retry backoff does not hold its key's slot", function()
    local Flaky = aqueue.Item:extend("LimRetryFlaky")
    local Other = aqueue.Item:extend("LimRetryOther")
    Flaky.retries = 1
    Flaky.retry_backoff = 0.3
    local t = {}
    function Flaky:limit_key() return "k" end
    function Other:limit_key() return "k" end
    function Flaky:process()
      local attempt = t.flaky1 and 2 or 1
      t["flaky" .. attempt] = now()
      if attempt == 1 then
        aqueue.sleep(0.05)
        t.flaky1_end = now()
        error("first attempt fails")
      end
    end
    function Other:process()
      t.other = now()
      aqueue.sleep(0.1)
      t.other_end = now()
    end
    local s
    capture_stderr(function()
      s = run({ Flaky{}, Other{} }, { order = "fifo", num_workers = 2, limits = { per_key = 1 } })
    end)
    assert.are.equal(2, s.processed)
    assert.are.equal(0, s.failed)
    assert.are.equal(1, s.retried)
    -- Other was held while Flaky ran, started once it failed, and Flaky's retry
    -- waited for Other (per_key = 1 holds for retries too)
    assert.is_true(t.other >= t.flaky1_end)
    assert.is_true(t.other < t.flaky2, "the key's slot was held during the backoff")
    assert.is_true(t.flaky2 >= t.other_end)
  end)
end)

describe("limits with delay", function()
  it("a delayed item does not hold its key's slot while it waits, and is limited once due", function()
    local P, st = probe_class("LimDelay")
    local t0 = now()
    local due = longer_wait.start(0.2) -- ends when the delayed item is due
    run({ P{ lk = "k", name = "delayed", delay = 0.2 }, P{ lk = "k", name = "now", wait = 0.35 } },
      { order = "fifo", num_workers = 2, limits = { per_key = 1 } })
    assert.are.same({ "now", "delayed" }, st.log)
    assert.are.equal(1, st.max.k)
    -- "now" started without waiting for the delayed item's 0.2 s
    assert.is_true(st.starts.k[1] < due.ended_at, "an item waited behind a delayed item of its key")
    -- the delayed item was due at 0.2 s but waited for the slot
    assert.is_true(st.starts.k[2] - t0 >= 0.2)
    assert.is_true(st.starts.k[2] >= st.ends.k[1])
  end)

  it("a delayed item starts no earlier than its delay with a rate too", function()
    local P, st = probe_class("LimDelayRate")
    local t0 = now()
    run({ P{ lk = "k", name = "d", delay = 0.15 }, P{ lk = "k", name = "a" }, P{ lk = "k", name = "b" } },
      { order = "fifo", num_workers = 3, limits = { rate = 20 } })
    assert.are.same({ "a", "b", "d" }, st.log)
    assert_spaced(st, "k", 1 / 20, "key k at 20/s")
    assert.is_true(st.starts.k[3] - t0 >= 0.15)
  end)
end)

describe("bad limits", function()
  local Cls = aqueue.Item:extend("LimBadValues")
  function Cls:process() error("must not run") end

  local function limits_error(limits)
    return error_of(run, { Cls{} }, { limits = limits })
  end

  it("rejects a per_key that is not a whole number >= 1", function()
    assert.matches("run_queue: limits.per_key must be a whole number >= 1, got 0", limits_error({ per_key = 0 }), 1, true)
    for _, bad in ipairs({ -1, 1.5, "2", 0 / 0, math.huge, true }) do
      assert.matches("run_queue: limits.per_key must be a whole number >= 1, got " .. tostring(bad),
        limits_error({ per_key = bad }), 1, true)
    end
  end)

  it("rejects a rate that is not a number > 0", function()
    assert.matches("run_queue: limits.rate must be a number of starts per second > 0, got -1",
      limits_error({ rate = -1 }), 1, true)
    for _, bad in ipairs({ 0, "5", 0 / 0, math.huge, false }) do
      assert.matches("run_queue: limits.rate must be a number of starts per second > 0, got " .. tostring(bad),
        limits_error({ rate = bad }), 1, true)
    end
  end)

  it("rejects unknown fields, naming them", function()
    assert.matches('run_queue: limits: unknown field "x"', limits_error({ per_key = 1, x = 1 }), 1, true)
    assert.matches('run_queue: limits: unknown field "perkey"', limits_error({ perkey = 1 }), 1, true)
    assert.matches('unknown field "keys"', limits_error({ keys = { h = { keys = {} } } }), 1, true)
  end)

  it("rejects limits that are not a table", function()
    assert.matches("run_queue: limits must be a table", limits_error(3), 1, true)
    assert.matches("run_queue: limits.keys must be a table", limits_error({ keys = "h" }), 1, true)
  end)

  it("checks each key's own limits, naming the key", function()
    assert.matches('run_queue: limits.keys["h"].per_key must be a whole number >= 1, got 0',
      limits_error({ keys = { h = { per_key = 0 } } }), 1, true)
    assert.matches('run_queue: limits.keys["h"].rate must be a number of starts per second > 0, got -1',
      limits_error({ per_key = 2, keys = { h = { rate = -1 } } }), 1, true)
    assert.matches('run_queue: limits.keys["h"]: unknown field "x"',
      limits_error({ keys = { h = { x = 1 } } }), 1, true)
    assert.matches('run_queue: limits.keys["h"] must be a table', limits_error({ keys = { h = 5 } }), 1, true)
  end)

  it("runs normally after rejecting limits", function()
    local Ok = aqueue.Item:extend("LimAfterBad")
    function Ok:process() end
    pcall(run, { Ok{} }, { limits = { per_key = 0 } })
    local s = run({ Ok{}, Ok{} }, { limits = { per_key = 1 } })
    assert.are.equal(2, s.processed)
  end)
end)
