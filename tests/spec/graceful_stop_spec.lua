-- The first Ctrl-C (SIGINT) stops starting new items and lets running ones
-- finish (SPEC section 2, "Ctrl-C"). Only the first SIGINT of a process is
-- graceful, so this file holds a single run that interrupts itself.
local aqueue = require("aqueue")
local ffi = require("ffi")

pcall(ffi.cdef, [[
int getpid(void);
int kill(int pid, int sig);
]])
local SIGINT = 2

describe("a graceful stop (first SIGINT)", function()
  it("lets running items finish with their hooks, starts nothing new, and says so in the summary", function()
    local Runner = aqueue.Item:extend("StopRunner")   -- running when the signal comes
    local Stopper = aqueue.Item:extend("StopStopper") -- sends the signal
    local Queued = aqueue.Item:extend("StopQueued")   -- still queued then
    local log = {}
    local results = {}

    function Runner:process()
      log[#log + 1] = "runner starts"
      aqueue.sleep(0.1)
      log[#log + 1] = "runner ends"
      return "runner result"
    end
    function Runner:after_children_processed()
      log[#log + 1] = "runner hook"
    end
    function Queued:process()
      log[#log + 1] = "queued item started"
    end
    function Stopper:process(enqueue)
      aqueue.sleep(0.01) -- the runner is inside process now
      local handles = {}
      for i = 1, 3 do handles[i] = enqueue(Queued{ n = i }) end
      assert(ffi.C.kill(ffi.C.getpid(), SIGINT) == 0)
      aqueue.sleep(0.03) -- the engine hears the signal
      results.late = { enqueue(Queued{ n = 4 }) }
      results.queued = { handles[1]:result() }
      log[#log + 1] = "stopper ends"
    end

    local summary = aqueue.run_queue{
      initial_items = { Runner{}, Stopper{} },
      num_workers = 2,
      order = "fifo",
    }

    assert.are.same({ "runner starts", "stopper ends", "runner ends", "runner hook" }, log)
    assert.is_nil(results.late[1])
    assert.are.equal("stopped", results.late[2])
    assert.is_nil(results.queued[1])
    assert.matches("not started", results.queued[2])
    assert.is_true(summary.interrupted)
    assert.are.equal(3, summary.not_started)
    assert.are.equal(2, summary.processed)
    assert.are.equal(0, summary.failed)
    assert.are.equal(0, summary.cancelled)
    assert.are.equal(5, summary.enqueued)
    assert.are.same({ done = 0, failed = 0, retried = 0, max_queued = 3 }, summary.classes.StopQueued)
  end)
end)
