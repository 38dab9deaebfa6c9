-- aqueue.redis: a Redis client on the engine's event loop (README "aqueue.redis").
--
--   local client, err, code = aqueue.redis.connect("redis://:secret@127.0.0.1:6379/2")
--   client:call("SET", "k", "v")                     --> "OK"
--   client:call("GET", "k")                          --> "v" (nil for a missing key)
--   client:pipeline{ { "INCR", "n" }, { "GET", "k" } } --> { 1, "v" }
--   local script = aqueue.redis.script("return redis.call('GET', KEYS[1])")
--   client:run_script(script, { "k" }, {})          --> "v"
--   client:state()                                   --> "connected" | "connecting" | "closed"
--   client:close()
--
-- Every call yields the running task until its reply is in; failures come back
-- as nil, "CODE: message", "CODE" (an error reply of the server: "EREDIS").
-- The client lives in the C module aqueue.redis_core (engine/modules/redis/,
-- on hiredis), loaded on first use so scripts that never connect never load
-- hiredis. This file parses URLs and checks options (misuse raises), and adds
-- the script helpers to the client's methods.
local core = setmetatable({}, { __index = function(t, k)
  local m = require("aqueue.redis_core")
  setmetatable(t, { __index = m })
  return m[k]
end })

local type, tonumber, error, pairs, tostring, unpack, getmetatable, setmetatable =
  type, tonumber, error, pairs, tostring, unpack, getmetatable, setmetatable
local format = string.format

local M = {}

local DEFAULT_PORT = 6379

local function failure(code, fmt, ...)
  return nil, code .. ": " .. format(fmt, ...), code
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end))
end

-- The target of a URL as connect's table, or nil, err, code.
--   redis://[:password@]host[:port][/db]     (host: a name, an IPv4 or [IPv6] address)
--   unix:///path/to/socket
function M.parse_url(url)
  if type(url) ~= "string" then
    error("aqueue.redis: the URL must be a string, got " .. type(url), 2)
  end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  scheme = scheme and scheme:lower()
  if scheme == "rediss" then
    return failure("EPROTONOSUPPORT", "%s: rediss:// (Redis over TLS) is not supported: aqueue.redis is built on "
      .. "hiredis 0.14, which has no TLS (hiredis_ssl comes with hiredis 1.0); use redis:// or unix://, "
      .. "or a TLS tunnel", url)
  end
  if scheme == "unix" then
    if rest:sub(1, 1) ~= "/" or #rest < 2 then
      return failure("EINVAL", "%s: a unix URL is unix:///absolute/path/to/socket", url)
    end
    return { name = "unix://" .. rest, path = unescape(rest) }
  end
  if scheme ~= "redis" then
    return failure("EINVAL", "%s: not a Redis URL (redis://[:password@]host[:port][/db] or unix:///path)", url)
  end
  local target = {}
  local userinfo, hostport, db = rest:match("^([^@/]*)@([^/]*)(.*)$")
  if not userinfo then hostport, db = rest:match("^([^/]*)(.*)$") end
  if userinfo then
    local user, password = userinfo:match("^([^:]*):(.*)$")
    if not user or (user ~= "" and user ~= "default") then
      return failure("EINVAL", "%s: give the password as redis://:password@host (ACL user names are not supported)", url)
    end
    target.password = unescape(password)
  end
  local host, port = hostport:match("^%[([%x:.]+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:]+):?(%d*)$") end
  if not host or (hostport:find(":") and port == "" and not hostport:find("^%[")) then
    return failure("EINVAL", "%s: no host, or a port that is not a number", url)
  end
  port = port ~= "" and tonumber(port) or DEFAULT_PORT
  if port < 1 or port > 65535 then
    return failure("EINVAL", "%s: port %d is out of range", url, port)
  end
  if db ~= "" and db ~= "/" then
    local n = db:match("^/(%d+)$")
    if not n then return failure("EINVAL", "%s: the database must be a number (/0, /1, ...)", url) end
    target.db = tonumber(n)
  end
  target.host, target.port = host, port
  target.name = format("redis://%s:%d/%d", hostport:find("^%[") and "[" .. host .. "]" or host, port, target.db or 0)
  return target
