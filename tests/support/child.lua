-- Test support: run a Lua snippet in a fresh aqueue-run process (the one
-- running this spec: aqueue-run or aqueue-run-asan). A file stays locked while
-- this process has it open, so a spec checks what survives a restart by
-- letting a child write it (or read it) instead.
--   local child = require("tests.support.child")
--   local out = child.ok(dir, [[ local path = arg[1] ... print(x) ]], path)
--   local res = child.run(dir, code, ...)   -- { code, signal, stdout, stderr }
--   child.run_with({ "--state", "s.db" }, dir, code, ...)  -- with aqueue-run options
local aqueue = require("aqueue")

local M = {}

-- The aqueue-run running this spec, as an absolute path when it was started
-- by one (children run in other directories).
function M.runner()
  local lowest = 0
  while arg[lowest - 1] do
    lowest = lowest - 1
  end
  local path = arg[lowest]
  if path:find("/", 1, true) and path:sub(1, 1) ~= "/" then
    local p = assert(io.popen("pwd"))
    path = p:read("*l") .. "/" .. path
    p:close()
  end
  return path
end

-- Kills the child that runs it with SIGKILL (no exit handlers, no final
-- commit): a crash at that line.
M.KILL_SELF = [[
local ffi = require("ffi")
pcall(ffi.cdef, "int getpid(void); int kill(int pid, int sig);")
ffi.C.kill(ffi.C.getpid(), 9)
]]

local scripts = 0

-- Runs `code` as a script in `dir` (also its working directory) with the
-- aqueue-run options in the list `options` and the given arguments in `arg`;
-- returns aqueue.exec's result. Yields.
function M.run_with(options, dir, code, ...)
  scripts = scripts + 1
  local script = ("%s/child_%d.lua"):format(dir, scripts)
  local f = assert(io.open(script, "w"))
  f:write(code)
  f:close()
  local argv = { M.runner(), "--progress", "none", cwd = dir, timeout = 60 }
  for _, o in ipairs(options) do
    argv[#argv + 1] = o
  end
  argv[#argv + 1] = script
  for i = 1, select("#", ...) do
    argv[#argv + 1] = (select(i, ...))
  end
  local res = assert(aqueue.exec(argv))
  os.remove(script)
  return res
end

function M.run(dir, code, ...)
  return M.run_with({}, dir, code, ...)
end

-- Runs `code` as M.run does; it must succeed. Returns its stdout.
function M.ok(dir, code, ...)
  local res = M.run(dir, code, ...)
  if res.code ~= 0 then
    error(("the child process failed (status %d):\n%s%s"):format(res.code, res.stdout, res.stderr), 2)
  end
  return res.stdout
end

return M
