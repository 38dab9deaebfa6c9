-- aqueue.url: URLs on libcurl's URL API (SPEC section 11).
--
--   local url = require("aqueue.url")
--   url.join("http://a/b/c/d;p?q", "../g")     --> "http://a/b/g"
--   url.parse("http://u:pw@h:81/p?q#f")        --> { scheme = "http", user = "u", password = "pw",
--                                              --    host = "h", port = 81, path = "/p", query = "q", fragment = "f" }
--   url.build{ scheme = "https", host = "h", path = "/a b", query = url.query{ q = "x y" } }
--                                              --> "https://h/a%20b?q=x%20y"
--   url.encode("a b/c") --> "a%20b%2Fc"       url.decode("a%20b") --> "a b"
--
-- The C module aqueue.url_core (engine/modules/url/) parses and resolves; this
-- file checks the arguments, raising on misuse with a message that points at
-- the caller. A URL curl cannot read is data, not misuse: nil, err, code
-- ("EINVAL: invalid argument: http:// (No host part in the URL)", "EINVAL").
-- The C module (and libcurl with it) is loaded on first use.
local core = setmetatable({}, { __index = function(t, k)
  local m = require("aqueue.url_core")
  setmetatable(t, { __index = m })
  return m[k]
end })

local type, pairs, ipairs, tostring, error = type, pairs, ipairs, tostring, error
local format, concat, sort = string.format, table.concat, table.sort

local M = {}

-- Raises, blaming the caller `level` levels up from fail's caller.
local function fail(fname, level, fmt, ...)
  error(format("aqueue.url.%s: " .. fmt, fname, ...), level + 1)
end

-- (Called by the function the user called: the user is 3 levels up.)
local function check_string(fname, what, v)
  if type(v) ~= "string" then
    fail(fname, 3, "%s must be a string, got %s", what, type(v))
  end
end

-- join(base, ref): the absolute URL that ref (an href, a Location header)
-- refers to from the page at base, resolved as RFC 3986 section 5.2 says.
-- Returns the URL, or nil, err, code.
function M.join(base, ref)
  check_string("join", "the base", base)
  check_string("join", "the reference", ref)
  return core.join(base, ref)
end

-- parse(url): the parts of an absolute URL, as they are written in it
-- (percent-encoded): { scheme, user, password, host, port (a number), path,
-- query, fragment }, nil for a part the URL does not have. Or nil, err, code.
function M.parse(u)
  check_string("parse", "the url", u)
  return core.parse(u)
end

-- The parts build takes, in the order of aqueue.url_core.build's arguments.
local PARTS = { "scheme", "user", "password", "host", "port", "path", "query", "fragment" }
local PART_INDEX = {}
for i, name in ipairs(PARTS) do PART_INDEX[name] = i end

-- build(parts): the URL of a table like parse's (scheme and host required),
-- the inverse of parse. Parts are taken as written in a URL: a value that
-- may hold "/", "?", "#" or "&" goes through url.encode first (spaces and
-- non-ASCII bytes are encoded here). Returns the URL, or nil, err, code.
function M.build(t)
  if type(t) ~= "table" then
    fail("build", 2, "the parts must be a table, got %s", type(t))
  end
  local args = {}
  for k, v in pairs(t) do
    local i = PART_INDEX[k]
    if not i then
      fail("build", 2, "unknown part '%s' (parts: %s)", tostring(k), concat(PARTS, ", "))
    end
    if k == "port" then
      if type(v) ~= "number" then
        fail("build", 2, "part 'port' must be a number, got %s", type(v))
      end
      v = v == math.floor(v) and format("%d", v) or tostring(v)
    elseif type(v) ~= "string" then
      fail("build", 2, "part '%s' must be a string, got %s", k, type(v))
    end
    args[i] = v
  end
  return core.build(args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8])
end

-- encode(s): s percent-encoded, every byte but RFC 3986's unreserved ones
-- (letters, digits, "-", ".", "_", "~"): safe as a path segment, a query key
-- or value.
function M.encode(s)
  check_string("encode", "the text", s)
  return core.encode(s)
end

-- decode(s): s with each "%XX" turned back into its byte ("+" stays "+").
function M.decode(s)
  check_string("decode", "the text", s)
  return core.decode(s)
end

-- A query key or value: a string or a number, encoded.
local function query_word(v, what)
  local t = type(v)
  if t == "number" then
    v = tostring(v)
  elseif t ~= "string" then
    fail("query", 3, "%s must be a string or a number, got %s", what, t)
  end
  return core.encode(v)
end

-- query(params): a query string ("a=1&b=x%20y") of
--   { key = value, ... }          keys sorted, so the same table gives the same string
--   { key = { v1, v2 } }          the key repeated, once per value in order
--   { { key, value }, ... }       pairs kept in their order
-- Keys and values are strings or numbers, encoded with url.encode.
function M.query(params)
  if type(params) ~= "table" then
    fail("query", 2, "the parameters must be a table, got %s", type(params))
  end
  local out = {}
  if #params > 0 then
    for i, pair in ipairs(params) do
      if type(pair) ~= "table" or pair[1] == nil or pair[2] == nil then
        fail("query", 2, "parameter %d must be a { key, value } pair, got %s", i, type(pair))
      end
      out[i] = query_word(pair[1], "a key") .. "=" .. query_word(pair[2], "a value")
    end
    for k in pairs(params) do
      if type(k) ~= "number" or k > #params or k ~= math.floor(k) then
        fail("query", 2, "a list of { key, value } pairs cannot also have the key %s", format("%q", tostring(k)))
      end
    end
    return concat(out, "&")
  end
  local keys = {}
  for k in pairs(params) do
    if type(k) ~= "string" then
      fail("query", 2, "a key must be a string, got %s (a list takes { key, value } pairs)", type(k))
    end
    keys[#keys + 1] = k
  end
  sort(keys)
  for _, k in ipairs(keys) do
    local v, key = params[k], core.encode(k)
    if type(v) == "table" then
      for _, each in ipairs(v) do
        out[#out + 1] = key .. "=" .. query_word(each, "a value of '" .. k .. "'")
      end
    else
      out[#out + 1] = key .. "=" .. query_word(v, "the value of '" .. k .. "'")
    end
  end
  return concat(out, "&")
end

return M
