-- What a failure says and how the summary counts it: the failure line names
-- the item (key() or a short view of its fields), error values that are not
-- strings are shown readably, a failing after_children_processed hook leaves
-- its item processed and is counted in hooks_failed, and errors past the
-- kept ones are counted in errors_not_kept.
local aqueue = require("aqueue")
local capture_stderr = require("tests.support.capture").stderr

local function quiet(items, opts)
  opts = opts or {}
  opts.initial_items = items
  opts.progress = opts.progress or "none"
  opts.num_workers = opts.num_workers or 1
  opts.order = opts.order or "fifo"
  return capture_stderr(function() return aqueue.run_queue(opts) end)
end

-- The failure lines ("aqueue: ...failed...") of `text`.
local function failure_lines(text)
  local lines = {}
  for line in text:gmatch("[^\n]+") do
    if line:find("^aqueue: .* failed") then lines[#lines + 1] = line end
  end
  return lines
end

describe("a failure line", function()
  it("names the item by its key() when it has one", function()
    local Page = aqueue.Item:extend("RepKeyed")
    function Page:key() return self.url end
    function Page:process() error("broken page", 0) end
    local text = quiet({ Page{ url = "http://127.0.0.1:1/a", depth = 2 } })
    assert.are.same({ 'aqueue: RepKeyed:process failed: RepKeyed "http://127.0.0.1:1/a": broken page' },
      failure_lines(text))
  end)

  it("names the item by a short view of its fields, sorted, values cut, about 60 characters", function()
    local Page = aqueue.Item:extend("RepFields")
    function Page:process() error("broken", 0) end
    local long = "http://127.0.0.1:8080/" .. ("x"):rep(100)
    local text = quiet({
      Page{ url = long, depth = 2 },
      Page{ a = 1, b = true, c = { 1 }, d = "line\nbreak \"quoted\"" },
      Page{},
      Page{ s = ("é"):rep(30) },
      Page{ f1 = ("a"):rep(20), f2 = ("b"):rep(20), f3 = ("c"):rep(20), f4 = 4 },
    })
    local lines = failure_lines(text)
    assert.are.equal(5, #lines)
    assert.are.equal('aqueue: RepFields:process failed: RepFields{depth=2, url="http://127.0.0.1:8080/xx…"}: broken',
      lines[1])
    assert.are.equal('aqueue: RepFields:process failed: RepFields{a=1, b=true, c={…}, d="line\\nbreak \\"quoted\\""}: '
      .. "broken", lines[2])
    assert.are.equal("aqueue: RepFields:process failed: RepFields{}: broken", lines[3])
    -- cut at a character boundary: 12 two-byte characters are 24 bytes
    assert.are.equal('aqueue: RepFields:process failed: RepFields{s="' .. ("é"):rep(12) .. '…"}: broken', lines[4])
    assert.are.equal('aqueue: RepFields:process failed: RepFields{f1="' .. ("a"):rep(20) .. '", …}: broken', lines[5])
  end)

  it("names the item of a failed hook too", function()
    local Parent = aqueue.Item:extend("RepHook")
    function Parent:process() end
    function Parent:after_children_processed() error("hook broke", 0) end
    local text = quiet({ Parent{ n = 1 } })
    assert.are.same({ "aqueue: RepHook:after_children_processed failed: RepHook{n=1}: hook broke" },
      failure_lines(text))
  end)
end)

describe("an error value that is not a string", function()
  it("is shown through __tostring, else encoded, in the failure line and the summary", function()
    local Plain = aqueue.Item:extend("RepTableError")
    function Plain:process() error({ code = 404 }) end
    local Object = aqueue.Item:extend("RepObjectError")
    function Object:process()
      error(setmetatable({}, { __tostring = function() return "an object says so" end }))
    end
    local Unsavable = aqueue.Item:extend("RepUnsavableError")
    function Unsavable:process() error({ fn = print }) end
    local text, s = quiet({ Plain{}, Object{}, Unsavable{} })
    assert.are.same({ '{"code":404}', "an object says so", "(error object is a table that cannot be shown)" },
      { s.errors[1].error, s.errors[2].error, s.errors[3].error })
    assert.matches('aqueue: RepTableError:process failed: RepTableError{}: {"code":404}', text, 1, true)
    assert.matches("aqueue: RepObjectError:process failed: RepObjectError{}: an object says so", text, 1, true)
    assert.is_nil(text:find("table: 0x", 1, true))
  end)

  it("is shown the same way by a handle and a spawned task", function()
    local h = aqueue.spawn(function() error({ code = 1 }) end)
    local ok, err = h:result()
    assert.is_nil(ok)
    assert.are.equal('{"code":1}', err)
    local Child = aqueue.Item:extend("RepHandleError")
    function Child:process() error({ code = 2 }) end
    local Parent = aqueue.Item:extend("RepHandleParent")
    local got
    function Parent:process(enqueue)
      got = select(2, enqueue(Child{}):result())
    end
    quiet({ Parent{} })
    assert.are.equal('{"code":2}', got)
  end)
end)

describe("a failing after_children_processed hook", function()
  it("leaves its item processed and is counted in hooks_failed, not in failed", function()
    local Child = aqueue.Item:extend("RepHookChild")
    function Child:process() end
    local Parent = aqueue.Item:extend("RepHookParent")
    function Parent:process(enqueue)
      enqueue(Child{})
      enqueue(Child{})
    end
    function Parent:after_children_processed() error("hook gave up", 0) end
    local text, s = quiet({ Parent{}, Parent{} }, { progress = "plain" })
    assert.are.equal(6, s.processed)
    assert.are.equal(0, s.failed)
    assert.are.equal(2, s.hooks_failed)
    assert.are.equal(2, #s.errors)
    assert.are.equal("after_children_processed", s.errors[1].phase)
    assert.are.same({ done = 2, failed = 0, retried = 0, max_queued = 2 }, s.classes.RepHookParent)
    assert.matches("aqueue: 6 processed, 0 failed, 0 retried, 2 hooks failed in ", text, 1, true)
  end)

  it("is 0 when no hook failed", function()
    local Ok = aqueue.Item:extend("RepHookFine")
    function Ok:process() end
    function Ok:after_children_processed() end
    local _, s = quiet({ Ok{} })
    assert.are.equal(0, s.hooks_failed)
  end)
end)

describe("summary.errors_not_kept", function()
  it("counts the failures past the 1000 kept in summary.errors", function()
    local Bad = aqueue.Item:extend("RepManyErrors")
    function Bad:process() error("bad", 0) end
    local items = {}
    for i = 1, 1003 do items[i] = Bad{} end
    local _, s = quiet(items)
    assert.are.equal(1003, s.failed)
    assert.are.equal(1000, #s.errors)
    assert.are.equal(3, s.errors_not_kept)
  end)

  it("is 0 when every failure was kept", function()
    local Bad = aqueue.Item:extend("RepFewErrors")
    function Bad:process() error("bad", 0) end
    local _, s = quiet({ Bad{}, Bad{} })
    assert.are.equal(2, #s.errors)
    assert.are.equal(0, s.errors_not_kept)
  end)
end)
