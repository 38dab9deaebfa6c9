-- aqueue.redis: a client against private redis-servers (tests/support/redis_server.lua):
-- connecting, replies, pipelining, scripts, timeouts, a server restart, failures,
-- cancellation and closing.
local aqueue = require("aqueue")
local redis = aqueue.redis
local redis_server = require("tests.support.redis_server")
local tcp = require("tests.support.tcp")
local wait = require("tests.support.wait")

local function connect(url, opts)
  local client, err = redis.connect(url, opts)
  assert(client, err)
  return client
end

describe("aqueue.redis connect", function()
  local server, secured

  setup(function()
    server = redis_server.start{ unix = true }
    secured = redis_server.start{ password = "s3cret:/@" }
  end)

  teardown(function()
    server:stop()
    secured:stop()
  end)

  it("connects by host and port, and by unix socket", function()
    local tcp_client = connect(server.url)
    local unix_client = connect("unix://" .. server.socket)
    assert.are.equal("connected", tcp_client:state())
    assert.are.equal("OK", tcp_client:call("SET", "where", "both"))
    assert.are.equal("both", unix_client:call("GET", "where"))
    tcp_client:close()
    unix_client:close()
  end)

  it("resolves a host name (localhost) without blocking the loop", function()
    local client = connect(("redis://localhost:%d"):format(server.port))
    assert.are.equal("PONG", client:call("PING"))
    client:close()
  end)

  it("authenticates with the URL's password (percent-encoded) or the password option", function()
    local client = connect(("redis://:%s@127.0.0.1:%d"):format("s3cret%3A%2F%40", secured.port))
    assert.are.equal("PONG", client:call("PING"))
    client:close()
    client = connect(secured.url, { password = "s3cret:/@" })
    assert.are.equal("PONG", client:call("PING"))
    client:close()
  end)

  it("fails with EAUTH on a wrong password, and on a missing one", function()
    local client, err, code = redis.connect(("redis://:wrong@127.0.0.1:%d"):format(secured.port))
    assert.is_nil(client)
    assert.are.equal("EAUTH", code)
    assert.matches("^EAUTH: authentication failed on redis://127.0.0.1:%d+/0: WRONGPASS", err)
    client, err, code = redis.connect(secured.url)
    assert.is_nil(client)
    assert.are.equal("EAUTH", code)
    assert.matches("NOAUTH", err)
  end)

  it("selects the URL's database", function()
    local db0 = connect(server.url)
    local db3 = connect(server.url .. "/3")
    db0:call("SET", "db-key", "zero")
    db3:call("SET", "db-key", "three")
    assert.are.equal("zero", db0:call("GET", "db-key"))
    assert.are.equal("three", db3:call("GET", "db-key"))
    local db5 = connect(server.url, { db = 5 })
    assert.is_nil(db5:call("GET", "db-key"))
    db0:close()
    db3:close()
    db5:close()
  end)

  it("fails with ECONNREFUSED at once when nothing listens", function()
    local url = ("redis://127.0.0.1:%d"):format(tcp.free_port())
    local client, err, code = redis.connect(url)
    assert.is_nil(client)
    assert.are.equal("ECONNREFUSED", code)
    assert.are.equal("ECONNREFUSED: cannot connect to " .. url .. "/0: connection refused", err)
  end)

  it("fails with ENOENT for a unix socket that does not exist", function()
    local client, err, code = redis.connect("unix:///nonexistent/redis.sock")
    assert.is_nil(client)
    assert.are.equal("ENOENT", code)
    assert.matches("unix:///nonexistent/redis.sock", err, 1, true)
  end)

  it("fails with a resolver error for an unknown host name", function()
    local client, err, code = redis.connect("redis://no-such-host.invalid:6379")
    assert.is_nil(client)
    assert.matches("^EAI_", code)
    assert.matches("cannot resolve the host of redis://no-such-host.invalid:6379/0", err, 1, true)
  end)

  it("refuses rediss:// with a message naming what is missing", function()
    local client, err, code = redis.connect("rediss://127.0.0.1:6379")
    assert.is_nil(client)
    assert.are.equal("EPROTONOSUPPORT", code)
    assert.matches("TLS", err)
    assert.matches("hiredis_ssl", err)
  end)

  it("fails with EINVAL on a bad URL", function()
    for _, url in ipairs({ "http://127.0.0.1", "redis://", "redis://127.0.0.1:port", "redis://127.0.0.1:70000",
                           "redis://127.0.0.1/x", "redis://user:pw@127.0.0.1", "unix://relative.sock", "127.0.0.1:6379" }) do
      local client, err, code = redis.connect(url)
      assert.is_nil(client, url)
      assert.are.equal("EINVAL", code, url)
      assert.matches(url, err, 1, true)
    end
  end)

  it("raises on misuse", function()
    assert.has_error(function() redis.connect(42) end, "aqueue.redis.connect: the URL must be a string, got number")
    assert.has_error(function() redis.connect(server.url, { timout = 1 }) end,
      "aqueue.redis.connect: unknown option 'timout'")
    assert.has_error(function() redis.connect(server.url, { timeout = "1" }) end,
      "aqueue.redis.connect: option timeout must be a number, got string")
  end)
end)

