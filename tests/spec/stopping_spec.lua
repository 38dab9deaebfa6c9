-- aqueue.stopping(): true once a graceful stop of the run began (first
-- Ctrl-C, max_items, max_time), until the next run_queue starts. Only the
-- first SIGINT of a process is graceful, so this file interrupts itself once.
local aqueue = require("aqueue")
local ffi = require("ffi")

pcall(ffi.cdef, [[
int getpid(void);
int kill(int pid, int sig);
]])
local SIGINT = 2

describe("aqueue.stopping", function()
  it("is false outside a stopped run, true from a graceful stop until the next run starts", function()
    local Item = aqueue.Item:extend("StoppingItem")
    local seen = {}
    function Item:process()
      seen[#seen + 1] = aqueue.stopping()
    end
    local items = {}
    for i = 1, 4 do items[i] = Item{} end
    local s = aqueue.run_queue{ initial_items = items, num_workers = 1, max_items = 2, progress = "none" }
    assert.are.equal("max_items", s.stopped)
    assert.are.same({ false, true }, seen)
    assert.is_true(aqueue.stopping())
    seen = {}
    aqueue.run_queue{ initial_items = { Item{} }, progress = "none" }
    assert.are.same({ false }, seen)
    assert.is_false(aqueue.stopping())
  end)

  it("turns true with max_time while an item runs", function()
    local Item = aqueue.Item:extend("StoppingTimed")
    local seen = {}
    function Item:process()
      seen[#seen + 1] = aqueue.stopping()
      aqueue.sleep(0.3)
      seen[#seen + 1] = aqueue.stopping()
    end
    local s = aqueue.run_queue{ initial_items = { Item{}, Item{} }, num_workers = 1, max_time = 0.05,
                                progress = "none" }
    assert.are.equal("max_time", s.stopped)
    assert.are.same({ false, true }, seen)
  end)

  it("turns true at the first Ctrl-C: a producer loop that checks it winds down", function()
    local Producer = aqueue.Item:extend("StoppingProducer")
    local Child = aqueue.Item:extend("StoppingChild")
    local produced = 0
    function Child:process() end
    function Producer:process(enqueue)
      while not aqueue.stopping() do
        produced = produced + 1
        enqueue(Child{})
        if produced == 5 then
          assert(ffi.C.kill(ffi.C.getpid(), SIGINT) == 0)
        end
        aqueue.sleep(0.01)
      end
      return produced
    end
    local s = aqueue.run_queue{ initial_items = { Producer{} }, num_workers = 2, progress = "none" }
    assert.is_true(s.interrupted)
    assert.is_true(aqueue.stopping())
    assert.is_true(produced >= 5)
    assert.are.equal(1, s.classes.StoppingProducer.done)
  end)
end)
