-- aqueue.fs: files and directories without blocking the loop. The work is done
-- by engine/modules/fs.c on libuv's thread pool; every function yields its task.
--
-- I/O failures return nil, "ENAME: message: path", "ENAME" (the shape of every
-- I/O failure; README "I/O failures" lists the codes); misuse (a path or data
-- that is not a string, numbers included; an unknown mkdir option) raises.
--
--   fs.read(path)                   -> the whole file, as a string
--   fs.write(path, data)            -> true   (creates or truncates)
--   fs.append(path, data)           -> true   (creates when missing)
--   fs.stat(path), fs.lstat(path)   -> { type, size, mode, mtime, atime, ctime, ... }
--   fs.list(dir)                    -> sorted names, without "." and ".."
--   fs.mkdir(path [, { parents = true }]) -> true
--   fs.remove(path)                 -> true   (a file, a link or an empty directory)
--   fs.rename(from, to)             -> true
local core = require("aqueue.fs_core")

local type, pairs, tostring, sort = type, pairs, tostring, table.sort

local fs = {
  read = core.read,
  write = core.write,
  append = core.append,
  stat = core.stat,
  lstat = core.lstat,
  remove = core.remove,
  rename = core.rename,
}

-- mkdir -p: create the missing parents first; a directory that already exists
-- (or that another task creates meanwhile) is fine, anything else there is not.
local function mkdir_parents(path)
  local ok, err, name = core.mkdir(path)
  if ok then
    return true
  end
  if name == "ENOENT" then
    local parent = path:match("^(.*[^/])/+[^/]+/*$")
    if parent then
      ok, err, name = mkdir_parents(parent)
      if not ok then
        return nil, err, name
      end
      ok, err, name = core.mkdir(path)
      if ok then
        return true
      end
    end
  end
  if name == "EEXIST" then
    local st = core.stat(path)
    if st and st.type == "directory" then
      return true
    end
  end
  return nil, err, name
end

-- Sorted bytewise (LuaJIT compares strings byte by byte, whatever the
-- locale), so the order does not depend on the file system.
function fs.list(dir)
  if type(dir) ~= "string" then
    error("bad argument #1 to 'aqueue.fs.list' (string expected, got " .. type(dir) .. ")", 2)
  end
  local names, err, name = core.list(dir)
  if not names then
    return nil, err, name
  end
  sort(names)
  return names
end

function fs.mkdir(path, opts)
  if type(path) ~= "string" then
    error("bad argument #1 to 'aqueue.fs.mkdir' (string expected, got " .. type(path) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'aqueue.fs.mkdir' (table or nil expected, got " .. type(opts) .. ")", 2)
  end
  for k, v in pairs(opts or {}) do
    if k ~= "parents" then
      error("bad argument #2 to 'aqueue.fs.mkdir' (unknown option '" .. tostring(k) .. "')", 2)
    elseif type(v) ~= "boolean" then
      error("bad argument #2 to 'aqueue.fs.mkdir' (option 'parents' must be a boolean, got " .. type(v) .. ")", 2)
    end
  end
  if opts and opts.parents then
    return mkdir_parents(path)
  end
  return core.mkdir(path)
end

return fs
