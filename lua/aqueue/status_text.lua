-- aqueue.status_text: what the --status reports of a state file
-- (aqueue.state_tool) and of a shared run (aqueue.redis_tool) share.
local M = {}

-- `text` on one line (runs of white space made one space), cut to `width`
-- characters with "..." when longer.
function M.shorten(text, width)
  text = tostring(text):gsub("%s+", " ")
  if #text > width then
    return text:sub(1, width - 3) .. "..."
  end
  return text
end

return M
