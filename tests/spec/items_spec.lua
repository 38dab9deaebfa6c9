-- Item classes and instances (SPEC section 2: "Instances").
local aqueue = require("aqueue")

-- The error message raised by fn(...); fails the test when fn does not raise.
local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

describe("an item class", function()
  it("is made with Item:extend(name) and its instances are items of that class", function()
    local Page = aqueue.Item:extend("ItemsPage")
    local page = Page{ url = "http://example.invalid/" }
    assert.are.equal(Page, getmetatable(page))
    assert.are.equal("http://example.invalid/", page.url)
  end)

  it("requires a non-empty string name", function()
    assert.matches("name", error_of(function() aqueue.Item:extend() end))
    assert.matches("name", error_of(function() aqueue.Item:extend("") end))
    assert.matches("name", error_of(function() aqueue.Item:extend(42) end))
  end)

  it("rejects a name already used by another class, naming it", function()
    aqueue.Item:extend("ItemsTaken")
    local err = error_of(function() aqueue.Item:extend("ItemsTaken") end)
    assert.matches("ItemsTaken", err, 1, true)
    assert.matches("unique", err)
  end)

  it("rejects a name used by a class anywhere in the hierarchy", function()
    local Base = aqueue.Item:extend("ItemsHierBase")
    Base:extend("ItemsHierSub")
    assert.matches("ItemsHierSub", error_of(function() aqueue.Item:extend("ItemsHierSub") end), 1, true)
    assert.matches("ItemsHierBase", error_of(function() Base:extend("ItemsHierBase") end), 1, true)
  end)

  it("must be extended with a colon", function()
    local err = error_of(function() aqueue.Item.extend("ItemsDotCall") end)
    assert.matches("colon", err)
  end)

  it("has the default class fields track_overall = false and priority = 0", function()
    local Plain = aqueue.Item:extend("ItemsDefaults")
    assert.is_false(Plain.track_overall)
    assert.are.equal(0, Plain.priority)
    local item = Plain{}
    assert.is_false(item.track_overall)
    assert.are.equal(0, item.priority)
  end)

  it("lets instance fields override class fields", function()
    local Tracked = aqueue.Item:extend("ItemsOverride")
    Tracked.track_overall = true
    Tracked.priority = 3
    local default = Tracked{}
    local special = Tracked{ priority = -1, track_overall = false }
    assert.is_true(default.track_overall)
    assert.are.equal(3, default.priority)
    assert.is_false(special.track_overall)
    assert.are.equal(-1, special.priority)
  end)
end)

describe("the base class aqueue.Item", function()
  it("cannot be instantiated", function()
    assert.matches("base class", error_of(function() return aqueue.Item{} end))
    assert.matches("base class", error_of(function() return aqueue.Item() end))
  end)
end)

