-- The order items start in: run_queue{ order = "lifo" | "fifo" | "priority" }.
-- With num_workers = 1 the order of process calls is the queue's order.
local aqueue = require("aqueue")

-- A tree: Root enqueues A and B; A enqueues a1, a2; B enqueues b1, b2. Returns
-- the names in the order their process ran.
local function run_tree(prefix, order)
  local Node = aqueue.Item:extend(prefix .. "Node")
  local log = {}
  local tree = { root = { "A", "B" }, A = { "a1", "a2" }, B = { "b1", "b2" } }
  function Node:process(enqueue)
    log[#log + 1] = self.name
    for _, name in ipairs(tree[self.name] or {}) do
      enqueue(Node{ name = name })
    end
  end
  aqueue.run_queue{ initial_items = { Node{ name = "root" } }, num_workers = 1, order = order }
  return log
end

-- Initial items named by `names` (with optional priorities); the order they ran.
local function run_flat(class_name, order, specs, class_priority)
  local Flat = aqueue.Item:extend(class_name)
  if class_priority then Flat.priority = class_priority end
  local log = {}
  function Flat:process()
    log[#log + 1] = self.name
  end
  local items = {}
  for i, spec in ipairs(specs) do
    items[i] = Flat{ name = spec[1], priority = spec[2] }
  end
  aqueue.run_queue{ initial_items = items, num_workers = 1, order = order }
  return log
end

-- A complete tree of the given branching and depth, processed with one worker;
-- returns the ids ("1.3.2") in the order their process ran, and the tree's walk
-- computed here: breadth-first for "fifo", depth-first (last child first) for
-- "lifo".
local function run_big_tree(class_name, order, branching, depth)
  local Node = aqueue.Item:extend(class_name)
  local log = {}
  function Node:process(enqueue)
    log[#log + 1] = self.id
    if self.depth < depth then
      for i = 1, branching do
        enqueue(Node{ id = self.id .. "." .. i, depth = self.depth + 1 })
      end
    end
  end
  aqueue.run_queue{ initial_items = { Node{ id = "1", depth = 1 } }, num_workers = 1, order = order }
  local walk = {}
  if order == "fifo" then
    local level = { "1" }
    for d = 1, depth do
      local next_level = {}
      for _, id in ipairs(level) do
        walk[#walk + 1] = id
        if d < depth then
          for i = 1, branching do next_level[#next_level + 1] = id .. "." .. i end
        end
      end
      level = next_level
    end
  else
    local function visit(id, d)
      walk[#walk + 1] = id
      if d < depth then
        for i = branching, 1, -1 do visit(id .. "." .. i, d + 1) end
      end
    end
    visit("1", 1)
  end
  return log, walk
end

describe('order = "lifo"', function()
  it("runs the most recently enqueued item first: depth-first", function()
    assert.are.same({ "root", "B", "b2", "b1", "A", "a2", "a1" }, run_tree("OrdLifo", "lifo"))
  end)

  it("is the default", function()
    assert.are.same({ "root", "B", "b2", "b1", "A", "a2", "a1" }, run_tree("OrdDefault", nil))
  end)

  it("walks a larger tree depth-first", function()
    local log, walk = run_big_tree("OrdLifoBig", "lifo", 4, 5)
    assert.are.equal(341, #log)
    assert.are.same(walk, log)
  end)

  it("ignores priorities", function()
    local log = run_flat("OrdLifoPrio", "lifo", { { "x", 5 }, { "y", 1 }, { "z", 3 } })
    assert.are.same({ "z", "y", "x" }, log)
  end)
end)

describe('order = "fifo"', function()
  it("runs items in the order they were enqueued: breadth-first", function()
    assert.are.same({ "root", "A", "B", "a1", "a2", "b1", "b2" }, run_tree("OrdFifo", "fifo"))
  end)

  it("walks a larger tree breadth-first", function()
    local log, walk = run_big_tree("OrdFifoBig", "fifo", 4, 5)
    assert.are.equal(341, #log)
    assert.are.same(walk, log)
  end)

  it("starts initial items in list order", function()
    local log = run_flat("OrdFifoInitial", "fifo", { { "first" }, { "second" }, { "third" } })
    assert.are.same({ "first", "second", "third" }, log)
  end)

  it("keeps enqueue order across many items", function()
    local Many = aqueue.Item:extend("OrdFifoMany")
    local Spawner = aqueue.Item:extend("OrdFifoManySpawner")
    local log = {}
    function Spawner:process(enqueue)
      for i = 1, 200 do enqueue(Many{ n = i }) end
    end
    function Many:process() log[#log + 1] = self.n end
    aqueue.run_queue{ initial_items = { Spawner{} }, num_workers = 1, order = "fifo" }
    assert.are.equal(200, #log)
    for i = 1, 200 do assert.are.equal(i, log[i]) end
  end)
end)

describe('order = "priority"', function()
  it("runs lower priorities first", function()
    local log = run_flat("OrdPrioLow", "priority", { { "p5", 5 }, { "p1", 1 }, { "p3", 3 }, { "p2", 2 } })
    assert.are.same({ "p1", "p2", "p3", "p5" }, log)
  end)

  it("runs equal priorities in enqueue order", function()
    local log = run_flat("OrdPrioTies", "priority", {
      { "b1", 2 }, { "a1", 1 }, { "b2", 2 }, { "a2", 1 }, { "b3", 2 }, { "a3", 1 },
    })
    assert.are.same({ "a1", "a2", "a3", "b1", "b2", "b3" }, log)
  end)

  it("is a stable order over many items: by priority, then by enqueue order", function()
    local specs, keyed = {}, {}
    for i = 1, 300 do
      specs[i] = { ("%03d"):format(i), (i * 7) % 5 }
      keyed[i] = { name = specs[i][1], priority = specs[i][2], seq = i }
    end
    table.sort(keyed, function(a, b)
      if a.priority ~= b.priority then return a.priority < b.priority end
      return a.seq < b.seq
    end)
    local want = {}
    for i, e in ipairs(keyed) do want[i] = e.name end
    assert.are.same(want, run_flat("OrdPrioStable", "priority", specs))
  end)

  it("accepts negative and fractional priorities", function()
    local log = run_flat("OrdPrioFrac", "priority", { { "zero", 0 }, { "neg", -2.5 }, { "half", 0.5 }, { "tiny", 0.25 } })
    assert.are.same({ "neg", "zero", "tiny", "half" }, log)
  end)

  it("uses the class priority unless the instance overrides it", function()
    local Urgent = aqueue.Item:extend("OrdPrioUrgent")
    Urgent.priority = -10
    local Normal = aqueue.Item:extend("OrdPrioNormal")
    local log = {}
    local function record(self) log[#log + 1] = self.name end
    Urgent.process, Normal.process = record, record
    aqueue.run_queue{
      initial_items = {
        Normal{ name = "normal" },
        Urgent{ name = "urgent" },
        Urgent{ name = "demoted", priority = 100 },
        Normal{ name = "promoted", priority = -20 },
      },
      num_workers = 1,
      order = "priority",
    }
    assert.are.same({ "promoted", "urgent", "normal", "demoted" }, log)
  end)

  it("orders children enqueued by a running item with the items already queued", function()
    local Job = aqueue.Item:extend("OrdPrioChildren")
    local log = {}
    function Job:process(enqueue)
      log[#log + 1] = self.name
      if self.name == "root" then
        enqueue(Job{ name = "c9", priority = 9 })
        enqueue(Job{ name = "c1", priority = 1 })
        enqueue(Job{ name = "c4", priority = 4 })
      elseif self.name == "c1" then
        enqueue(Job{ name = "g5", priority = 5 })
        enqueue(Job{ name = "g0", priority = 0 })
      end
    end
    aqueue.run_queue{
      initial_items = { Job{ name = "root", priority = 0 }, Job{ name = "i3", priority = 3 } },
      num_workers = 1,
      order = "priority",
    }
    assert.are.same({ "root", "c1", "g0", "i3", "c4", "g5", "c9" }, log)
  end)
end)
