-- What the engine stores on item tables (lua/aqueue/run_queue.lua, "Where an
-- item's id lives"): a child only `parent`, a root only `_aq_id`. A million
-- queued items are a million tables, so each extra field costs a hash node
-- (and doubles the hash part). Also the one path where a child's id must be
-- searched for: a child named from a task that is not processing it.
local aqueue = require("aqueue")

-- The keys of `t`'s own fields, sorted (numbers first).
local function own_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    if type(a) ~= type(b) then return type(a) == "number" end
    return a < b
  end)
  return keys
end

describe("item tables", function()
  it("a child carries its own fields and parent, a root its own fields and its id", function()
    local Child = aqueue.Item:extend("FieldsChild")
    function Child:process() end
    local Root = aqueue.Item:extend("FieldsRoot")
    local child, root_keys
    function Root:process(enqueue)
      root_keys = own_keys(self)
      child = Child{ n = 1 }
      enqueue(child)
    end
    local root = Root{ name = "r" }
    local summary = aqueue.run_queue{ initial_items = { root }, num_workers = 1 }
    assert.are.equal(2, summary.processed)
    assert.are.same({ "_aq_id", "name" }, root_keys)
    assert.are.same({ "n", "parent" }, own_keys(child))
    assert.are.equal(root, child.parent)
    assert.is_false(rawget(root, "_aq_id")) -- finished: takes no more children
  end)

  it("a queued child named from another item's process takes children and is waited for", function()
    local Leaf = aqueue.Item:extend("FieldsLeaf")
    function Leaf:process() return "leaf done" end
    local Mid = aqueue.Item:extend("FieldsMid")
    local order = {}
    function Mid:process() order[#order + 1] = "mid" end
    local Root = aqueue.Item:extend("FieldsNamingRoot")
    local mid, leaf, leaf_handle
    function Root:process(enqueue)
      mid = Mid{}
      enqueue(mid) -- queued: the root holds the only worker slot
      leaf = Leaf{}
      leaf_handle = mid:enqueue(leaf) -- mid is not this runner's item: its id is searched for
      order[#order + 1] = "root"
    end
    local summary = aqueue.run_queue{ initial_items = { Root{} }, num_workers = 1, order = "fifo" }
    assert.are.equal(3, summary.processed)
    assert.are.equal(0, summary.failed)
    assert.are.same({ "root", "mid" }, order)
    assert.are.equal(mid, leaf.parent)
    assert.are.equal("leaf done", leaf_handle:result())
    local err = select(2, pcall(mid.enqueue, mid, Leaf{}))
    assert.matches("completed", tostring(err)) -- its run is over
  end)

  it("a queued child costs at most 140 bytes of Lua heap (its table, its slot in the run)", function()
    -- A child of one field is a table (64 bytes) whose hash part holds its
    -- field and `parent` (2 nodes of 24); the run's id -> item array adds 8
    -- bytes per slot (a power of two of slots). With an id field as well the
    -- hash part was 4 nodes: 170 bytes.
    local n = 100000
    local Noop = aqueue.Item:extend("FieldsNoop")
    function Noop:process() end
    local Root = aqueue.Item:extend("FieldsHeapRoot")
    local per_item
    function Root:process(enqueue)
      collectgarbage()
      local before = collectgarbage("count")
      coroutine.wrap(function() -- no turns: all n stay queued
        for i = 1, n do
          enqueue(Noop{ i = i })
        end
      end)()
      collectgarbage()
      per_item = (collectgarbage("count") - before) * 1024 / n
    end
    local summary = aqueue.run_queue{ initial_items = { Root{} }, num_workers = 1 }
    assert.are.equal(n + 1, summary.processed)
    assert.is_true(per_item <= 140, ("%.1f bytes per queued item"):format(per_item))
  end)
end)