describe("aqueue.redis replies", function()
  local server, client

  setup(function()
    server = redis_server.start()
    client = connect(server.url)
  end)

  teardown(function()
    client:close()
    server:stop()
  end)

  it("gives each reply type its Lua value", function()
    assert.are.equal("OK", client:call("SET", "s", "bulk")) -- status
    assert.are.equal("bulk", client:call("GET", "s"))      -- bulk
    assert.are.equal(1, client:call("INCR", "counter"))     -- integer
    assert.is_nil(client:call("GET", "missing"))            -- nil
    local res, err, code = client:call("NOSUCHCOMMAND")     -- error
    assert.is_nil(res)
    assert.are.equal("EREDIS", code)
    assert.matches("^EREDIS: ERR unknown command 'NOSUCHCOMMAND'", err)
    assert.are.same({}, client:call("LRANGE", "missing", 0, -1)) -- empty array
    -- nested arrays; a nil inside a list is false; an error inside is { err = }
    local nested = client:call("EVAL", [[
      return { 1, "two", { 3, { "four" } }, redis.status_reply("FIVE"), redis.error_reply("SIX six"), false, 7 }
    ]], 0)
    assert.are.same({ 1, "two", { 3, { "four" } }, "FIVE", { err = "SIX six" }, false, 7 }, nested)
    assert.are.same({ "bulk", false }, client:call("MGET", "s", "missing"))
  end)

  it("sends numbers as Redis reads them, and refuses other argument types", function()
    assert.are.equal(1000000000000000, client:call("INCRBY", "big", 1e15))
    assert.are.equal("0.5", client:call("INCRBYFLOAT", "float", 0.5))
    assert.has_error(function() client:call("SET", "k", true) end,
      "aqueue.redis: command arguments must be strings or numbers, got boolean")
    assert.has_error(function() client:call() end, "aqueue.redis: a command needs at least its name")
    assert.has_error(function() client:call("SUBSCRIBE", "chan") end,
      "aqueue.redis: subscribe is not supported (no pub/sub or monitor mode in this client)")
    assert.are.equal("PONG", client:call("PING"))
  end)

  it("is binary-safe in keys and values", function()
    local value = "a\0b\r\n$3\r\n\255\0"
    local key = "key\0with\nbytes"
    assert.are.equal("OK", client:call("SET", key, value))
    assert.are.equal(value, client:call("GET", key))
    assert.are.equal(#value, client:call("STRLEN", key))
    assert.is_nil(client:call("GET", "key"))
  end)
end)

describe("aqueue.redis pipelining", function()
  local server, client

  setup(function()
    server = redis_server.start()
    client = connect(server.url)
  end)

  teardown(function()
    client:close()
    server:stop()
  end)

  it("sends 10k commands of one pipeline at once and returns their replies in order", function()
    local cmds = {}
    for i = 1, 10000 do
      cmds[i] = i % 2 == 1 and { "RPUSH", "pipelined", i } or { "INCR", "pipelined-count" }
    end
    local replies = assert(client:pipeline(cmds))
    assert.are.equal(10000, #replies)
    for i = 1, 10000 do
      assert.are.equal(math.floor((i + 1) / 2), replies[i])
    end
    local list = client:call("LRANGE", "pipelined", 0, -1)
    assert.are.equal(5000, #list)
    assert.are.equal("1", list[1])
    assert.are.equal("9999", list[5000])
  end)

  it("puts error and nil replies in place", function()
    local replies = assert(client:pipeline{ { "SET", "p", "v" }, { "NOPE" }, { "GET", "nothing" }, { "GET", "p" } })
    assert.are.equal(4, #replies)
    assert.are.equal("OK", replies[1])
    assert.matches("^ERR unknown command 'NOPE'", replies[2].err)
    assert.is_false(replies[3])
    assert.are.equal("v", replies[4])
    assert.are.same({}, client:pipeline{})
  end)

  it("pipelines the calls of 100 tasks at once: each gets its own reply", function()
    local handles = {}
    for t = 1, 100 do
      handles[t] = aqueue.spawn(function()
        local mine = {}
        for _ = 1, 50 do
          mine[#mine + 1] = assert(client:call("INCR", "shared"))
          assert.are.equal(t, tonumber(client:call("ECHO", t)))
        end
        return mine
      end)
    end
    local seen, count = {}, 0
    for t = 1, 100 do
      local mine = assert(handles[t]:result())
      assert.are.equal(50, #mine)
      for i, v in ipairs(mine) do
        if i > 1 then assert.is_true(v > mine[i - 1]) end
        assert.is_nil(seen[v])
        seen[v] = true
        count = count + 1
      end
    end
    assert.are.equal(5000, count)
    assert.are.equal(5000, client:call("GET", "shared") + 0)
  end)
end)

describe("aqueue.redis scripts", function()
  local server, client

  setup(function()
    server = redis_server.start()
    client = connect(server.url)
  end)

  teardown(function()
    client:close()
    server:stop()
  end)

  it("runs a script by SHA and recovers from NOSCRIPT by sending its text", function()
    local script = redis.script("redis.call('INCRBY', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])")
    assert.are.equal("2", client:run_script(script, { "scripted" }, { 2 }))
    assert.matches("^%x+$", script.sha)
    assert.are.equal(script.sha, client:script_load(script.text))
    assert.are.equal("OK", client:call("SCRIPT", "FLUSH"))
    local _, _, code = client:call("EVALSHA", script.sha, 1, "scripted", 1)
    assert.are.equal("EREDIS", code) -- NOSCRIPT
    assert.are.equal("5", client:run_script(script, { "scripted" }, { 3 }))
    assert.are.same({ 1 }, client:call("SCRIPT", "EXISTS", script.sha)) -- back in the cache
    assert.are.equal("6", client:run_script(script, { "scripted" }, { 1 }))
    assert.has_error(function() client:run_script(script, "scripted", {}) end,
      "aqueue.redis: run_script's keys must be a list, got string")
    assert.has_error(function() client:run_script(script.text, {}, {}) end,
      "aqueue.redis: run_script expects a script made by aqueue.redis.script(text)")
  end)

  it("returns the script's error as nil, err, EREDIS", function()
    local script = redis.script("return redis.error_reply('BAD thing')")
    local res, err, code = client:run_script(script, {}, {})
    assert.is_nil(res)
    assert.are.equal("EREDIS", code)
    assert.are.equal("EREDIS: BAD thing", err)
  end)
end)

describe("aqueue.redis timeouts and reconnection", function()
  local server

  before_each(function()
    server = redis_server.start()
  end)

  after_each(function()
    server:stop()
  end)

  it("fails a command with no reply in time with ETIMEDOUT, those behind it with ECONNRESET, then reconnects", function()
    local client = connect(server.url, { timeout = 0.2, backoff_min = 0.05, backoff_max = 0.1 })
    local behind = aqueue.spawn(function() return client:call("PING") end)
    local res, err, code = client:call("DEBUG", "SLEEP", 1)
    assert.is_nil(res)
    assert.are.equal("ETIMEDOUT", code)
    assert.matches("no reply from redis://127.0.0.1:%d+/0 within 0.2 s", err)
    local _, behind_err, behind_code = behind:result()
    assert.are.equal("ECONNRESET", behind_code)
    assert.matches("an earlier command got no reply", behind_err)
    -- Once the server answers again, the client is back.
    assert.are.equal("PONG", wait.eventually(function() return client:call("PING") end))
    assert.are.equal("connected", client:state())
    client:close()
  end)

  it("survives a server restart: pending calls fail with ECONNRESET, later ones wait for the connection", function()
    local client = connect(server.url, { timeout = 30, backoff_min = 0.05, backoff_max = 0.2 })
    local watcher = connect(server.url)
    assert.are.equal(1, client:call("RPUSH", "kept", "before"))
    -- A call pending when the server dies: a BLPOP on an empty list.
    local pending = aqueue.spawn(function() return client:call("BLPOP", "empty", 0) end)
    wait.until_true(function() return watcher:call("CLIENT", "LIST"):find("cmd=blpop", 1, true) end, "the BLPOP")
    server:kill()
    local res, err, code = pending:result()
    assert.is_nil(res)
    assert.are.equal("ECONNRESET", code)
    assert.matches("connection to redis://127.0.0.1:%d+/0 lost", err)
    assert.are.equal("connecting", client:state())
    -- A call made while the server is down waits for it.
    local later = aqueue.spawn(function() return client:call("RPUSH", "kept", "after") end)
    aqueue.sleep(0.3) -- a few failed reconnection attempts
    assert.are.equal("connecting", client:state())
    server:start_again()
    assert.are.equal(2, later:result())
    assert.are.equal("connected", client:state())
    assert.are.same({ "before", "after" }, client:call("LRANGE", "kept", 0, -1)) -- appendfsync always
    client:close()
    watcher:close()
  end)

  it("a call on a client that cannot reconnect fails with ETIMEDOUT after its timeout, saying why", function()
    local client = connect(server.url, { timeout = 0.3, backoff_min = 0.05, backoff_max = 0.1 })
    server:kill()
    wait.until_true(function() return client:state() == "connecting" end, "the drop")
    aqueue.sleep(0.2) -- reconnection attempts, refused
    local res, err, code = client:call("PING")
    assert.is_nil(res)
    assert.are.equal("ETIMEDOUT", code)
    assert.matches("no connection to redis://127.0.0.1:%d+/0 within 0.3 s %(.*connection refused%)", err)
    client:close()
  end)

  it("without reconnect, a drop closes the client", function()
    local client = connect(server.url, { reconnect = false })
    server:kill()
    wait.until_true(function() return client:state() == "closed" end, "the close")
    local _, err, code = client:call("PING")
    assert.are.equal("ENOTCONN", code)
    assert.matches("is closed", err)
  end)
end)

describe("aqueue.redis cancel and close", function()
  local server

  setup(function()
    server = redis_server.start()
  end)

  teardown(function()
    server:stop()
  end)

  it("a cancelled task's call is dropped when its reply comes; the connection goes on", function()
    local client = connect(server.url)
    local other = connect(server.url)
    local resumed = 0
    local h = aqueue.spawn(function()
      client:call("BLPOP", "cancel-queue", 0)
      resumed = resumed + 1
    end)
    local p = aqueue.spawn(function()
      client:pipeline{ { "BLPOP", "cancel-queue", 0 }, { "PING" } }
      resumed = resumed + 1
    end)
    wait.until_true(function() return select(2, other:call("CLIENT", "LIST"):gsub("cmd=blpop", "")) == 1 end,
      "the first BLPOP")
    assert.is_true(h:cancel())
    assert.is_true(p:cancel())
    assert.are.same({ nil, "cancelled" }, { h:result() })
    -- The replies still come, in order, to nobody: then the next call's.
    assert.are.equal(2, other:call("RPUSH", "cancel-queue", "a", "b"))
    assert.are.equal("PONG", client:call("PING"))
    assert.are.equal(0, resumed)
    assert.are.equal(0, other:call("LLEN", "cancel-queue"))
    client:close()
    other:close()
  end)

  it("a task cancelled while its call waits for the connection is forgotten at once", function()
    local restartable = redis_server.start()
    local client = connect(restartable.url, { timeout = 30 })
    restartable:kill()
    wait.until_true(function() return client:state() == "connecting" end, "the drop")
    local h = aqueue.spawn(function() return client:call("PING") end)
    aqueue.sleep(0.05)
    assert.is_true(h:cancel())
    restartable:start_again()
    assert.are.equal("PONG", client:call("PING"))
    client:close()
    restartable:stop()
  end)

  it("a connect cancelled while the server does not answer returns at once", function()
    local silent = tcp.stalled_listener()
    local h = aqueue.spawn(function() return redis.connect(("redis://127.0.0.1:%d"):format(silent.port)) end)
    aqueue.sleep(0.05)
    assert.is_true(h:cancel())
    assert.are.same({ nil, "cancelled" }, { h:result() })
    silent:close()
  end)

  it("a connection attempt with no answer fails with ETIMEDOUT after the timeout", function()
    local silent = tcp.stalled_listener()
    local url = ("redis://127.0.0.1:%d"):format(silent.port)
    local client, err, code = redis.connect(url, { timeout = 0.2 })
    assert.is_nil(client)
    assert.are.equal("ETIMEDOUT", code)
    assert.are.equal("ETIMEDOUT: no answer from " .. url .. "/0 within 0.2 s while connecting", err)
    silent:close()
  end)

  it("a client that only its waiting task holds is not collected under it", function()
    local h = aqueue.spawn(function()
      return redis.connect(server.url):call("BLPOP", "held", 0)
    end)
    local other = connect(server.url)
    wait.until_true(function() return other:call("CLIENT", "LIST"):find("cmd=blpop", 1, true) end, "the BLPOP")
    collectgarbage()
    collectgarbage()
    assert.are.equal(1, other:call("RPUSH", "held", "v"))
    assert.are.same({ "held", "v" }, h:result())
    other:close()
  end)

  it("close() fails the calls still waiting with ECONNRESET; later calls fail with ENOTCONN", function()
    local client = connect(server.url)
    local waiting = aqueue.spawn(function() return client:call("BLPOP", "never", 0) end)
    aqueue.sleep(0.05)
    client:close()
    local _, err, code = waiting:result()
    assert.are.equal("ECONNRESET", code)
    assert.matches("was closed", err)
    assert.are.equal("closed", client:state())
    assert.are.equal("ENOTCONN", select(3, client:call("PING")))
    client:close() -- idempotent
  end)

  it("a client dropped without close() is closed when collected, and one left open when the engine ends", function()
    local client = connect(server.url)
    assert.are.equal("PONG", client:call("PING"))
    client = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    -- left open on purpose: the engine's close hook closes it (the ASan run
    -- fails on a leak or a handle left open)
    _G.redis_left_open = connect(server.url)
    assert.are.equal("PONG", _G.redis_left_open:call("PING"))
  end)
end)
