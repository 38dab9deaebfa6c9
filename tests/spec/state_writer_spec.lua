-- The writer thread of a state file (engine/modules/statedb/group_commit.c): a process() that
-- enqueues more items than one group commit holds hands full batches to the
-- writer while it still enqueues, and reads whether the writer is busy without
-- taking its mutex. What it writes must all arrive. The data race this once
-- had there shows only under ThreadSanitizer (see README, "Testing").
local aqueue = require("aqueue")
local statefile = require("aqueue.statefile")
local files = require("tests.support.files")
local runs = require("tests.support.runs")

local BATCH = 16384 -- AQ_DB_BATCH_WRITES: a batch this big goes to the writer at once

describe("the state file's writer", function()
  local dir = files.temp_dir()
  teardown(function() files.remove_tree(dir) end)

  it("takes batches handed off while the loop keeps enqueueing, and loses no row", function()
    local Leaf = aqueue.Item:extend("WriterLeaf")
    function Leaf:process() end
    local Root = aqueue.Item:extend("WriterRoot")
    local rounds, per_round = 3, math.floor(BATCH * 1.5)
    function Root:process(enqueue)
      for _ = 1, rounds do
        for i = 1, per_round do -- more than a batch without yielding
          enqueue(Leaf{ i = i })
        end
        aqueue.sleep(0) -- the writer's news gets a turn between rounds
      end
    end
    local path = dir .. "/big.state"
    local summary = runs.quiet({ Root{} }, { state = path, num_workers = 8 })
    local items = 1 + rounds * per_round
    assert.are.equal(items, summary.processed)
    assert.are.equal(0, summary.failed)
    local db = statefile.open(path, "state", 1)
    local n, finished, max_pid = db:rows("SELECT count(*), sum(state = 2 AND outcome = 1), max(pid) FROM items")()
    assert.are.same({ items, items, items }, { n, finished, max_pid })
  end)
end)