end

-- The options of connect, with the type each must have when given.
local OPTIONS = {
  timeout = "number",     -- seconds a command (or a connection attempt) may take (default 10)
  reconnect = "boolean",  -- reconnect after a drop (default true)
  backoff_min = "number", -- first wait before reconnecting, doubled at each failure (default 0.1)
  backoff_max = "number", -- up to this (default 2)
  password = "string",    -- instead of the URL's
  db = "number",          -- instead of the URL's
}

-- The target and options of connect as the C module's table, or nil, err,
-- code (a bad URL). Raises on misuse.
local function connect_options(url, opts)
  if type(url) ~= "string" then
    error("aqueue.redis.connect: the URL must be a string, got " .. type(url), 3)
  end
  local target, err, code = M.parse_url(url)
  if not target then return nil, err, code end
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("aqueue.redis.connect: options must be a table, got " .. type(opts), 3)
    end
    for k, v in pairs(opts) do
      local want = OPTIONS[k]
      if not want then error(format("aqueue.redis.connect: unknown option '%s'", tostring(k)), 3) end
      if type(v) ~= want then
        error(format("aqueue.redis.connect: option %s must be a %s, got %s", k, want, type(v)), 3)
      end
      target[k] = v
    end
  end
  return target
end

-- --- server-side scripts ---

local Script = {}
Script.__index = Script

-- script(text) -> a script for client:run_script. Its SHA is learnt from the
-- server on first use (SCRIPT LOAD) and kept.
function M.script(text)
  if type(text) ~= "string" then
    error("aqueue.redis.script: the script must be a string, got " .. type(text), 2)
  end
  return setmetatable({ text = text, sha = nil }, Script)
end

-- Appends the elements of list to args from index n + 1; returns the new n.
local function append(args, n, list, what)
  if list == nil then return n end
  if type(list) ~= "table" then
    error(format("aqueue.redis: run_script's %s must be a list, got %s", what, type(list)), 3)
  end
  for i = 1, #list do
    args[n + i] = list[i]
  end
  return n + #list
end

local function install_methods(methods)
  -- client:script_load(text) -> the script's SHA1, or nil, err, code.
  function methods:script_load(text)
    return self:call("SCRIPT", "LOAD", text)
  end

  -- client:run_script(script, keys, args) -> the script's result, or nil,
  -- err, code. Runs it by SHA (EVALSHA); when the server does not know it
  -- (NOSCRIPT: a restarted server, SCRIPT FLUSH), runs it by its text
  -- (EVAL), which also puts it back in the server's cache.
  function methods:run_script(script, keys, args)
    if getmetatable(script) ~= Script then
      error("aqueue.redis: run_script expects a script made by aqueue.redis.script(text)", 2)
    end
    if not script.sha then
      local sha, err, code = self:script_load(script.text)
      if not sha then return nil, err, code end
      script.sha = sha
    end
    local argv = { "evalsha", script.sha, keys and #keys or 0 }
    local n = append(argv, append(argv, 3, keys, "keys"), args, "args")
    local res, err, code = self:call(unpack(argv, 1, n))
    if err and code == "EREDIS" and err:find("NOSCRIPT", 1, true) then
      argv[1], argv[2] = "eval", script.text
      return self:call(unpack(argv, 1, n))
    end
    return res, err, code
  end
end

-- connect(url [, opts]) -> client, or nil, err, code. Yields until the
-- server answered the handshake (AUTH, SELECT, PING). The first connection
-- is not retried: ECONNREFUSED, EAI_NONAME (unknown host), ETIMEDOUT, EAUTH
-- (wrong or missing password), EINVAL (a bad URL), EPROTONOSUPPORT (rediss://).
-- The first call loads the C module and adds the script helpers to the
-- client's methods.
local installed = false
function M.connect(url, opts)
  local target, err, code = connect_options(url, opts)
  if not target then return nil, err, code end
  if not installed then
    install_methods(core.client_methods)
    installed = true
  end
  return core.connect(target)
end

return M
