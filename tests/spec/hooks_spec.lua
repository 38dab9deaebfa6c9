-- after_children_processed: runs exactly once per item, after its own process
-- and the process (and hooks) of all of its descendants, whatever their outcome.
local aqueue = require("aqueue")

-- Builds a tree of Node items from a nested spec { name, fail =, hook_fail =,
-- hook_sleep =, sleep =, children = { ... } } and runs it. Every process and
-- hook appends "p:name" / "h:name" to the returned log (a hook appends "h:name"
-- when it starts and "H:name" when it ends).
local function run_tree(prefix, tree, opts)
  local Node = aqueue.Item:extend(prefix .. "Node")
  local log = {}
  function Node:process(enqueue)
    log[#log + 1] = "p:" .. self.spec[1]
    if self.spec.sleep then aqueue.sleep(self.spec.sleep) end
    for _, child in ipairs(self.spec.children or {}) do
      enqueue(Node{ spec = child })
    end
    if self.spec.fail then error("process of " .. self.spec[1] .. " fails") end
  end
  function Node:after_children_processed()
    log[#log + 1] = "h:" .. self.spec[1]
    if self.spec.hook_sleep then aqueue.sleep(self.spec.hook_sleep) end
    log[#log + 1] = "H:" .. self.spec[1]
    if self.spec.hook_fail then error("hook of " .. self.spec[1] .. " fails") end
  end
  opts = opts or {}
  opts.initial_items = { Node{ spec = tree } }
  local summary = aqueue.run_queue(opts)
  return log, summary
end

local function index_of(log, entry)
  local found
  for i, e in ipairs(log) do
    if e == entry then
      assert.is_nil(found, entry .. " appears more than once")
      found = i
    end
  end
  assert.is_not_nil(found, entry .. " is missing")
  return found
end

-- Checks, for every node of the tree: its process ran once, its hook ran once,
-- and the hook started after its own process and after every descendant's
-- process and every descendant's hook had ended.
local function check_tree(log, node)
  local hook = index_of(log, "h:" .. node[1])
  assert.is_true(hook > index_of(log, "p:" .. node[1]), "hook of " .. node[1] .. " before its process")
  local function descendants(n)
    for _, child in ipairs(n.children or {}) do
      assert.is_true(hook > index_of(log, "p:" .. child[1]),
        "hook of " .. node[1] .. " before process of " .. child[1])
      assert.is_true(hook > index_of(log, "H:" .. child[1]),
        "hook of " .. node[1] .. " before the end of the hook of " .. child[1])
      descendants(child)
    end
  end
  descendants(node)
  for _, child in ipairs(node.children or {}) do check_tree(log, child) end
end

local function count_tree(node)
  local n = 1
  for _, child in ipairs(node.children or {}) do n = n + count_tree(child) end
  return n
end

local function three_levels()
  return { "root", children = {
    { "a", children = { { "a1" }, { "a2", children = { { "a2x" }, { "a2y" } } } } },
    { "b", children = { { "b1" }, { "b2" } } },
    { "c" },
  } }
end

describe("after_children_processed", function()
  it("runs once per item after its own process when it has no children", function()
    local tree = { "alone" }
    local log = run_tree("HookAlone", tree, { num_workers = 1 })
    assert.are.same({ "p:alone", "h:alone", "H:alone" }, log)
  end)

  for _, order in ipairs({ "lifo", "fifo", "priority" }) do
    it("runs after the whole subtree in a tree of depth 4 (order " .. order .. ", one worker)", function()
      local tree = three_levels()
      local log = run_tree("HookTree1" .. order, tree, { num_workers = 1, order = order })
      assert.are.equal(count_tree(tree) * 3, #log)
      check_tree(log, tree)
    end)
  end

  it("runs after the whole subtree when processes overlap (three workers)", function()
    local tree = three_levels()
    tree.sleep = 0.01
    tree.children[1].sleep = 0.03
    tree.children[1].children[2].children[1].sleep = 0.02
    tree.children[2].children[1].sleep = 0.01
    local log = run_tree("HookTree3", tree, { num_workers = 3 })
    assert.are.equal(count_tree(tree) * 3, #log)
    check_tree(log, tree)
  end)

  it("runs for failed items and for parents of failed items", function()
    local tree = three_levels()
    tree.children[1].fail = true                          -- a: fails after enqueueing its children
    tree.children[1].children[2].children[2].fail = true  -- a2y: a failing leaf
    tree.children[2].children[1].fail = true              -- b1: a failing leaf
    tree.children[3].fail = true                          -- c: a failing leaf under root
    local log, summary = run_tree("HookFailing", tree, { num_workers = 2 })
    assert.are.equal(count_tree(tree) * 3, #log)
    check_tree(log, tree)
    assert.are.equal(4, summary.failed)
    assert.are.equal(count_tree(tree) - 4, summary.processed)
  end)

  it("may yield, and the parent's hook waits for the child's hook to end", function()
    local tree = { "root", children = {
      { "slow", hook_sleep = 0.05, children = { { "leaf", hook_sleep = 0.02 } } },
      { "fast" },
    } }
    local log = run_tree("HookYield", tree, { num_workers = 2 })
    check_tree(log, tree)
    assert.is_true(index_of(log, "H:slow") < index_of(log, "h:root"))
    assert.is_true(index_of(log, "H:leaf") < index_of(log, "h:slow"))
  end)

  it("still runs the parent's hook when a child's hook raises, and reports that error", function()
    local tree = { "root", children = { { "bad", hook_fail = true }, { "good" } } }
    local log, summary = run_tree("HookRaises", tree, { num_workers = 1 })
    check_tree(log, tree)
    local hook_errors = {}
    for _, e in ipairs(summary.errors) do
      if e.phase == "after_children_processed" then hook_errors[#hook_errors + 1] = e end
    end
    assert.are.equal(1, #hook_errors)
    assert.are.equal("HookRaisesNode", hook_errors[1].class)
    assert.matches("hook of bad fails", hook_errors[1].error)
    assert.are.equal("bad", hook_errors[1].item.spec[1])
  end)

  it("waits for children enqueued late in the parent's process", function()
    local Parent = aqueue.Item:extend("HookLateParent")
    local Child = aqueue.Item:extend("HookLateChild")
    local log = {}
    function Parent:process(enqueue)
      log[#log + 1] = "p:parent"
      aqueue.sleep(0.02)
      enqueue(Child{ n = 1 })
      aqueue.sleep(0.02)
      enqueue(Child{ n = 2 })
    end
    function Child:process()
      aqueue.sleep(0.01)
      log[#log + 1] = "p:child" .. self.n
    end
    function Parent:after_children_processed()
      log[#log + 1] = "h:parent"
    end
    aqueue.run_queue{ initial_items = { Parent{} }, num_workers = 3 }
    assert.are.same({ "p:parent", "p:child1", "p:child2", "h:parent" }, log)
  end)

  it("waits for a child that outlives its parent's process", function()
    local Parent = aqueue.Item:extend("HookOutliveParent")
    local Child = aqueue.Item:extend("HookOutliveChild")
    local log = {}
    function Parent:process(enqueue)
      enqueue(Child{})
      log[#log + 1] = "parent returns"
    end
    function Child:process()
      aqueue.sleep(0.03)
      log[#log + 1] = "child done"
    end
    function Parent:after_children_processed()
      log[#log + 1] = "parent hook"
    end
    aqueue.run_queue{ initial_items = { Parent{} }, num_workers = 2 }
    assert.are.same({ "parent returns", "child done", "parent hook" }, log)
  end)

  it("is inherited by subclasses and runs once per item, for every item of the class", function()
    local Base = aqueue.Item:extend("HookInhBase")
    local Sub = Base:extend("HookInhSub")
    local hooks = {}
    function Base:process(enqueue)
      if self.n < 3 then enqueue(Sub{ n = self.n + 1 }) end
    end
    function Base:after_children_processed()
      hooks[#hooks + 1] = self.n
    end
    local summary = aqueue.run_queue{ initial_items = { Base{ n = 1 } }, num_workers = 1 }
    assert.are.same({ 3, 2, 1 }, hooks)
    assert.are.equal(3, summary.processed)
  end)

  it("runs only for items that define it, and parents still wait for hook-less children", function()
    local WithHook = aqueue.Item:extend("HookOnlyWith")
    local Without = aqueue.Item:extend("HookOnlyWithout")
    local log = {}
    function WithHook:process(enqueue)
      log[#log + 1] = "p:with"
      enqueue(Without{ depth = 1 })
    end
    function WithHook:after_children_processed()
      log[#log + 1] = "h:with"
    end
    function Without:process(enqueue)
      aqueue.sleep(0.01)
      log[#log + 1] = "p:without" .. self.depth
      if self.depth < 3 then enqueue(Without{ depth = self.depth + 1 }) end
    end
    aqueue.run_queue{ initial_items = { WithHook{} }, num_workers = 2 }
    assert.are.same({ "p:with", "p:without1", "p:without2", "p:without3", "h:with" }, log)
  end)

  it("runs for every initial item independently", function()
    local Solo = aqueue.Item:extend("HookSolo")
    local hooks = {}
    function Solo:process()
      aqueue.sleep(self.wait)
    end
    function Solo:after_children_processed()
      hooks[#hooks + 1] = self.name
    end
    aqueue.run_queue{
      initial_items = { Solo{ name = "slow", wait = 0.05 }, Solo{ name = "quick", wait = 0 } },
      num_workers = 2,
    }
    assert.are.same({ "quick", "slow" }, hooks)
  end)

  it("completes a tree whose hooks yield, with one worker", function()
    local tree = { "root", hook_sleep = 0.02, children = { { "x", hook_sleep = 0.02 }, { "y" } } }
    local log = run_tree("HookOneWorker", tree, { num_workers = 1 })
    check_tree(log, tree)
  end)
end)
