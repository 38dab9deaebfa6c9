-- The cost of per-key limits: N no-op items spread over K limit keys with
-- limits = { per_key = P }, against the same N items without limits, in the
-- same process.
--   aqueue-run scripts/bench/limits.lua [N=100000] [keys=1000] [per_key=2] [workers=100] [reps=5] [big=1000000]
-- And how exactly limits.rate keeps its rate:
--   aqueue-run scripts/bench/limits.lua rate [seconds=1.5] [workers=10] [rates=200,1000,5000,10000]
-- Each asked rate r gets r * seconds no-op items of one limit key, all queued
-- before the first starts; the achieved rate is (N - 1) / (last start - first
-- start), start times read with aqueue.now() in process. It prints one line
-- rate_<r>=<achieved> ... on stdout and a readable report on stderr.
-- Each run: a Root item enqueues the N items (item i has limit key i % K; they
-- are all queued before the first starts), default order (lifo), progress
-- "none"; its time is run_queue's own `elapsed`. After one uncounted warm-up
-- run of each, the limited and unlimited runs alternate, `reps` times each,
-- and the medians are compared. Then both run with `big` items the same way
-- (warm-up included: the first run at a bigger size grows the heap),
-- to show how the cost per item grows with the queue (limited; unlimited for
-- reference): for O(1) per step it stays ~1x, for O(log n) ~log(big)/log(N).
-- Nothing is asserted: it prints one line of key=value figures on stdout (read
-- by run_all) and a readable report on stderr.
local aqueue = require("aqueue")

if arg and arg[1] == "rate" then
  local SECONDS = tonumber(arg[2]) or 1.5
  local WORKERS = tonumber(arg[3]) or 10
  local rates = {}
  for r in (arg[4] or "200,1000,5000,10000"):gmatch("[^,]+") do rates[#rates + 1] = tonumber(r) end
  local now = aqueue.now
  local starts, n_started = {}, 0
  local Paced = aqueue.Item:extend("Paced")
  function Paced:limit_key() return "host" end
  function Paced:process()
    n_started = n_started + 1
    starts[n_started] = now()
  end
  local fields = { "limits_rate impl=aqueue seconds=" .. SECONDS, "workers=" .. WORKERS }
  io.stderr:write(("limits.rate: one key, %g s of no-op items per rate, %d workers\n"):format(SECONDS, WORKERS))
  for _, r in ipairs(rates) do
    local n = math.max(2, math.floor(r * SECONDS))
    local list = {}
    for i = 1, n do list[i] = Paced{} end
    starts, n_started = {}, 0
    local s = aqueue.run_queue{ initial_items = list, num_workers = WORKERS, progress = "none",
                                limits = { rate = r } }
    assert(s.processed == n and n_started == n, "unexpected summary")
    local achieved = (n - 1) / (starts[n] - starts[1])
    io.stderr:write(("  asked %6d/s  achieved %9.1f/s  (%.1f%%, %d starts in %.3f s)\n")
      :format(r, achieved, 100 * achieved / r, n, starts[n] - starts[1]))
    fields[#fields + 1] = ("rate_%d=%.1f"):format(r, achieved)
  end
  print(table.concat(fields, " "))
  return
end

local N = tonumber(arg and arg[1]) or 100000
local KEYS = tonumber(arg and arg[2]) or 1000
local PER_KEY = tonumber(arg and arg[3]) or 2
local WORKERS = tonumber(arg and arg[4]) or 100
local REPS = tonumber(arg and arg[5]) or 5
local BIG = tonumber(arg and arg[6]) or 1000000

local Noop = aqueue.Item:extend("Noop")
function Noop:limit_key() return self.k end
function Noop:process(enqueue, set_desc) end

local Root = aqueue.Item:extend("Root")
function Root:process(enqueue)
  local n, keys = self.n, KEYS
  for i = 1, n do
    enqueue(Noop{ k = i % keys })
  end
end

-- One run of n items, limited or not; returns its elapsed seconds.
local function once(n, limited)
  collectgarbage()
  collectgarbage()
  local s = aqueue.run_queue{
    initial_items = { Root{ n = n } },
    num_workers = WORKERS,
    progress = "none",
    limits = limited and { per_key = PER_KEY } or nil,
  }
  assert(s.processed == n + 1 and s.failed == 0 and s.not_started == 0, "unexpected summary")
  return s.elapsed
end

local function median(xs)
  local t = {}
  for i, x in ipairs(xs) do t[i] = x end
  table.sort(t)
  local m = #t
  if m % 2 == 1 then return t[(m + 1) / 2] end
  return (t[m / 2] + t[m / 2 + 1]) / 2
end

local function list(xs)
  local t = {}
  for i, x in ipairs(xs) do t[i] = ("%.3f"):format(x) end
  return table.concat(t, " ")
end

-- Runs both configurations at n items `REPS` times, alternating which goes
-- first (so neither always runs on a warmer heap); returns the two lists of
-- elapsed seconds.
local function alternate(n)
  local lim, unl = {}, {}
  for r = 1, REPS do
    if r % 2 == 1 then
      lim[r] = once(n, true)
      unl[r] = once(n, false)
    else
      unl[r] = once(n, false)
      lim[r] = once(n, true)
    end
  end
  return lim, unl
end

once(N, true) -- warm-up (the JIT compiles the runner loop), not counted
once(N, false)
local limited, unlimited = alternate(N)
once(BIG, true) -- warm-up at the bigger size too: the first run grows the heap
once(BIG, false)
local big, big_unlimited = alternate(BIG)

local lim, unl = median(limited), median(unlimited)
local lim_big, unl_big = median(big), median(big_unlimited)
local ratio = (N / lim) / (N / unl)
local cost_ratio = (lim_big / BIG) / (lim / N)
local cost_ratio_unlimited = (unl_big / BIG) / (unl / N)

io.stderr:write(("limits: no-op items over %d keys, per_key = %d, %d workers, order lifo; median of %d\n")
  :format(KEYS, PER_KEY, WORKERS, REPS))
io.stderr:write(("  %7d limited    %9.0f items/s  (elapsed %s s)\n"):format(N, N / lim, list(limited)))
io.stderr:write(("  %7d unlimited  %9.0f items/s  (elapsed %s s)\n"):format(N, N / unl, list(unlimited)))
io.stderr:write(("  ratio limited/unlimited at %d: %.2f (target >= 0.5)\n"):format(N, ratio))
io.stderr:write(("  %7d limited    %9.0f items/s  (elapsed %s s)\n"):format(BIG, BIG / lim_big, list(big)))
io.stderr:write(("  %7d unlimited  %9.0f items/s  (elapsed %s s)\n"):format(BIG, BIG / unl_big, list(big_unlimited)))
io.stderr:write(("  cost per item at %d vs %d items: limited %.2fx, unlimited %.2fx (log ratio %.2f)\n")
  :format(BIG, N, cost_ratio, cost_ratio_unlimited, math.log(BIG) / math.log(N)))
print(("limits impl=aqueue n=%d keys=%d per_key=%d workers=%d reps=%d limited_elapsed=%.6f unlimited_elapsed=%.6f"
  .. " limited_items_per_s=%.0f unlimited_items_per_s=%.0f ratio=%.4f big_n=%d big_elapsed=%.6f"
  .. " big_items_per_s=%.0f big_unlimited_elapsed=%.6f cost_ratio=%.4f cost_ratio_unlimited=%.4f")
  :format(N, KEYS, PER_KEY, WORKERS, REPS, lim, unl, N / lim, N / unl, ratio, BIG, lim_big, BIG / lim_big,
    unl_big, cost_ratio, cost_ratio_unlimited))
