-- robots.txt (RFC 9309): the parser (aqueue.robots), http.robots_allowed and
-- http.robots against a private nginx on 127.0.0.1, and run_queue{ robots = true }:
-- disallowed URLs refused with EROBOTS, Crawl-delay spacing the requests.
local aqueue = require("aqueue")
local http = aqueue.http
local robots = require("aqueue.robots")
local files = require("tests.support.files")
local nginx = require("tests.support.nginx")
local tcp = require("tests.support.tcp")
local eventually = require("tests.support.wait").eventually

-- The RFC 9309 section 5.1 example.
local RFC_EXAMPLE = [[
User-Agent: *
Disallow: *.gif$
Disallow: /example/
Allow: /publications/

User-Agent: foobot
Disallow:/
Allow:/example/page.html
Allow:/example/allowed.gif

User-Agent: barbot
User-Agent: bazbot
Disallow: /example/page.html

User-Agent: quxbot

EOF
]]

-- Asserts rules:allowed(path) for each { path, expected }.
local function assert_rules(rules, cases)
  for _, case in ipairs(cases) do
    assert.are.equal(case[2], rules:allowed(case[1]), ("%s for %s"):format(case[1], rules.user_agent))
  end
end

describe("the robots.txt parser", function()
  it("gives each user agent its group (RFC 9309 5.1)", function()
    assert_rules(robots.rules(RFC_EXAMPLE, "FooBot/1.0"), {
      { "/example/page.html", true }, { "/example/allowed.gif", true },
      { "/example/other.html", false }, { "/", false }, { "/publications/", false },
    })
    for _, agent in ipairs{ "barbot", "BazBot/2 (+http://example.com)" } do
      assert_rules(robots.rules(RFC_EXAMPLE, agent), {
        { "/example/page.html", false }, { "/example/other.html", true }, { "/a.gif", true },
      })
    end
    assert_rules(robots.rules(RFC_EXAMPLE, "quxbot"), { { "/example/page.html", true }, { "/a.gif", true } })
    -- no group of its own: the "*" group; the default agent is "aqueue"
    for _, rules in ipairs{ robots.rules(RFC_EXAMPLE, "otherbot"), robots.rules(RFC_EXAMPLE) } do
      assert_rules(rules, {
        { "/a.gif", false }, { "/a.gif?x=1", true }, { "/example/", false }, { "/example/x", false },
        { "/publications/", true }, { "/publications/a", true }, { "/", true }, { "/examples", true },
      })
    end
    assert.are.equal("aqueue", robots.rules(RFC_EXAMPLE).user_agent)
  end)

  it("lets the longest match win, and Allow a tie (RFC 9309 5.2)", function()
    local rules = robots.rules("User-Agent: foobot\nAllow: /example/page/\nDisallow: /example/page/disallowed.gif\n",
      "foobot")
    assert_rules(rules, {
      { "/example/page/", true }, { "/example/page/allowed.gif", true },
      { "/example/page/disallowed.gif", false }, { "/example/page/disallowed.gif.bak", false },
    })
    assert_rules(robots.rules("User-agent: *\nDisallow: /page\nAllow: /page\n"), { { "/page", true } })
    assert_rules(robots.rules("User-agent: *\nAllow: /page\nDisallow: /page\n"), { { "/page", true } })
    assert_rules(robots.rules("User-agent: *\nDisallow: /\nAllow: /a\nDisallow: /a/b\n"), {
      { "/", false }, { "/x", false }, { "/a", true }, { "/a/c", true }, { "/a/b", false }, { "/a/bc", false },
    })
  end)

  it("reads * as any run of characters and a final $ as the end", function()
    assert_rules(robots.rules("User-agent: *\nDisallow: /*.php$\nDisallow: /a*b*c\nDisallow: /x$\nAllow: /*5$\n"), {
      { "/index.php", false }, { "/dir/x.php", false }, { "/x.php?q=1", true }, { "/x.php5", true },
      { "/abc", false }, { "/a/long/b/and/c/", false }, { "/acb", true }, { "/a-b", true },
      { "/x", false }, { "/xy", true },
    })
    -- "*$" matches everything; "**" is one "*"; "/$" only the root
    assert_rules(robots.rules("User-agent: *\nDisallow: /p*$\nDisallow: /q**z\nDisallow: /$\n"), {
      { "/p", false }, { "/pages/1", false }, { "/q/z", false }, { "/qz", false }, { "/", false }, { "/r", true },
    })
  end)

  it("compares percent-encoded and raw paths alike (RFC 9309 2.2.2)", function()
    local rules = robots.rules("User-agent: *\nDisallow: /foo/bar/\227\131\132\nDisallow: /baz/%e3%83%84\n"
      .. "Disallow: /%62%61%7A\nDisallow: /sl%2Fash\n")
    assert_rules(rules, {
      { "/foo/bar/%E3%83%84", false }, { "/foo/bar/%e3%83%84", false }, { "/foo/bar/\227\131\132", false },
      { "/baz/%E3%83%84", false }, { "/baz", false }, { "/%62az", false },
      { "/sl%2fash", false }, { "/sl/ash", true }, { "/foo/bar/%E3%83%85", true },
    })
    assert_rules(robots.rules("User-agent: *\nDisallow: /a%zz\nDisallow: /b c\n"), {
      { "/a%25zz", false }, { "/a%zz", false }, { "/b%20c", false }, { "/b", true },
    })
  end)

  it("ignores comments, unknown lines, rules outside a group, a BOM; reads CRLF and CR lines", function()
    local text = "\239\187\191Disallow: /before-any-group\r\n# a comment\r\nUser-agent: * # all\r\n"
      .. "Foo: bar\r\nDisallow: /private/ # not /public/\r\nunknown line without colon\r\n"
      .. "Sitemap: http://127.0.0.1/sitemap.xml\rCrawl-delay: 2.5\rAllow: /private/ok\r"
    local rules = robots.rules(text)
    assert_rules(rules, {
      { "/before-any-group", true }, { "/private/x", false }, { "/private/ok", true }, { "/public/", true },
    })
    assert.are.equal(2.5, rules.crawl_delay)
    assert.are.same({ "http://127.0.0.1/sitemap.xml" }, rules.sitemaps)
    -- keys in any case, spaces around the colon; an empty Disallow disallows nothing
    assert_rules(robots.rules("USER-AGENT : *\nDISALLOW : /a\ndisallow:\n"), { { "/a", false }, { "/b", true } })
    -- a User-agent after rules starts a new group; groups of one agent are combined
    local two = "User-agent: a\nDisallow: /x\nUser-agent: b\nDisallow: /y\nUser-agent: a\nDisallow: /z\nCrawl-delay: 1\n"
    assert_rules(robots.rules(two, "a"), { { "/x", false }, { "/y", true }, { "/z", false } })
    assert_rules(robots.rules(two, "b"), { { "/x", true }, { "/y", false }, { "/z", true } })
    assert.are.equal(1, robots.rules(two, "a").crawl_delay)
    assert.is_nil(robots.rules(two, "b").crawl_delay)
    assert.is_nil(robots.rules("User-agent: *\nCrawl-delay: soon\n").crawl_delay)
  end)

  it("always allows /robots.txt, and allows everything without rules", function()
    assert_rules(robots.rules("User-agent: *\nDisallow: /\n"), { { "/robots.txt", true }, { "/robots.txt.bak", false } })
    assert_rules(robots.rules(""), { { "/", true }, { "/anything", true } })
    assert_rules(robots.rules("<html>not a robots.txt</html>"), { { "/", true } })
  end)

  it("reads the first 500 KiB of a file and no more", function()
    local filler = ("# " .. ("x"):rep(97) .. "\n"):rep(5000) -- 500,000 bytes of comments
    local text = "User-agent: *\nDisallow: /early/\n" .. filler .. "Disallow: /inside/\n"
      .. ("# padding\n"):rep(2000) .. "Disallow: /late/\n"
    assert.is_true(#text > 500 * 1024)
    assert_rules(robots.rules(text), { { "/early/", false }, { "/inside/", false }, { "/late/", true } })
  end)

  it("raises on a path that is not one", function()
    local rules = robots.rules("")
    assert.has_error(function() rules:allowed("relative") end,
      "aqueue.http.robots: rules:allowed(path): path must be a string starting with '/', got \"relative\"")
    assert.has_error(function() rules:allowed(nil) end,
      "aqueue.http.robots: rules:allowed(path): path must be a string starting with '/', got nil")
    assert.has_error(function() rules.allowed("/") end)
  end)
end)

-- The servers: the main one (its robots.txt forbids /private/, and a folder to
-- one agent) and, on ports of their own, hosts whose robots.txt is missing,
-- fails, redirects, or asks for a Crawl-delay. Every request is logged as
-- "port start-time uri", the start time being nginx's $msec (when the answer
-- was logged) less $request_time.
local server, base, hosts
local DELAY, SLACK = 0.3, 0.05

