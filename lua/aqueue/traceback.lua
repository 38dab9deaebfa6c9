-- aqueue.traceback: error reports for code the engine runs under xpcall (item
-- process and hooks, spawned tasks). The traceback stops at the engine's own
-- xpcall, so users see their frames only.
local tostring = tostring

local function capture(err)
  local message = tostring(err)
  local tb = debug.traceback(message, 2)
  local cut = tb:find("\n\t%[C%]: in function 'xpcall'")
  return { message = message, traceback = cut and tb:sub(1, cut - 1) or tb }
end

-- The report from `capture`, or one made from a bare error value (an error
-- raised inside the handler itself arrives that way).
local function normalize(err)
  if type(err) == "table" and err.traceback then
    return err
  end
  return { message = tostring(err), traceback = tostring(err) }
end

return { capture = capture, normalize = normalize }
