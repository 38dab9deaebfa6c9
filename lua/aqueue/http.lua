-- aqueue.http: HTTP(S) requests that yield the running task (SPEC section 2).
--
--   local res, err = aqueue.http.get("http://127.0.0.1:8080/")
--   -- res = { status = 200, headers = { ["content-type"] = "text/html", ... },
--   --         body = "...", url = "http://127.0.0.1:8080/", elapsed = 0.001 }
--
-- The transfers run on libcurl's multi interface inside the engine's event loop
-- (engine/modules/http/, the module aqueue.http_core). This file checks the arguments,
-- raising on misuse with a message that points at the caller, and normalizes
-- them for the C side. Transfer failures come back as nil, err, code (README
-- "I/O failures": ECONNREFUSED, ETIMEDOUT, EAI_NONAME, ECERT, ...). What
-- crawling adds on top of one transfer lives here too (SPEC section 11): the
-- response's methods (res:json()), retry_on with Retry-After, and sessions
-- (default options and a cookie jar, aqueue.http_core's cookie_jar()).
-- robots.txt is aqueue.robots's: in a run with robots = true, transfer()
-- asks it before each transfer.
-- The C module (and libcurl with it) is loaded on first use, so scripts that
-- never make a request never pay for loading it.
local Response -- (below) the methods of a response
local core = setmetatable({}, { __index = function(t, k)
  local m = require("aqueue.http_core")
  for name, method in pairs(Response) do m.response_methods[name] = method end
  setmetatable(t, { __index = m })
  return m[k]
end })

local type, pairs, ipairs, tostring, error, pcall = type, pairs, ipairs, tostring, error, pcall
local setmetatable, getmetatable = setmetatable, getmetatable
local format = string.format
local cjson = require("cjson")
local sleep = require("aqueue.sleep_core").sleep
local errors = require("aqueue.errors")
local robots = require("aqueue.robots")

local M = {}

-- The methods of a response table, which aqueue.http_core's response
-- metatable finds in its response_methods table (filled from this one when
-- the core is loaded). The same metatable makes res.headers when it is
-- first read.
Response = {}

-- A response's body, or a raise naming `method` for one whose body went to
-- a file, or for a call that is not a method call.
local function body_of(res, method)
  if getmetatable(res) ~= core.response_metatable then
    error(format("aqueue.http: %s() is a method of a response: res:%s()", method, method), 3)
  end
  if res.body == nil then
    error(format("aqueue.http: res:%s(): the body went to a file (output =), not to res.body", method), 3)
  end
  return res.body
end

-- res:json(): the body decoded (lua-cjson: JSON null is aqueue.json.null), or
-- nil, "EJSON: ...", "EJSON" when it is not JSON. Raises for a response whose
-- body went to a file (output =).
function Response:json()
  local ok, value = pcall(cjson.decode, body_of(self, "json"))
  if ok then return value end
  return nil, format("EJSON: %s: %s (%s)", errors.EJSON, self.url, value), "EJSON"
end

-- res:html(): the body parsed as HTML (aqueue.html), with the response's URL
-- (after redirects) as the base of its links and the charset of its
-- Content-Type header, if any; parsed once, the same document every call.
function Response:html()
  local body = body_of(self, "html")
  local doc = rawget(self, "_aq_doc")
  if doc == nil then
    local content_type = core.header(self, "content-type") or ""
    local charset = content_type:find(";", 1, true) -- (the pattern only where a parameter may be)
      and content_type:match(";%s*[Cc][Hh][Aa][Rr][Ss][Ee][Tt]%s*=%s*\"?([%w%-_.:]+)")
    doc = require("aqueue.html").parse(body, self.url, charset)
    rawset(self, "_aq_doc", doc)
  end
  return doc
end

-- res:links([selector]): the absolute URLs of the page's links (doc:links()).
function Response:links(selector)
  body_of(self, "links")
  return self:html():links(selector)
end

-- The options of request, with the type each must have when given.
local OPTIONS = {
  method = "string",
  url = "string",
  headers = "table",
  body = "string",
  timeout = "number",
  max_body = "number",
  follow_redirects = "boolean",
  output = "string",
  ca_file = "string",
  proxy = "string",
  retry_on = "table",
  retries = "number",
  retry_backoff = "number",
  retry_max_wait = "number",
}

-- The defaults of the retry options.
local RETRIES, RETRY_BACKOFF, RETRY_MAX_WAIT = 3, 1, 60

-- Header names are HTTP tokens; methods too.
local TOKEN = "^[%w!#%$%%&'%*%+%-%.%^_`|~]+$"

local function fail(fname, level, fmt, ...)
  error(format("aqueue.http.%s: " .. fmt, fname, ...), level + 1)
end

-- The lines of a request without headers of its own (read, never changed, by
-- the C side: one table for all of them).
local NO_HEADER_LINES = { "Expect:" }

-- { Name = value } (or nil) -> { "Name: value", ... } for curl. A value of
-- false drops a header curl would send by itself; "" sends the header empty.
local function header_lines(headers, fname, level)
  if headers == nil then return NO_HEADER_LINES end
  local lines, has_expect = {}, false
  for name, value in pairs(headers) do
    if type(name) ~= "string" or not name:find(TOKEN) then
      fail(fname, level, "header name %s is not a valid HTTP header name", format("%q", tostring(name)))
    end
    local vt = type(value)
    if vt == "number" then
      value = tostring(value)
    elseif vt ~= "string" and value ~= false then
      fail(fname, level, "header '%s' must be a string, a number or false, got %s", name, vt)
    end
    if value and value:find("[\r\n%z]") then
      fail(fname, level, "header '%s' contains a line break or a NUL byte", name)
    end
    if name:lower() == "expect" then has_expect = true end
    if value == false then
      lines[#lines + 1] = name .. ":"
    elseif value == "" then
      lines[#lines + 1] = name .. ";" -- curl's spelling of "send it empty"
    else
      lines[#lines + 1] = name .. ": " .. value
    end
  end
  -- No "Expect: 100-continue" round trip before large bodies, unless asked for.
  if not has_expect then lines[#lines + 1] = "Expect:" end
  return lines
end

-- (Made once: as literals in the functions below they were made for every request.)
local RETRY_OPTIONS = { "retries", "retry_backoff", "retry_max_wait" }
local RETRY_WAITS = { "backoff", "max_wait" } -- (policy's names of the last two)
local PATH_OPTIONS = { "output", "ca_file" }

-- The retry options of a request as { on = { [status] = true }, retries,
-- backoff, max_wait }, or nil without retry_on.
local function retry_policy(opts, fname, level)
  local on = opts.retry_on
  if on == nil then
    for _, k in ipairs(RETRY_OPTIONS) do
      if opts[k] ~= nil then fail(fname, level, "option '%s' is for retry_on, which is missing", k) end
    end
    return nil
  end
  local policy = {
    on = {},
    retries = opts.retries or RETRIES,
    backoff = opts.retry_backoff or RETRY_BACKOFF,
    max_wait = opts.retry_max_wait or RETRY_MAX_WAIT,
  }
  for k, status in pairs(on) do
    if type(k) ~= "number" or type(status) ~= "number" or status ~= math.floor(status) or status < 100 or status > 999 then
      fail(fname, level, "option 'retry_on' must be a list of HTTP statuses, got %s at %s", tostring(status), tostring(k))
    end
    policy.on[status] = true
  end
  if not (policy.retries >= 0 and policy.retries == math.floor(policy.retries) and policy.retries < math.huge) then
    fail(fname, level, "option 'retries' must be a whole number from 0, got %s", tostring(policy.retries))
  end
  for _, k in ipairs(RETRY_WAITS) do
    if not (policy[k] >= 0 and policy[k] < math.huge) then
      fail(fname, level, "option 'retry_%s' must be a number of seconds from 0, got %s", k, tostring(policy[k]))
    end
  end
  return policy
end

-- Checks the options of a request and returns the table aqueue.http_core takes.
-- `level` is the stack level of the user's call, seen from here.
local function normalize(opts, fname, level)
  if type(opts) ~= "table" then
    fail(fname, level, "options must be a table, got %s", type(opts))
  end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then
      fail(fname, level, "unknown option '%s'", tostring(k))
    end
    if type(v) ~= want then
      fail(fname, level, "option '%s' must be a %s, got %s", k, want, type(v))
    end
  end
  if opts.url == nil then
    fail(fname, level, "the url is missing")
  end
  local method = opts.method or (opts.body and "POST" or "GET")
  if method ~= "GET" and method ~= "POST" and not method:find(TOKEN) then -- (the pattern, 1k instructions, for others only)
    fail(fname, level, "method %q is not a valid HTTP method", method)
  end
  local timeout = opts.timeout
  if timeout and not (timeout > 0) then
    fail(fname, level, "option 'timeout' must be a positive number of seconds, got %s", tostring(timeout))
  end
  if timeout == math.huge then timeout = nil end
  local max_body = opts.max_body
  if max_body and not (max_body >= 1 and max_body == math.floor(max_body)) then
    fail(fname, level, "option 'max_body' must be a whole number of bytes from 1, got %s", tostring(max_body))
  end
  if max_body == math.huge then max_body = nil end
  for _, k in ipairs(PATH_OPTIONS) do
    local path = opts[k]
    if path and (path == "" or path:find("%z")) then
      fail(fname, level, "option '%s' must be a file path", k)
    end
  end
  local output = opts.output
  return {
    method = method,
    url = opts.url,
    headers = header_lines(opts.headers, fname, level + 1),
    body = opts.body,
    timeout = timeout,
    max_body = max_body,
    follow_redirects = opts.follow_redirects ~= false,
    output = output,
    ca_file = opts.ca_file,
    proxy = opts.proxy,
  }, retry_policy(opts, fname, level + 1)
end

-- The seconds a Retry-After header asks to wait (RFC 9110 10.2.3: seconds,
-- or an HTTP-date, read by curl_getdate), or nil when there is none or it
-- cannot be read.
local function retry_after(value)
  if value == nil then return nil end
  local seconds = value:match("^%s*(%d+)%s*$")
  if seconds then return tonumber(seconds) end
  local date = core.parse_date(value)
  return date and math.max(0, date - os.time()) or nil
end

-- One transfer of core options o. In a run with robots = true it first
-- asks aqueue.robots: a URL robots.txt disallows fails without a request,
-- and the host's Crawl-delay spaces the transfers (retries included).
local function transfer(o)
  if robots.enforced() then
    local ok, err, code = robots.admit(o)
    if not ok then return nil, err, code end
  end
  return core.request(o)
end

-- Sends the request of core options o, again while the status is one of
-- policy.on and retries are left: after the wait Retry-After asks for, or
-- else after a backoff doubling from policy.backoff (half of it random, so
-- clients that failed together do not come back together). A Retry-After
-- longer than policy.max_wait returns the response at once.
local function send(o, policy)
  local res, err, code = transfer(o)
  if policy then
    local attempt = 1
    while res and policy.on[res.status] and attempt <= policy.retries do
      local wait = retry_after(res.headers["retry-after"])
      if wait and wait > policy.max_wait then break end
      if not wait then
        local backoff = policy.backoff * 2 ^ (attempt - 1)
        wait = math.min(policy.max_wait, backoff / 2 + math.random() * backoff / 2)
      end
      sleep(wait)
      attempt = attempt + 1
      res, err, code = transfer(o)
    end
  end
  return res, err, code
end

-- opts under the defaults of session s (opts itself without a session):
-- s's options where opts has none, the headers of both, opts's winning for a
-- name given in both (in any case).
local function with_defaults(s, opts)
  if not s or type(opts) ~= "table" then return opts end
  local merged = {}
  for k, v in pairs(s.defaults) do merged[k] = v end
  for k, v in pairs(opts) do merged[k] = v end
  local own = opts.headers
  if s.defaults.headers and type(own) == "table" then
    local headers, given = {}, {}
    for name, value in pairs(own) do
      headers[name] = value
      if type(name) == "string" then given[name:lower()] = true end
    end
    for name, value in pairs(s.defaults.headers) do
      if not given[name:lower()] then headers[name] = value end
    end
    merged.headers = headers
  end
  return merged
end

-- Makes the request of opts through session s (or nil); fname names the
-- function called, in messages. The user's call is 3 levels above this one
-- (user -> M.get -> get -> make).
local function make(s, fname, opts)
  local o, policy = normalize(with_defaults(s, opts), fname, 5)
  o.cookie_jar = s and s.jar
  return send(o, policy)
end

-- The options of get or post: a copy of opts with url (and body) added.
local function with(fname, opts, url, body, level)
  if type(url) ~= "string" then
    fail(fname, level, "the url must be a string, got %s", type(url))
  end
  if opts == nil then
    return { url = url, body = body } -- (nothing to copy: one table, not two)
  elseif type(opts) ~= "table" then
    fail(fname, level, "options must be a table, got %s", type(opts))
  end
  local copy = {}
  for k, v in pairs(opts) do
    if k == "url" or k == "method" or k == "body" then
      fail(fname, level, "option '%s' cannot be given to %s (use request)", k, fname)
    end
    copy[k] = v
  end
  copy.url = url
  copy.body = body
  return copy
end

-- The three ways to make a request, through session s (or nil). None of
-- these functions ends in a tail call: the stack levels that error messages
-- count from (make's 5) need every frame.
local function request(s, fname, opts)
  local res, err, code = make(s, fname, opts)
  return res, err, code
end

local function get(s, fname, url, opts)
  local o = with(fname, opts, url, nil, 4)
  o.method = "GET"
  local res, err, code = make(s, fname, o)
  return res, err, code
end

local function post(s, fname, url, body, opts)
  if type(body) ~= "string" then
    fail(fname, 3, "the body must be a string, got %s", type(body))
  end
  local o = with(fname, opts, url, body, 4)
  o.method = "POST"
  local res, err, code = make(s, fname, o)
  return res, err, code
end

-- request{ method, url, headers, body, timeout, follow_redirects, output, ... }:
-- yields until the response is complete. Returns { status, headers, body, url,
-- elapsed, http_version } (with res:json()), or nil, err, code when the
-- transfer failed (refused, DNS, timeout, bad URL, TLS, ...). An HTTP error
-- status is a response, not a failure.
function M.request(opts)
  local res, err, code = request(nil, "request", opts)
  return res, err, code
end

-- get(url [, opts]): request with method GET.
function M.get(url, opts)
  local res, err, code = get(nil, "get", url, opts)
  return res, err, code
end

-- post(url, body [, opts]): request with method POST and that body.
function M.post(url, body, opts)
  local res, err, code = post(nil, "post", url, body, opts)
  return res, err, code
end

-- A session: requests that share a cookie jar and default options.
local Session = {}
Session.__index = Session

local function check_session(s, fname)
  if getmetatable(s) ~= Session then
    error(format("aqueue.http.session:%s is a method of a session: s:%s(...)", fname, fname), 3)
  end
end

function Session:request(opts)
  check_session(self, "request")
  local res, err, code = request(self, "session:request", opts)
  return res, err, code
end

function Session:get(url, opts)
  check_session(self, "get")
  local res, err, code = get(self, "session:get", url, opts)
  return res, err, code
end

function Session:post(url, body, opts)
  check_session(self, "post")
  local res, err, code = post(self, "session:post", url, body, opts)
  return res, err, code
end

-- session{ headers =, cookies =, proxy =, user_agent =, ... }: a client whose
-- requests (s:request, s:get, s:post, as aqueue.http's) share
--   cookies = true   one cookie jar: what a response sets, the next requests send
--   user_agent       the User-Agent header
-- and, as defaults under each request's own, any option of a request but url,
-- method, body and output (headers merged by name, the request's winning).
function M.session(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    fail("session", 2, "options must be a table, got %s", type(opts))
  end
  local defaults = {}
  for k, v in pairs(opts) do
    if k == "url" or k == "method" or k == "body" or k == "output" then
      fail("session", 2, "option '%s' belongs to each request, not to a session", k)
    elseif k == "cookies" or k == "user_agent" then
      local want = k == "cookies" and "boolean" or "string"
      if type(v) ~= want then
        fail("session", 2, "option '%s' must be a %s, got %s", k, want, type(v))
      end
    else
      defaults[k] = v
    end
  end
  if opts.user_agent then -- under a User-Agent of the headers
    local agent = { defaults = { headers = { ["User-Agent"] = opts.user_agent } } }
    defaults.headers = with_defaults(agent, { headers = defaults.headers or {} }).headers
  end
  -- The defaults are checked now, as a request's options would be.
  normalize(with_defaults({ defaults = defaults }, { url = "http://127.0.0.1/" }), "session", 3)
  return setmetatable({ defaults = defaults, jar = opts.cookies and core.cookie_jar() or nil }, Session)
end

local LIMITS = { max_connections = 1, max_per_host = 2 }

-- configure{ max_connections =, max_per_host = }: the caps on open connections,
-- all hosts together (default 100) and per host (default 16); 0 means no cap.
-- Takes effect at once, for new connections. Returns the settings as they are.
function M.configure(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    fail("configure", 2, "options must be a table, got %s", type(opts))
  end
  local args = {}
  for k, v in pairs(opts) do
    local i = LIMITS[k]
    if not i then
      fail("configure", 2, "unknown option '%s'", tostring(k))
    end
    if type(v) ~= "number" or v < 0 or v ~= math.floor(v) or v > 1e9 then
      fail("configure", 2, "option '%s' must be a whole number, 0 for no limit, got %s", k, tostring(v))
    end
    args[i] = v
  end
  local total, host = core.configure(args[1], args[2])
  return { max_connections = total, max_per_host = host }
end

-- robots_allowed(url [, user_agent]): may url be fetched under its host's
-- robots.txt? true or false, or nil, err, code when robots.txt could not be
-- fetched. robots(url [, user_agent]): the rules themselves (aqueue.robots).
M.robots_allowed = robots.allowed
M.robots = robots.robots

-- The version of the libcurl in use ("7.88.1"), loading it if needed.
function M.curl_version()
  return core.curl_version
end

return M
