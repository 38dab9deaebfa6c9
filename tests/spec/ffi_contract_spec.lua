-- What C and Lua must agree on is defined once, in C: the FFI declarations
-- are headers the engine is compiled against (engine/core/core_ffi.h,
-- engine/modules/statedb/statedb_ffi.h), whose text aqueue.core and
-- aqueue.statedb hand to ffi.cdef; the item flags, the job encoding and the
-- state file's values are constants those modules export. The compiler checks
-- each definition against its header; these specs fail when the Lua side
-- drifts from it: a declared function the engine does not export, a Lua file
-- that declares or calls what the headers do not, a constant Lua decodes
-- differently from C, SQL whose values are not the engine's, an error code
-- Lua names that aqueue.errors does not have.
local ffi = require("ffi")
local bit = require("bit")
local aqueue = require("aqueue")
local core = require("aqueue.core")
local statedb = require("aqueue.statedb")
local sched = require("aqueue.sched")
local state = require("aqueue.state")
local statefile = require("aqueue.statefile")
local files = require("tests.support.files")
local runs = require("tests.support.runs")

-- The source tree: lua/aqueue/sched.lua is found under <root>/lua/aqueue.
local LUA_DIR = package.searchpath("aqueue.sched", package.path):match("^(.*)/aqueue/sched%.lua$")
local ROOT = LUA_DIR:match("^(.*)/lua$")

-- The functions a cdef text declares: name -> its declaration.
local function declared(text)
  local names = {}
  for decl in text:gsub("/%*.-%*/", ""):gmatch("[^;]+;") do
    local name = decl:match("(aq__[%w_]+)%s*%(")
    if name then
      names[name] = decl:gsub("^%s+", "")
    end
  end
  return names
end

