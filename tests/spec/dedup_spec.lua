-- Dedup keys (SPEC section 4): enqueueing an item whose key() was already
-- seen in this run returns nil, "duplicate" and does nothing.
local aqueue = require("aqueue")

local run = require("tests.support.runs").quiet

describe("Item:key()", function()
  it("makes a second enqueue of the same key return nil, 'duplicate' and run nothing", function()
    local Page = aqueue.Item:extend("DedupPage")
    function Page:key()
      return self.url
    end
    local ran, outcomes = {}, {}
    function Page:process(enqueue)
      ran[#ran + 1] = self.url
      for _, link in ipairs(self.links or {}) do
        local h, err = enqueue(Page{ url = link })
        outcomes[#outcomes + 1] = link .. ": " .. (h and "enqueued" or err)
      end
    end
    -- "/" links to a and b; a links back to "/" and to b
    local links = { ["/"] = { "/a", "/b" }, ["/a"] = { "/", "/b" } }
    local old_process = Page.process
    function Page:process(enqueue)
      self.links = links[self.url]
      return old_process(self, enqueue)
    end
    local summary = run({ Page{ url = "/" } }, { order = "fifo" })
    assert.are.same({ "/", "/a", "/b" }, ran)
    assert.are.same({ "/a: enqueued", "/b: enqueued", "/: duplicate", "/b: duplicate" }, outcomes)
    assert.are.equal(2, summary.duplicates)
    assert.are.equal(3, summary.enqueued)
    assert.are.equal(3, summary.processed)
  end)

  it("applies to initial items, and a nil key means no dedup", function()
    local Job = aqueue.Item:extend("DedupNilKey")
    function Job:key()
      return self.id
    end
    local count = 0
    function Job:process()
      count = count + 1
    end
    local summary = run({ Job{ id = 1 }, Job{ id = 1 }, Job{}, Job{}, Job{ id = "1" } })
    -- 1 once, the two without a key, and the string "1" (another key than the number 1)
    assert.are.equal(4, count)
    assert.are.equal(1, summary.duplicates)
  end)

  it("shares one key space between classes, and starts empty in each run", function()
    local A = aqueue.Item:extend("DedupSharedA")
    local B = aqueue.Item:extend("DedupSharedB")
    local function key(self) return self.k end
    A.key, B.key = key, key
    local ran = {}
    function A:process() ran[#ran + 1] = "A" .. self.k end
    function B:process() ran[#ran + 1] = "B" .. self.k end
    run({ A{ k = "x" }, B{ k = "x" } }, { order = "fifo" })
    assert.are.same({ "Ax" }, ran)
    ran = {}
    local summary = run({ B{ k = "x" } })
    assert.are.same({ "Bx" }, ran)
    assert.are.equal(0, summary.duplicates)
  end)

  it("keeps the key of a failed item: enqueueing it again is a duplicate", function()
    local Job = aqueue.Item:extend("DedupFailed")
    function Job:key()
      return "the one"
    end
    local Root = aqueue.Item:extend("DedupFailedRoot")
    function Job:process()
      error("fails")
    end
    local second
    function Root:process(enqueue)
      local h = enqueue(Job{})
      h:result()
      second = { enqueue(Job{}) }
    end
    run({ Root{} })
    assert.are.same({ nil, "duplicate" }, { second[1], second[2] })
  end)

  it("does not record the key of an item the stopped queue refused", function()
    local Job = aqueue.Item:extend("DedupStopped")
    function Job:key() return "k" end
    function Job:process() end
    local Root = aqueue.Item:extend("DedupStoppedRoot")
    local outcome
    function Root:process(enqueue)
      aqueue.sleep(0.05) -- max_time stops the run meanwhile
      outcome = { enqueue(Job{}) }
    end
    local summary = run({ Root{} }, { max_time = 0.01 })
    assert.are.equal("max_time", summary.stopped)
    assert.are.same({ nil, "stopped" }, { outcome[1], outcome[2] })
    assert.are.equal(0, summary.duplicates)
  end)

  it("refuses a key field that is not a method, and a key() that returns another type", function()
    local NotMethod = aqueue.Item:extend("DedupNotMethod")
    function NotMethod:process() end
    local ok, err = pcall(run, { NotMethod{ key = "abc" } })
    assert.is_false(ok)
    assert.matches("DedupNotMethod.key must be a method %(function DedupNotMethod:key%(%) ... end%), got string", err)

    local BadKey = aqueue.Item:extend("DedupBadKey")
    function BadKey:process() end
    function BadKey:key() return self.k end
    for _, k in ipairs({ {}, true, 0 / 0 }) do
      ok, err = pcall(run, { BadKey{ k = k } })
      assert.is_false(ok)
      assert.matches("DedupBadKey:key%(%) must return a string, a number or nil", err)
    end

    local Raises = aqueue.Item:extend("DedupRaises")
    function Raises:process() end
    function Raises:key() error("no key for you") end
    ok, err = pcall(run, { Raises{} })
    assert.is_false(ok)
    assert.matches("no key for you", err)
  end)
end)
