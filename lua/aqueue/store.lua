-- aqueue.store: a persistent key-value table (SPEC section 5; the `shelve` of
-- the Python seed), kept in the `store` table of an aqueue SQLite file
-- (engine/modules/statedb/statements.c).
--
--   local seen = aqueue.store("seen")          -- or aqueue.store("seen", "crawl.db")
--   seen[url] = { status = 200, size = 1234 }  -- same as seen:set(url, {...})
--   local v = seen[url]                        -- same as seen:get(url)
--   seen[url] = nil                            -- same as seen:delete(url)
--   for _, k in ipairs(seen:keys()) do ... end
--   seen:flush()                               -- yields until every write is committed
--
-- Where it lives: in `path` when given; else in this process's state file
-- (run_queue{ state = } while a run is going, or --state), so a crawl keeps its
-- stores next to its queue; else in a file of its own, `<name>.store` in the
-- current directory. The first aqueue.store(name) without a path decides
-- where it lives for the rest of the process: later calls return the same
-- store, even once the state file has changed. Note that run_queue{ state =
-- FILE } only names the state file once the run has started: a store first
-- opened before that, without a path, lives in `<name>.store` (open it inside
-- the run, or use --state, or pass the path). Many stores can share one file
-- (rows are keyed by the store's name); a disk queue's file or a foreign file
-- is refused, and left as it is.
--
-- Reads never touch the disk: the store's rows are loaded into a cache when
-- it is opened, and get() decodes from the cache, so it returns a fresh copy
-- each time (as shelve does): change a table you got and set() it again to
-- save the change. Writes update the cache at once and go to the file's next
-- group commit (within ~50 ms, never blocking the task; flush() waits for it).
-- A write that did not reach the disk before a crash is lost; writes are
-- committed in the order they were made.
--
-- Keys are strings or numbers; 1 and "1" are two keys. Values are what JSON
-- holds exactly: strings, finite numbers, booleans, and plain tables of those
-- (lists without holes, or string-keyed tables). A value that cannot be saved
-- raises, naming the store, the key and the offending field.
--
-- Indexing: st[k] = v is always st:set(k, v). st[k] is st:get(k), except for
-- the method names (get, set, delete, keys, flush), which give the method:
-- read such keys with st:get(k).
--
-- Ownership: this module owns the store objects (one per store name and file,
-- for the whole process: opening it again returns the same object) and the
-- two statements it prepares in each file; aqueue.statefile owns the open
-- files, which the engine commits and closes at exit.
local cjson = require("cjson").new()
local statedb = require("aqueue.statedb")
local statefile = require("aqueue.statefile")
local keys = require("aqueue.keys")

local type, error, tostring, tonumber, select, pairs = type, error, tostring, tonumber, select, pairs
local format, sort = string.format, table.sort
local encode, decode = statedb.encode, cjson.decode

local UPSERT_SQL = "INSERT INTO store(name, key, value) VALUES (?, ?, ?) "
  .. "ON CONFLICT(name, key) DO UPDATE SET value = excluded.value"
local DELETE_SQL = "DELETE FROM store WHERE name = ? AND key = ?"

local statements = {} -- db -> { upsert =, delete = }: prepared once per file
local opened = {}     -- path .. "\0" .. name -> the store object
local by_name = {}    -- name -> the store that aqueue.store(name) without a path gives
local private = setmetatable({}, { __mode = "k" }) -- store object -> its state

---------------------------------------------------------------------------
-- Keys as stored: see aqueue.keys.

local function key_text(k, level)
  local t = type(k)
  if t == "string" or (t == "number" and k == k) then
    return keys.text(k)
  end
  error("a store key must be a string or a number, got " .. (t == "number" and "NaN" or t), level + 1)
end

local key_value = keys.value

-- Keys in order: numbers first (ascending), then strings (byte order).
local function key_before(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    return ta == "number"
  end
  return a < b
end

---------------------------------------------------------------------------
-- The store object: no fields of its own, so that every key goes through
-- __index / __newindex; its state is private[st] = { name, path, db, stmts,
-- values (key text -> JSON), count }.

local methods = {}

local function state_of(st, method)
  local s = private[st]
  if not s then
    error(("store:%s(): call it with a colon (st:%s(...))"):format(method, method), 3)
  end
  return s
end

local function describe(s, k)
  return ("store %q (%s): key %s"):format(s.name, s.path, type(k) == "string" and format("%q", k) or tostring(k))
end

local function get(s, k, level)
  local json = s.values[key_text(k, level + 1)]
  if json == nil then
    return nil
  end
  return decode(json)
end

local function delete(s, text)
  if s.values[text] == nil then
    return true
  end
  local ok, err = s.db:write(s.stmts.delete, s.name, text)
  if not ok then
    return nil, err
  end
  s.values[text] = nil
  s.count = s.count - 1
  return true
end

local function set(s, k, v, level)
  local text = key_text(k, level + 1)
  if v == nil then
    return delete(s, text)
  end
  local json, problem, where = encode(v)
  if not json then
    error(("%s cannot be saved: %s %s"):format(describe(s, k),
      where ~= "" and "field " .. where or "the value", problem), level + 1)
  end
  local ok, err = s.db:write(s.stmts.upsert, s.name, text, json)
  if not ok then
    return nil, err
  end
  if s.values[text] == nil then
    s.count = s.count + 1
  end
  s.values[text] = json
  return true
end

-- The methods keep their frame (no tail calls), so errors blame their caller.

-- st:get(k) -> the value, or nil. Never yields.
function methods.get(st, k)
  local v = get(state_of(st, "get"), k, 2)
  return v
end

-- st:set(k, v): saves v under k (nil deletes it). Returns true, or nil, err
-- when the file can no longer be written (the engine reports that and stops).
-- Never yields.
function methods.set(st, k, v)
  local ok, err = set(state_of(st, "set"), k, v, 2)
  return ok, err
end

-- st:delete(k): removes k (nothing happens when it is not there). Returns
-- true, or nil, err as set() does.
function methods.delete(st, k)
  local ok, err = delete(state_of(st, "delete"), key_text(k, 2))
  return ok, err
end

-- st:keys() -> a new list of the keys: numbers ascending, then strings.
function methods.keys(st)
  local s = state_of(st, "keys")
  local list, n = {}, 0
  for text in pairs(s.values) do
    n = n + 1
    list[n] = key_value(text)
  end
  sort(list, key_before)
  return list
end

-- st:flush() -> true once every write made so far is committed, or nil, err.
-- Yields (call it from a task).
function methods.flush(st)
  return state_of(st, "flush").db:flush()
end

local Store = {
  __name = "Store",
  __metatable = false,
}

function Store.__index(st, k)
  local m = methods[k]
  if m ~= nil then
    return m
  end
  local v = get(private[st], k, 2)
  return v
end

function Store.__newindex(st, k, v)
  set(private[st], k, v, 2)
end

function Store.__tostring(st)
  local s = private[st]
  return ("Store(%q in %s, %d keys)"):format(s.name, s.path, s.count)
end

---------------------------------------------------------------------------
-- Opening

local function prepared(db)
  local st = statements[db]
  if not st then
    st = { upsert = db:prepare(UPSERT_SQL), delete = db:prepare(DELETE_SQL) }
    statements[db] = st
  end
  return st
end

-- aqueue.store(name [, path]) -> the store (see the header).
local function open(name, path, ...)
  if type(name) ~= "string" or name == "" then
    error("aqueue.store(name [, path]): name must be a non-empty string, got " .. tostring(name), 2)
  end
  if select("#", ...) > 0 then
    error("aqueue.store(name [, path]): too many arguments", 2)
  end
  if path == nil then
    local st = by_name[name]
    if st then
      return st
    end
  elseif type(path) ~= "string" or path == "" then
    error("aqueue.store(name [, path]): path must be a non-empty string, got " .. tostring(path), 2)
  end
  local state_path = statefile.state_path()
  local file = path or state_path or name .. ".store"
  local id = file .. "\0" .. name
  local st = opened[id]
  if not st then
    local db = statefile.open(file, file == state_path and "state" or "store", 2)
    local values, count = {}, 0
    for text, json in db:rows("SELECT key, value FROM store WHERE name = ?", name) do
      values[text] = json
      count = count + 1
    end
    st = setmetatable({}, Store)
    private[st] = { name = name, path = file, db = db, stmts = prepared(db), values = values, count = count }
    opened[id] = st
  end
  if path == nil then
    by_name[name] = st
  end
  return st
end

return open
