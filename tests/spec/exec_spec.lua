-- aqueue.exec{ "program", args..., stdin =, cwd =, env =, timeout = }: runs a
-- program on uv_spawn and yields until it has exited and its outputs ended.
local aqueue = require("aqueue")
local files = require("tests.support.files")
local wait_until = require("tests.support.wait").until_true
local longer_wait = require("tests.support.longer_wait")
local exec = aqueue.exec

local function sh(cmd)
  assert(os.execute(cmd) == 0, cmd)
end


-- The state letter of a process ("S", "Z", ...), or nil when it is gone.
local function process_state(pid)
  local stat = files.read("/proc/" .. pid .. "/stat")
  return stat and stat:match("^%d+ %b() (%a)")
end

-- Gone, or a zombie: a grandchild reparented to a PID 1 that does not reap
-- stays a zombie, but it no longer runs.
local function not_running(pid)
  local state = process_state(pid)
  return state == nil or state == "Z"
end

local function pid_in(path)
  local pid
  wait_until(function()
    pid = tonumber(files.read(path) or "")
    return pid ~= nil
  end, path)
  return pid
end

local dir
before_each(function()
  dir = files.temp_dir()
end)

after_each(function()
  files.remove_tree(dir)
end)

describe("aqueue.exec", function()
  it("runs a program and returns its code, signal, stdout and stderr", function()
    local res = exec{ "sh", "-c", 'echo "out $0 $1"; echo err >&2', "a b", "42" }
    assert.are.same({ code = 0, signal = 0, stdout = "out a b 42\n", stderr = "err\n" }, res)
  end)

  it("looks the program up in PATH, and runs no shell", function()
    local res = assert(exec{ "echo", "$HOME", "*", "a;b" })
    assert.are.equal("$HOME * a;b\n", res.stdout)
  end)

  it("returns a non-zero exit code as a result, not as a failure", function()
    local res, err = exec{ "sh", "-c", "echo partial; exit 3" }
    assert.is_nil(err)
    assert.are.equal(3, res.code)
    assert.are.equal(0, res.signal)
    assert.are.equal("partial\n", res.stdout)
  end)

  it("reports a program killed by a signal: signal set, code 128 + signal", function()
    local res = assert(exec{ "sh", "-c", "kill -TERM $$" })
    assert.are.equal(15, res.signal)
    assert.are.equal(128 + 15, res.code)
    res = assert(exec{ "sh", "-c", "kill -KILL $$" })
    assert.are.equal(9, res.signal)
  end)

  it("fails with ENOENT for a missing program", function()
    local res, err, code = exec{ "aqueue-no-such-program", "x" }
    assert.is_nil(res)
    assert.are.equal("ENOENT", code)
    assert.are.equal("ENOENT: no such file or directory: aqueue-no-such-program", err)
  end)

  -- Root may run any file that has at least one execute bit, and none other.
  it("fails with EACCES for a file that is not executable (even for root)", function()
    sh("printf 'echo hi\\n' > " .. dir .. "/script && chmod 644 " .. dir .. "/script")
    local res, err, code = exec{ dir .. "/script" }
    assert.is_nil(res)
    assert.are.equal("EACCES", code)
    assert.are.equal("EACCES: permission denied: " .. dir .. "/script", err)
  end)

  describe("stdin", function()
    it("is written to the program, then closed", function()
      local res = assert(exec{ "cat", stdin = "round\0trip\n" })
      assert.are.equal("round\0trip\n", res.stdout)
    end)

    it("round-trips megabytes through cat (written while the output is read)", function()
      local data = ("0123456789abcdef"):rep(256 * 1024) -- 4 MB
      local res = assert(exec{ "cat", stdin = data })
      assert.are.equal(#data, #res.stdout)
      assert.is_true(res.stdout == data)
    end)

    it("may be empty: the program reads EOF at once", function()
      assert.are.equal("", assert(exec{ "cat", stdin = "" }).stdout)
    end)

    it("is /dev/null when not given, so a program that reads never waits", function()
      local res = assert(exec{ "sh", "-c", "cat; readlink /proc/self/fd/0" })
      assert.are.equal("/dev/null\n", res.stdout)
    end)

    it("may be left unread by a program that exits (no SIGPIPE for us)", function()
      local res = assert(exec{ "true", stdin = ("x"):rep(4 * 1024 * 1024) })
      assert.are.equal(0, res.code)
    end)
  end)

  describe("stdout and stderr", function()
    it("are captured whole, megabytes at a time", function()
      local res = assert(exec{ "head", "-c", "5000000", "/dev/zero" })
      assert.are.equal(5000000, #res.stdout)
      assert.are.equal(("\0"):rep(5000000), res.stdout)
    end)

    it("are read at the same time: a program filling stderr first does not deadlock", function()
      local res = assert(exec{ "sh", "-c", "head -c 3000000 /dev/zero >&2; head -c 2000000 /dev/zero" })
      assert.are.equal(2000000, #res.stdout)
      assert.are.equal(3000000, #res.stderr)
    end)

    it("are kept apart when both are written at once", function()
      local res = assert(exec{ "sh", "-c", "yes out | head -c 1000000 & yes err | head -c 1000000 >&2; wait" })
      assert.are.equal(("out\n"):rep(250000), res.stdout)
      assert.are.equal(("err\n"):rep(250000), res.stderr)
    end)

    it("leave the program default signal handling (a pipeline ends quietly)", function()
      local res = assert(exec{ "sh", "-c", "yes | head -c 4" })
      assert.are.equal("y\ny\n", res.stdout)
      assert.are.equal("", res.stderr)
    end)
  end)

  describe("cwd", function()
    it("runs the program in that directory", function()
      assert.are.equal(dir .. "\n", assert(exec{ "pwd", cwd = dir }).stdout)
    end)

    it("fails with ENOENT, naming the directory, when it is missing", function()
      local res, err, code = exec{ "pwd", cwd = dir .. "/missing" }
      assert.is_nil(res)
      assert.are.equal("ENOENT", code)
      assert.matches(dir .. "/missing", err, 1, true)
    end)
  end)

  describe("env", function()
    it("extends the inherited environment; the given names override", function()
      local res = assert(exec{ "sh", "-c", 'echo "$AQ_SPEC_A|$AQ_SPEC_B|$HOME"', env = { AQ_SPEC_A = "a b", AQ_SPEC_B = "2" } })
      assert.are.equal("a b|2|" .. os.getenv("HOME") .. "\n", res.stdout)
      res = assert(exec{ "sh", "-c", 'echo "$HOME"', env = { HOME = "/elsewhere" } })
      assert.are.equal("/elsewhere\n", res.stdout)
    end)

    it("removes a variable given as false", function()
      local res = assert(exec{ "sh", "-c", 'echo "${HOME-unset}"', env = { HOME = false } })
      assert.are.equal("unset\n", res.stdout)
    end)

    it("inherits everything when not given", function()
      local res = assert(exec{ "sh", "-c", 'echo "$HOME"' })
      assert.are.equal(os.getenv("HOME") .. "\n", res.stdout)
    end)
  end)

  describe("timeout", function()
    it("kills the program and fails with ETIMEDOUT once it is gone", function()
      local t0 = aqueue.now()
      local longer = longer_wait.start(30) -- as long as the program's sleep
      local res, err, code = exec{ "sh", "-c", "echo $$ > " .. dir .. "/pid; exec sleep 30", timeout = 0.2 }
      local elapsed = aqueue.now() - t0
      assert.is_false(longer:ended(), "the exec ended after a 30 s wait begun with it")
      longer:stop()
      assert.is_nil(res)
      assert.are.equal("ETIMEDOUT", code)
      assert.are.equal("ETIMEDOUT: killed after a timeout of 0.2 s: sh", err)
      assert.is_true(elapsed >= 0.2, "took only " .. elapsed .. " s")
      -- killed and reaped: not even a zombie is left
      assert.is_nil(process_state(pid_in(dir .. "/pid")))
    end)

    it("kills the program's children too, which would hold its output open", function()
      local longer = longer_wait.start(30) -- as long as the grandchild's sleep
      local res, _, code = exec{ "sh", "-c", "sleep 30 & echo $! > " .. dir .. "/pid; wait", timeout = 0.2 }
      assert.is_nil(res)
      assert.are.equal("ETIMEDOUT", code)
      assert.is_false(longer:ended(), "the exec waited for the grandchild's output to close")
      longer:stop()
      local pid = pid_in(dir .. "/pid")
      wait_until(function() return not_running(pid) end, "the grandchild to die")
    end)

    it("does not fire for a program that ends in time", function()
      local res = assert(exec{ "echo", "quick", timeout = 5 })
      assert.are.equal("quick\n", res.stdout)
    end)

    it("counts from the call, also after the task computed without yielding", function()
      local t = aqueue.now()
      while aqueue.now() - t < 0.4 do end -- the loop's clock is 0.4 s old now
      local res, err = exec{ "sleep", "0.1", timeout = 0.3 }
      assert.is_table(res, err)
      assert.are.equal(0, res.code)
    end)
  end)

  it("runs many programs at once, each task getting its own output", function()
    -- Each program marks that it started, then waits (up to 30 s) until all 20
    -- have: it prints its number only if all 20 ran at the same time.
    local started = dir .. "/started"
    assert(aqueue.fs.mkdir(started))
    local script = 'touch "$1/$2"; n=0; while [ "$(ls "$1" | wc -l)" -lt 20 ] && [ $n -lt 3000 ]; do '
      .. 'sleep 0.01; n=$((n+1)); done; [ "$(ls "$1" | wc -l)" -ge 20 ] && echo "$2" || echo "alone $2"'
    local handles = {}
    for i = 1, 20 do
      handles[i] = aqueue.spawn(exec, { "sh", "-c", script, "sh", started, tostring(i) })
    end
    for i = 1, 20 do
      assert.are.equal(i .. "\n", handles[i]:result().stdout)
    end
  end)

  describe("in a cancelled task", function()
    it("kills the program, reaps it, and never resumes the task", function()
      local resumed = false
      local h = aqueue.spawn(function()
        exec{ "sh", "-c", "echo $$ > " .. dir .. "/pid; exec sleep 30" }
        resumed = true
      end)
      local pid = pid_in(dir .. "/pid")
      -- the shell wrote its pid and is still becoming `sleep` for a moment
      wait_until(function() return process_state(pid) == "S" end, "the program to sleep")
      assert.is_true(h:cancel())
      wait_until(function() return process_state(pid) == nil end, "the child to be reaped")
      aqueue.sleep(0.05)
      assert.is_false(resumed)
      assert.are.same({ nil, "cancelled" }, { h:result() })
    end)

    it("kills the program's children as well", function()
      local h = aqueue.spawn(exec, { "sh", "-c", "sleep 30 & echo $! > " .. dir .. "/pid; wait" })
      local pid = pid_in(dir .. "/pid")
      h:cancel()
      wait_until(function() return not_running(pid) end, "the grandchild to die")
    end)

    it("while it is being fed a large stdin, frees everything", function()
      local h = aqueue.spawn(exec, { "sh", "-c", "echo $$ > " .. dir .. "/pid; exec sleep 30", stdin = ("x"):rep(8 * 1024 * 1024) })
      local pid = pid_in(dir .. "/pid")
      h:cancel()
      wait_until(function() return process_state(pid) == nil end, "the child to be reaped")
    end)
  end)

  describe("misuse", function()
    local function raises(spec, pattern)
      local ok, err = pcall(exec, spec)
      assert.is_false(ok)
      assert.matches(pattern, err, 1, true)
    end

    it("raises for a spec that is not a table, or has no program", function()
      raises("ls", "expected a table")
      raises({}, "the program is missing")
      raises({ cwd = "/" }, "the program is missing")
    end)

    it("raises for an argument that is not a string, a number included, or a hole", function()
      raises({ "echo", 1 }, "argument 2 is a number, not a string")
      raises({ 42 }, "argument 1 is a number, not a string")
      raises({ "echo", {} }, "argument 2 is a table")
      raises({ "echo", nil, "x" }, "hole")
      raises({ "echo", "a\0b" }, "zero byte")
    end)

    it("raises for an unknown option or one of the wrong type", function()
      raises({ "cat", input = "x" }, "unknown option 'input'")
      raises({ "cat", stdin = 42 }, "option 'stdin' must be a string")
      raises({ "pwd", cwd = true }, "option 'cwd' must be a string")
      raises({ "true", env = "A=1" }, "option 'env' must be a table")
      raises({ "true", env = { A = {} } }, "env.A must be a string")
      raises({ "true", env = { A = 1 } }, "env.A must be a string or false, got number")
      raises({ "true", env = { ["A=B"] = "x" } }, "not a variable name")
    end)

    it("raises for a timeout that is not a positive number", function()
      raises({ "true", timeout = "1" }, "option 'timeout' must be a number")
      raises({ "true", timeout = 0 }, "positive")
      raises({ "true", timeout = -1 }, "positive")
      raises({ "true", timeout = 0 / 0 }, "positive")
    end)

    it("raises from a coroutine the script made itself", function()
      local ok, err = pcall(coroutine.wrap(function() return exec{ "true" } end))
      assert.is_false(ok)
      assert.matches("aqueue.spawn", err, 1, true)
    end)
  end)
end)
