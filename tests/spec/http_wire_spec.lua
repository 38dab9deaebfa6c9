-- aqueue.http's own HTTP/1.1 path (http_wire.c: plain-HTTP GET and HEAD
-- without curl) against a server of raw answers (fixtures/http/wire_server.py):
-- the request's bytes, response framing sent in pieces, keep-alive and the
-- reuse of connections, max_connections, and failures with curl's codes.
local aqueue = require("aqueue")
local files = require("tests.support.files")
local http = aqueue.http
local wait = require("tests.support.wait")

local url, server, dir

setup(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "'") == 0)
  local port_file = dir .. "/port"
  server = aqueue.spawn(function()
    return aqueue.exec{ "python3", "tests/spec/fixtures/http/wire_server.py", port_file }
  end)
  wait.until_true(function() return files.exists(port_file) end, "the wire server's port")
  url = "http://127.0.0.1:" .. files.read(port_file)
end)

teardown(function()
  if server then
    assert(http.get(url .. "/quit"))
    assert.are.equal(0, server:result().code)
  end
  os.execute("rm -rf '" .. dir .. "'")
end)

describe("aqueue.http over plain HTTP sends", function()
  it("the request line, Host, User-Agent, Accept and the encodings it decodes, then the caller's headers", function()
    local res = assert(http.get(url .. "/echo?q=1#part", { headers = { ["X-One"] = "1" } }))
    local host = url:match("^http://(.*)$")
    assert.are.equal("GET /echo?q=1 HTTP/1.1\r\nHost: " .. host .. "\r\nUser-Agent: aqueue/" ..
      aqueue._VERSION .. "\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nX-One: 1\r\n\r\n", res.body)
  end)

  it("a header of the caller's instead of its own, none for false, an empty one for \"\"", function()
    local res = assert(http.get(url .. "/echo", { headers = {
      ["User-Agent"] = "mine", Accept = false, ["X-Empty"] = "", host = "example.test" } }))
    local lines = {}
    for line in res.body:gmatch("([^\r\n]*)\r\n") do lines[line] = true end
    assert.is_true(lines["User-Agent: mine"])
    assert.is_true(lines["host: example.test"])
    assert.is_true(lines["X-Empty:"])
    assert.is_nil(res.body:find("Accept: ", 1, true))
    assert.is_nil(res.body:find("aqueue/", 1, true))
    assert.is_nil(res.body:find("Host: 127", 1, true))
  end)

  it("a URL's user and password as Basic authorization, and the URL as curl writes it", function()
    local res = assert(http.get((url:gsub("^http://", "HTTP://us%%20er:p%%40ss@")) .. "/echo"))
    assert.matches("\r\nAuthorization: Basic dXMgZXI6cEBzcw==\r\n", res.body, 1, true) -- "us er:p@ss"
    assert.are.equal((url:gsub("^http://", "http://us%%20er:p%%40ss@")) .. "/echo", res.url)
  end)

  it("the URL as curl's URL API writes it, whichever way it was read", function()
    -- Common URLs are read without curl's URL API (http_wire.c: simple_target),
    -- the rest with it: both must give what curl gives (aqueue.url.join
    -- normalizes with curl's API).
    local port = url:match(":(%d+)$")
    for _, u in ipairs{
      url .. "/echo", url .. "/echo?", url .. "/echo?a=/../b&c=%41", url .. "/x/../echo", url .. "/./echo?q",
      url .. "/x/..", "HTTP://127.0.0.1:" .. port .. "/echo?Q", "http://localhost:" .. port .. "/echo",
      "http://127.1:" .. port .. "/echo", url .. "?", url, url .. "/echo?x=%7e~!$&'()*+,;=:@/?",
    } do
      local res = assert(http.get(u))
      local want = aqueue.url.join(u, "")
      assert.are.equal(want, res.url, u)
      local target = want:match("^http://[^/?]*(.*)$")
      if res.status == 200 then
        assert.are.equal("GET " .. target .. " HTTP/1.1", res.body:match("^[^\r]*"), u)
      end
    end
  end)

  it("a request larger than the socket takes at once (the rest written when it can be)", function()
    local big = ("0123456789abcdef"):rep(128 * 1024) -- 2 MB of header
    local res = assert(http.get(url .. "/echo", { headers = { ["X-Big"] = big } }))
    assert.is_truthy(res.body:find("\r\nX-Big: " .. big .. "\r\n", 1, true))
    assert.are.equal(200, assert(http.get(url .. "/id")).status)
  end)

  it("HEAD, and reads no body after it though the headers announce one", function()
    local res = assert(http.request{ method = "HEAD", url = url .. "/id" })
    assert.are.equal("", res.body)
    assert.are.equal("1000", res.headers["content-length"])
    local id = assert(http.get(url .. "/id")).body
    local again = assert(http.request{ method = "HEAD", url = url .. "/id" })
    assert.are.equal("", again.body)
    assert.are.equal(id, assert(http.get(url .. "/id")).body, "the connection went on after the HEAD")
  end)
end)

describe("aqueue.http over plain HTTP reads", function()
  it("a chunked body with extensions, arriving a byte at a time", function()
    local res = assert(http.get(url .. "/chunked-pieces"))
    assert.are.equal(200, res.status)
    assert.are.equal("hello 0123456789", res.body)
  end)

  it("a gzip body in chunks, decoded", function()
    assert.are.equal(("zipped "):rep(1000), assert(http.get(url .. "/gzip-chunked")).body)
  end)

  it("an HTTP/1.0 body that runs to the end of the connection", function()
    local res = assert(http.get(url .. "/http10"))
    assert.are.equal("until the end", res.body)
    assert.are.equal("1.0", res.http_version)
  end)

  it("a redirect on the same connection, and one to https by curl", function()
    local id = assert(http.get(url .. "/id")).body
    local res = assert(http.get(url .. "/to-id"))
    assert.are.equal(url .. "/id", res.url)
    assert.are.equal(id, res.body, "the redirect's body was read past, the connection kept")
    local _, err, code = http.get(url .. "/to-https")
    assert.are.equal("ECONNREFUSED", code)
    assert.matches("https://127.0.0.1:1/x", err, 1, true)
  end)

  it("one header without making res.headers, as res.headers gives it (res:html()'s charset)", function()
    local core = require("aqueue.http_core")
    local res = assert(http.get(url .. "/headers"))
    local names = { "content-type", "x-dup", "x-pad", "transfer-encoding", "x-trailer", "nocolon", "absent" }
    local got = {}
    for _, name in ipairs(names) do got[name] = core.header(res, name) end
    assert.is_nil(rawget(res, "headers"), "core.header made the table")
    for _, name in ipairs(names) do assert.are.equal(res.headers[name], got[name], name) end
    assert.are.equal("text/html; charset=latin1", got["content-type"])
    assert.are.equal("1, 2", got["x-dup"])
    assert.are.equal("padded", core.header(res, "x-pad")) -- from the table, once made
  end)

  it("no body for 204 and 304", function()
    assert.are.equal("", assert(http.get(url .. "/no-content")).body)
    local res = assert(http.get(url .. "/not-modified"))
    assert.are.equal(304, res.status)
    assert.are.equal("", res.body)
  end)
end)

describe("aqueue.http over plain HTTP keeps connections", function()
  it("and reuses one for requests one after the other", function()
    local ids = {}
    for i = 1, 10 do ids[i] = assert(http.get(url .. "/id")).body end
    for i = 2, 10 do assert.are.equal(ids[1], ids[i]) end
  end)

  it("and tries another when the server closed the one it had, even without saying so", function()
    local first = assert(http.get(url .. "/then-close")).body
    local second = assert(http.get(url .. "/id")).body
    assert.are_not.equal(first, second)
    assert.are.equal(second, assert(http.get(url .. "/id")).body)
  end)

  it("but not one that sent more than its answer", function()
    assert.are.equal("one", assert(http.get(url .. "/extra")).body)
    assert.are.equal(404, assert(http.get(url .. "/nothing-here")).status)
  end)

  it("within max_connections across hosts: the oldest idle one closes, or requests wait their turn", function()
    finally(function() http.configure{ max_connections = 100 } end)
    local hosts = { url, (url:gsub("127%.0%.0%.1", "localhost")) }
    http.configure{ max_connections = 1 } -- (idle connections over it close)
    assert(http.get(url .. "/reset"))
    local handles = {}
    for i = 1, 20 do
      handles[i] = aqueue.spawn(function() return assert(http.get(hosts[i % 2 + 1] .. "/id")).status end)
    end
    for i = 1, 20 do assert.are.equal(200, handles[i]:result()) end
    assert.are.equal("1", assert(http.get(url .. "/most-open")).body)
  end)

  -- (the server answers /counted-total once its other connections have
  -- nothing left to read)
  local function counted() return tonumber(assert(http.get(url .. "/counted-total")).body) end

  -- Tries a request cancelled by another task in the turn of the loop it
  -- was made in, on an idle connection (no connect: its bytes are ready at
  -- once), `tries` times, each after `pause` seconds; returns how many of
  -- them reached the server.
  local function cancelled_in_their_turn(tries, pause)
    local before = counted()
    for _ = 1, tries do
      assert(http.get(url .. "/id")) -- (a connection left idle)
      aqueue.sleep(pause) -- then a new turn: the two tasks below run in it, one after the other
      local request = aqueue.spawn(function() return http.get(url .. "/counted") end)
      local canceller = aqueue.spawn(function() request:cancel() end)
      canceller:result()
    end
    return counted() - before
  end

  it("and writes a request at once while the loop has time to spare", function()
    assert.are.equal(5, cancelled_in_their_turn(5, 0.02))
  end)

  it("but while the loop is busy all the time, a few together at the end of its turn", function()
    local hogging = true
    local hog = aqueue.spawn(function() -- keeps the loop from ever waiting for events
      while hogging do
        local until_t = aqueue.now() + 0.002
        while aqueue.now() < until_t do end
        coroutine.yield() -- (the turn goes to the other tasks and the loop, which finds work waiting)
      end
    end)
    finally(function()
      hogging = false
      hog:result()
    end)
    aqueue.sleep(0.03) -- (the loop is found busy at most 10 ms after it became so)
    local sent = cancelled_in_their_turn(5, 0.015)
    -- A turn ends early only when the engine's 10 ms time slice runs out
    -- between the two tasks (a machine that stalls just then): not in every try.
    assert.is_true(sent < 5, ("%d of 5 cancelled requests were sent"):format(sent))
    assert.are.equal(200, assert(http.get(url .. "/counted")).status) -- and the connections still serve
  end)

  it("and a request waiting for one can be cancelled", function()
    finally(function() http.configure{ max_connections = 100 } end)
    http.configure{ max_connections = 1 }
    local slow = aqueue.spawn(function() return assert(http.get(url .. "/slow")).body end)
    local waiting = aqueue.spawn(function() return http.get((url:gsub("127%.0%.0%.1", "localhost")) .. "/id") end)
    aqueue.sleep(0.05)
    waiting:cancel()
    assert.are.equal("slow", slow:result())
    assert.are.equal(200, assert(http.get(url .. "/id")).status)
  end)
end)

describe("aqueue.http with a proxy in the environment", function()
  it("sends every request through curl, which uses the proxy (nothing listens at it here)", function()
    local child = require("tests.support.child")
    local script = dir .. "/through_proxy.lua"
    files.write(script, [[
      local aqueue = require("aqueue")
      local _, err, code = aqueue.http.get(arg[1] .. "/id")
      print(code, err)
    ]])
    local res = assert(aqueue.exec{ child.runner(), "--progress", "none", script, url,
      env = { http_proxy = "http://127.0.0.1:1", no_proxy = false, NO_PROXY = false } })
    assert.are.equal(0, res.code, res.stderr)
    assert.matches("^ECONNREFUSED", res.stdout)
    assert.matches("127.0.0.1 port 1", res.stdout, 1, true) -- the proxy's address, not the server's
  end)
end)

describe("aqueue.http over plain HTTP fails with curl's codes", function()
  it("for a body cut short: ECONNRESET", function()
    local res, err, code = http.get(url .. "/short")
    assert.is_nil(res)
    assert.are.equal("ECONNRESET", code)
    assert.matches("6 bytes remaining", err, 1, true)
  end)

  it("for a status line that is not HTTP's: EPROTO", function()
    local res, _, code = http.get(url .. "/bad-status")
    assert.is_nil(res)
    assert.are.equal("EPROTO", code)
  end)

  it("for an answer that is not HTTP at all: EPROTONOSUPPORT, as curl says", function()
    local _, err, code = http.get(url .. "/not-http")
    assert.are.equal("EPROTONOSUPPORT", code)
    assert.matches("HTTP/0.9", err, 1, true)
  end)

  it("for a malformed chunk: ECONNRESET", function()
    local _, err, code = http.get(url .. "/bad-chunk")
    assert.are.equal("ECONNRESET", code)
    assert.matches("chunked", err, 1, true)
  end)

  it("for a coding it cannot decode: EPROTO", function()
    local _, err, code = http.get(url .. "/unknown-coding")
    assert.are.equal("EPROTO", code)
    assert.matches("content encoding", err, 1, true)
  end)

  it("and the connections after a failure still serve", function()
    for _ = 1, 3 do assert.are.equal(200, assert(http.get(url .. "/id")).status) end
  end)
end)
