-- The state file of a run (SPEC section 5), seen from inside one process: what
-- a run writes, what cannot be saved, and the options. Resuming after a crash
-- or a stop needs a second process: tests/e2e/state_resume.sh and
-- state_kill.sh.
local aqueue = require("aqueue")
local statefile = require("aqueue.statefile")
local files = require("tests.support.files")
local runs = require("tests.support.runs")
local cjson = require("cjson")

local run, error_of = runs.quiet, runs.error_of

-- A state file path of its own for each test.
local dir = files.temp_dir()
local count = 0
local function new_state()
  count = count + 1
  return dir .. "/run" .. count .. ".state"
end

-- The rows of the state file at `path`, by pid.
local function rows_of(path)
  local db = statefile.open(path, "state", 1)
  local rows = {}
  for pid, parent, ordinal, class, key, fields, st, outcome, attempts, err in db:rows(
    "SELECT pid, parent, ordinal, class, key, fields, state, outcome, attempts, error FROM items ORDER BY pid") do
    rows[pid] = { parent = parent, ordinal = ordinal, class = class, key = key, fields = fields, state = st,
      outcome = outcome, attempts = attempts, error = err }
  end
  return rows
end

local FINISHED, DONE, FAILED = 2, 1, 2

describe("a run with a state file", function()
  it("records every item with its parent and place; finished ones keep no fields", function()
    local Leaf = aqueue.Item:extend("StateLeaf")
    function Leaf:process() end
    local Root = aqueue.Item:extend("StateRoot")
    function Root:process(enqueue)
      for i = 1, 3 do
        enqueue(Leaf{ i = i })
      end
    end
    function Root:after_children_processed() end
    local path = new_state()
    local summary = run({ Root{ name = "root" } }, { state = path })
    assert.are.equal(4, summary.processed)
    assert.are.equal(path, summary.state)
    assert.is_nil(summary.resumed)
    local rows = rows_of(path)
    assert.are.same({ parent = 0, ordinal = 1, class = "StateRoot", state = FINISHED, outcome = DONE, attempts = 1 },
      rows[1])
    for pid = 2, 4 do
      assert.are.same({ parent = 1, ordinal = pid - 1, class = "StateLeaf", state = FINISHED, outcome = DONE,
        attempts = 1 }, rows[pid])
    end
  end)

  it("keeps a failed item's fields, error and attempts, and a retried item's attempts", function()
    local Bad = aqueue.Item:extend("StateBad")
    Bad.retries = 1
    Bad.retry_backoff = 0.001
    function Bad:process()
      error("nope " .. self.n, 0)
    end
    local Flaky = aqueue.Item:extend("StateFlaky")
    Flaky.retries = 2
    Flaky.retry_backoff = 0.001
    local tries = 0
    function Flaky:process()
      tries = tries + 1
      if tries < 2 then
        error("once")
      end
    end
    local path = new_state()
    local summary = run({ Bad{ n = 7 }, Flaky{} }, { state = path })
    assert.are.equal(1, summary.failed)
    local rows = rows_of(path)
    assert.are.equal(FAILED, rows[1].outcome)
    assert.are.equal("nope 7", rows[1].error)
    assert.are.equal(2, rows[1].attempts)
    assert.are.same({ n = 7 }, cjson.decode(rows[1].fields))
    assert.are.equal(DONE, rows[2].outcome)
    assert.are.equal(2, rows[2].attempts)
  end)

  it("keeps the items a stop left unstarted, with their fields exactly", function()
    local Item = aqueue.Item:extend("StateStopped")
    function Item:process() end
    local path = new_state()
    local fields = { x = 0.1 + 0.2, big = 2 ^ 53, neg = -1e-300, s = "quote \" and \n", list = { 1, "two", { three = true } } }
    local items = { Item{ n = 1 }, Item(fields) }
    local summary = run(items, { state = path, order = "fifo", max_items = 1 })
    assert.are.equal(1, summary.processed)
    local rows = rows_of(path)
    assert.are.equal(FINISHED, rows[1].state)
    assert.are.equal(0, rows[2].state)
    local saved = cjson.decode(rows[2].fields)
    assert.are.same({ x = 0.1 + 0.2, big = 2 ^ 53, neg = -1e-300, s = "quote \" and \n",
      list = { 1, "two", { three = true } } }, saved)
    assert.are.equal(0.1 + 0.2, saved.x) -- all 17 digits
  end)

  it("stores Item:key() so that 1 and \"1\" stay different keys", function()
    local Keyed = aqueue.Item:extend("StateKeyed")
    function Keyed:process() end
    function Keyed:key()
      return self.k
    end
    local path = new_state()
    local summary = run({ Keyed{ k = 1 }, Keyed{ k = "1" }, Keyed{ k = 1 } }, { state = path })
    assert.are.equal(2, summary.processed)
    assert.are.equal(1, summary.duplicates)
    local rows = rows_of(path)
    assert.are.equal("n:1", rows[1].key)
    assert.are.equal("s:1", rows[2].key)
    assert.is_nil(rows[3])
  end)

  it("refuses a field that cannot be saved, naming the class and the field", function()
    local Item = aqueue.Item:extend("StateUnsaved")
    function Item:process() end
    local cyclic = {}
    cyclic.self = cyclic
    local cases = {
      { Item{ cb = print }, "StateUnsaved.cb cannot be saved in the state file: it is a function" },
      { Item{ meta = { tags = { "a", print } } }, "StateUnsaved.meta.tags[2] cannot be saved in the state file: it is a function" },
      { Item{ other = Item{} }, "StateUnsaved.other cannot be saved in the state file: it is an object with a metatable" },
      { Item{ mixed = { 1, 2, x = 3 } }, "StateUnsaved.mixed cannot be saved in the state file: it mixes list entries" },
      { Item{ holes = { [1] = 1, [3] = 3 } }, "StateUnsaved.holes cannot be saved in the state file: it mixes list entries with other keys, or is a list with holes" },
      { Item{ n = 0 / 0 }, "StateUnsaved.n cannot be saved in the state file: it is not a finite number" },
      { Item{ c = cyclic }, "StateUnsaved.c" },
      { Item{ u = io.stdout }, "StateUnsaved.u cannot be saved in the state file: it is a userdata" },
    }
    for _, case in ipairs(cases) do
      local err = error_of(run, { case[1] }, { state = new_state() })
      assert.matches(case[2], err, 1, true)
    end
  end)

  it("accepts the same fields without a state file", function()
    local Item = aqueue.Item:extend("StateUnsavedOk")
    function Item:process() end
    local summary = run({ Item{ cb = print } })
    assert.are.equal(1, summary.processed)
  end)

  it("refuses an item enqueued during the run that cannot be saved: enqueue raises in process", function()
    local Child = aqueue.Item:extend("StateBadChild")
    function Child:process() end
    local Root = aqueue.Item:extend("StateBadChildRoot")
    local err
    function Root:process(enqueue)
      local ok, e = pcall(enqueue, Child{ f = function() end })
      err = not ok and e
    end
    run({ Root{} }, { state = new_state() })
    assert.matches("StateBadChild.f cannot be saved in the state file: it is a function", err, 1, true)
  end)

  it("holds one run: a second run_queue on the same file in this process is refused", function()
    local Item = aqueue.Item:extend("StateTwice")
    function Item:process() end
    local path = new_state()
    run({ Item{} }, { state = path })
    local err = error_of(run, { Item{} }, { state = path })
    assert.matches("holds the run of an earlier run_queue call of this script", err, 1, true)
  end)

  it("checks the state option", function()
    local Item = aqueue.Item:extend("StateOption")
    function Item:process() end
    assert.matches("state must be a file name, got 42", error_of(run, { Item{} }, { state = 42 }), 1, true)
    assert.matches("state must be a file name", error_of(run, { Item{} }, { state = "" }), 1, true)
  end)

  it("refuses a file that is not an aqueue state file and leaves it as it was", function()
    local path = dir .. "/notes.txt"
    files.write(path, "my notes\n")
    local Item = aqueue.Item:extend("StateForeign")
    function Item:process() end
    local err = error_of(run, { Item{} }, { state = path })
    assert.matches(path .. " is not an aqueue state file", err, 1, true)
    assert.are.equal("my notes\n", files.read(path))
  end)
end)
