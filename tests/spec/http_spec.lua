-- aqueue.http: requests against a private nginx on 127.0.0.1 (tests/support/nginx.lua),
-- failures, misuse, cancellation, concurrency and connection reuse.
local aqueue = require("aqueue")
local files = require("tests.support.files")
local http = aqueue.http
local nginx = require("tests.support.nginx")
local tcp = require("tests.support.tcp")
local longer_wait = require("tests.support.longer_wait")
local wait = require("tests.support.wait")
local eventually = wait.eventually


-- 5 MB that would show any lost, repeated or reordered chunk: 64 KB of
-- pseudo-random bytes, rotated by a different amount in each chunk.
local function binary_blob(size)
  local seed, bytes = 12345, {}
  for i = 1, 65536 do
    seed = (seed * 1103515245 + 12345) % 2147483648
    bytes[i] = string.char(seed % 256)
  end
  local base = table.concat(bytes)
  local chunks = {}
  for i = 0, size / 65536 - 1 do
    local k = (i * 7919) % 65536
    chunks[#chunks + 1] = base:sub(k + 1) .. base:sub(1, k)
  end
  return table.concat(chunks)
end

local function distinct(list)
  local seen, n = {}, 0
  for _, v in ipairs(list) do
    if not seen[v] then
      seen[v] = true
      n = n + 1
    end
  end
  return n
end

local server, base, tmpdir
local BIG = 5 * 1024 * 1024
local blob, text

setup(function()
  blob = binary_blob(BIG)
  local lines = {}
  for i = 1, 20000 do lines[i] = ("line %d: the quick brown fox jumps over the lazy dog\n"):format(i) end
  text = table.concat(lines)
  server = nginx.start{
    http = [[
      gzip on;
      gzip_types text/plain;
      gzip_min_length 1000;
    ]],
    server = [[
      absolute_redirect off;
      location = /redirect { return 302 /small.txt; }
      location = /redirect-chain { return 301 /redirect; }
      location = /loop { return 302 /loop; }
      location = /to-ftp { return 302 ftp://127.0.0.1:1/x; }
      location = /to-file { return 302 file:///etc/hostname; }
      location = /drop { return 444; }
      location = /busy { return 503 "busy"; }
      location = /echo-header { return 200 "$http_x_test"; }
      location = /agent { return 200 "$http_user_agent"; }
      location = /method { return 200 "$request_method $content_length"; }
      location = /conn { return 200 "$connection"; }
      location = /close { keepalive_timeout 0; return 200 "$connection"; }
      location = /short-idle { keepalive_timeout 50ms; return 200 "$connection"; }
      location /slow/ { rewrite ^/slow(/.*)$ $1 break; limit_rate 100k; }
      location = /dup { add_header X-Dup one; add_header X-Dup two; return 200 "dup"; }
      location /upload/ {
        dav_methods PUT DELETE;
        create_full_put_path on;
        client_max_body_size 0;
      }
    ]],
  }
  base = server.url
  files.write(server.root .. "/small.txt", "hello\n")
  files.write(server.root .. "/big.bin", blob)
  files.write(server.root .. "/big.txt", text)
  os.execute("mkdir -p " .. server.root .. "/n")
  for i = 1, 200 do files.write(("%s/n/%d.txt"):format(server.root, i), "file " .. i) end
  tmpdir = server.prefix .. "/client"
  os.execute("mkdir -p " .. tmpdir)
end)

teardown(function()
  if server then server:stop() end
end)

describe("aqueue.http responses", function()
  it("get returns the status, lower-case headers, the body, the URL and the time taken", function()
    local t0 = aqueue.now()
    local res, err = http.get(base .. "/small.txt")
    local wall = aqueue.now() - t0
    assert.is_nil(err)
    assert.are.equal(200, res.status)
    assert.are.equal("hello\n", res.body)
    assert.are.equal(base .. "/small.txt", res.url)
    assert.are.equal("text/plain", res.headers["content-type"])
    assert.are.equal("6", res.headers["content-length"])
    for name in pairs(res.headers) do
      assert.are.equal(name:lower(), name)
    end
    assert.is_nil(res.headers["Content-Type"])
    -- in seconds, and no more than the call took
    assert.is_true(res.elapsed > 0 and res.elapsed <= wall, ("elapsed %g of a %g s call"):format(res.elapsed, wall))
  end)

  it("returns an HTTP error status as a response, not as a failure", function()
    local res = assert(http.get(base .. "/nope.txt"))
    assert.are.equal(404, res.status)
    assert.matches("404 Not Found", res.body)
    res = assert(http.get(base .. "/busy"))
    assert.are.equal(503, res.status)
    assert.are.equal("busy", res.body)
  end)

  it("follows redirects and reports the URL it ended at", function()
    local res = assert(http.get(base .. "/redirect-chain"))
    assert.are.equal(200, res.status)
    assert.are.equal("hello\n", res.body)
    assert.are.equal(base .. "/small.txt", res.url)
  end)

  it("with follow_redirects = false returns the redirect itself", function()
    local res = assert(http.get(base .. "/redirect", { follow_redirects = false }))
    assert.are.equal(302, res.status)
    assert.are.equal("/small.txt", res.headers.location)
    assert.are.equal(base .. "/redirect", res.url)
  end)

  it("gives up on a redirect loop with curl's message", function()
    local res, err = http.get(base .. "/loop")
    assert.is_nil(res)
    assert.matches("Maximum %(%d+%) redirects followed", err)
  end)

  it("carries nothing of one request into the next (their easy handles are pooled)", function()
    -- one after the other, so each takes the handle the last one gave back
    assert.are.equal("hello header", assert(http.get(base .. "/echo-header", { headers = { ["X-Test"] = "hello header" } })).body)
    assert.are.equal("", assert(http.get(base .. "/echo-header")).body)
    assert.are.equal("POST 4", assert(http.post(base .. "/method", "data")).body)
    assert.are.equal("GET ", assert(http.get(base .. "/method")).body)
    assert.are.equal("", assert(http.request{ method = "HEAD", url = base .. "/small.txt" }).body)
    assert.are.equal("hello\n", assert(http.get(base .. "/small.txt")).body)
    assert.are.equal(302, assert(http.get(base .. "/redirect", { follow_redirects = false })).status)
    assert.are.equal(200, assert(http.get(base .. "/redirect")).status)
    local _, _, code = http.get(base .. "/small.txt", { max_body = 2 })
    assert.are.equal("EFBIG", code)
    assert.are.equal("hello\n", assert(http.get(base .. "/small.txt")).body)
  end)

  it("refuses a redirect to another scheme than http and https", function()
    for _, path in ipairs{ "/to-ftp", "/to-file" } do
      local res, err, code = http.get(base .. path)
      assert.is_nil(res, path)
      assert.are.equal("EPROTONOSUPPORT", code, path .. ": " .. tostring(err))
    end
  end)

  it("joins repeated response headers with \", \"", function()
    local res = assert(http.get(base .. "/dup"))
    assert.are.equal("one, two", res.headers["x-dup"])
  end)

  it("sends the request headers it is given", function()
    local res = assert(http.get(base .. "/echo-header", { headers = { ["X-Test"] = "hello header" } }))
    assert.are.equal("hello header", res.body)
    res = assert(http.get(base .. "/echo-header", { headers = { ["x-test"] = 42 } }))
    assert.are.equal("42", res.body)
  end)

  it("sends a User-Agent naming aqueue, which a header replaces", function()
    assert.matches("^aqueue/%d+%.%d+%.%d+$", assert(http.get(base .. "/agent")).body)
    local res = assert(http.get(base .. "/agent", { headers = { ["User-Agent"] = "crawler/1" } }))
    assert.are.equal("crawler/1", res.body)
  end)

  it("post sends the body with method POST", function()
    local res = assert(http.post(base .. "/method", "hello world"))
    assert.are.equal(200, res.status)
    assert.are.equal("POST 11", res.body)
    res = assert(http.request{ url = base .. "/method", body = "abc" }) -- a body implies POST
    assert.are.equal("POST 3", res.body)
    res = assert(http.request{ url = base .. "/method", method = "POST" })
    assert.are.equal("POST 0", res.body)
  end)

  it("request sends any method; a body arrives byte for byte (PUT, then GET it back)", function()
    local body = "binary\0body\r\n\255" .. ("x"):rep(100000)
    local res = assert(http.request{ method = "PUT", url = base .. "/upload/a/b.bin", body = body })
    assert.are.equal(201, res.status)
    assert.are.equal(body, files.read(server.root .. "/upload/a/b.bin"))
    assert.are.equal(body, assert(http.get(base .. "/upload/a/b.bin")).body)
    res = assert(http.request{ method = "DELETE", url = base .. "/upload/a/b.bin" })
    assert.are.equal(204, res.status)
    assert.are.equal(404, assert(http.get(base .. "/upload/a/b.bin")).status)
  end)

  it("HEAD returns the headers and an empty body", function()
    local res = assert(http.request{ method = "HEAD", url = base .. "/big.bin" })
    assert.are.equal(200, res.status)
    assert.are.equal(tostring(BIG), res.headers["content-length"])
    assert.are.equal("", res.body)
  end)

  it("receives and sends a 5 MB body intact", function()
    local res = assert(http.get(base .. "/big.bin"))
    assert.are.equal(200, res.status)
    assert.are.equal(#blob, #res.body)
    assert.is_true(res.body == blob, "the 5 MB body differs")
    res = assert(http.request{ method = "PUT", url = base .. "/upload/big.bin", body = blob })
    assert.are.equal(201, res.status)
    assert.is_true(files.read(server.root .. "/upload/big.bin") == blob, "the uploaded 5 MB differ")
  end)

  it("decodes a gzip-encoded body", function()
    local res = assert(http.get(base .. "/big.txt"))
    assert.are.equal("gzip", res.headers["content-encoding"])
    assert.are.equal(#text, #res.body)
    assert.is_true(res.body == text, "the decoded text differs")
    -- false drops a header curl would send: without Accept-Encoding, no gzip
    res = assert(http.get(base .. "/big.txt", { headers = { ["Accept-Encoding"] = false } }))
    assert.is_nil(res.headers["content-encoding"])
    assert.is_true(res.body == text)
  end)
end)

describe("aqueue.http response headers", function()
  -- A server that answers with raw bytes nginx would not send (python3: an
  -- informational answer, a folded header, a chunked body's trailer).
  local raw_url, raw_server
  setup(function()
    local port_file = tmpdir .. "/raw_server.port"
    raw_server = aqueue.spawn(function()
      return aqueue.exec{ "python3", "tests/spec/fixtures/http/raw_server.py", port_file, "3" }
    end)
    wait.until_true(function() return files.exists(port_file) end, "the raw server's port")
    raw_url = "http://127.0.0.1:" .. files.read(port_file)
  end)
  teardown(function()
    if raw_server then assert.are.equal(0, raw_server:result().code) end -- it answered its 3 connections
  end)

  it("are those of the last response: lower-case names, blanks trimmed, folded lines unfolded, repeats joined", function()
    local res = assert(http.get(raw_url .. "/fold"))
    assert.are.equal(200, res.status)
    assert.are.equal("abc", res.body)
    assert.are.same({
      ["content-type"] = "text/plain",
      ["x-fold"] = "first second",
      ["x-dup"] = "1, 2",
      ["x-spaces"] = "padded",
      ["transfer-encoding"] = "chunked",
      connection = "close",
    }, res.headers) -- not the trailer after the body, nothing of the 100 Continue
  end)

  it("after a redirect, are the final response's alone", function()
    local res = assert(http.get(raw_url .. "/moved"))
    assert.are.equal(raw_url .. "/fold", res.url)
    assert.is_nil(res.headers["x-moved"])
    assert.is_nil(res.headers.location)
    assert.are.equal("first second", res.headers["x-fold"])
  end)

  it("are made into a table when first read, and the same table after", function()
    local res = assert(http.get(base .. "/small.txt"))
    assert.is_nil(rawget(res, "headers"))
    local headers = res.headers
    assert.are.equal("text/plain", headers["content-type"])
    assert.are.equal(headers, rawget(res, "headers"))
    assert.are.equal(headers, res.headers)
  end)
end)

describe("aqueue.http output = path", function()
  it("streams the body into the file; body is nil", function()
    local path = tmpdir .. "/big.bin"
    local res = assert(http.get(base .. "/big.bin", { output = path }))
    assert.are.equal(200, res.status)
    assert.is_nil(res.body)
    assert.are.equal(tostring(BIG), res.headers["content-length"])
    assert.is_true(files.read(path) == blob, "the file differs from the 5 MB served")
    assert.is_false(files.exists(path .. ".part"))
  end)

  it("keeps several large downloads intact when the disk falls behind the network", function()
    -- 3 x 15 MB at loopback speed outrun the file writes: the transfers
    -- pause while more than 1 MB waits for the disk, and resume after.
    local huge = blob:rep(3)
    files.write(server.root .. "/huge.bin", huge)
    local handles = {}
    for i = 1, 3 do
      handles[i] = aqueue.spawn(function()
        return assert(http.get(base .. "/huge.bin", { output = ("%s/huge-%d.bin"):format(tmpdir, i) }))
      end)
    end
    for i = 1, 3 do
      local path = ("%s/huge-%d.bin"):format(tmpdir, i)
      assert.are.equal(200, handles[i]:result().status)
      assert.is_true(files.read(path) == huge, "download " .. i .. " differs")
      os.remove(path)
    end
    os.remove(server.root .. "/huge.bin")
  end)

  it("writes the decoded body of a gzip response", function()
    local path = tmpdir .. "/big.txt"
    assert(http.get(base .. "/big.txt", { output = path }))
    assert.is_true(files.read(path) == text)
  end)

  it("writes an error page like any response: the status says what it is", function()
    local path = tmpdir .. "/404.html"
    local res = assert(http.get(base .. "/nope.txt", { output = path }))
    assert.are.equal(404, res.status)
    assert.matches("404 Not Found", files.read(path))
  end)

  it("on failure leaves no partial file, and keeps a file that was there", function()
    local path = tmpdir .. "/kept.txt"
    files.write(path, "old content")
    local res, _, code = http.get(("http://127.0.0.1:%d/"):format(tcp.free_port()), { output = path })
    assert.is_nil(res)
    assert.are.equal("ECONNREFUSED", code)
    assert.are.equal("old content", files.read(path))
    assert.is_false(files.exists(path .. ".part"))
    -- a success replaces it
    assert(http.get(base .. "/small.txt", { output = path }))
    assert.are.equal("hello\n", files.read(path))
  end)

  it("returns nil, err, code when the file cannot be created", function()
    -- a short body (written in one job after the transfer) and a long one
    -- (streamed from its first 256 KB)
    for _, name in ipairs{ "small.txt", "big.bin" } do
      local res, err, code = http.get(base .. "/" .. name, { output = tmpdir .. "/no/such/dir/" .. name })
      assert.is_nil(res)
      assert.are.equal("ENOENT", code)
      assert.matches("^ENOENT: cannot open output file .*/no/such/dir/" .. name:gsub("%.", "%%.") ..
        ": no such file or directory$", err)
    end
  end)

  it("returns nil, err, code when the file cannot be renamed into place, and leaves no part file", function()
    for _, name in ipairs{ "small.txt", "big.bin" } do
      local path = tmpdir .. "/a-dir-" .. name
      os.execute("mkdir -p '" .. path .. "/inside'") -- a directory that is not empty: rename(2) refuses
      local res, err, code = http.get(base .. "/" .. name, { output = path })
      assert.is_nil(res)
      assert.is_truthy(code == "EISDIR" or code == "ENOTEMPTY" or code == "EEXIST", code)
      assert.matches("^" .. code .. ": cannot rename .*" .. name:gsub("%.", "%%.") .. "%.part to ", err)
      assert.is_false(files.exists(path .. ".part"))
      assert.is_true(files.exists(path .. "/inside"))
    end
  end)
end)

describe("aqueue.http failures return nil, err, code", function()
  it("connection refused: ECONNREFUSED, naming the URL", function()
    local url = ("http://127.0.0.1:%d/"):format(tcp.free_port())
    local res, err, code = http.get(url)
    assert.is_nil(res)
    assert.are.equal("ECONNREFUSED", code)
    local head = "ECONNREFUSED: connection refused: " .. url .. " ("
    assert.are.equal(head, err:sub(1, #head))
    assert.matches("Couldn't connect to server", err, 1, true)
  end)

  it("a malformed URL: EINVAL", function()
    for _, url in ipairs({ "", "not a url", "http://", "http://[::1", "http://127.0.0.1:99999/" }) do
      local res, err, code = http.get(url)
      assert.is_nil(res, url)
      assert.are.equal("string", type(err), url)
      assert.are.equal("EINVAL", code, url .. ": " .. err)
    end
    local _, err = http.get("http://[::1")
    assert.matches("URL", err)
  end)

  it("a protocol other than http and https: EPROTONOSUPPORT", function()
    for _, url in ipairs({ "ftp://127.0.0.1/", "file:///etc/passwd", "gopher://127.0.0.1/" }) do
      local res, err, code = http.get(url)
      assert.is_nil(res, url)
      assert.are.equal("EPROTONOSUPPORT", code)
      assert.matches("Unsupported protocol", err, 1, true)
    end
  end)

  it("a connection closed without an answer: ECONNRESET", function()
    local res, err, code = http.get(base .. "/drop")
    assert.is_nil(res)
    assert.are.equal("ECONNRESET", code)
    assert.matches("Empty reply from server", err, 1, true)
  end)

  it("a redirect loop: EREDIRECTS", function()
    local res, err, code = http.get(base .. "/loop")
    assert.is_nil(res)
    assert.are.equal("EREDIRECTS", code)
    assert.matches("^EREDIRECTS: too many redirects: ", err)
  end)

  it("an error's text is its own request's, never an earlier one's", function()
    -- curl keeps the system error of a refused connect in the easy handle,
    -- which the next request reuses
    local refused = ("http://127.0.0.1:%d/"):format(tcp.free_port())
    local stalled = tcp.stalled_listener()
    finally(function() stalled:close() end)
    for _ = 1, 2 do
      local _, err = http.get(refused)
      assert.matches("refused", err, 1, true)
      local _, err2, code2 = http.get(stalled.url, { timeout = 0.1 })
      assert.are.equal("ETIMEDOUT", code2)
      assert.is_nil(err2:lower():find("refused", 1, true), err2)
      local _, err3, code3 = http.get("ftp://127.0.0.1/")
      assert.are.equal("EPROTONOSUPPORT", code3)
      assert.is_nil(err3:lower():find("refused", 1, true), err3)
      assert.is_nil(err3:find("timed out", 1, true), err3)
    end
  end)

  it("a host name that does not resolve", function()
    -- A 64-character label is refused by the resolver before any query is
    -- sent, so nothing leaves the machine (a name like "nonexistent.invalid"
    -- would be sent to the configured DNS server).
    local name = ("a"):rep(64) .. ".invalid"
    local res, err, code = http.get("http://" .. name .. "/")
    assert.is_nil(res)
    assert.are.equal("EAI_NONAME", code)
    assert.matches("resolve host", err, 1, true)
    assert.matches(name, err, 1, true)
  end)

  it("a server that never answers, after `timeout` seconds", function()
    local stalled = tcp.stalled_listener()
    finally(function() stalled:close() end)
    local t0 = aqueue.now()
    local longer = longer_wait.start(3)
    local res, err, code = http.get(stalled.url, { timeout = 0.3 })
    local elapsed = aqueue.now() - t0
    assert.is_false(longer:ended(), "a 0.3 s timeout ended after a 3 s wait begun with it")
    longer:stop()
    assert.is_nil(res)
    assert.are.equal("ETIMEDOUT", code)
    assert.matches("Timeout was reached", err, 1, true)
    assert.matches("timed out", err, 1, true)
    assert.is_true(elapsed >= 0.3, "a 0.3 s timeout took only " .. elapsed .. " s")
  end)
end)

-- CPU work in the task without yielding: the loop's cached clock stands still.
local function busy_for(seconds)
  local t0 = aqueue.now()
  while aqueue.now() - t0 < seconds do end
end

describe("aqueue.http timeout counts from the request, not from the loop's last clock reading", function()
  it("after CPU work longer than the timeout, a quick answer still arrives", function()
    busy_for(1.2)
    local res, err = http.get(base .. "/small.txt", { timeout = 1 })
    assert.is_nil(err)
    assert.are.equal(200, res.status)
  end)

  it("after CPU work, a server that never answers still gets the whole timeout", function()
    local stalled = tcp.stalled_listener()
    finally(function() stalled:close() end)
    busy_for(0.5)
    local t0 = aqueue.now()
    local res, err, code = http.get(stalled.url, { timeout = 0.3 })
    local elapsed = aqueue.now() - t0
    assert.is_nil(res)
    assert.are.equal("ETIMEDOUT", code)
    assert.matches("timed out", err, 1, true)
    assert.is_true(elapsed >= 0.3, "a 0.3 s timeout took " .. elapsed .. " s")
  end)
end)

describe("aqueue.http timeout while waiting for a free connection", function()
  it("still ends the request after `timeout` seconds", function()
    local stalled = tcp.stalled_listener()
    http.configure{ max_per_host = 1 }
    local first = aqueue.spawn(function() return http.get(stalled.url) end)
    finally(function()
      first:cancel()
      http.configure{ max_per_host = 16 }
      stalled:close()
    end)
    aqueue.sleep(0.05) -- the first request holds the only connection allowed
    local t0 = aqueue.now()
    local longer = longer_wait.start(3)
    local res, err, code = http.get(stalled.url, { timeout = 0.3 })
    local elapsed = aqueue.now() - t0
    assert.is_false(longer:ended(), "a 0.3 s timeout ended after a 3 s wait begun with it")
    longer:stop()
    assert.is_nil(res)
    assert.are.equal("ETIMEDOUT", code)
    assert.matches("Timeout was reached: Operation timed out after %d+ milliseconds waiting for a free connection", err)
    assert.is_true(elapsed >= 0.3, "a 0.3 s timeout took only " .. elapsed .. " s")
  end)
end)

describe("aqueue.http over TLS", function()
  local tls_server
  setup(function()
    tls_server = nginx.start{ tls = true, server = [[ location = /hello { return 200 "secure"; } ]] }
  end)
  teardown(function()
    if tls_server then tls_server:stop() end
  end)

  it("verifies the server's certificate by default: a self-signed one is refused", function()
    local res, err, code = http.get(tls_server.url .. "/hello")
    assert.is_nil(res)
    assert.are.equal("ECERT", code)
    assert.matches("SSL certificate problem", err, 1, true)
    assert.matches("self%-signed certificate", err)
  end)

  it("fails with ETLS when the server does not speak TLS", function()
    local res, err, code = http.get(base:gsub("^http:", "https:") .. "/small.txt")
    assert.is_nil(res)
    assert.are.equal("ETLS", code, err)
  end)
end)

describe("aqueue.http misuse raises", function()
  local function raises(pattern, fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "expected an error matching " .. pattern)
    assert.matches(pattern, tostring(err))
  end

  it("for options that are not a table, or without a url", function()
    raises("options must be a table, got string", http.request, "http://127.0.0.1/")
    raises("options must be a table", http.request)
    raises("the url is missing", http.request, {})
    raises("the url must be a string, got nil", http.get)
    raises("the url must be a string, got number", http.get, 42)
    raises("options must be a table, got string", http.get, base, "x")
  end)

  it("for options of the wrong type, unknown options and bad values", function()
    raises("option 'url' must be a string, got number", http.request, { url = 1 })
    raises("option 'timeout' must be a number, got string", http.request, { url = base, timeout = "1" })
    raises("option 'timeout' must be a positive number", http.request, { url = base, timeout = 0 })
    raises("option 'timeout' must be a positive number", http.request, { url = base, timeout = 0 / 0 })
    raises("option 'headers' must be a table", http.request, { url = base, headers = "X-A: b" })
    raises("option 'body' must be a string, got number", http.request, { url = base, body = 1 })
    raises("option 'follow_redirects' must be a boolean", http.request, { url = base, follow_redirects = 1 })
    raises("option 'output' must be a string", http.request, { url = base, output = true })
    raises("option 'output' must be a file path", http.request, { url = base, output = "" })
    raises("unknown option 'timout'", http.request, { url = base, timout = 1 })
    raises("method \"GE T\" is not a valid HTTP method", http.request, { url = base, method = "GE T" })
  end)

  it("for bad headers", function()
    raises("header name .* is not a valid", http.get, base, { headers = { ["X Bad"] = "v" } })
    raises("header name .* is not a valid", http.get, base, { headers = { "X-Positional: v" } })
    raises("header 'X%-A' contains a line break", http.get, base, { headers = { ["X-A"] = "a\r\nX-B: b" } })
    raises("header 'X%-A' must be a string, a number or false, got table", http.get, base, { headers = { ["X-A"] = {} } })
  end)

  it("for get and post options that belong to request, and a post body that is not a string", function()
    raises("option 'method' cannot be given to get", http.get, base, { method = "POST" })
    raises("option 'body' cannot be given to post", http.post, base, "x", { body = "y" })
    raises("the body must be a string, got nil", http.post, base)
  end)

  it("in the C module too, which checks its options table again (each field read in one pass)", function()
    local core = require("aqueue.http_core")
    local good = { method = "GET", url = base .. "/small.txt" }
    local function with(field, value)
      local o = { method = good.method, url = good.url }
      o[field] = value
      return o
    end
    raises("field 'url' must be a string, got nil", core.request, { method = "GET" })
    raises("field 'method' must be a string, got nil", core.request, { url = good.url })
    raises("field 'url' must be a string, got number", core.request, with("url", 5))
    raises("field 'timeout' must be a number, got string", core.request, with("timeout", "1"))
    raises("timeout must be positive", core.request, with("timeout", -1))
    raises("max_body must be a number of bytes from 1", core.request, with("max_body", 0))
    raises("field 'headers' must be a table, got string", core.request, with("headers", "X-A: b"))
    raises("headers%[2%] must be a string", core.request, with("headers", { "X-A: b", 7 }))
    raises("field 'cookie_jar' must be a userdata, got table", core.request, with("cookie_jar", {}))
    raises("field 'follow_redirects' must be a boolean, got number", core.request, with("follow_redirects", 0))
    raises("output must be a file path", core.request, with("output", "a\0b"))
    local res = assert(core.request(with("unknown", "ignored"))) -- (http.lua refuses unknown options)
    assert.are.equal(200, res.status)
  end)

  it("names the caller's line", function()
    local ok, err = pcall(function() http.get(base, { nope = 1 }) end)
    assert.is_false(ok)
    assert.matches("http_spec.lua:%d+: aqueue.http.get: unknown option 'nope'", err)
  end)

  it("from a coroutine the script made itself, pointing to aqueue.spawn", function()
    local ok, err = pcall(coroutine.wrap(function() return http.get(base .. "/small.txt") end))
    assert.is_false(ok)
    assert.matches("aqueue.spawn", err, 1, true)
  end)
end)

describe("aqueue.http cancellation", function()
  it("a cancelled task's request stops: the task never resumes and the engine goes on", function()
    local stalled = tcp.stalled_listener()
    finally(function() stalled:close() end)
    local resumed = false
    local h = aqueue.spawn(function()
      http.get(stalled.url)
      resumed = true
    end)
    aqueue.sleep(0.05) -- connected, request sent, waiting for an answer
    assert.is_true(h:cancel())
    assert.are.same({ nil, "cancelled" }, { h:result() })
    aqueue.sleep(0.05)
    assert.is_false(resumed)
    local res = assert(http.get(base .. "/small.txt"))
    assert.are.equal("hello\n", res.body)
  end)

  it("cancelling many requests at once, some with output files, frees them all", function()
    local stalled = tcp.stalled_listener()
    finally(function() stalled:close() end)
    local handles, resumed = {}, 0
    for i = 1, 30 do
      local opts = i % 2 == 0 and { output = ("%s/cancelled-%d"):format(tmpdir, i) } or nil
      handles[i] = aqueue.spawn(function()
        http.get(stalled.url, opts)
        resumed = resumed + 1
      end)
    end
    aqueue.sleep(0.1)
    for i = 1, 30 do assert.is_true(handles[i]:cancel()) end
    -- the partial files go (removed on the thread pool, so not at once)
    assert.is_true(eventually(function()
      for i = 2, 30, 2 do
        local path = ("%s/cancelled-%d"):format(tmpdir, i)
        if files.exists(path) or files.exists(path .. ".part") then return false end
      end
      return true
    end), "a partial file was left behind")
    assert.are.equal(0, resumed)
    local got = assert(http.get(base .. "/big.bin"))
    assert.is_true(got.body == blob)
  end)

  it("cancelling a task while its body streams into a file removes the partial file", function()
    local path = tmpdir .. "/streaming.bin"
    local h = aqueue.spawn(function() return http.get(base .. "/slow/big.bin", { output = path }) end)
    -- nginx sends it at 100 KB/s: wait for the first bytes in the part file
    assert.is_true(eventually(function() return #(files.read(path .. ".part") or "") > 0 end))
    assert.is_true(h:cancel())
    assert.is_true(eventually(function() return not files.exists(path .. ".part") end))
    assert.is_false(files.exists(path))
  end)
end)

describe("aqueue.http concurrency and connections", function()
  it("200 requests by 50 workers each get their own response", function()
    local Fetch = aqueue.Item:extend("HttpSpecFetch")
    local wrong = {}
    function Fetch:process()
      local res = assert(http.get(("%s/n/%d.txt"):format(base, self.n)))
      if res.status ~= 200 or res.body ~= "file " .. self.n then
        wrong[#wrong + 1] = ("%d: %s %q"):format(self.n, res.status, res.body)
      end
    end
    local items = {}
    for i = 1, 200 do items[i] = Fetch{ n = i } end
    local summary = aqueue.run_queue{ initial_items = items, num_workers = 50, progress = "none" }
    assert.are.equal(200, summary.processed)
    assert.are.equal(0, summary.failed)
    assert.are.same({}, wrong)
  end)

  it("reuses one connection for requests one after the other", function()
    local conns = {}
    for i = 1, 20 do conns[i] = assert(http.get(base .. "/conn")).body end
    assert.are.equal(1, distinct(conns))
  end)

  it("opens a new connection when the server closed the last one", function()
    -- after each response (Connection: close), one by one and many at once
    local conns = {}
    for i = 1, 30 do conns[i] = assert(http.get(base .. "/close")).body end
    assert.are.equal(30, distinct(conns))
    local handles = {}
    for i = 1, 60 do handles[i] = aqueue.spawn(function() return assert(http.get(base .. "/close")).body end) end
    for i = 1, 60 do conns[i] = handles[i]:result() end
    assert.are.equal(60, distinct(conns))
    -- while idle in the cache (nginx drops it after 50 ms)
    local first = assert(http.get(base .. "/short-idle")).body
    aqueue.sleep(0.2)
    local second = assert(http.get(base .. "/short-idle")).body
    assert.are_not.equal(first, second)
    assert.are.equal("hello\n", assert(http.get(base .. "/small.txt")).body)
  end)

  it("keeps concurrent requests to one host within max_per_host connections", function()
    local function concurrent_conns(n, url)
      local handles, conns = {}, {}
      for i = 1, n do
        handles[i] = aqueue.spawn(function() return assert(http.get(url)).body end)
      end
      for i = 1, n do conns[i] = handles[i]:result() end
      return distinct(conns)
    end
    assert.are.same({ max_connections = 100, max_per_host = 16 }, http.configure())
    local n = concurrent_conns(100, base .. "/conn")
    assert.is_true(n >= 1 and n <= 16, n .. " connections for 100 requests")
    -- The cap applies to connections opened from then on: "localhost" is
    -- another host to curl than "127.0.0.1", with no connection open yet.
    finally(function() http.configure{ max_per_host = 16 } end)
    assert.are.same({ max_connections = 100, max_per_host = 2 }, http.configure{ max_per_host = 2 })
    n = concurrent_conns(40, ("http://localhost:%d/conn"):format(server.port))
    assert.is_true(n >= 1 and n <= 2, n .. " connections with max_per_host = 2")
  end)

  it("starts the requests waiting for one of a host's connections in the order they were made", function()
    -- Over plain HTTP they wait in the engine, not in curl (http_hosts.c):
    -- with one connection allowed, they run one at a time, first come first
    -- served; a waiting request that is cancelled leaves the queue, and
    -- the user:password@ and upper-case spellings of the host wait in the
    -- same queue.
    finally(function() http.configure{ max_per_host = 16 } end)
    http.configure{ max_per_host = 1 }
    local order, handles = {}, {}
    local urls = { base .. "/conn", base:gsub("^http://", "HTTP://me:pw@") .. "/conn" }
    for i = 1, 12 do
      handles[i] = aqueue.spawn(function()
        local res = assert(http.get(urls[i % 2 + 1]))
        order[#order + 1] = i
        return res.body
      end)
    end
    aqueue.sleep(0) -- every task made its request: 1 running, 11 waiting
    handles[5]:cancel()
    local conns = {}
    for i = 1, 12 do
      if i ~= 5 then conns[#conns + 1] = handles[i]:result() end
    end
    assert.are.same({ 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12 }, order)
    assert.are.equal(1, distinct(conns))
    assert.are.equal("hello\n", assert(http.get(base .. "/small.txt")).body) -- nothing left waiting
  end)

  it("configure checks its options", function()
    assert.has_error(function() http.configure{ max_conections = 1 } end)
    assert.has_error(function() http.configure{ max_per_host = -1 } end)
    assert.has_error(function() http.configure{ max_per_host = 1.5 } end)
    assert.has_error(function() http.configure("x") end)
  end)
end)
