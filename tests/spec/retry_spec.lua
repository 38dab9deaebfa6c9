-- Retries (SPEC section 4): a failed process() is run again up to `retries`
-- times, after a backoff; attempts, retries and the last error reach the
-- handle and the summary. Timing of the backoff is in timeout_spec.lua.
local aqueue = require("aqueue")

local run = require("tests.support.runs").quiet

describe("retries", function()
  it("run a failing process again until it succeeds; the handle gets the successful attempt's result", function()
    local Flaky = aqueue.Item:extend("RetryFlaky")
    Flaky.retries = 3
    Flaky.retry_backoff = 0.01
    local attempts = 0
    function Flaky:process()
      attempts = attempts + 1
      if attempts < 3 then
        error("failure number " .. attempts)
      end
      return "made it", attempts
    end
    local Root = aqueue.Item:extend("RetryFlakyRoot")
    local got
    function Root:process(enqueue)
      got = { enqueue(Flaky{}):result() }
    end
    local summary = run({ Root{} })
    assert.are.equal(3, attempts)
    assert.are.same({ "made it", 3 }, got)
    assert.are.equal(2, summary.processed)
    assert.are.equal(0, summary.failed)
    assert.are.equal(2, summary.retried)
    assert.are.same({ done = 1, failed = 0, retried = 2, max_queued = 1 }, summary.classes.RetryFlaky)
    assert.are.same({}, summary.errors)
  end)

  it("stop after retries + 1 attempts; the item fails with its last error and the number of attempts", function()
    local Broken = aqueue.Item:extend("RetryBroken")
    Broken.retries = 2
    Broken.retry_backoff = 0.005
    local attempts = 0
    function Broken:process()
      attempts = attempts + 1
      error("broken, attempt " .. attempts)
    end
    local Root = aqueue.Item:extend("RetryBrokenRoot")
    local got
    function Root:process(enqueue)
      got = { enqueue(Broken{}):result() }
    end
    local summary = run({ Root{} })
    assert.are.equal(3, attempts)
    assert.is_nil(got[1])
    assert.matches("broken, attempt 3$", got[2])
    assert.are.equal(1, summary.failed)
    assert.are.equal(2, summary.retried)
    assert.are.equal(1, #summary.errors)
    assert.are.equal("RetryBroken", summary.errors[1].class)
    assert.are.equal("process", summary.errors[1].phase)
    assert.are.equal(3, summary.errors[1].attempts)
    assert.matches("broken, attempt 3$", summary.errors[1].error)
  end)

  it("are not made by default, and an instance's own retries override its class's", function()
    local Once = aqueue.Item:extend("RetryOnce")
    local calls = {}
    function Once:process()
      calls[self.name] = (calls[self.name] or 0) + 1
      error("no")
    end
    local summary = run({ Once{ name = "class default" }, Once{ name = "own", retries = 1, retry_backoff = 0 } })
    assert.are.same({ ["class default"] = 1, own = 2 }, calls)
    assert.are.equal(1, summary.retried)
    assert.are.equal(2, summary.failed)
  end)

  it("run the hook once, after the last attempt, and keep the children of failed attempts", function()
    local Parent = aqueue.Item:extend("RetryParent")
    local Child = aqueue.Item:extend("RetryChild")
    Parent.retries = 2
    Parent.retry_backoff = 0.005
    local log = {}
    local attempt = 0
    function Parent:process(enqueue)
      attempt = attempt + 1
      enqueue(Child{ n = attempt })
      if attempt < 3 then
        error("parent attempt " .. attempt)
      end
    end
    function Parent:after_children_processed()
      log[#log + 1] = "hook after " .. attempt .. " attempts"
    end
    function Child:process()
      log[#log + 1] = "child " .. self.n
    end
    local summary = run({ Parent{} }, { order = "fifo" })
    table.sort(log)
    assert.are.same({ "child 1", "child 2", "child 3", "hook after 3 attempts" }, log)
    assert.are.equal(4, summary.processed)
  end)

  it("with key(), a retried attempt's children that were enqueued before are duplicates", function()
    local Parent = aqueue.Item:extend("RetryDedupParent")
    local Child = aqueue.Item:extend("RetryDedupChild")
    Parent.retries = 1
    Parent.retry_backoff = 0
    function Child:key()
      return "child " .. self.n
    end
    local outcomes, ran = {}, {}
    local attempt = 0
    function Parent:process(enqueue)
      attempt = attempt + 1
      for n = 1, 3 do
        local h, err = enqueue(Child{ n = n })
        outcomes[#outcomes + 1] = h and "enqueued" or err
      end
      if attempt == 1 then
        error("first attempt fails after enqueueing")
      end
    end
    function Child:process()
      ran[#ran + 1] = self.n
    end
    local summary = run({ Parent{} })
    table.sort(ran)
    assert.are.same({ 1, 2, 3 }, ran)
    assert.are.same({ "enqueued", "enqueued", "enqueued", "duplicate", "duplicate", "duplicate" }, outcomes)
    assert.are.equal(3, summary.duplicates)
    assert.are.equal(1, summary.retried)
  end)

  it("wait without holding a worker: with one worker, other items run during a backoff", function()
    local Flaky = aqueue.Item:extend("RetryWaitFlaky")
    local Other = aqueue.Item:extend("RetryWaitOther")
    Flaky.retries = 1
    Flaky.retry_backoff = 0.3
    Flaky.retry_backoff_max = 0.3
    local log = {}
    local failed_once = false
    function Flaky:process()
      log[#log + 1] = "flaky"
      if not failed_once then
        failed_once = true
        error("once")
      end
    end
    function Other:process()
      log[#log + 1] = "other"
    end
    -- lifo: Flaky starts first; the others are taken while it waits.
    local summary = run({ Other{}, Other{}, Flaky{} }, { num_workers = 1 })
    assert.are.equal("flaky", log[1])
    assert.are.equal(4, #log)
    assert.are.equal(3, summary.processed)
    -- the others ran during the backoff unless the uniform draw was ~0
    local others_before_retry = log[2] == "other" and log[3] == "other"
    local retry_was_immediate = log[2] == "flaky"
    assert.is_true(others_before_retry or retry_was_immediate)
  end)

  it("that time out are counted like errors (the attempt fails, then is retried)", function()
    local Slow = aqueue.Item:extend("RetrySlowOnce")
    Slow.retries = 1
    Slow.retry_backoff = 0
    Slow.timeout = 0.05
    local attempt = 0
    function Slow:process()
      attempt = attempt + 1
      if attempt == 1 then
        aqueue.sleep(10)
      end
      return attempt
    end
    local Root = aqueue.Item:extend("RetrySlowRoot")
    local got
    function Root:process(enqueue)
      got = { enqueue(Slow{}):result() }
    end
    local summary = run({ Root{} })
    assert.are.same({ 2 }, got)
    assert.are.equal(1, summary.retried)
    assert.are.equal(0, summary.failed)
  end)

  it("refuse bad retries and backoff values at enqueue, naming the class and field", function()
    local Bad = aqueue.Item:extend("RetryBadValues")
    function Bad:process() end
    local cases = {
      { { retries = -1 }, "RetryBadValues.retries must be a whole number from 0 to 65534, got %-1" },
      { { retries = 1.5 }, "RetryBadValues.retries must be a whole number" },
      { { retries = "3" }, "RetryBadValues.retries must be a whole number" },
      { { retries = 70000 }, "RetryBadValues.retries must be a whole number" },
      { { retries = 1, retry_backoff = -1 }, "RetryBadValues.retry_backoff must be a number of seconds >= 0, got %-1" },
      { { retries = 1, retry_backoff = "1" }, "RetryBadValues.retry_backoff must be a number of seconds" },
      { { retries = 1, retry_backoff_max = 0 / 0 }, "RetryBadValues.retry_backoff_max must be a number of seconds" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(run, { Bad(case[1]) })
      assert.is_false(ok)
      assert.matches(case[2], err)
    end
    -- nothing was left behind: a good run works
    local summary = run({ Bad{ retries = 1 } })
    assert.are.equal(1, summary.processed)
  end)
end)
