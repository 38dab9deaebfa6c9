-- One shape for every I/O failure: nil, "CODE: message", "CODE", with CODE one
-- of aqueue.errors (engine/core/errors.c), which README's "I/O failures" table lists.
local aqueue = require("aqueue")
local files = require("tests.support.files")
local tcp = require("tests.support.tcp")

-- The codes in README's table of I/O failures, in order.
local function readme_codes()
  local text = assert(io.open("README.md", "rb")):read("*a")
  local section = assert(text:match("\n### I/O failures\n(.-)\n#"), "README has an \"I/O failures\" section")
  local codes = {}
  for code in section:gmatch("\n| `(E[%w_]+)` |") do codes[#codes + 1] = code end
  return codes
end

-- Asserts the shape, and returns the message.
local function assert_failure(code, ok, err, got_code, ...)
  assert.is_nil(ok)
  assert.are.equal(code, got_code, tostring(err))
  assert.are.equal(0, select("#", ...), "exactly three values")
  assert.are.equal(code .. ": ", err:sub(1, #code + 2))
  assert.is_string(aqueue.errors[code], code .. " is in aqueue.errors")
  return err
end

describe("aqueue.errors", function()
  it("maps every code to a description", function()
    local n = 0
    for code, text in pairs(aqueue.errors) do
      n = n + 1
      assert.matches("^E[A-Z0-9_]+$", code)
      assert.is_true(type(text) == "string" and #text > 0, code)
    end
    assert.is_true(n > 10)
    assert.are.equal("connection refused", aqueue.errors.ECONNREFUSED)
    assert.are.equal("no such file or directory", aqueue.errors.ENOENT)
    assert.are.equal(aqueue.errors, require("aqueue.errors"))
  end)

  it("are the codes README's table documents, each once", function()
    local listed, seen = readme_codes(), {}
    for _, code in ipairs(listed) do
      assert.is_nil(seen[code], code .. " is listed twice")
      seen[code] = true
      assert.is_string(aqueue.errors[code], code .. " is in README but not in aqueue.errors")
    end
    for code in pairs(aqueue.errors) do
      assert.is_true(seen[code], code .. " is in aqueue.errors but not in README")
    end
  end)
end)

describe("every binding fails in the one shape", function()
  local dir
  before_each(function() dir = files.temp_dir() end)
  after_each(function() files.remove_tree(dir) end)

  it("fs", function()
    local err = assert_failure("ENOENT", aqueue.fs.read(dir .. "/missing"))
    assert.are.equal("ENOENT: no such file or directory: " .. dir .. "/missing", err)
    assert_failure("EEXIST", aqueue.fs.mkdir(dir))
    assert_failure("ENOTDIR", aqueue.fs.list("/etc/passwd"))
  end)

  it("exec", function()
    assert_failure("ENOENT", aqueue.exec{ "aqueue-no-such-program" })
    assert_failure("ETIMEDOUT", aqueue.exec{ "sleep", "5", timeout = 0.05 })
  end)

  it("http", function()
    local url = ("http://127.0.0.1:%d/"):format(tcp.free_port())
    local err = assert_failure("ECONNREFUSED", aqueue.http.get(url))
    assert.matches(url, err, 1, true)
    assert_failure("EPROTONOSUPPORT", aqueue.http.get("ftp://127.0.0.1/"))
  end)

  it("url", function()
    local err = assert_failure("EINVAL", aqueue.url.parse("http://"))
    assert.are.equal("EINVAL: invalid argument: http:// (No host part in the URL)", err)
    assert_failure("EINVAL", aqueue.url.join("", "g"))
    assert_failure("EINVAL", aqueue.url.build{ scheme = "http" })
  end)

  it("redis", function()
    local refused = ("redis://127.0.0.1:%d"):format(tcp.free_port())
    assert_failure("ECONNREFUSED", aqueue.redis.connect(refused))
    assert_failure("EPROTONOSUPPORT", aqueue.redis.connect("rediss://127.0.0.1:6379"))
    local server = require("tests.support.redis_server").start{ password = "pw" }
    assert_failure("EAUTH", aqueue.redis.connect(server.url, { password = "wrong" }))
    local client = assert(aqueue.redis.connect(server.url, { password = "pw" }))
    assert_failure("EREDIS", client:call("NOSUCHCOMMAND"))
    client:close()
    assert_failure("ENOTCONN", client:call("PING"))
    server:stop()
  end)

  it("redis_run", function()
    local server = require("tests.support.redis_server").start()
    local client = assert(aqueue.redis.connect(server.url))
    assert(client:call("SET", "aq:{taken}:meta", "someone else's"))
    assert_failure("EAQRUN", require("aqueue.redis_run").open(client, "taken", { classes = { "Page" } }))
    client:close()
    server:stop()
  end)

  it("work", function()
    local err = assert_failure("EWORK", aqueue.work(function() error("bad input") end))
    assert.matches("errors_spec.lua:%d+: bad input$", err)
  end)
end)