local ROBOTS = "User-agent: *\nDisallow: /private/\n\nUser-agent: specialbot\nDisallow: /public/\n"

setup(function()
  local ports = {}
  for _, name in ipairs{ "missing", "failing", "redirect5", "redirect6", "slow", "unreachable" } do
    ports[name] = tcp.free_port()
  end
  local function server_block(name, body)
    return ("server { listen 127.0.0.1:%d; access_log access.log robots; %s }\n"):format(ports[name], body)
  end
  local function chain(prefix, n, last)
    local out = ("location = /robots.txt { return 302 /%s1; }\n"):format(prefix)
    for i = 1, n - 1 do out = out .. ("location = /%s%d { return 302 /%s%d; }\n"):format(prefix, i, prefix, i + 1) end
    return out .. ("location = /%s%d { return 200 \"%s\"; }\n"):format(prefix, n, last)
  end
  server = nginx.start{
    http = [[ log_format robots '$server_port $msec $request_time $request_uri'; ]]
      .. server_block("missing", [[ location / { return 404; } ]])
      .. server_block("failing", [[ location = /robots.txt { return 500; } location / { return 200 "page"; } ]])
      .. server_block("redirect5", chain("r", 5, [[User-agent: *\nDisallow: /x\n]]) .. [[ location / { return 200; } ]])
      .. server_block("redirect6", chain("q", 6, [[User-agent: *\nDisallow: /x\n]]) .. [[ location / { return 200; } ]])
      .. server_block("slow", ([[ location = /robots.txt { return 200 "User-agent: *\nCrawl-delay: %s\nDisallow: /private/\n"; }
           location / { return 200 "ok"; } ]]):format(DELAY)),
    server = [[ access_log access.log robots; location / { return 200 "page $uri"; } location = /robots.txt { } ]],
  }
  files.write(server.root .. "/robots.txt", ROBOTS)
  base = server.url
  hosts = {}
  for name, port in pairs(ports) do hosts[name] = ("http://127.0.0.1:%d"):format(port) end
end)

