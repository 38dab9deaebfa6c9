-- aqueue.output: while the live display shows its panel on a terminal, what
-- the script writes to that terminal (print, io.write, io.stdout:write,
-- io.stderr:write) must land above the panel as whole lines, never through
-- it. These wrappers send such writes to the engine (core.output), which holds
-- an unfinished line until its newline; at any other time they are the
-- standard functions. Installed once, by require("aqueue").
local core = require("aqueue.core")

local select, tostring, type = select, tostring, type
local concat = table.concat
local stdout, stderr = io.stdout, io.stderr
local real_print, real_io_write = print, io.write
local file_methods = getmetatable(stdout).__index
local real_file_write = file_methods.write

local function stream_of(file)
  if file == stdout then
    return 1
  elseif file == stderr then
    return 2
  end
end

-- The text of write(...) arguments: strings and numbers, as file:write takes.
local function write_text(...)
  local n = select("#", ...)
  if n == 1 then
    local v = ...
    local t = type(v)
    if t == "string" then
      return v
    elseif t == "number" then
      return tostring(v)
    end
  end
  local parts = {}
  for i = 1, n do
    local v = select(i, ...)
    local t = type(v)
    if t ~= "string" and t ~= "number" then
      error(("bad argument #%d to 'write' (string expected, got %s)"):format(i, t), 3)
    end
    parts[i] = tostring(v)
  end
  return concat(parts)
end

function print(...)
  if not core.routes(1) then
    return real_print(...)
  end
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do
    parts[i] = tostring((select(i, ...)))
  end
  core.output(1, concat(parts, "\t") .. "\n")
end

function io.write(...)
  local out = io.output()
  local stream = stream_of(out)
  if stream and core.routes(stream) then
    core.output(stream, write_text(...))
    return out
  end
  return real_io_write(...)
end

file_methods.write = function(file, ...)
  local stream = stream_of(file)
  if stream and core.routes(stream) then
    core.output(stream, write_text(...))
    return file
  end
  return real_file_write(file, ...)
end

return {}
