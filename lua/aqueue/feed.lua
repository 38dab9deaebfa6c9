-- aqueue.feed: output files of records, one line each (Scrapy's feed
-- exports), written exactly once with a state file (SPEC section 11).
--
--   local feed = assert(aqueue.feed.open("items.jsonl"))          -- format = "jsonl" (the default)
--   local csv = assert(aqueue.feed.open("items.csv", { format = "csv", fields = { "url", "title" } }))
--   feed:write({ url = u, title = t })                             -- in process(), or anywhere
--   feed:close()                                                   -- or left to the script's end
--
-- Formats: "jsonl", one cjson.encode(record) per line, "\n" ended; "csv",
-- RFC 4180: the columns are `fields` (default: the first record's keys,
-- sorted), a cell holding , " CR or LF is quoted with its quotes doubled,
-- lines end with CRLF, and the header line is written once, when the file
-- is empty (not again when a run resumes or runs again).
--
-- Where a line goes (aqueue.feed_outbox has the protocol): with a state file
-- (--state, or inside a run with `state =`) a line written by an item's
-- process() goes to the file only once the item's completion is committed,
-- exactly once across crashes and reruns; a failed attempt's lines are
-- dropped. Otherwise, and outside process(), a line is appended at once. An
-- append is one write(2) on a file opened O_APPEND (aqueue.feed_file): never
-- a partial line among whole ones.
--
-- Errors: misuse raises (an unknown option or format, a record that is not a
-- table, a CSV field that is not a column or holds a table); a file that
-- cannot be opened or written gives nil, err, code (README "I/O failures").
local cjson = require("cjson").new()
local feed_file = require("aqueue.feed_file")
local outbox = require("aqueue.feed_outbox")
local run_queue = require("aqueue.run_queue")

local type, error, pairs, ipairs, tostring, select, pcall = type, error, pairs, ipairs, tostring, select, pcall
local getmetatable, setmetatable = getmetatable, setmetatable
local format, concat, sort, floor = string.format, table.concat, table.sort, math.floor
local current_item = run_queue.current_item

local FORMATS = { jsonl = true, csv = true }
local OPTIONS = { format = true, fields = true }

local open_feeds = {} -- path -> the feed open on it

local Feed = { __name = "Feed" }
Feed.__index = Feed

local function describe(v)
  return type(v) == "string" and format("%q", v) or tostring(v)
end

---------------------------------------------------------------------------
-- Lines

-- A CSV cell (RFC 4180).
local function csv_cell(self, name, v)
  local t = type(v)
  if t == "number" then
    v = (v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53) and format("%d", v) or format("%.14g", v)
  elseif t == "boolean" then
    v = tostring(v)
  elseif t == "nil" then
    return ""
  elseif t ~= "string" then
    error(("feed %s: field %s is a %s: a CSV cell holds a string, a number or a boolean")
      :format(self.path, describe(name), t), 4)
  end
  if v:find('[,"\r\n]') then
    return '"' .. v:gsub('"', '""') .. '"'
  end
  return v
end

local function csv_line(cells)
  return concat(cells, ",") .. "\r\n"
end

-- The header of a CSV feed, when its file is empty: appended at once.
local function write_header(self)
  local cells = {}
  for i, name in ipairs(self.columns) do
    cells[i] = csv_cell(self, name, name)
  end
  local line = csv_line(cells)
  if self.p then
    return outbox.direct(self.p, line)
  end
  return self.fh:append(line)
end

local function file_is_empty(self)
  if self.p then
    return self.p.size == 0
  end
  return assert(self.fh:size()) == 0
end

-- Fixes the columns of a CSV feed (`names`, a list of strings) and writes
-- its header when the file is empty. Returns true, or nil, err, code.
local function set_columns(self, names)
  local index = {}
  for i, name in ipairs(names) do
    index[name] = i
  end
  self.columns, self.column_index = names, index
  if file_is_empty(self) then
    return write_header(self)
  end
  return true
end