local function lua_files()
  local list = {}
  local p = assert(io.popen("ls '" .. LUA_DIR .. "/aqueue'"))
  for name in p:lines() do
    if name:match("%.lua$") then
      list[#list + 1] = LUA_DIR .. "/aqueue/" .. name
    end
  end
  p:close()
  assert.is_true(#list > 10, "the Lua library's files are found")
  return list
end

local CDEFS = { core = core.ffi_cdef, statedb = statedb.ffi_cdef }

describe("the FFI declarations", function()
  it("are the engine's headers, as the build embedded them", function()
    assert.are.equal(files.read(ROOT .. "/engine/core/core_ffi.h"), core.ffi_cdef)
    assert.are.equal(files.read(ROOT .. "/engine/modules/statedb/statedb_ffi.h"), statedb.ffi_cdef)
  end)

  it("declare only functions the engine exports, with the declared return type", function()
    local count = 0
    for module, text in pairs(CDEFS) do
      for name, decl in pairs(declared(text)) do
        count = count + 1
        local ok, fn = pcall(function() return ffi.C[name] end)
        assert.is_true(ok, module .. ": " .. name .. " is not exported by aqueue-run: " .. tostring(fn))
        -- a function, returning the declared type (the parameters are the compiler's to check)
        local returns = decl:match("^(.-)%s*aq__")
        local shown = returns == "void" and "void" or tostring(ffi.typeof(returns)):match("^ctype<(.*)>$")
        assert.are.equal("ctype<" .. shown .. " ()>", tostring(ffi.typeof(fn)), name .. "'s type")
      end
    end
    assert.is_true(count >= 25, "the declarations are found (" .. count .. ")")
  end)

  it("are the only ones: no Lua file declares its own or calls one not declared", function()
    local all = {}
    for _, text in pairs(CDEFS) do
      for name in pairs(declared(text)) do
        all[name] = true
      end
    end
    for _, path in ipairs(lua_files()) do
      local source = files.read(path)
      for arg in source:gmatch("ffi%.cdef%s*(%b())") do
        assert.is_truthy(arg == "(core.ffi_cdef)" or arg == "(statedb.ffi_cdef)",
          path .. " declares its own FFI functions: ffi.cdef" .. arg:sub(1, 80))
      end
      for name in source:gmatch("[%.:](aq__[%w_]+)") do
        assert.is_true(all[name], path .. " calls " .. name .. ", which no FFI header declares")
      end
    end
  end)
end)

describe("the constants of the scheduler's hot path", function()
  it("are the engine's, read by aqueue.sched", function()
    assert.are.same(
      { core.ITEM_TRACK_OVERALL, core.ITEM_HAS_HOOK, core.JOB_ID_SHIFT, core.JOB_KIND_MASK, core.JOB_PROCESS,
        core.JOB_HOOK },
      { sched.TRACK_OVERALL, sched.HAS_HOOK, sched.JOB_ID_SHIFT, sched.JOB_KIND_MASK, sched.JOB_PROCESS,
        sched.JOB_HOOK })
    assert.are.equal(0, bit.band(sched.TRACK_OVERALL, sched.HAS_HOOK), "flags are distinct bits")
    assert.are_not.equal(sched.JOB_PROCESS, sched.JOB_HOOK)
    assert.are.equal(sched.JOB_HOOK, bit.band(sched.JOB_HOOK, sched.JOB_KIND_MASK))
  end)

  it("decode the jobs C hands out: the same item's process, then its hook", function()
    local C, E = sched.C, sched.E
    local jobs = {}
    local Parent = aqueue.Item:extend("ContractParent")
    function Parent:process(enqueue)
      jobs[#jobs + 1] = { "process", self.n, C.aq__sched_current_job(E) }
      if self.n < 3 then
        enqueue(Parent{ n = self.n + 1 })
      end
    end
    function Parent:after_children_processed()
      jobs[#jobs + 1] = { "hook", self.n, C.aq__sched_current_job(E) }
    end
    local summary = runs.quiet({ Parent{ n = 1 } }, { num_workers = 1 })
    assert.are.equal(3, summary.processed)
    local order, ids = {}, {}
    for _, j in ipairs(jobs) do
      local what, n, job = j[1], j[2], j[3]
      local kind = bit.band(job, sched.JOB_KIND_MASK)
      order[#order + 1] = what .. n
      assert.are.equal(what == "process" and sched.JOB_PROCESS or sched.JOB_HOOK, kind, what .. n .. "'s kind")
      local id = bit.rshift(job, sched.JOB_ID_SHIFT)
      assert.is_true(id >= 1, what .. n .. "'s item id")
      if ids[n] then
        assert.are.equal(ids[n], id, "the hook of item " .. n .. " names its item")
      end
      ids[n] = id
    end
    assert.are.same({ "process1", "process2", "process3", "hook3", "hook2", "hook1" }, order)
  end)
end)

describe("the state file's values", function()
  local dir = files.temp_dir()
  teardown(function() files.remove_tree(dir) end)

  it("are written by C and read by Lua's SQL as the same states and outcomes", function()
    local db = statefile.open(dir .. "/contract.state", "state", 1)
    local ptr = ffi.cast("struct aq_statedb *", db:pointer())
    local C = ffi.C
    local Leaf = aqueue.Item:extend("ContractLeaf")
    local function add(pid)
      statedb.add_item(db, Leaf{ n = pid }, pid, 0, pid, "ContractLeaf", nil)
    end
    -- rows 1-4 committed first: their steps are SQL updates (the writer thread's statements)
    for pid = 1, 4 do add(pid) end
    assert.are.equal(4, db:rows("SELECT count(*) FROM items")())
    assert.are.equal(0, C.aq__statedb_item_processed(ptr, 1, 1, 1, nil, 0))
    assert.are.equal(0, C.aq__statedb_item_processed(ptr, 2, 0, 2, "boom", 4))
    assert.are.equal(0, C.aq__statedb_item_finished(ptr, 2))
    assert.are.equal(0, C.aq__statedb_item_attempts(ptr, 3, 1))
    assert.are.equal(0, db:rows("SELECT count(*) FROM items WHERE pid = 0")()) -- commits the updates
    assert.are.equal(0, C.aq__statedb_item_finished(ptr, 1))
    -- rows 5-6 change before their insert is committed: the insert carries their step
    add(5)
    add(6)
    assert.are.equal(0, C.aq__statedb_item_processed(ptr, 5, 1, 1, nil, 0))
    assert.are.equal(0, C.aq__statedb_item_finished(ptr, 5))
    assert.are.equal(0, C.aq__statedb_item_processed(ptr, 6, 0, 1, "bad", 3))
    local rows = {}
    for pid, st, outcome, attempts, err, has_fields in db:rows(
      "SELECT pid, state, outcome, attempts, error, fields IS NOT NULL FROM items ORDER BY pid") do
      rows[pid] = { st, outcome, attempts, err or false, has_fields }
    end
    assert.are.same({
      { statedb.STATE_FINISHED, statedb.OUTCOME_DONE, 1, false, 0 },   -- done: its fields are dropped
      { statedb.STATE_FINISHED, statedb.OUTCOME_FAILED, 2, "boom", 1 },
      { statedb.STATE_PENDING, statedb.OUTCOME_NONE, 1, false, 1 },
      { statedb.STATE_PENDING, statedb.OUTCOME_NONE, 0, false, 1 },
      { statedb.STATE_FINISHED, statedb.OUTCOME_DONE, 1, false, 0 },
      { statedb.STATE_OPEN, statedb.OUTCOME_FAILED, 1, "bad", 1 },
    }, rows)
    -- state.lua's SQL: the file is loadable, and the failed items are put back
    assert.is_nil(state.check_rows(db))
    assert.are.equal(state.sql("$PENDING $OPEN $FINISHED $NO_OUTCOME $DONE $FAILED"),
      table.concat({ statedb.STATE_PENDING, statedb.STATE_OPEN, statedb.STATE_FINISHED, statedb.OUTCOME_NONE, statedb.OUTCOME_DONE,
        statedb.OUTCOME_FAILED }, " "))
    assert.are.equal(2, state.put_back_failed(db))
    local back = {}
    for pid, st, outcome in db:rows("SELECT pid, state, outcome FROM items WHERE pid IN (2, 6) ORDER BY pid") do
      back[#back + 1] = { pid, st, outcome }
    end
    assert.are.same({ { 2, statedb.STATE_PENDING, statedb.OUTCOME_NONE }, { 6, statedb.STATE_PENDING, statedb.OUTCOME_NONE } }, back)
  end)
end)

describe("the error codes", function()
  it("named in the Lua library's code are codes of aqueue.errors (engine/core/errors.c)", function()
    local named = 0
    for _, path in ipairs(lua_files()) do
      local code_only = files.read(path):gsub("%-%-[^\n]*", "") -- comments may show placeholders
      for code in code_only:gmatch("[\"'](E[%u%d_]+)[\"']") do
        named = named + 1
        assert.is_string(aqueue.errors[code], path .. " names " .. code .. ", which aqueue.errors does not have")
      end
    end
    assert.is_true(named > 0, "the codes Lua returns itself (ETIMEDOUT...) are found")
  end)
end)
