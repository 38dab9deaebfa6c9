-- Test support: capture what a function writes to stdout or stderr (where
-- the engine prints failures and summaries), so specs can assert on it.
--   local capture = require("tests.support.capture")
--   local text, result = capture.stderr(function() ... end)   -- fn may yield
--   local text, result = capture.stdout(function() ... end)
local ffi = require("ffi")

pcall(ffi.cdef, [[
int dup(int fd);
int dup2(int oldfd, int newfd);
int open(const char *path, int flags, int mode);
int close(int fd);
]])

local O_WRONLY_CREAT_TRUNC, MODE_0600 = 577, 384

-- Runs fn with file descriptor `fd` (1 or 2) sent to a temporary file;
-- returns what was written there and fn's first result. An error in fn is
-- raised again once the descriptor is restored.
local function capture(fd, file, fn)
  local path = os.tmpname()
  file:flush()
  local saved = ffi.C.dup(fd)
  local tmp = ffi.C.open(path, O_WRONLY_CREAT_TRUNC, MODE_0600)
  assert(saved >= 0 and tmp >= 0, "cannot redirect file descriptor " .. fd)
  ffi.C.dup2(tmp, fd)
  ffi.C.close(tmp)
  local ok, result = pcall(fn)
  file:flush()
  ffi.C.dup2(saved, fd)
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

return {
  stdout = function(fn)
    return capture(1, io.stdout, fn)
  end,
  stderr = function(fn)
    return capture(2, io.stderr, fn)
  end,
}