-- The CSV line of `record`. Returns it, or nil, err, code when the header
-- (written with the first record, without `fields`) could not be.
local function csv_record(self, record)
  if not self.columns then
    local names = {}
    for k in pairs(record) do
      if type(k) ~= "string" then
        error(("feed %s: record has a key %s: a CSV record's keys are column names"):format(self.path, describe(k)), 3)
      end
      names[#names + 1] = k
    end
    sort(names)
    local ok, err, code = set_columns(self, names)
    if not ok then
      return nil, err, code
    end
  end
  local index = self.column_index
  for k in pairs(record) do
    if not index[k] then
      error(("feed %s: record has a field %s that is not a column (columns: %s)")
        :format(self.path, describe(k), concat(self.columns, ", ")), 3)
    end
  end
  local cells = {}
  for i, name in ipairs(self.columns) do
    cells[i] = csv_cell(self, name, record[name])
  end
  return csv_line(cells)
end

local function jsonl_record(self, record)
  local ok, json = pcall(cjson.encode, record)
  if not ok then
    error(("feed %s: record cannot be written as JSON: %s"):format(self.path, tostring(json)), 3)
  end
  return json .. "\n"
end

---------------------------------------------------------------------------
-- The feed object

local function check_open(self, method)
  if getmetatable(self) ~= Feed then
    error(("feed:%s(): call it with a colon (feed:%s(...))"):format(method, method), 3)
  end
  if self.closed then
    error(("feed %s is closed"):format(self.path), 3)
  end
end

-- feed:write(record) -> true, or nil, err, code when the file cannot be
-- written. Never yields.
function Feed:write(record, ...)
  check_open(self, "write")
  if type(record) ~= "table" or select("#", ...) > 0 then
    error(("feed:write(record): record must be one table, got %s"):format(type(record)), 2)
  end
  local line, err, code
  if self.format == "csv" then
    line, err, code = csv_record(self, record)
    if not line then
      return nil, err, code
    end
  else
    line = jsonl_record(self, record)
  end
  local p = self.p
  if p then
    local item = outbox.in_run(p) and current_item()
    if item then
      outbox.add(p, item, line)
      return true
    end
    local ok
    ok, err, code = outbox.direct(p, line)
    return ok, err, code
  end
  local ok
  ok, err, code = self.fh:append(line)
  return ok, err, code
end

-- feed:close(): closes the file (again: nothing). With a state file, lines
-- whose items' completion is not yet committed stay there, to be appended
-- when the feed is next opened.
function Feed:close()
  if getmetatable(self) ~= Feed then
    error("feed:close(): call it with a colon (feed:close())", 2)
  end
  if self.closed then
    return
  end
  if self.p then
    outbox.close(self.p)
  end
  self.closed = true
  self.fh:close()
  open_feeds[self.path] = nil
end

function Feed:__tostring()
  return ("Feed(%s, %s%s)"):format(self.path, self.format, self.closed and ", closed" or "")
end

---------------------------------------------------------------------------
-- Opening

local function check_options(opts)
  if opts == nil then
    return "jsonl", nil
  end
  if type(opts) ~= "table" then
    error("aqueue.feed.open(path [, opts]): opts must be a table, got " .. type(opts), 3)
  end
  for k in pairs(opts) do
    if not OPTIONS[k] then
      error(("aqueue.feed.open: unknown option %s (format, fields)"):format(describe(k)), 3)
    end
  end
  local fmt = opts.format or "jsonl"
  if not FORMATS[fmt] then
    error(("aqueue.feed.open: unknown format %s (jsonl or csv)"):format(describe(fmt)), 3)
  end
  local fields = opts.fields
  if fields ~= nil then
    if fmt ~= "csv" then
      error("aqueue.feed.open: fields is an option of the csv format", 3)
    end
    if type(fields) ~= "table" or #fields == 0 then
      error("aqueue.feed.open: fields must be a list of column names, got " .. describe(fields), 3)
    end
    local seen, names = {}, {}
    for i = 1, #fields do
      local name = fields[i]
      if type(name) ~= "string" or name == "" or seen[name] then
        error(("aqueue.feed.open: fields[%d] is %s: each must be a distinct non-empty string")
          :format(i, describe(name)), 3)
      end
      seen[name], names[i] = true, name
    end
    fields = names
  end
  return fmt, fields
end

-- aqueue.feed.open(path [, { format =, fields = }]) -> a feed, or nil, err,
-- code when the file cannot be opened.
local function open(path, opts)
  if type(path) ~= "string" or path == "" then
    error("aqueue.feed.open(path [, opts]): path must be a non-empty string, got " .. describe(path), 2)
  end
  local fmt, fields = check_options(opts)
  if open_feeds[path] then
    error(("aqueue.feed.open: %s is already open as a feed (close it first)"):format(path), 2)
  end
  local fh, err, code = feed_file.open(path)
  if not fh then
    return nil, err, code
  end
  local ok, p = pcall(outbox.bind, path, fh, 3)
  if not ok then
    fh:close()
    error(p, 0)
  end
  local self = setmetatable({ path = path, format = fmt, fh = fh, p = p, closed = false }, Feed)
  if fields then
    local written, werr, wcode = set_columns(self, fields)
    if not written then
      fh:close()
      return nil, werr, wcode
    end
  end
  open_feeds[path] = self
  return self
end

return { open = open }
