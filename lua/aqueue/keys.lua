-- aqueue.keys: how keys are written in aqueue's files (Item:key() in a state
-- file, the keys of aqueue.store): "s:" .. string, "n:" .. number with all 17
-- digits, so that 1 and "1" stay two keys. -0 is the same Lua key as 0.
local format, sub, tonumber = string.format, string.sub, tonumber

local M = {}

-- `k`: a string or a number that is not NaN (callers check).
function M.text(k)
  if type(k) == "string" then
    return "s:" .. k
  end
  if k == 0 then
    k = 0
  end
  return format("n:%.17g", k)
end

function M.value(text)
  if sub(text, 1, 2) == "s:" then
    return sub(text, 3)
  end
  return tonumber(sub(text, 3))
end

return M
