-- The example C module, run by an installed aqueue-run:
--   aqueue-run tests/run_spec.lua examples/cmodule/spec/cmod_spec.lua
local aqueue = require("aqueue")
local cmod = require("cmod")

local dir = os.tmpname()
os.remove(dir)
assert(aqueue.fs.mkdir(dir))

describe("cmod.compress_file (the thread pool)", function()
  it("compresses a file on a pool thread while other tasks go on", function()
    local path = dir .. "/data.txt"
    local text = ("all work and no play\n"):rep(20000)
    assert(aqueue.fs.write(path, text))
    local ticks = 0
    local ticker = aqueue.spawn(function()
      while true do
        ticks = ticks + 1
        aqueue.sleep(0)
      end
    end)
    local bytes, size = cmod.compress_file(path, 9)
    ticker:cancel()
    assert.are.equal(#text, size)
    assert.is_true(#bytes < #text / 50)
    assert.are.equal(text, cmod.uncompress(bytes, size))
    assert.is_true(ticks > 0, "the loop went on while the pool worked")
  end)

  it("returns nil, err, code when the file cannot be read", function()
    local bytes, err, code = cmod.compress_file(dir .. "/missing")
    assert.is_nil(bytes)
    assert.are.equal("ENOENT", code)
    assert.are.equal("ENOENT: cannot open " .. dir .. "/missing: no such file or directory", err)
  end)

  it("raises on misuse, before starting anything", function()
    assert.has_error(function() cmod.compress_file(dir .. "/x", 42) end)
    local co = coroutine.create(cmod.compress_file)
    local ok, err = coroutine.resume(co, dir .. "/x")
    assert.is_false(ok)
    assert.matches("task", err)
  end)

  it("lets a task be cancelled while its work runs (the job is freed when the work ends)", function()
    local path = dir .. "/big.txt"
    assert(aqueue.fs.write(path, ("x"):rep(8 * 1024 * 1024)))
    local h = aqueue.spawn(cmod.compress_file, path, 9)
    aqueue.sleep(0) -- it waits on the pool now
    assert.is_true(h:cancel())
    local _, err = h:result()
    assert.are.equal("cancelled", err)
    -- the pool still finishes the work; a leak of the job would fail the
    -- sanitizer run of these specs
  end)

  it("runs many at once, each task getting its own result", function()
    local handles = {}
    for i = 1, 8 do
      local path = ("%s/f%d"):format(dir, i)
      assert(aqueue.fs.write(path, ("%d"):format(i):rep(1000 * i)))
      handles[i] = aqueue.spawn(function()
        local bytes, size = cmod.compress_file(path)
        return cmod.uncompress(bytes, size)
      end)
    end
    for i = 1, 8 do
      assert.are.equal(("%d"):format(i):rep(1000 * i), handles[i]:result())
    end
  end)
end)

describe("cmod.wait_change (a uv handle)", function()
  it("wakes the task when the file changes", function()
    local path = dir .. "/watched"
    assert(aqueue.fs.write(path, "a"))
    aqueue.spawn(function()
      aqueue.sleep(0.05)
      assert(aqueue.fs.append(path, "b"))
    end)
    assert.are.equal("change", cmod.wait_change(path, 5))
  end)

  it("gives nil, err, \"ETIMEDOUT\" when nothing changes in time", function()
    local path = dir .. "/quiet"
    assert(aqueue.fs.write(path, "a"))
    local ok, err, code = cmod.wait_change(path, 0.05)
    assert.is_nil(ok)
    assert.are.equal("ETIMEDOUT", code)
    assert.are.equal("ETIMEDOUT: nothing changed in time", err)
  end)

  it("gives nil, err, code for a path it cannot watch", function()
    local ok, err, code = cmod.wait_change(dir .. "/nothing-here")
    assert.is_nil(ok)
    assert.are.equal("ENOENT", code)
    assert.matches("^ENOENT: cannot watch .*nothing%-here", err)
  end)

  it("calls the module's cancel hook exactly once when the waiting task is cancelled", function()
    local path = dir .. "/cancelled"
    assert(aqueue.fs.write(path, "a"))
    local before = cmod.cancels()
    local h = aqueue.spawn(cmod.wait_change, path)
    aqueue.sleep(0.02) -- it is parked in the module now
    assert.is_true(h:cancel())
    assert.is_false(h:cancel())
    assert(aqueue.fs.append(path, "b")) -- a change after the cancel wakes nothing
    aqueue.sleep(0.05)
    assert.are.equal(before + 1, cmod.cancels())
    local _, err = h:result()
    assert.are.equal("cancelled", err)
  end)
end)
