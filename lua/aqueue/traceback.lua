-- aqueue.traceback: error reports for code the engine runs under xpcall (item
-- process and hooks, spawned tasks). The traceback stops at the engine's own
-- xpcall, so users see their frames only.
local tostring, type, pcall = tostring, type, pcall

local ENCODED_MAX = 200

-- The text of an error value: a string or number as it is; a value with a
-- __tostring as that says; any other table as JSON (when it encodes), so
-- error{ code = 404 } reads {"code":404}, not table: 0x...
local function text(err)
  local t = type(err)
  if t == "string" then return err end
  if t == "number" or t == "nil" or t == "boolean" then return tostring(err) end
  -- a __tostring (its metatable may be hidden: __metatable), else the address
  local shown_ok, shown = pcall(tostring, err)
  if shown_ok and type(shown) == "string" and not shown:find("^" .. t .. ": 0x%x+$") then
    return shown
  end
  if t == "table" then
    local ok, cjson = pcall(require, "cjson")
    if ok then
      local encoded_ok, s = pcall(cjson.encode, err)
      if encoded_ok then
        return #s > ENCODED_MAX and s:sub(1, ENCODED_MAX) .. "..." or s
      end
    end
    return "(error object is a table that cannot be shown)"
  end
  return shown_ok and shown or "(error object is a " .. t .. " value)"
end

local function capture(err)
  local message = text(err)
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
  local message = text(err)
  return { message = message, traceback = message }
end

return { capture = capture, normalize = normalize, text = text }
