-- aqueue.item: the Item class system.
--
--   local Page = aqueue.Item:extend("Page")   -- name required and unique
--   Page{ url = u }     -- an instance with those fields: a table without a
--                       -- metatable becomes the instance itself (no copy, so
--                       -- creating items costs one setmetatable); any other
--                       -- table (an existing item, an object) is copied
--   Page(a, b)          -- with Page:init(a, b) defined, init builds the instance
--
-- A class is a table used as the metatable of its instances (`__index` is the
-- class itself); classes inherit through the metatable of the class.
local sched = require("aqueue.sched")
local field_names = require("aqueue.field_names")
local C, E = sched.C, sched.E

local Item = {}
Item.__index = Item
Item.__name = "Item"
Item.track_overall = false
Item.priority = 0
-- scheduling (SPEC section 4); an instance's own field overrides its class's
Item.retries = 0            -- re-run a failed process up to this many times
Item.retry_backoff = 1      -- seconds: the first retry waits up to this long
Item.retry_backoff_max = 60 -- seconds: no retry waits longer
Item.timeout = nil          -- seconds for one process call
Item.delay = nil            -- seconds before the item may start
Item.attempt = 1            -- inside process: this attempt's number (set on retries)

local classes = {} -- name -> class: the display and the state file use names

-- Whether field name `k` is the engine's (parent, attempt, _aq_*), not the
-- user's.
local function engine_field(k)
  return k == "parent" or k == "attempt" or (type(k) == "string" and k:sub(1, 4) == "_aq_")
end

-- The user's own fields of `t` (an item, or a table of fields): a new table
-- without the engine's fields. The loop calls next() itself, not pairs():
-- Debian's LuaJIT (2.1.0-beta3, 2022 snapshot) specialises a pairs() loop
-- (ITERN), and once a hot trace undoes that specialisation the loop can end
-- early or be handed a key that is not in the table (LuaJIT issues 827 and
-- 1510): a shared run's processes sent items whose fields were {} (the
-- redis_kill test, under load), the state file saw `Leaf.[6.9e-310]`
-- (aqueue.state's check). Explicit next() calls are compiled by another path.
local function own_fields(t)
  local fields = {}
  local k, v = next(t)
  while k ~= nil do
    if not engine_field(k) then
      fields[k] = v
    end
    k, v = next(t, k)
  end
  return fields
end

local function instance_tostring(item)
  return item.__name .. " item"
end

local function new_instance(cls, ...)
  if rawget(cls, "__aq_class_id") == nil then
    error("aqueue.Item is the base class: make your own with aqueue.Item:extend(\"Name\")", 2)
  end
  local init = cls.init
  if init then
    local obj = setmetatable({}, cls)
    init(obj, ...)
    return obj
  end
  local fields = ...
  if fields ~= nil and type(fields) ~= "table" then
    error(("%s{...} takes a table of fields, got %s"):format(cls.__name, type(fields)), 2)
  end
  if fields ~= nil and getmetatable(fields) == nil then
    return setmetatable(fields, cls) -- adopt the fresh table: no copy (and no other table made)
  end
  local obj = setmetatable({}, cls)
  if fields ~= nil then
    local k, v = next(fields) -- an existing object: copy its own fields, not
    while k ~= nil do           -- what the engine set on it (id, parent, outcome)
      if k ~= "parent" and not (type(k) == "string" and k:sub(1, 4) == "_aq_") then
        obj[k] = v
      end
      k, v = next(fields, k)
    end
  end
  return obj
end

local function class_tostring(cls)
  return "item class " .. cls.__name
end

-- The name of a function's first parameter, or nil.
local function first_param(fn)
  local info = debug.getinfo(fn, "u")
  if info and info.nparams and info.nparams > 0 then
    return (debug.getlocal(fn, 1))
  end
  return nil
end

-- A new field on a class (Page.retries = 3, function Page:process() end):
-- a misspelt scheduling field, or process written with a dot, is an error
-- at the line that defines it.
local function class_newindex(cls, name, value)
  field_names.check_field(cls.__name, name, 2)
  if name == "process" and type(value) == "function" then
    local p = first_param(value)
    if p == "enqueue" or p == "set_desc" then
      error(("%s.process is defined with a dot: write function %s:process(enqueue, set_desc)")
        :format(cls.__name, cls.__name), 2)
    end
  end
  rawset(cls, name, value)
end

-- Item:extend(name) -> a new class inheriting from self.
function Item:extend(name)
  if type(self) ~= "table" or rawget(self, "__index") ~= self then
    error("use Class:extend(name), with a colon", 2)
  end
  if type(name) ~= "string" or name == "" then
    error("Item:extend(name): the class name is required (a non-empty string)", 2)
  end
  if classes[name] then
    error(("an item class named %q already exists: class names must be unique"):format(name), 2)
  end
  local id = C.aq__sched_class_add(E, name)
  if id < 0 then
    error(id == -1 and "out of memory" or "too many item classes", 2)
  end
  local cls = {
    __name = name,
    __aq_class_id = id,
    __tostring = instance_tostring,
    super = self,
  }
  cls.__index = cls
  setmetatable(cls, { __index = self, __call = new_instance, __tostring = class_tostring,
                      __newindex = class_newindex })
  classes[name] = cls
  return cls
end

setmetatable(Item, { __call = new_instance, __tostring = class_tostring })

-- The class table of an item instance, or nil when `value` is not one.
local function class_of(value)
  if type(value) ~= "table" then
    return nil
  end
  local cls = getmetatable(value)
  if type(cls) == "table" and rawget(cls, "__aq_class_id") then
    return cls
  end
  return nil
end

---------------------------------------------------------------------------
-- A short view of an item, for error lines: its class and key() when it has
-- one (Page "http://127.0.0.1/a"), else its class and fields
-- (Page{depth=2, url="http://127.0.0.1/a"}), at most about VIEW_MAX bytes.

local VIEW_MAX, STRING_MAX = 60, 24
local ESCAPES = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ['"'] = '\\"', ["\\"] = "\\\\" }

