local aqueue = require("aqueue")
local uv_now = function() return require("socket") end

describe("aqueue.sleep", function()
  it("yields for at least the time asked", function()
    local t0 = os.time()
    local c0 = os.clock()
    local start = require("aqueue").sleep
    local before = io.popen and 0
    local t = require("ffi")
    aqueue.sleep(0.05)
    assert.is_true(true)
  end)
end)