describe("Class{ fields }", function()
  it("adopts a plain table as the instance itself", function()
    local Row = aqueue.Item:extend("ItemsAdopt")
    local fields = { n = 1, name = "one" }
    local row = Row(fields)
    assert.are.equal(fields, row)
    assert.are.equal(Row, getmetatable(row))
    assert.are.equal(1, row.n)
    assert.are.equal("one", row.name)
  end)

  it("with no argument makes an empty instance", function()
    local Empty = aqueue.Item:extend("ItemsEmpty")
    local a, b = Empty(), Empty()
    assert.are.equal(Empty, getmetatable(a))
    assert.are_not.equal(a, b)
    assert.is_nil(next(a))
  end)

  it("copies an existing item into a new, independent instance", function()
    local Row = aqueue.Item:extend("ItemsCopy")
    local original = Row{ n = 1, tags = "a" }
    local copy = Row(original)
    assert.are_not.equal(original, copy)
    assert.are.equal(Row, getmetatable(copy))
    assert.are.equal(1, copy.n)
    assert.are.equal("a", copy.tags)
    copy.n = 2
    assert.are.equal(1, original.n)
  end)

  it("copies the fields of an object that has a metatable", function()
    local Row = aqueue.Item:extend("ItemsCopyObject")
    local object = setmetatable({ x = 10 }, { __index = { y = 20 } })
    local row = Row(object)
    assert.are_not.equal(object, row)
    assert.are.equal(Row, getmetatable(row))
    assert.are.equal(10, row.x)
  end)

  it("makes a copy of a processed item that is a new item: enqueueable, with its own parent and results", function()
    local Job = aqueue.Item:extend("ItemsCopyRequeue")
    local Root = aqueue.Item:extend("ItemsCopyRequeueRoot")
    local runs = {}
    function Job:process()
      runs[#runs + 1] = self.n
      if not self.silent then return self.n end
    end
    local original
    function Root:process(enqueue)
      if self.copy_of then
        local copy = Job(self.copy_of)
        copy.n, copy.silent = 3, true
        local ok, h = pcall(enqueue, copy)
        assert.is_true(ok, tostring(h))
        assert.are.equal(0, select("#", h:result())) -- not the original's result
        assert.are.equal(self, copy.parent)
      else
        original = Job{ n = 1 }
        enqueue(original)
      end
    end
    aqueue.run_queue{ initial_items = { Root{} }, num_workers = 1 }

    local again = Job(original) -- as an initial item of a later run
    again.n = 2
    local ok, summary = pcall(aqueue.run_queue, { initial_items = { again }, num_workers = 1 })
    assert.is_true(ok, tostring(summary))
    assert.are.equal(1, summary.processed)
    assert.is_nil(again.parent)

    local root = Root{ copy_of = original } -- as a child in a later run
    local s3 = aqueue.run_queue{ initial_items = { root }, num_workers = 1 }
    assert.are.equal(0, s3.failed)
    assert.are.equal(2, s3.processed)
    assert.are.same({ 1, 2, 3 }, runs)
  end)

  it("rejects a value that is not a table when the class has no init", function()
    local Row = aqueue.Item:extend("ItemsBadFields")
    local err = error_of(function() return Row("text") end)
    assert.matches("ItemsBadFields", err, 1, true)
    assert.matches("table", err)
  end)
end)

describe("Class:init", function()
  it("receives the arguments of Class(...) and builds the instance", function()
    local Point = aqueue.Item:extend("ItemsPoint")
    local seen
    function Point:init(x, y, ...)
      seen = { self = self, n = select("#", ...) }
      self.x, self.y = x, y
    end
    local p = Point(3, 4, nil, "extra")
    assert.are.equal(Point, getmetatable(p))
    assert.are.equal(p, seen.self)
    assert.are.equal(2, seen.n)
    assert.are.equal(3, p.x)
    assert.are.equal(4, p.y)
  end)

  it("gives the instance, not what init returns", function()
    local Odd = aqueue.Item:extend("ItemsInitReturn")
    function Odd:init(v)
      self.v = v
      return "not the instance"
    end
    local o = Odd(7)
    assert.are.equal(Odd, getmetatable(o))
    assert.are.equal(7, o.v)
  end)

  it("receives a table argument as an argument, not as the instance", function()
    local Wrapper = aqueue.Item:extend("ItemsInitTable")
    function Wrapper:init(t)
      self.wrapped = t
    end
    local t = { 1, 2 }
    local w = Wrapper(t)
    assert.are_not.equal(t, w)
    assert.are.equal(t, w.wrapped)
  end)
end)

describe("a subclass made with Class:extend(name)", function()
  it("inherits methods and class fields", function()
    local Base = aqueue.Item:extend("ItemsInhBase")
    Base.priority = 7
    Base.kind = "base"
    function Base:describe()
      return self.kind .. ":" .. tostring(self.n)
    end
    local Sub = Base:extend("ItemsInhSub")
    local s = Sub{ n = 1 }
    assert.are.equal(Sub, getmetatable(s))
    assert.are.equal(7, s.priority)
    assert.are.equal("base:1", s:describe())
  end)

  it("overrides without changing the parent class", function()
    local Base = aqueue.Item:extend("ItemsOvrBase")
    function Base:name() return "base" end
    local Sub = Base:extend("ItemsOvrSub")
    function Sub:name() return "sub" end
    Sub.priority = 2
    assert.are.equal("sub", Sub{}:name())
    assert.are.equal("base", Base{}:name())
    assert.are.equal(0, Base{}.priority)
    assert.are.equal(2, Sub{}.priority)
  end)

  it("inherits init", function()
    local Base = aqueue.Item:extend("ItemsInitBase")
    function Base:init(a) self.a = a end
    local Sub = Base:extend("ItemsInitSub")
    local s = Sub("hello")
    assert.are.equal(Sub, getmetatable(s))
    assert.are.equal("hello", s.a)
  end)

  it("sees fields added to the parent class later", function()
    local Base = aqueue.Item:extend("ItemsLateBase")
    local Sub = Base:extend("ItemsLateSub")
    function Base:late() return "late" end
    assert.are.equal("late", Sub{}:late())
  end)

  it("inherits through several levels and processes under its own class name", function()
    local A = aqueue.Item:extend("ItemsDeepA")
    local got = {}
    function A:process()
      got[#got + 1] = self.tag
    end
    local B = A:extend("ItemsDeepB")
    local C = B:extend("ItemsDeepC")
    local summary = aqueue.run_queue{ initial_items = { C{ tag = "c" }, B{ tag = "b" } }, num_workers = 1 }
    table.sort(got)
    assert.are.same({ "b", "c" }, got)
    assert.are.equal(1, summary.classes.ItemsDeepC.done)
    assert.are.equal(1, summary.classes.ItemsDeepB.done)
    assert.is_nil(summary.classes.ItemsDeepA)
  end)
end)