-- The first `n` bytes of `text`, not cutting a UTF-8 sequence in two.
local function cut(text, n)
  if #text <= n then return text end
  local b = text:byte(n + 1)
  while n > 0 and b and b >= 0x80 and b < 0xC0 do -- n + 1 continues a sequence
    n = n - 1
    b = text:byte(n + 1)
  end
  return text:sub(1, n) .. "…"
end

local function quote(text)
  return '"' .. cut(text, STRING_MAX):gsub('[%c"\\]', function(c)
    return ESCAPES[c] or ("\\%03d"):format(c:byte())
  end) .. '"'
end

local function value_view(v)
  local t = type(v)
  if t == "string" then return quote(v) end
  if t == "number" then return ("%.14g"):format(v) end
  if t == "boolean" or t == "nil" then return tostring(v) end
  if t == "table" then return "{…}" end
  return t
end

local function view(item)
  local cls = getmetatable(item)
  local name = type(cls) == "table" and rawget(cls, "__name") or "item"
  local key_fn = item.key
  if type(key_fn) == "function" then
    local ok, k = pcall(key_fn, item)
    if ok and (type(k) == "string" or type(k) == "number") then
      return name .. " " .. value_view(k)
    end
  end
  local names = {}
  local fields = own_fields(item)
  local k = next(fields)
  while k ~= nil do
    local tk = type(k)
    if tk == "number" or tk == "string" then
      names[#names + 1] = k
    end
    k = next(fields, k)
  end
  table.sort(names, function(a, b)
    if type(a) ~= type(b) then return type(a) == "number" end
    return a < b
  end)
  local parts, len = {}, #name
  for i = 1, #names do
    local k = names[i]
    local part = (type(k) == "number" and ("[%s]"):format(value_view(k)) or k) .. "=" .. value_view(item[k])
    if len + #part > VIEW_MAX then
      parts[#parts + 1] = "…"
      break
    end
    parts[#parts + 1] = part
    len = len + #part + 2
  end
  return name .. "{" .. table.concat(parts, ", ") .. "}"
end

return {
  Item = Item,
  class_of = class_of,
  classes = classes,
  own_fields = own_fields,
  view = view,
}
