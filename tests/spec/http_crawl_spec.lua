-- aqueue.http for crawling: res:json(), max_body, retry_on, compressed bodies,
-- HTTP/2, sessions (cookies, default headers, proxy), against a private nginx
-- on 127.0.0.1 (tests/support/nginx.lua).
local aqueue = require("aqueue")
local http = aqueue.http
local files = require("tests.support.files")
local nginx = require("tests.support.nginx")
local eventually = require("tests.support.wait").eventually

local ffi = require("ffi")

-- The bodies of compressed test files, made by the libraries curl decodes
-- them with (zlib, and libbrotlienc beside curl's libbrotlidec).
ffi.cdef[[
int compress2(uint8_t *dest, unsigned long *dest_len, const uint8_t *source, unsigned long source_len, int level);
int BrotliEncoderCompress(int quality, int lgwin, int mode, size_t input_size, const uint8_t *input,
                          size_t *encoded_size, uint8_t *encoded);
]]

local function deflate(s) -- "deflate" in HTTP is the zlib format (RFC 9110 8.4.1.2)
  local zlib = ffi.load("libz.so.1")
  local len = ffi.new("unsigned long[1]", #s + 1024)
  local out = ffi.new("uint8_t[?]", len[0])
  assert(zlib.compress2(out, len, s, #s, 6) == 0)
  return ffi.string(out, len[0])
end

local function brotli(s)
  local enc = ffi.load("libbrotlienc.so.1")
  local len = ffi.new("size_t[1]", #s + 1024)
  local out = ffi.new("uint8_t[?]", len[0])
  assert(enc.BrotliEncoderCompress(5, 22, 0, #s, s, len, out) == 1)
  return ffi.string(out, len[0])
end

local server, base
local text -- 198 kB of text, served gzip-encoded (chunked: no Content-Length)
local blob -- 100 kB served as is (with a Content-Length)

setup(function()
  text = ("the quick brown fox jumps over the lazy dog\n"):rep(4500) -- 198 kB
  blob = ("0123456789"):rep(10000)
  server = nginx.start{
    http = [[
      gzip on;
      gzip_types text/plain;
      gzip_min_length 1000;
    ]],
    server = [[
      location = /data.json { default_type application/json; return 200 '{"a":[1,2],"b":"x","n":null}'; }
      location = /page.html { default_type text/html; return 200 "<html><body>not JSON</body></html>"; }
      location = /empty { return 200 ""; }
      location = /login { add_header Set-Cookie "x=42; Path=/"; return 200 "logged in"; }
      location = /private {
        if ($cookie_x) { return 200 "hello $cookie_x"; }
        return 403 "no cookie";
      }
      location = /headers { return 200 "$http_x_a|$http_x_b|$http_user_agent"; }
      location ~ ^/text[.](br|deflate)$ { default_type application/octet-stream; add_header Content-Encoding $1; }
      location = /moved { return 302 /dir/links.html; }
      location = /greek.html { charset ISO-8859-7; }
    ]],
  }
  base = server.url
  files.write(server.root .. "/big.txt", text)
  files.write(server.root .. "/big.bin", blob)
  files.write(server.root .. "/text.br", brotli(text))
  files.write(server.root .. "/text.deflate", deflate(text))
  os.execute("mkdir -p '" .. server.root .. "/dir'")
  files.write(server.root .. "/dir/links.html", table.concat{
    "<html><head><title>Links</title></head><body>",
    '<a href="a.html">a</a> <a href="/b.html#part">b</a> <a href="../c.html?x=1">c</a>',
    '<a href="a.html#again">a again</a> <a href="mailto:x@y">mail</a> <img src="i.gif">',
    "</body></html>" })
  files.write(server.root .. "/greek.html", "<html><body><p>\225\226\227</p></body></html>") -- no <meta>
end)

teardown(function()
  if server then server:stop() end
end)

describe("res:json()", function()
  it("decodes the body", function()
    local res = assert(http.get(base .. "/data.json"))
    assert.are.same({ a = { 1, 2 }, b = "x", n = aqueue.json.null }, res:json())
  end)

  it("returns nil, err, EJSON for a body that is not JSON, naming the URL", function()
    for _, path in ipairs{ "/page.html", "/empty" } do
      local res = assert(http.get(base .. path))
      local value, err, code = res:json()
      assert.is_nil(value)
      assert.are.equal("EJSON", code)
      assert.matches("^EJSON: the body is not valid JSON: " .. base .. path .. " %(.+%)$", err)
    end
  end)

  it("works on every kind of request", function()
    assert.are.equal("x", assert(http.post(base .. "/data.json", "")):json().b)
    assert.are.equal("x", assert(http.request{ url = base .. "/data.json" }):json().b)
  end)

  it("raises when the body went to a file, or when called without the response", function()
    local path = server.prefix .. "/data.json"
    local res = assert(http.get(base .. "/data.json", { output = path }))
    assert.has_error(function() res:json() end, "aqueue.http: res:json(): the body went to a file (output =), not to res.body")
    assert.has_error(function() res.json() end, "aqueue.http: json() is a method of a response: res:json()")
  end)
end)

describe("res:html() and res:links()", function()
  it("parses the page once, its links absolute against the URL after redirects", function()
    local res = assert(http.get(base .. "/moved"))
    local doc = res:html()
    assert.are.equal(doc, res:html())
    assert.are.equal("Links", doc:css_first("title::text"))
    assert.are.same({ base .. "/dir/a.html", base .. "/b.html", base .. "/c.html?x=1" }, res:links())
    assert.are.same({ base .. "/dir/i.gif" }, res:links("img"))
  end)

  it("reads the page's charset from the Content-Type header", function()
    local res = assert(http.get(base .. "/greek.html")) -- (read as Latin-1, the bytes would be "áâã")
    assert.are.equal("αβγ", res:html():css_first("p::text"))
  end)

  it("gives an empty document for a body that is not HTML", function()
    local res = assert(http.get(base .. "/data.json"))
    assert.are.same({}, res:html():css("a"))
    assert.are.same({}, res:links())
  end)

  it("raises when the body went to a file, or when called without the response", function()
    local res = assert(http.get(base .. "/dir/links.html", { output = server.prefix .. "/links.html" }))
    assert.has_error(function() res:html() end, "aqueue.http: res:html(): the body went to a file (output =), not to res.body")
    assert.has_error(function() res.links() end, "aqueue.http: links() is a method of a response: res:links()")
  end)
end)

describe("max_body", function()
  it("fails a body larger than max_body with EFBIG, by its Content-Length", function()
    local res, err, code = http.get(base .. "/big.bin", { max_body = 1000 })
    assert.is_nil(res)
    assert.are.equal("EFBIG", code)
    assert.are.equal("EFBIG: response body larger than max_body = 1000 bytes: " .. base .. "/big.bin", err)
  end)

  it("counts the decoded bytes of a compressed body without a Content-Length", function()
    local res = assert(http.get(base .. "/big.txt"))
    assert.are.equal("gzip", res.headers["content-encoding"])
    assert.is_nil(res.headers["content-length"])
    local _, err, code = http.get(base .. "/big.txt", { max_body = #text - 1 })
    assert.are.equal("EFBIG", code, err)
    res = assert(http.get(base .. "/big.txt", { max_body = #text }))
    assert.is_true(res.body == text, "a body of exactly max_body bytes arrives whole")
  end)

  it("keeps no partial output file", function()
    local path = server.prefix .. "/out.txt"
    local res, _, code = http.get(base .. "/big.txt", { max_body = 5000, output = path })
    assert.is_nil(res)
    assert.are.equal("EFBIG", code)
    assert.is_false(files.exists(path))
    assert.is_false(files.exists(path .. ".part"))
  end)

  it("leaves the client working: many requests stopped at once, then whole ones", function()
    local handles = {}
    for i = 1, 20 do
      handles[i] = aqueue.spawn(function()
        return select(3, http.get(base .. (i % 2 == 0 and "/big.txt" or "/big.bin"), { max_body = 100 }))
      end)
    end
    for i = 1, 20 do assert.are.equal("EFBIG", handles[i]:result()) end
    assert.is_true(assert(http.get(base .. "/big.bin")).body == blob)
    assert.is_true(assert(http.get(base .. "/big.txt", { max_body = 1e6 })).body == text)
  end)

  it("raises for a value that is not a whole number of bytes", function()
    for _, bad in ipairs{ 0, -1, 1.5, 0 / 0 } do
      assert.has_error(function() http.get(base .. "/big.bin", { max_body = bad }) end,
        "aqueue.http.get: option 'max_body' must be a whole number of bytes from 1, got " .. tostring(bad))
    end
    assert.has_error(function() http.get(base .. "/big.bin", { max_body = "1k" }) end,
      "aqueue.http.get: option 'max_body' must be a number, got string")
  end)
end)

-- The retry locations answer by the request's number on its connection
-- ($connection_requests): nginx keeps no state between requests, but curl
-- sends the retries of one call on one kept-alive connection, and
-- keepalive_requests closes it after the last answer, so the next test
-- starts on a new one. (A server of its own: the other tests' connections
-- have counts of their own.) Each location logs its requests, to count them.
describe("retry_on", function()
  local retry_server, retry_base

  setup(function()
    retry_server = nginx.start{
      http = [[
        map $connection_requests $upto2 { 1 1; 2 1; default 0; }
        map $connection_requests $first { 1 1; default 0; }
      ]],
      server = [[
        location = /429-twice {
          access_log 429-twice.log;
          keepalive_requests 3;
          if ($upto2) { add_header Retry-After 1 always; return 429 "slow down"; }
          return 200 "ok after two 429";
        }
        location = /503-once {
          access_log 503-once.log;
          keepalive_requests 2;
          if ($first) { return 503 "busy"; }
          return 200 "ok after a 503";
        }
        location = /429-echo {
          access_log 429-echo.log;
          keepalive_requests 2;
          if ($first) { add_header Retry-After $http_x_retry_after always; return 429 "slow down"; }
          return 200 "ok";
        }
        location = /429-always {
          access_log 429-always.log;
          keepalive_requests 1;
          add_header Retry-After $http_x_retry_after always;
          return 429 "slow down";
        }
      ]],
    }
    retry_base = retry_server.url
  end)

  teardown(function()
    if retry_server then retry_server:stop() end
  end)

  -- The requests a location logged since the last call. nginx logs a
  -- request once its answer is sent, so the last line may come a moment
  -- after the answer: wait for `expected` lines, then a little for any more.
  local seen = {}
  local function requests(name, expected)
    local function count()
      local _, n = (files.read(retry_server.prefix .. "/" .. name .. ".log") or ""):gsub("\n", "")
      return n - (seen[name] or 0)
    end
    eventually(function() return count() >= expected end)
    aqueue.sleep(0.05)
    local n = count()
    seen[name] = (seen[name] or 0) + n
    return n
  end

  it("waits as Retry-After says (seconds) and returns the answer that came", function()
    local t0 = aqueue.now()
    local res = assert(http.get(retry_base .. "/429-twice", { retry_on = { 429, 503 } }))
    assert.are.equal(200, res.status)
    assert.are.equal("ok after two 429", res.body)
    assert.are.equal(3, requests("429-twice", 3))
    assert.is_true(aqueue.now() - t0 >= 2, "two Retry-After: 1 waits")
  end)

  it("backs off without Retry-After", function()
    local res = assert(http.get(retry_base .. "/503-once", { retry_on = { 503 }, retry_backoff = 0.01 }))
    assert.are.equal("ok after a 503", res.body)
    assert.are.equal(2, requests("503-once", 2))
  end)

  it("honours a Retry-After HTTP-date, in the future or past", function()
    local t0 = aqueue.now()
    local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 2)
    local res = assert(http.get(retry_base .. "/429-echo", { retry_on = { 429 }, headers = { ["X-Retry-After"] = date } }))
    assert.are.equal(200, res.status)
    assert.are.equal(2, requests("429-echo", 2))
    assert.is_true(aqueue.now() - t0 >= 1, "waited until the date (to the second)")
    res = assert(http.get(retry_base .. "/429-echo", { retry_on = { 429 },
      headers = { ["X-Retry-After"] = "Sun, 06 Nov 1994 08:49:37 GMT" } }))
    assert.are.equal(200, res.status)
    assert.are.equal(2, requests("429-echo", 2))
  end)

  it("returns the last answer when the retries are used up", function()
    local res = assert(http.get(retry_base .. "/429-always", { retry_on = { 429 }, retries = 2,
      headers = { ["X-Retry-After"] = "0" } }))
    assert.are.equal(429, res.status)
    assert.are.equal("0", res.headers["retry-after"])
    assert.are.equal(3, requests("429-always", 3))
    res = assert(http.get(retry_base .. "/429-always", { retry_on = { 429 }, retries = 0 }))
    assert.are.equal(429, res.status)
    assert.are.equal(1, requests("429-always", 1))
  end)

  it("returns at once when Retry-After asks for more than retry_max_wait", function()
    local res = assert(http.get(retry_base .. "/429-always", { retry_on = { 429 },
      headers = { ["X-Retry-After"] = "3600" } }))
    assert.are.equal(429, res.status)
    assert.are.equal(1, requests("429-always", 1))
    res = assert(http.get(retry_base .. "/429-always", { retry_on = { 429 }, retry_max_wait = 5,
      headers = { ["X-Retry-After"] = "6" } }))
    assert.are.equal(1, requests("429-always", 1))
  end)

  it("does not retry other statuses, nor without retry_on", function()
    local res = assert(http.get(retry_base .. "/429-always", { retry_on = { 503 } }))
    assert.are.equal(429, res.status)
    assert.are.equal(1, requests("429-always", 1))
    res = assert(http.get(retry_base .. "/429-always"))
    assert.are.equal(1, requests("429-always", 1))
  end)

  it("raises for bad retry options", function()
    local url = retry_base .. "/429-always"
    assert.has_error(function() http.get(url, { retry_on = { "429" } }) end,
      "aqueue.http.get: option 'retry_on' must be a list of HTTP statuses, got 429 at 1")
    assert.has_error(function() http.get(url, { retry_on = { 42 } }) end,
      "aqueue.http.get: option 'retry_on' must be a list of HTTP statuses, got 42 at 1")
    assert.has_error(function() http.get(url, { retry_on = { 429 }, retries = -1 }) end,
      "aqueue.http.get: option 'retries' must be a whole number from 0, got -1")
    assert.has_error(function() http.get(url, { retry_on = { 429 }, retry_backoff = -1 }) end,
      "aqueue.http.get: option 'retry_backoff' must be a number of seconds from 0, got -1")
    assert.has_error(function() http.get(url, { retries = 2 }) end,
      "aqueue.http.get: option 'retries' is for retry_on, which is missing")
    assert.are.equal(0, requests("429-always", 0))
  end)
end)

describe("compressed bodies and HTTP versions", function()
  it("decodes gzip, deflate and br", function()
    for _, case in ipairs{ { "/big.txt", "gzip" }, { "/text.deflate", "deflate" }, { "/text.br", "br" } } do
      local res = assert(http.get(base .. case[1]))
      assert.are.equal(case[2], res.headers["content-encoding"])
      assert.is_true(res.body == text, case[2] .. ": the decoded text differs")
    end
    assert.is_true(#brotli(text) < #text / 4, "the br file is compressed")
  end)

  it("speaks HTTP/1.1 in the clear, HTTP/2 over TLS where the server offers it", function()
    assert.are.equal("1.1", assert(http.get(base .. "/data.json")).http_version)
    local tls = nginx.start{ tls = true, http2 = true, server = [[ location = /hello { return 200 "secure"; } ]] }
    finally(function() tls:stop() end)
    local res = assert(http.get(tls.url .. "/hello", { ca_file = tls.cert }))
    assert.are.equal("secure", res.body)
    assert.are.equal("2", res.http_version)
    local h1 = nginx.start{ tls = true, server = [[ location = /hello { return 200 "secure"; } ]] }
    finally(function() h1:stop() end)
    assert.are.equal("1.1", assert(http.get(h1.url .. "/hello", { ca_file = h1.cert })).http_version)
  end)

  it("trusts only the CAs of ca_file when it is given", function()
    local tls = nginx.start{ tls = true, server = [[ location = /hello { return 200 "secure"; } ]] }
    finally(function() tls:stop() end)
    local _, _, code = http.get(tls.url .. "/hello")
    assert.are.equal("ECERT", code)
    _, _, code = http.get(tls.url .. "/hello", { ca_file = "/etc/ssl/certs/ca-certificates.crt" })
    assert.are.equal("ECERT", code)
    local _, err
    _, err, code = http.get(tls.url .. "/hello", { ca_file = server.prefix .. "/missing.pem" })
    assert.are.equal("ETLS", code, err)
    assert.has_error(function() http.get(tls.url, { ca_file = "" }) end, "aqueue.http.get: option 'ca_file' must be a file path")
  end)
end)

describe("http.session", function()
  it("keeps the cookies a page sets for the next requests", function()
    local s = http.session{ cookies = true }
    assert.are.equal(403, assert(s:get(base .. "/private")).status)
    assert.are.equal("logged in", assert(s:get(base .. "/login")).body)
    local res = assert(s:get(base .. "/private"))
    assert.are.equal(200, res.status)
    assert.are.equal("hello 42", res.body)
    assert.are.equal("hello 42", assert(s:post(base .. "/private", "")).body)
    assert.are.equal("hello 42", assert(s:request{ url = base .. "/private" }).body)
  end)

  it("shares the jar between concurrent tasks, and with no one else", function()
    local s = http.session{ cookies = true }
    assert(s:get(base .. "/login"))
    local handles = {}
    for i = 1, 30 do
      handles[i] = aqueue.spawn(function()
        if i % 3 == 0 then return assert(http.get(base .. "/private")).status end          -- no session
        if i % 3 == 1 then return assert(http.session{ cookies = true }:get(base .. "/private")).status end
        return assert(s:get(base .. "/private")).status
      end)
    end
    for i = 1, 30 do
      assert.are.equal(i % 3 == 2 and 200 or 403, handles[i]:result(), "task " .. i)
    end
    -- the easy handles the session used went back to the pool without its jar
    for _ = 1, 5 do assert.are.equal(403, assert(http.get(base .. "/private")).status) end
    assert.are.equal(403, assert(http.session():get(base .. "/private")).status, "cookies are off by default")
  end)

  it("sends its headers and user agent under each request's own", function()
    local s = http.session{ headers = { ["X-A"] = "a", ["X-B"] = "b" }, user_agent = "crawler/2" }
    assert.are.equal("a|b|crawler/2", assert(s:get(base .. "/headers")).body)
    assert.are.equal("a|own|crawler/2", assert(s:get(base .. "/headers", { headers = { ["x-b"] = "own" } })).body)
    assert.are.equal("a|b|mine", assert(s:get(base .. "/headers", { headers = { ["user-agent"] = "mine" } })).body)
    assert.are.equal("a||crawler/2", assert(s:get(base .. "/headers", { headers = { ["X-B"] = false } })).body)
    local agent = http.session{ headers = { ["User-Agent"] = "from headers" }, user_agent = "crawler/2" }
    assert.are.equal("||from headers", assert(agent:get(base .. "/headers")).body)
  end)

  it("gives its options as defaults: max_body, timeout, retry_on", function()
    local s = http.session{ max_body = 10 }
    assert.are.equal("EFBIG", select(3, s:get(base .. "/big.bin")))
    assert.is_true(assert(s:get(base .. "/big.bin", { max_body = #blob })).body == blob)
  end)

  it("sends its requests through the proxy", function()
    local proxy = nginx.start{ server = [[ location / { return 200 "proxied $http_host$request_uri"; } ]] }
    finally(function() proxy:stop() end)
    local nowhere_host = "127.0.0.1:" .. require("tests.support.tcp").free_port()
    local nowhere = "http://" .. nowhere_host .. "/page?q=1"
    local s = http.session{ proxy = proxy.url }
    local res = assert(s:get(nowhere))
    assert.are.equal("proxied " .. nowhere_host .. "/page?q=1", res.body)
    assert.are.equal("ECONNREFUSED", select(3, http.get(nowhere)))
  end)

  it("raises on misuse", function()
    assert.has_error(function() http.session("x") end, "aqueue.http.session: options must be a table, got string")
    assert.has_error(function() http.session{ cookies = "yes" } end,
      "aqueue.http.session: option 'cookies' must be a boolean, got string")
    assert.has_error(function() http.session{ url = base } end,
      "aqueue.http.session: option 'url' belongs to each request, not to a session")
    assert.has_error(function() http.session{ timout = 1 } end, "aqueue.http.session: unknown option 'timout'")
    assert.has_error(function() http.session{ timeout = -1 } end,
      "aqueue.http.session: option 'timeout' must be a positive number of seconds, got -1")
    local s = http.session()
    assert.has_error(function() s.get(base) end, "aqueue.http.session:get is a method of a session: s:get(...)")
    assert.has_error(function() s:get(base, { timout = 1 }) end, "aqueue.http.session:get: unknown option 'timout'")
    local ok, err = pcall(function() s:get(base, { timout = 1 }) end)
    assert.is_false(ok)
    assert.matches("http_crawl_spec.lua:%d+: aqueue.http.session:get", err)
  end)
end)
