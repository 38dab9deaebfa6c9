-- aqueue.feed.open(path [, { format =, fields = }]): output files of records
-- (SPEC section 11). Without a state file, records are appended at once; with
-- one, a record written by an item's process() reaches the file once the
-- item's completion is committed, exactly once across crashes and reruns
-- (lua/aqueue/feed_outbox.lua). A state file stays locked while a process has
-- it open, so those cases run in child processes (tests/support/child.lua).
local aqueue = require("aqueue")
local cjson = require("cjson")
local files = require("tests.support.files")
local child = require("tests.support.child")
local error_of = require("tests.support.runs").error_of

-- The lines of `text` ending with `eol`; fails when the last does not end so.
local function lines_of(text, eol)
  local lines = {}
  local at = 1
  while at <= #text do
    local e = text:find(eol, at, true)
    assert.is_truthy(e, "the file ends with a partial line: " .. text:sub(at))
    lines[#lines + 1] = text:sub(at, e - 1)
    at = e + #eol
  end
  return lines
end

local function records_of(path)
  local records = {}
  for i, line in ipairs(lines_of(files.read(path), "\n")) do
    records[i] = cjson.decode(line)
  end
  return records
end

-- The `n` of each record, in file order.
local function ns_of(path)
  local ns = {}
  for i, r in ipairs(records_of(path)) do
    ns[i] = r.n
  end
  return ns
end

describe("aqueue.feed", function()
  local dir

  before_each(function()
    dir = files.temp_dir()
  end)

  after_each(function()
    files.remove_tree(dir)
  end)

  describe("jsonl", function()
    it("writes one JSON object per line, after what the file already holds", function()
      local path = dir .. "/out.jsonl"
      files.write(path, '{"old":true}\n')
      local feed = assert(aqueue.feed.open(path)) -- jsonl is the default
      assert.is_true(feed:write({ n = 1, title = "a\nb", tags = { "x", "y" } }))
      assert.is_true(feed:write({ n = 2 }))
      feed:close()
      local records = records_of(path)
      assert.are.same({ { old = true }, { n = 1, title = "a\nb", tags = { "x", "y" } }, { n = 2 } }, records)
    end)

    it("is appended to by items as they write, one whole line each", function()
      local path = dir .. "/items.jsonl"
      local feed = assert(aqueue.feed.open(path, { format = "jsonl" }))
      local Rec = aqueue.Item:extend("FeedRecWrites")
      function Rec:process()
        for part = 1, 3 do
          feed:write({ n = self.n, part = part })
          aqueue.sleep(0)
        end
      end
      local items = {}
      for n = 1, 20 do
        items[n] = Rec{ n = n }
      end
      aqueue.run_queue{ initial_items = items, num_workers = 10, progress = "none" }
      feed:close()
      local count = {}
      for _, r in ipairs(records_of(path)) do
        count[r.n] = (count[r.n] or 0) + 1
      end
      for n = 1, 20 do
        assert.are.equal(3, count[n], "records of item " .. n)
      end
    end)
  end)

  describe("csv", function()
    it("quotes cells with a comma, a quote, CR or LF (quotes doubled), CRLF line ends, the first record's keys sorted",
      function()
        local path = dir .. "/out.csv"
        local feed = assert(aqueue.feed.open(path, { format = "csv" }))
        feed:write({ name = 'say "hi", then go', n = 1, ok = true })
        feed:write({ name = "two\nlines", n = 2.5, ok = false })
        feed:write({ name = "cr\rhere", n = -3 })
        feed:write({ n = 4, name = "plain" })
        feed:close()
        assert.are.equal('n,name,ok\r\n1,"say ""hi"", then go",true\r\n2.5,"two\nlines",false\r\n'
          .. '-3,"cr\rhere",\r\n4,plain,\r\n', files.read(path))
      end)

    it("takes the columns in the order of fields, and writes the header at open when the file is empty", function()
      local path = dir .. "/out.csv"
      local feed = assert(aqueue.feed.open(path, { format = "csv", fields = { "url", "status", "title" } }))
      assert.are.equal("url,status,title\r\n", files.read(path))
      feed:write({ title = "T", url = "http://127.0.0.1/a,b" })
      feed:close()
      assert.are.equal('url,status,title\r\n"http://127.0.0.1/a,b",,T\r\n', files.read(path))
    end)

    it("writes the header once: a file that holds lines gets none again", function()
      local path = dir .. "/out.csv"
      for n = 1, 3 do
        local feed = assert(aqueue.feed.open(path, { format = "csv", fields = { "n" } }))
        feed:write({ n = n })
        feed:close()
      end
      local feed = assert(aqueue.feed.open(path, { format = "csv" })) -- columns from its first record
      feed:write({ n = 4 })
      feed:close()
      assert.are.equal("n\r\n1\r\n2\r\n3\r\n4\r\n", files.read(path))
    end)
  end)

  describe("bad input", function()
    it("raises for an unknown format or option, naming it", function()
      local err = error_of(aqueue.feed.open, dir .. "/x", { format = "xml" })
      assert.matches('unknown format "xml" %(jsonl or csv%)', err)
      err = error_of(aqueue.feed.open, dir .. "/x", { formt = "csv" })
      assert.matches('unknown option "formt"', err)
      err = error_of(aqueue.feed.open, dir .. "/x", { fields = { "a" } })
      assert.matches("fields is an option of the csv format", err)
      err = error_of(aqueue.feed.open, dir .. "/x", { format = "csv", fields = { "a", 2 } })
      assert.matches("fields%[2%] is 2", err)
      err = error_of(aqueue.feed.open, 42)
      assert.is_truthy(err:find("path must be a non-empty string, got 42", 1, true), err)
      assert.is_false(files.exists(dir .. "/x"))
    end)

    it("raises for a record that is not a table, or that JSON cannot hold", function()
      local feed = assert(aqueue.feed.open(dir .. "/out.jsonl"))
      assert.matches("record must be one table, got string", error_of(feed.write, feed, "text"))
      assert.matches("record cannot be written as JSON: Cannot serialise function", error_of(feed.write, feed, { f = print }))
      assert.matches("call it with a colon", error_of(feed.write, { n = 1 }))
      feed:close()
      assert.are.equal("", files.read(dir .. "/out.jsonl"))
    end)

    it("raises for a CSV field that is not a column, or a cell that is a table, naming the field", function()
      local feed = assert(aqueue.feed.open(dir .. "/out.csv", { format = "csv", fields = { "a", "b" } }))
      assert.matches('record has a field "c" that is not a column %(columns: a, b%)',
        error_of(feed.write, feed, { a = 1, c = 2 }))
      assert.matches('field "b" is a table: a CSV cell holds a string, a number or a boolean',
        error_of(feed.write, feed, { a = 1, b = { 1 } }))
      feed:close()
      assert.are.equal("a,b\r\n", files.read(dir .. "/out.csv"))
      local list = assert(aqueue.feed.open(dir .. "/list.csv", { format = "csv" }))
      assert.matches("record has a key 1: a CSV record's keys are column names", error_of(list.write, list, { "x" }))
      list:close()
    end)

    it("gives nil, err, code for a path that cannot be opened", function()
      local feed, err, code = aqueue.feed.open(dir .. "/missing/out.jsonl")
      assert.is_nil(feed)
      assert.are.equal("ENOENT", code)
      assert.are.equal("ENOENT: no such file or directory: " .. dir .. "/missing/out.jsonl", err)
      feed, err, code = aqueue.feed.open(dir)
      assert.is_nil(feed)
      assert.are.equal("EISDIR", code)
      assert.matches("^EISDIR: .*: " .. dir:gsub("%p", "%%%0") .. "$", err)
    end)

    it("raises on a write after close, and on a second open of the same path", function()
      local path = dir .. "/out.jsonl"
      local feed = assert(aqueue.feed.open(path))
      assert.matches("already open as a feed", error_of(aqueue.feed.open, path))
      feed:close()
      feed:close() -- again: nothing
      assert.matches("feed .*out.jsonl is closed", error_of(feed.write, feed, { n = 1 }))
      assert(aqueue.feed.open(path)):close() -- free again
    end)
  end)

  describe("with a state file", function()
    -- A child run with --state s.db; arg[1] the feed's path.
    local function persisted(code, ...)
      return child.run_with({ "--state", dir .. "/s.db" }, dir, [[
local aqueue = require("aqueue")
local feed = assert(aqueue.feed.open(arg[1]))
]] .. code, ...)
    end
    local function persisted_ok(code, ...)
      local res = persisted(code, ...)
      assert.are.equal(0, res.code, res.stderr)
      return res
    end

    it("keeps the record of a retried item's successful attempt only", function()
      local path = dir .. "/out.jsonl"
      persisted([[
local Rec = aqueue.Item:extend("Rec")
Rec.retries, Rec.retry_backoff = 2, 0.01
function Rec:process()
  feed:write({ n = self.n, attempt = self.attempt })
  if self.attempt < self.n then error("not yet") end
end
aqueue.run_queue{ initial_items = { Rec{ n = 1 }, Rec{ n = 2 }, Rec{ n = 3 } } }
]], path)
      local records = records_of(path)
      table.sort(records, function(a, b) return a.n < b.n end)
      assert.are.same({ { n = 1, attempt = 1 }, { n = 2, attempt = 2 }, { n = 3, attempt = 3 } }, records)
    end)

    it("writes no record of an item that fails for good, nor of one whose timeout passed", function()
      local path = dir .. "/out.jsonl"
      local res = persisted([[
local Rec = aqueue.Item:extend("Rec")
function Rec:process()
  feed:write({ n = self.n })
  if self.n == 2 then error("fails for good") end
  if self.n == 3 then aqueue.sleep(5) end
end
aqueue.run_queue{ initial_items = { Rec{ n = 1 }, Rec{ n = 2 }, Rec{ n = 3, timeout = 0.05 }, Rec{ n = 4 } } }
]], path)
      assert.are.equal(1, res.code, "the run has failed items")
      local ns = ns_of(path)
      table.sort(ns)
      assert.are.same({ 1, 4 }, ns)
    end)

    it("writes the record of an item killed after writing once, when it runs again", function()
      local path = dir .. "/out.jsonl"
      local code = [[
local Rec = aqueue.Item:extend("Rec")
function Rec:process()
  if self.n == 3 then aqueue.sleep(0.3) end -- the others' completions commit meanwhile
  feed:write({ n = self.n })
  if self.n == 3 and not io.open(arg[2]) then
    io.open(arg[2], "w"):close()
]] .. child.KILL_SELF .. [[
  end
end
aqueue.run_queue{ initial_items = { Rec{ n = 1 }, Rec{ n = 2 }, Rec{ n = 3 } } }
]]
      local res = persisted(code, path, dir .. "/killed")
      assert.are.equal(137, res.code, res.stderr)
      local ns = ns_of(path)
      table.sort(ns)
      assert.are.same({ 1, 2 }, ns) -- item 3's completion never committed
      persisted_ok(code, path, dir .. "/killed")
      ns = ns_of(path)
      table.sort(ns)
      assert.are.same({ 1, 2, 3 }, ns)
      persisted_ok(code, path, dir .. "/killed") -- complete: nothing again
      assert.are.equal(3, #ns_of(path))
    end)

    it("on start, cuts the file back to its last mark (a partial line too) and appends the committed lines", function()
      local path = dir .. "/out.jsonl"
      persisted_ok([[
local Rec = aqueue.Item:extend("Rec")
function Rec:process() feed:write({ n = self.n }) end
aqueue.run_queue{ initial_items = { Rec{ n = 1 }, Rec{ n = 2 } } }
]], path)
      local before = files.read(path)
      -- As after a kill between an append and its mark: a line appended, a
      -- partial one after it, and a line committed to the outbox but not appended.
      files.write(path, before .. '{"n":2}\n{"n":')
      child.ok(dir, [[
local db = require("aqueue.statefile").open(arg[1], "state", 1)
local seq = db:rows("SELECT seq FROM feed_marks WHERE feed = ?", arg[2])()
assert(seq == 2, "the mark after two records: " .. tostring(seq))
db:exec("INSERT INTO feed_outbox(feed, seq, line) VALUES (?, 3, '{\"n\":3}\n')", arg[2])
]], dir .. "/s.db", path)
      persisted_ok("", path)
      assert.are.equal(before .. '{"n":3}\n', files.read(path))
    end)

    it("refuses a feed shorter than its mark, leaving both files as they were", function()
      local path = dir .. "/out.jsonl"
      persisted_ok([[
local Rec = aqueue.Item:extend("Rec")
function Rec:process() feed:write({ n = self.n }) end
aqueue.run_queue{ initial_items = { Rec{ n = 1 } } }
]], path)
      files.write(path, "")
      local res = persisted("", path)
      assert.are.equal(1, res.code)
      assert.matches("out.jsonl is 0 bytes, shorter than the 8 bytes the state file .*s.db recorded", res.stderr)
      assert.are.equal("", files.read(path))
    end)

    it("appends a line written outside an item at once, and keeps it across a kill", function()
      local path = dir .. "/out.jsonl"
      local res = persisted([[
feed:write({ n = "main" })
]] .. child.KILL_SELF, path)
      assert.are.equal(137, res.code)
      assert.are.same({ "main" }, ns_of(path))
      persisted_ok("", path)
      assert.are.same({ "main" }, ns_of(path))
    end)
  end)
end)
