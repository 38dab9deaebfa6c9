-- aqueue.store(name [, path]): a persistent key-value table (SPEC section 5).
-- A file stays locked while this process has it open, so what survives a
-- restart is checked across processes: a child aqueue-run writes (or reads)
-- the file, this spec opens it afterwards (tests/support/child.lua).
local store = require("aqueue.store")
local aqueue = require("aqueue")
local files = require("tests.support.files")
local child = require("tests.support.child")
local error_of = require("tests.support.runs").error_of

-- The child's side: `arg[1]` is the store file.
local HEADER = [[
local aqueue = require("aqueue")
local store = require("aqueue.store")
local path = arg[1]
]]

describe("aqueue.store", function()
  local dir

  before_each(function()
    dir = files.temp_dir()
  end)

  after_each(function()
    files.remove_tree(dir)
  end)

  describe("get, set, delete, keys", function()
    it("keeps values of every JSON kind, and nil deletes", function()
      local st = store("kinds", dir .. "/s.store")
      st:set("s", "text")
      st:set("n", 0.1)
      st:set("big", 2 ^ 53)
      st:set("t", true)
      st:set("f", false)
      st:set("list", { 1, "two", { 3 } })
      st:set("obj", { a = { b = "c" }, empty = {} })
      assert.are.equal("text", st:get("s"))
      assert.are.equal(0.1, st:get("n"))
      assert.are.equal(2 ^ 53, st:get("big"))
      assert.is_true(st:get("t"))
      assert.is_false(st:get("f"))
      assert.are.same({ 1, "two", { 3 } }, st:get("list"))
      assert.are.same({ a = { b = "c" }, empty = {} }, st:get("obj"))
      assert.is_nil(st:get("missing"))
      st:set("s", nil)
      assert.is_nil(st:get("s"))
      assert.is_true(st:delete("n"))
      assert.is_nil(st:get("n"))
      assert.is_true(st:delete("never there"))
      assert.are.same({ "big", "f", "list", "obj", "t" }, st:keys())
    end)

    it("st[k] and st[k] = v are get and set", function()
      local st = store("index", dir .. "/s.store")
      st.a = { 1, 2 }
      st[7] = "seven"
      assert.are.same({ 1, 2 }, st.a)
      assert.are.equal("seven", st:get(7))
      st:set("b", "bee")
      assert.are.equal("bee", st.b)
      st.a = nil
      assert.is_nil(st:get("a"))
      assert.are.same({ 7, "b" }, st:keys())
    end)

    it("keeps 1 and \"1\" apart, and 0 and -0 together; keys list numbers first", function()
      local st = store("keys", dir .. "/s.store")
      st[1] = "number one"
      st["1"] = "string one"
      st[1.5] = "one and a half"
      st[-0.0] = "zero"
      st[-3] = "minus three"
      st["a"] = "a"
      assert.are.equal("number one", st[1])
      assert.are.equal("string one", st["1"])
      assert.are.equal("zero", st[0])
      assert.are.same({ -3, 0, 1, 1.5, "1", "a" }, st:keys())
      local types = {}
      for _, k in ipairs(st:keys()) do types[#types + 1] = type(k) end
      assert.are.same({ "number", "number", "number", "number", "string", "string" }, types)
    end)

    it("get returns a copy: changing it changes nothing until set again", function()
      local st = store("copies", dir .. "/s.store")
      local t = { n = 1 }
      st.t = t
      t.n = 2
      assert.are.equal(1, st.t.n)
      local got = st.t
      got.n = 3
      assert.are.equal(1, st.t.n)
      st.t = got
      assert.are.equal(3, st.t.n)
    end)

    it("method names are methods under st.name; st:get reads such keys, st.name = v stores them", function()
      local st = store("methods", dir .. "/s.store")
      st:set("get", "a value")
      st.keys = "another"
      assert.are.equal("function", type(st.get))
      assert.are.equal("function", type(st.keys))
      assert.are.equal("a value", st:get("get"))
      assert.are.equal("another", st:get("keys"))
      assert.are.same({ "get", "keys" }, st:keys())
    end)

    it("prints its name, file and size", function()
      local st = store("printed", dir .. "/s.store")
      st.x = 1
      assert.are.equal(('Store("printed" in %s/s.store, 1 keys)'):format(dir), tostring(st))
    end)

    it("flush yields until the writes are committed", function()
      local st = store("flushed", dir .. "/s.store")
      st.x = 1
      assert.is_true(st:flush())
      assert.is_true(st:flush()) -- nothing left to commit
    end)
  end)

  describe("refuses", function()
    it("values JSON cannot hold, naming the store, the key and the field, and keeps the old value", function()
      local st = store("bad", dir .. "/s.store")
      st.k = "old"
      local cases = {
        { function() end, "the value is a function" },
        { { a = { b = print } }, "field a.b is a function" },
        { { 1, 2, { 3, coroutine.create(print) } }, "field [3][2] is a thread" },
        { setmetatable({}, {}), "the value is an object with a metatable" },
        { 0 / 0, "the value is not a finite number" },
        { { 1, nil, 3 }, "the value mixes list entries with other keys, or is a list with holes" },
        { { 1, x = 2 }, "the value mixes list entries with other keys" },
      }
      local cycle = {}
      cycle.self = cycle
      cases[#cases + 1] = { cycle, "nests too deeply" }
      for _, case in ipairs(cases) do
        local err = error_of(function() st.k = case[1] end)
        assert.matches(("store \"bad\" (%s/s.store): key \"k\" cannot be saved: "):format(dir), err, 1, true)
        assert.matches(case[2], err, 1, true)
        assert.matches("store_spec.lua:%d+:", err) -- blames the line that set it
      end
      local err = error_of(st.set, st, 42, print)
      assert.matches('key 42 cannot be saved: the value is a function', err, 1, true)
      assert.are.equal("old", st.k)
    end)

    it("keys that are neither strings nor numbers", function()
      local st = store("badkeys", dir .. "/s.store")
      for _, k in ipairs({ true, {}, 0 / 0 }) do
        local err = error_of(function() return st[k] end)
        assert.matches("store_spec.lua:%d+: a store key must be a string or a number, got", err)
        err = error_of(function() st[k] = 1 end)
        assert.matches("a store key must be a string or a number", err, 1, true)
      end
      assert.matches("got nil", error_of(st.get, st, nil), 1, true)
    end)

    it("a name or path that is not a non-empty string, blaming the caller", function()
      assert.matches("store_spec.lua:%d+: aqueue.store%(name %[, path%]%): name must be a non%-empty string",
        error_of(function() store("") end))
      assert.matches("name must be a non-empty string, got 5", error_of(store, 5), 1, true)
      assert.matches("path must be a non-empty string, got 5", error_of(store, "x", 5), 1, true)
      assert.matches("too many arguments", error_of(store, "x", dir .. "/s.store", 1), 1, true)
    end)

    it("a method called with a dot", function()
      local st = store("dots", dir .. "/s.store")
      assert.matches("call it with a colon", error_of(st.get, "k"), 1, true)
    end)

    it("a foreign file, naming it and leaving it as it was", function()
      local path = dir .. "/notes.txt"
      local text = ("a text file, not a database\n"):rep(200)
      files.write(path, text)
      local err = error_of(store, "x", path)
      assert.matches(path, err, 1, true)
      assert.matches("left as it is", err, 1, true)
      assert.are.equal(text, files.read(path))
    end)

    it("a foreign file of one byte (SQLite alone would take it for an empty database)", function()
      local path = dir .. "/one.txt"
      files.write(path, "x")
      local err = error_of(store, "x", path)
      assert.matches(path .. " is not an aqueue store file", err, 1, true)
      assert.are.equal("x", files.read(path))
    end)

    it("an empty file: adopted (as made by mktemp)", function()
      local path = dir .. "/empty.store"
      files.write(path, "")
      local st = store("e", path)
      st.k = 1
      assert.are.equal(1, st.k)
    end)

    it("a disk queue's file, naming it and leaving it as it was", function()
      local path = dir .. "/jobs.db"
      child.ok(dir, [[
        local dq = require("aqueue.diskqueue").open(arg[1])
        dq:put("job")
      ]], path)
      local before = files.read(path)
      local err = error_of(store, "x", path)
      assert.matches(path .. " is an aqueue diskqueue file, not a store file; it was left as it is", err, 1, true)
      assert.are.equal(before, files.read(path))
    end)
  end)

  describe("opening", function()
    it("the same name twice gives the same store; other names and files are other stores", function()
      local a = store("same", dir .. "/s.store")
      assert.are.equal(a, store("same", dir .. "/s.store"))
      local b = store("other", dir .. "/s.store")
      local c = store("same", dir .. "/t.store")
      assert.are_not.equal(a, b)
      assert.are_not.equal(a, c)
      a.k, b.k, c.k = "a", "b", "c"
      assert.are.same({ "a", "b", "c" }, { a.k, b.k, c.k })
    end)

    it("without a path: <name>.store in the current directory, the same store on every call", function()
      local out = child.ok(dir, HEADER .. [[
        local st = store("cache")
        st.x = 1
        print(rawequal(st, store("cache")), tostring(st))
      ]])
      assert.are.equal('true\tStore("cache" in cache.store, 1 keys)\n', out)
      assert.is_true(files.exists(dir .. "/cache.store"))
    end)

    it("without a path under --state: in the state file, with the run's other stores", function()
      local code = HEADER .. [[
        local a, b = store("a"), store("b")
        a.n = (a.n or 0) + 1
        b.n = (b.n or 0) + 10
        print(tostring(a), a.n, b.n)
      ]]
      assert.are.equal('Store("a" in run.db, 1 keys)\t1\t10\n', child.run_with({ "--state", "run.db" }, dir, code).stdout)
      assert.are.equal('Store("a" in run.db, 1 keys)\t2\t20\n', child.run_with({ "--state", "run.db" }, dir, code).stdout)
      assert.is_false(files.exists(dir .. "/a.store"))
    end)
  end)

  describe("across a restart", function()
    it("has what another process saved: keys with their types, values exactly", function()
      local path = dir .. "/s.store"
      child.ok(dir, HEADER .. [[
        local st = store("saved", path)
        st[1] = "number one"
        st["1"] = "string one"
        st[0.1] = { x = 0.1, big = 2^60, neg = -1e-300, s = "q\"uote\n\0bin\255" }
        st.list = { "a", { "b", { "c" } } }
        st.gone = "soon deleted"
        st.changed = "before"
        st.gone = nil
        st.changed = "after"
        store("elsewhere", path).k = "another store of the file"
      ]], path)
      local st = store("saved", path)
      assert.are.same({ 0.1, 1, "1", "changed", "list" }, st:keys())
      assert.are.equal("number one", st[1])
      assert.are.equal("string one", st["1"])
      assert.are.same({ x = 0.1, big = 2 ^ 60, neg = -1e-300, s = "q\"uote\n\0bin\255" }, st[0.1])
      assert.are.same({ "a", { "b", { "c" } } }, st.list)
      assert.are.equal("after", st.changed)
      assert.is_nil(st.gone)
      assert.are.equal("another store of the file", store("elsewhere", path).k)
    end)

    it("a second process changes what the first saved", function()
      local path = dir .. "/s.store"
      child.ok(dir, HEADER .. [[
        local st = store("s", path)
        for i = 1, 100 do st[i] = i * i end
      ]], path)
      local out = child.ok(dir, HEADER .. [[
        local st = store("s", path)
        local sum, n = 0, #st:keys()
        for _, k in ipairs(st:keys()) do sum = sum + st[k] end
        for i = 1, 100, 2 do st[i] = nil end
        st[2] = "two"
        print(n, sum)
      ]], path)
      assert.are.equal("100\t338350\n", out)
      local st = store("s", path)
      assert.are.equal(50, #st:keys())
      assert.are.equal("two", st[2])
      assert.are.equal(16, st[4])
      assert.is_nil(st[3])
    end)

    it("keeps what was flushed before a kill -9", function()
      local path = dir .. "/s.store"
      local res = child.run(dir, HEADER .. [[
        local st = store("k", path)
        st.flushed = "yes"
        assert(st:flush())
      ]] .. child.KILL_SELF, path)
      assert.are.equal(9, res.signal)
      assert.are.equal("yes", store("k", path).flushed)
    end)
  end)
end)