teardown(function()
  if server then server:stop() end
end)

-- The log's lines { port =, start =, uri = } of host url `host`, once at least
-- `expected` are there (nginx logs a request once its answer is sent, a
-- moment after the client has it), and a little later for any more.
local function logged(host, expected)
  local port = tonumber(host:match(":(%d+)$"))
  local function lines()
    local out = {}
    for p, msec, took, uri in (files.read(server.prefix .. "/access.log") or ""):gmatch("(%d+) ([%d.]+) ([%d.]+) (%S+)\n") do
      if tonumber(p) == port then out[#out + 1] = { start = tonumber(msec) - tonumber(took), uri = uri } end
    end
    return out
  end
  eventually(function() return #lines() >= expected end)
  aqueue.sleep(0.05)
  return lines()
end

local function count(lines, uri)
  local n = 0
  for _, l in ipairs(lines) do if l.uri == uri then n = n + 1 end end
  return n
end

describe("http.robots_allowed", function()
  before_each(function() robots.end_run() end) -- each test starts with no host cached

  it("answers from the host's robots.txt, fetched once", function()
    local before = count(logged(base, 0), "/robots.txt")
    assert.is_true(http.robots_allowed(base .. "/"))
    assert.is_true(http.robots_allowed(base .. "/public/page.html"))
    assert.is_false(http.robots_allowed(base .. "/private/"))
    assert.is_false(http.robots_allowed(base .. "/private/a/b?c=d"))
    assert.is_true(http.robots_allowed(base .. "/privately"))
    assert.is_true(http.robots_allowed(base .. "/robots.txt"))
    assert.is_false(http.robots_allowed(base .. "/public/page.html", "SpecialBot/2.0"))
    assert.is_true(http.robots_allowed(base .. "/private/", "specialbot"))
    assert.are.equal(before + 1, count(logged(base, before + 1), "/robots.txt"))
  end)

  it("matches what the URL names, however it is written (the host's later URLs are read without a parse)", function()
    assert.is_true(http.robots_allowed(base .. "/")) -- (the host is known from here on)
    assert.is_false(http.robots_allowed(base .. "/public/../private/x")) -- dot segments resolved
    assert.is_false(http.robots_allowed(base .. "/public/./../private/"))
    assert.is_false(http.robots_allowed(base .. "/private/x#frag"))   -- the fragment is not sent
    assert.is_true(http.robots_allowed(base .. "#/private/"))
    assert.is_true(http.robots_allowed(base .. "?/private/"))
    assert.is_true(http.robots_allowed(base .. "/public/private/"))
    assert.is_false(http.robots_allowed(base .. "/private/a b"))       -- a space is encoded
  end)

  it("fetches once for concurrent askers", function()
    local before = count(logged(base, 0), "/robots.txt")
    local fns = {}
    for i = 1, 10 do
      fns[i] = function() return http.robots_allowed(base .. (i % 2 == 0 and "/private/" or "/") .. i) end
    end
    local results = { aqueue.gather(unpack(fns)) }
    for i = 1, 10 do assert.are.equal(i % 2 == 1, results[i], "asker " .. i) end
    assert.are.equal(before + 1, count(logged(base, before + 1), "/robots.txt"))
  end)

  it("allows everything when robots.txt is missing (4xx) and nothing when it fails (5xx)", function()
    assert.is_true(http.robots_allowed(hosts.missing .. "/private/"))
    assert.is_true(http.robots_allowed(hosts.missing .. "/"))
    assert.is_false(http.robots_allowed(hosts.failing .. "/"))
    assert.is_false(http.robots_allowed(hosts.failing .. "/page"))
    assert.are.equal(1, count(logged(hosts.failing, 1), "/robots.txt"))
  end)

  it("follows up to 5 redirects; more mean no robots.txt", function()
    assert.is_false(http.robots_allowed(hosts.redirect5 .. "/x"))
    assert.is_true(http.robots_allowed(hosts.redirect5 .. "/y"))
    assert.are.equal(1, count(logged(hosts.redirect5, 6), "/r5"))
    assert.is_true(http.robots_allowed(hosts.redirect6 .. "/x"))
    assert.are.equal(0, count(logged(hosts.redirect6, 6), "/q6"))
  end)

  it("returns nil, err, code when robots.txt cannot be fetched, and asks again next time", function()
    local ok, err, code = http.robots_allowed(hosts.unreachable .. "/page")
    assert.is_nil(ok)
    assert.are.equal("ECONNREFUSED", code)
    assert.matches("^ECONNREFUSED: .*%(fetching " .. hosts.unreachable:gsub("%p", "%%%0") .. "/robots.txt%)$", err)
    local ok2, _, code2 = http.robots_allowed(hosts.unreachable .. "/other")
    assert.is_nil(ok2)
    assert.are.equal("ECONNREFUSED", code2)
  end)

  it("gives the rules: allowed(path), crawl_delay, sitemaps", function()
    local rules = assert(http.robots(hosts.slow .. "/anything"))
    assert.are.equal(DELAY, rules.crawl_delay)
    assert.is_false(rules:allowed("/private/x"))
    assert.is_true(rules:allowed("/x"))
    local main = assert(http.robots(base .. "/", "specialbot/1"))
    assert.are.equal("specialbot", main.user_agent)
    assert.is_nil(main.crawl_delay)
    assert.is_false(main:allowed("/public/"))
  end)

  it("raises on bad arguments", function()
    assert.has_error(function() http.robots_allowed(42) end,
      "aqueue.http.robots_allowed(url [, user_agent]): url must be a string, got number")
    assert.has_error(function() http.robots_allowed(base .. "/", 5) end,
      "aqueue.http.robots_allowed(url [, user_agent]): user_agent must be a non-empty string, got number")
    assert.has_error(function() http.robots(base .. "/", "") end,
      "aqueue.http.robots(url [, user_agent]): user_agent must be a non-empty string, got \"\"")
    local ok, _, code = http.robots_allowed("not a url")
    assert.is_nil(ok)
    assert.are.equal("EINVAL", code)
  end)
end)

describe("run_queue{ robots = true }", function()
  local Fetch = aqueue.Item:extend("RobotsFetch")
  function Fetch:process()
    local res, err, code
    if self.agent then
      res, err, code = http.session{ user_agent = self.agent }:get(self.url)
    else
      res, err, code = http.get(self.url)
    end
    self.outcome = { status = res and res.status, err = err, code = code, at = aqueue.now() }
  end

  local function run(items, opts)
    opts = opts or {}
    opts.initial_items, opts.progress = items, "none"
    if opts.robots == nil then opts.robots = true end
    return aqueue.run_queue(opts)
  end

  it("refuses a disallowed URL with EROBOTS, without a request", function()
    local before = logged(base, 0)
    local items = {
      Fetch{ url = base .. "/public/a" }, Fetch{ url = base .. "/private/b" },
      Fetch{ url = base .. "/public/c", agent = "SpecialBot/2.0" },
    }
    assert.are.equal(3, run(items).processed)
    assert.are.equal(200, items[1].outcome.status)
    for i = 2, 3 do
      local o = items[i].outcome
      assert.is_nil(o.status)
      assert.are.equal("EROBOTS", o.code)
      assert.are.equal(("EROBOTS: %s: disallowed by robots.txt (user-agent %s)")
        :format(items[i].url, i == 2 and "aqueue" or "specialbot"), o.err)
    end
    local lines = logged(base, #before + 2)
    assert.are.equal(count(before, "/robots.txt") + 1, count(lines, "/robots.txt"))
    assert.are.equal(count(before, "/public/a") + 1, count(lines, "/public/a"))
    assert.are.equal(0, count(lines, "/private/b"))
    assert.are.equal(0, count(lines, "/public/c"))
  end)

  it("makes every request without robots = true, and fetches robots.txt again in the next run", function()
    local items = { Fetch{ url = base .. "/private/d" } }
    run(items, { robots = false })
    assert.are.equal(200, items[1].outcome.status)
    local before = count(logged(base, 0), "/robots.txt")
    items = { Fetch{ url = base .. "/private/d" } }
    run(items)
    assert.are.equal("EROBOTS", items[1].outcome.code)
    assert.are.equal(before + 1, count(logged(base, before + 1), "/robots.txt"))
  end)

  it("spaces the requests to a host by its Crawl-delay", function()
    local items = {}
    for i = 1, 4 do items[i] = Fetch{ url = hosts.slow .. "/page/" .. i } end
    items[5] = Fetch{ url = base .. "/public/unpaced" } -- another host: not held back
    assert.are.equal(5, run(items, { num_workers = 5 }).processed)
    local pages = {}
    for _, l in ipairs(logged(hosts.slow, 5)) do
      if l.uri:find("^/page/") then pages[#pages + 1] = l end
    end
    assert.are.equal(4, #pages)
    -- the server saw them in the order their answers came back, each DELAY
    -- after the one before, give or take the latency between the client's
    -- send and nginx's read (a new connection's handshake, a busy machine:
    -- SLACK); unpaced, they come within a few ms of each other
    local order = {}
    for i = 1, 4 do order[i] = items[i] end
    table.sort(order, function(a, b) return a.outcome.at < b.outcome.at end)
    for i = 1, 4 do
      assert.are.equal(order[i].url, hosts.slow .. pages[i].uri)
      if i > 1 then
        local gap = pages[i].start - pages[i - 1].start
        assert.is_true(gap >= DELAY - SLACK, ("request %d came %.3f s after the one before"):format(i, gap))
      end
    end
    local span = pages[4].start - pages[1].start
    assert.is_true(span >= 3 * DELAY - SLACK, ("4 requests in %.3f s"):format(span))
    assert.is_true(items[5].outcome.at < order[2].outcome.at, "the other host's request did not wait")
  end)

  it("fails a request whose robots.txt cannot be fetched with the fetch's failure", function()
    local items = { Fetch{ url = hosts.unreachable .. "/page" } }
    run(items)
    assert.are.equal("ECONNREFUSED", items[1].outcome.code)
    assert.matches("robots.txt)", items[1].outcome.err, 1, true)
  end)

  it("raises on a robots option that is not a boolean", function()
    assert.has_error(function() run({ Fetch{ url = base .. "/" } }, { robots = "yes" }) end,
      'run_queue: robots must be true or false, got "yes"')
    assert.has_error(function() run({ Fetch{ url = base .. "/" } }, { robots = 1 }) end,
      "run_queue: robots must be true or false, got a number")
  end)
end)
