-- aqueue.exec: run a program and capture what it prints, without blocking the
-- loop (engine/modules/exec.c, on uv_spawn). It yields its task until the program has
-- exited and both of its outputs have ended.
--
--   local res = aqueue.exec{ "convert", src, "-resize", "50%", dst,
--                            stdin = data, cwd = dir, env = { LANG = "C" }, timeout = 30 }
--   -> { code = 0, signal = 0, stdout = "...", stderr = "..." }
--
-- * The program is looked up in PATH when its name has no slash. No shell:
--   to use one, run { "sh", "-c", "a | b" }.
-- * A non-zero exit is not a failure: look at `code`. A program killed by a
--   signal has `signal` set and `code` = 128 + signal (as a shell says).
-- * stdin: the string is written to the program, then its stdin is closed.
--   Without it, the program reads from /dev/null (never from the terminal).
-- * env extends our environment: the given names override, `false` removes one.
-- * timeout (seconds): the program and its process group are killed (SIGKILL)
--   and exec returns nil, "ETIMEDOUT: killed after a timeout of N s: prog",
--   "ETIMEDOUT" once the program is gone.
-- * A program that cannot start returns nil, "ENOENT: no such file or
--   directory: prog", "ENOENT" (or EACCES, ...): the shape of every I/O
--   failure (README "I/O failures"). Misuse raises: an argument or env value
--   that is not a string (a number neither: write tostring(n)), an unknown
--   option, an option of the wrong type.
-- * A cancelled task (an item's timeout, a second Ctrl-C) kills the program.
local core = require("aqueue.exec_core")

local type, pairs, tostring, floor = type, pairs, tostring, math.floor

local USAGE = 'aqueue.exec{ "program", "arg", ..., stdin =, cwd =, env =, timeout = }'

local OPTIONS = { stdin = "string", cwd = "string", env = "table", timeout = "number" }

-- The checks return nil, message; exec raises it at its caller's line.
local function has_zero(value)
  return value:find("\0", 1, true) ~= nil
end

local function arguments(spec)
  local n = #spec
  if n == 0 then
    return nil, "the program is missing (the table's first element)"
  end
  local argv = {}
  for i = 1, n do
    local a = spec[i]
    if type(a) ~= "string" then -- a number too: say tostring(n) to mean it
      return nil, ("argument %d is a %s, not a string"):format(i, type(a))
    end
    if has_zero(a) then
      return nil, ("argument %d contains a zero byte"):format(i)
    end
    argv[i] = a
  end
  for k, v in pairs(spec) do
    if type(k) == "number" then
      if k ~= floor(k) or k < 1 or k > n then
        return nil, "the arguments have a hole (a nil) before argument " .. tostring(k)
      end
    elseif OPTIONS[k] == nil then
      return nil, "unknown option '" .. tostring(k) .. "'"
    elseif type(v) ~= OPTIONS[k] then
      return nil, ("option '%s' must be a %s, got %s"):format(k, OPTIONS[k], type(v))
    end
  end
  if spec.timeout ~= nil and not (spec.timeout > 0) then
    return nil, "timeout must be a positive number of seconds"
  end
  if spec.cwd and has_zero(spec.cwd) then
    return nil, "cwd contains a zero byte"
  end
  return argv
end

-- { NAME = "value" | false }: checked, for the C side.
local function environment(env)
  local out = {}
  for name, value in pairs(env) do
    if type(name) ~= "string" or name == "" or name:find("[=%z]") then
      return nil, "env: " .. tostring(name) .. " is not a variable name"
    end
    if type(value) == "string" then
      if has_zero(value) then
        return nil, "env." .. name .. " contains a zero byte"
      end
    elseif value ~= false then
      return nil, ("env.%s must be a string or false, got %s"):format(name, type(value))
    end
    out[name] = value
  end
  return out
end

local function exec(spec)
  if type(spec) ~= "table" then
    error(USAGE .. ": expected a table, got " .. type(spec), 2)
  end
  local argv, err = arguments(spec)
  local env
  if argv and spec.env then
    env, err = environment(spec.env)
  end
  if err then
    error(USAGE .. ": " .. err, 2)
  end
  return core.exec(argv, spec.stdin, spec.cwd, env, spec.timeout)
end

return { exec = exec }
