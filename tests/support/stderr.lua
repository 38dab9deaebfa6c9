-- Test support: capture what a function writes to file descriptor 2 (where
-- the engine prints failures and summaries), so specs can assert on it.
--   local capture_stderr = require("tests.support.stderr").capture
--   local text, result = capture_stderr(function() ... end)   -- fn may yield
local ffi = require("ffi")

pcall(ffi.cdef, [[
int dup(int fd);
int dup2(int oldfd, int newfd);
int open(const char *path, int flags, int mode);
int close(int fd);
]])

local O_WRONLY_CREAT_TRUNC, MODE_0600 = 577, 384

-- Runs fn with fd 2 sent to a temporary file; returns what was written there
-- and fn's first result. An error in fn is raised again once fd 2 is restored.
local function capture(fn)
  local path = os.tmpname()
  io.stderr:flush()
  local saved = ffi.C.dup(2)
  local fd = ffi.C.open(path, O_WRONLY_CREAT_TRUNC, MODE_0600)
  assert(saved >= 0 and fd >= 0, "cannot redirect stderr")
  ffi.C.dup2(fd, 2)
  ffi.C.close(fd)
  local ok, result = pcall(fn)
  io.stderr:flush()
  ffi.C.dup2(saved, 2)
  ffi.C.close(saved)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  os.remove(path)
  if not ok then
    error(result, 0)
  end
  return text, result
end

return { capture = capture }
