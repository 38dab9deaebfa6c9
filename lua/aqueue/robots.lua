-- aqueue.robots: robots.txt (RFC 9309) for aqueue.http (SPEC section 11).
--
--   http.robots_allowed("http://127.0.0.1:8080/private/a")  --> false
--   local rules = http.robots("http://127.0.0.1:8080/")      --> rules:allowed("/private/a"), rules.crawl_delay
--
-- A host (scheme, host and port) has its robots.txt fetched once and cached
-- until the next run_queue starts or ends; tasks that ask while it is being
-- fetched wait for that one fetch. The fetch runs as a task of its own, so an
-- asker cancelled meanwhile (an item's timeout) leaves the others a result.
--
-- What the fetch's outcome means (RFC 9309 2.3.1):
--   2xx           the file's rules (its first 500 KiB: 2.5)
--   3xx           followed, up to 5 redirects; more: "unavailable", as 4xx
--   4xx           unavailable: everything allowed
--   5xx           unreachable: everything disallowed
--   no answer     (refused, DNS, timeout, ...) nil, err, code, and nothing
--                 is cached: the next request asks again. The page itself
--                 is most likely unreachable too; its caller sees why.
--
-- With run_queue{ robots = true }, http.lua calls admit() before each
-- transfer: a disallowed URL fails with EROBOTS, and requests to a host
-- whose group has a Crawl-delay start at least that many seconds apart.
local core = require("aqueue.core")
local url = require("aqueue.url")
local errors = require("aqueue.errors")
local spawn = require("aqueue.handle").spawn
local sleep = require("aqueue.sleep_core").sleep

local type, tonumber, tostring, ipairs, error = type, tonumber, tostring, ipairs, error
local setmetatable, getmetatable = setmetatable, getmetatable
local format, char, lower, byte = string.format, string.char, string.lower, string.byte
local now = core.now

local M = {}

local MAX_PARSED = 500 * 1024      -- RFC 9309 2.5: at least 500 KiB are read
local MAX_FETCHED = 8 * 1024 * 1024 -- a larger file is a fetch failure (EFBIG)
local MAX_REDIRECTS = 5            -- RFC 9309 2.3.1.2
local FETCH_TIMEOUT = 30           -- seconds, unless the request has its own timeout
local DEFAULT_AGENT = "aqueue"     -- the product token of curl's "aqueue/x.y.z"

---------------------------------------------------------------------------
-- paths and patterns

-- s with its percent-encoding made canonical (RFC 9309 2.2.2, RFC 3986 6.2.2):
-- an encoded unreserved character decoded, the other escapes in upper case, a
-- '%' that starts no escape encoded, and every byte a URL cannot hold raw
-- (non-ASCII, controls, space, ...) encoded. Reserved characters keep their
-- form: "%2F" and "/" stay different, as in the URL. '*' and '$' are kept.
local function canonical(s)
  if not s:find("[^%w%-%._~!%$&'%(%)%*%+,;=:@/%?]") then return s end -- canonical already (most paths)
  s = s:gsub("%%(%x?%x?)", function(hex)
    if #hex < 2 then return "%25" .. hex end
    local c = char(tonumber(hex, 16))
    if c:find("^[%w%-%._~]$") then return c end
    return "%" .. hex:upper()
  end)
  return (s:gsub("[^%w%-%._~!%$&'%(%)%*%+,;=:@/%?%%]", function(c)
    return format("%%%02X", byte(c))
  end))
end

-- A rule's pattern split at its '*'s: { pieces..., anchored = ends with '$' }.
local function compile(pattern)
  local anchored = pattern:sub(-1) == "$"
  if anchored then pattern = pattern:sub(1, -2) end
  local pieces = { anchored = anchored }
  for piece in (pattern .. "*"):gmatch("([^*]*)%*") do pieces[#pieces + 1] = piece end
  return pieces
end

-- Does `path` match the compiled pattern? The first piece is a prefix, the
-- others are found left to right (the leftmost place of each leaves the most
-- room for the rest), and an anchored pattern's last piece ends the path.
local function matches(path, pieces)
  local n, first = #pieces, pieces[1]
  if path:sub(1, #first) ~= first then return false end
  if n == 1 then return not pieces.anchored or #path == #first end
  local pos = #first + 1
  for i = 2, n - 1 do
    local _, e = path:find(pieces[i], pos, true)
    if not e then return false end
    pos = e + 1
  end
  local last = pieces[n]
  if pieces.anchored then
    return last == "" or (#path - #last + 1 >= pos and path:sub(-#last) == last)
  end
  return path:find(last, pos, true) ~= nil
end

---------------------------------------------------------------------------
-- the file

-- The product token a user-agent string or a User-agent line names
-- ("Mozilla/5.0 (compatible; MyBot/1.0)" -> "mozilla"), in lower case;
-- "*" for the line "User-agent: *".
local function product_token(s)
  if s:find("^%*") then return "*" end
  local token = s:match("^[%a_%-]+")
  return token and lower(token)
end

-- parse(text): the groups of a robots.txt, { groups = { { agents = { token = true },
-- rules = { { allow =, pattern =, pieces = } }, crawl_delay = } }, sitemaps = {},
-- rules_by_token = {} } (rules_for's, filled as agents ask).
-- Never fails: lines it does not know (and rules before any User-agent) are
-- ignored, as RFC 9309 2.2 asks.
function M.parse(text)
  text = text:sub(1, MAX_PARSED)
  if text:sub(1, 3) == "\239\187\191" then text = text:sub(4) end -- a UTF-8 BOM
  local groups, sitemaps = {}, {}
  local group, in_agents = nil, false
  for line in text:gmatch("[^\r\n]+") do
    local key, value = line:gsub("#.*", ""):match("^%s*([%a%-_]+)%s*:%s*(.-)%s*$")
    key = key and lower(key)
    if key == "user-agent" then
      if not in_agents then -- a User-agent after rules starts a new group
        group = { agents = {}, rules = {} }
        groups[#groups + 1] = group
        in_agents = true
      end
      local token = product_token(value)
      if token then group.agents[token] = true end
    elseif (key == "allow" or key == "disallow") and group then
      in_agents = false
      if value ~= "" then -- "Disallow:" alone disallows nothing
        local pattern = canonical(value)
        group.rules[#group.rules + 1] = { allow = key == "allow", pattern = pattern, pieces = compile(pattern) }
      end
    elseif key == "crawl-delay" and group then
      in_agents = false
      local seconds = tonumber(value)
      if seconds and seconds >= 0 and seconds < math.huge and not group.crawl_delay then
        group.crawl_delay = seconds
      end
    elseif key == "sitemap" then
      sitemaps[#sitemaps + 1] = value
    end
  end
  return { groups = groups, sitemaps = sitemaps, rules_by_token = {} }
end

-- The rules a user agent obeys: those of the groups that name its product token,
-- else of the "*" groups (RFC 9309 2.2.1: the groups that match are combined).
local Rules = {}
Rules.__index = Rules

local function rules_for(file, token)
  local known = file.rules_by_token[token]
  if known then return known end
  local chosen = {}
  for _, want in ipairs{ token, "*" } do
    for _, g in ipairs(file.groups) do
      if g.agents[want] then chosen[#chosen + 1] = g end
    end
    if #chosen > 0 then break end
  end
  local rules = { user_agent = token, rules = {}, sitemaps = file.sitemaps, crawl_delay = nil }
  for _, g in ipairs(chosen) do
    for _, r in ipairs(g.rules) do rules.rules[#rules.rules + 1] = r end
    rules.crawl_delay = rules.crawl_delay or g.crawl_delay
  end
  file.rules_by_token[token] = rules -- a run asks before every request
  return setmetatable(rules, Rules)
end

-- Whether rules allow path, a path already canonical (canonical(path) == path).
local function allows(rules, path)
  if path == "/robots.txt" then return true end
  local best = nil
  for _, r in ipairs(rules.rules) do
    if matches(path, r.pieces) and (not best or #r.pattern > #best.pattern
        or (#r.pattern == #best.pattern and r.allow)) then
      best = r
    end
  end
  return best == nil or best.allow
end

-- rules:allowed(path): may `path` (with its query: "/a?b=1") be fetched? The
-- rule with the longest pattern that matches decides, Allow on a tie; no
-- match allows; /robots.txt itself is always allowed (RFC 9309 2.2.2).
function Rules:allowed(path)
  if getmetatable(self) ~= Rules then
    error("aqueue.http.robots: allowed() is a method of the rules: rules:allowed(path)", 2)
  end
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
    error("aqueue.http.robots: rules:allowed(path): path must be a string starting with '/', got "
      .. (type(path) == "string" and format("%q", path) or type(path)), 2)
  end
  return allows(self, canonical(path))
end

local ALLOW_ALL = { groups = {}, sitemaps = {}, rules_by_token = {} }
local DISALLOW_ALL = M.parse("User-agent: *\nDisallow: /\n")

-- rules(text [, user_agent]): the Rules of a robots.txt's text, as robots()
-- would give them for a host that served it.
function M.rules(text, agent)
  return rules_for(M.parse(text), agent and product_token(agent) or DEFAULT_AGENT)
end

---------------------------------------------------------------------------
-- fetching, once per host

-- host key -> { file = } once fetched, { fetching = handle } meanwhile;
-- replaced by a new table at each run's start and end.
local cache = {}
-- host key -> the time its next paced request may start (run_queue{ robots = true }).
local next_start = {}
local enforced = false

-- Fetches the robots.txt at robots_url, following redirects by hand (at most
-- 5), with the asking request's user agent, proxy, CA file and timeout.
-- Returns { file = } or { err =, code = }.
local function fetch(robots_url, agent, o)
  local http_core = require("aqueue.http_core")
  local headers = { "Expect:" }
  if agent then headers[2] = "User-Agent: " .. agent end
  local target = robots_url
  for _ = 0, MAX_REDIRECTS do
    local res, err, code = http_core.request{ method = "GET", url = target, headers = headers,
      follow_redirects = false, max_body = MAX_FETCHED, timeout = o.timeout or FETCH_TIMEOUT,
      ca_file = o.ca_file, proxy = o.proxy }
    if not res then return { err = err .. " (fetching " .. target .. ")", code = code } end
    local status, location = res.status, res.headers.location
    if status >= 200 and status < 300 then return { file = M.parse(res.body) } end
    if status >= 500 then return { file = DISALLOW_ALL } end
    if status < 300 or status >= 400 or not location then return { file = ALLOW_ALL } end
    target = url.join(target, location)
    if not target then return { file = ALLOW_ALL } end -- a Location that is no URL
  end
  return { file = ALLOW_ALL } -- more than 5 redirects: unavailable (2.3.1.2)
end

-- The cache key and robots.txt URL of the host of u, or nil, err, code.
local function host_of(u)
  local p, err, code = url.parse(u)
  if not p then return nil, err, code end
  local scheme = lower(p.scheme)
  local port = p.port or (scheme == "https" and 443 or scheme == "http" and 80 or nil)
  local host = lower(p.host or "")
  local key = format("%s://%s:%s", scheme, host, tostring(port))
  local robots_url, build_err, build_code = url.build{ scheme = scheme, host = p.host, port = p.port, path = "/robots.txt" }
  if not robots_url then return nil, build_err, build_code end
  return key, robots_url, p
end

-- The parsed robots.txt of host `key` (fetched now, or by the fetch under
-- way), or nil, err, code.
local function file_of(key, robots_url, agent, o)
  local entry = cache[key]
  if not entry then
    local mine = cache
    entry = { fetching = spawn(function()
      local got = fetch(robots_url, agent, o)
      mine[key] = got.file and { file = got.file } or nil -- a failure is not kept
      return got
    end) }
    cache[key] = entry
  end
  if entry.file then return entry.file end
  local got, err = entry.fetching:result()
  if not got then return nil, err, "EHTTP" end
  return got.file, got.err, got.code
end

-- The path robots.txt rules are matched against: path and query.
local function target_of(parts)
  local path = parts.path
  if path == nil or path == "" then path = "/" end
  return parts.query and (path .. "?" .. parts.query) or path
end

-- The host key, robots.txt URL and target (path and query) of url u, and
-- whether the target is canonical already; or nil, err, code. A run asks
-- this before every request: the host's key and robots.txt URL are kept per
-- origin ("scheme://authority" as u writes it), and the target of a URL
-- whose path and query need no parsing is u's own text (what url.parse
-- would give): most URLs are told so by aqueue.url_core's origin_and_target
-- (the patterns below cost 4-5k instructions a request), and their targets
-- hold only bytes canonical() keeps; the others with a "%" by the patterns;
-- any other URL is parsed.
local SIMPLE_TARGET = "^/[%w%-._~/%%!$&'()*+,;=:@]*%??[%w%-._~/%%!$&'()*+,;=:@?]*$"
local origins = {} -- origin -> { key, robots_url }; the run's, like cache
local url_core -- aqueue.url_core, loaded by the first request of a run with robots = true
local function locate(u)
  url_core = url_core or require("aqueue.url_core")
  local origin, target = url_core.origin_and_target(u)
  local known = origin and origins[origin]
  if known then return known[1], known[2], target, true end -- (its bytes are canonical's)
  origin = u:match("^%a[%w+.%-]*://[^/?#]*")
  known = origin and origins[origin]
  if known then
    local rest = u:sub(#origin + 1):match("^[^#]*")
    if rest == "" then return known[1], known[2], "/" end
    if rest:find(SIMPLE_TARGET) and not rest:find("/%.%.?[/?]") and not rest:find("/%.%.?$") then
      return known[1], known[2], rest
    end
  end
  local key, robots_url, parts = host_of(u)
  if not key then return nil, robots_url, parts end
  if origin then origins[origin] = { key, robots_url } end
  return key, robots_url, target_of(parts)
end

-- The Rules for url u and user agent `agent` (a User-Agent string or nil),
-- with its host key and its target made canonical; or nil, err, code.
local function rules_of(u, agent, o)
  local key, robots_url, target, is_canonical = locate(u)
  if not key then return nil, robots_url, target end
  local file, err, code = file_of(key, robots_url, agent, o)
  if not file then return nil, err, code end
  return rules_for(file, agent and product_token(agent) or DEFAULT_AGENT), key, is_canonical and target or canonical(target)
end

-- The Rules for robots(fname) or robots_allowed, after checking their
-- arguments: rules, host key, target of u; or nil, err, code.
local function asked(fname, u, agent)
  if type(u) ~= "string" then
    error(format("aqueue.http.%s(url [, user_agent]): url must be a string, got %s", fname, type(u)), 3)
  end
  if agent ~= nil and (type(agent) ~= "string" or agent == "") then
    error(format("aqueue.http.%s(url [, user_agent]): user_agent must be a non-empty string, got %s",
      fname, type(agent) == "string" and '""' or type(agent)), 3)
  end
  local rules, key, target = rules_of(u, agent, {})
  return rules, key, target
end

-- robots(url [, user_agent]): the rules of url's host for that user agent
-- (default "aqueue"): rules:allowed(path), rules.crawl_delay (seconds or nil),
-- rules.sitemaps. Or nil, err, code when robots.txt could not be fetched.
function M.robots(u, agent)
  local rules, err, code = asked("robots", u, agent)
  if not rules then return nil, err, code end
  return rules
end

-- allowed(url [, user_agent]): true or false, or nil, err, code.
function M.allowed(u, agent)
  local rules, err, target = asked("robots_allowed", u, agent)
  if not rules then return nil, err, target end -- err, code
  return allows(rules, target)
end

---------------------------------------------------------------------------
-- run_queue{ robots = true }

-- The User-Agent of a request's header lines ("Name: value"), or nil.
local function agent_of(lines)
  for i = 1, #lines do
    local line = lines[i]
    local first = byte(line)
    if first == 85 or first == 117 then -- "U" or "u": the pattern only for names that may be it
      local name, value = line:match("^([^:;]+):%s*(.+)$")
      if name and lower(name) == "user-agent" then return value end
    end
  end
  return nil
end

-- Waits until the host may take the next request under its Crawl-delay, and
-- books it: the next may start `delay` s after now. The check and the booking
-- happen in one turn of the loop (nothing yields between them), so of the
-- requests that wait together, one goes each `delay`, and the times are
-- those the requests really leave at, not the times they were due.
local function pace(key, delay)
  if not delay or delay <= 0 then return end
  while true do
    local t, start = now(), next_start[key]
    if not start or start <= t then
      next_start[key] = t + delay
      return
    end
    sleep(start - t)
  end
end

-- Called by aqueue.http before a transfer of the core options o while a run
-- with robots = true is in progress: true once the request may go, or nil,
-- err, code (EROBOTS for a disallowed URL, the fetch's failure otherwise).
function M.admit(o)
  local rules, key, target = rules_of(o.url, agent_of(o.headers), o)
  if not rules then return nil, key, target end -- err, code
  if not allows(rules, target) then
    return nil, format("EROBOTS: %s: %s (user-agent %s)", o.url, errors.EROBOTS, rules.user_agent), "EROBOTS"
  end
  pace(key, rules.crawl_delay)
  return true
end

-- Is a run with robots = true in progress?
function M.enforced()
  return enforced
end

-- Called by run_queue as a run starts (with its robots option) and ends: the
-- cache and the pacing are the run's.
function M.start_run(on)
  cache, next_start, origins, enforced = {}, {}, {}, on
end

function M.end_run()
  cache, next_start, origins, enforced = {}, {}, {}, false
end

return M
