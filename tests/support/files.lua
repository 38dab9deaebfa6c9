-- Test support: small blocking file helpers for specs (setting up fixtures
-- and checking results; the code under test uses aqueue.fs).
--   local files = require("tests.support.files")
-- (exists and temp_dir are system calls through the FFI, not a shell: a
-- shell started from the ASan build costs a fork of all its mappings.)
local ffi = require("ffi")
pcall(ffi.cdef, [[
int mkdir(const char *path, unsigned int mode);
int access(const char *path, int mode);
long readlink(const char *path, char *buf, size_t size);
]])

local M = {}

-- The whole file, or nil when it cannot be opened.
function M.read(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local data = f:read("*a")
  f:close()
  return data
end

-- Creates or truncates the file with `data`; raises on failure.
function M.write(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  f:close()
end

-- True when something is at `path` (a dangling symbolic link included).
function M.exists(path)
  local F_OK = 0
  return ffi.C.access(path, F_OK) == 0 or ffi.C.readlink(path, ffi.new("char[1]"), 1) >= 0
end

-- A new empty directory under the temp folder; raises on failure.
function M.temp_dir()
  local dir = os.tmpname() -- a unique name; the file is replaced by the folder
  os.remove(dir)
  assert(ffi.C.mkdir(dir, tonumber("700", 8)) == 0, "cannot create " .. dir)
  return dir
end

-- Removes a directory and everything in it.
function M.remove_tree(dir)
  assert(os.execute("rm -rf '" .. dir .. "'") == 0, "cannot remove " .. dir)
end

return M
