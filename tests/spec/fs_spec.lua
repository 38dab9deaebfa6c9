-- aqueue.fs: files and directories on libuv's thread pool. Every function
-- yields; I/O failures return nil, "ENAME: message: path", "ENAME".
--
-- The files are checked with plain io.* and os.* (blocking, fine in a test),
-- so the spec never trusts fs to check fs.
local aqueue = require("aqueue")
local files = require("tests.support.files")
local fs = aqueue.fs

local function sh(cmd)
  assert(os.execute(cmd) == 0, cmd)
end




-- Asserts the luv-style failure: nil, "ENAME: <message>: <path>", "ENAME".
local function assert_failure(name, path, ok, err, code)
  assert.is_nil(ok)
  assert.are.equal(name, code)
  assert.are.equal("string", type(err))
  assert.are.equal(name .. ":", err:sub(1, #name + 1))
  assert.are.equal(path, err:sub(-#path), "the message names the path: " .. err)
end

-- Some bytes of every value, zero included, repeated up to n bytes.
local function binary(n)
  local chars = {}
  for i = 0, 255 do chars[#chars + 1] = string.char(i) end
  local block = table.concat(chars)
  return block:rep(math.ceil(n / #block)):sub(1, n)
end

local dir
before_each(function()
  dir = files.temp_dir()
end)

after_each(function()
  files.remove_tree(dir)
end)

describe("aqueue.fs.read", function()
  it("returns the whole file, bytes of every value included", function()
    local data = binary(1000)
    files.write(dir .. "/f", data)
    assert.are.equal(data, fs.read(dir .. "/f"))
  end)

  it("returns an empty string for an empty file", function()
    files.write(dir .. "/empty", "")
    assert.are.equal("", fs.read(dir .. "/empty"))
  end)

  it("reads a large file completely", function()
    local data = binary(4 * 1024 * 1024 + 7) -- 64 times the smallest read, not a round size
    files.write(dir .. "/big", data)
    local got = fs.read(dir .. "/big")
    assert.are.equal(#data, #got)
    assert.is_true(got == data)
  end)

  it("reads until the end, whatever size the file claims (a FIFO says 0)", function()
    local data = binary(300 * 1000 + 3) -- several times the first read's buffer
    files.write(dir .. "/src", data)
    sh("mkfifo " .. dir .. "/fifo")
    sh("cat " .. dir .. "/src > " .. dir .. "/fifo &") -- waits for our reader
    local got = fs.read(dir .. "/fifo")
    assert.are.equal(#data, #got)
    assert.is_true(got == data)
  end)

  it("reads files of /proc, which report a size of 0", function()
    assert.matches("^Name:", fs.read("/proc/self/status"))
  end)

  it("fails with ENOENT for a missing file, naming it", function()
    local path = dir .. "/missing"
    local ok, err, code = fs.read(path)
    assert_failure("ENOENT", path, ok, err, code)
    assert.are.equal("ENOENT: no such file or directory: " .. path, err)
  end)

  it("fails with EISDIR for a directory", function()
    assert_failure("EISDIR", dir, fs.read(dir))
  end)

  it("raises for a path that is not a string or holds a zero byte", function()
    assert.is_false((pcall(fs.read)))
    assert.is_false((pcall(fs.read, {})))
    local ok, err = pcall(fs.read, "a\0b")
    assert.is_false(ok)
    assert.matches("zero byte", err)
  end)

  it("raises for a number, which is not taken for a file name, naming the caller's line", function()
    local ok, err = pcall(function() return fs.read(42) end)
    assert.is_false(ok)
    assert.matches("fs_spec.lua:%d+: bad argument #1 to 'aqueue.fs.read' %(string expected, got number%)", err)
  end)
end)

describe("aqueue.fs misuse raises in every function", function()
  local function raises(pattern, fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "expected an error matching " .. pattern)
    assert.matches(pattern, err)
  end

  it("for a path that is a number, nil or a table", function()
    for _, name in ipairs({ "read", "stat", "lstat", "list", "remove" }) do
      for _, bad in ipairs({ 42, false, {} }) do
        raises("bad argument #1 to 'aqueue.fs." .. name .. "' %(string expected, got " .. type(bad) .. "%)", fs[name], bad)
      end
    end
    raises("bad argument #1 to 'aqueue.fs.mkdir' %(string expected, got number%)", fs.mkdir, 42)
    raises("bad argument #1 to 'aqueue.fs.write' %(string expected, got number%)", fs.write, 42, "x")
    raises("bad argument #1 to 'aqueue.fs.append' %(string expected, got number%)", fs.append, 42, "x")
    raises("bad argument #1 to 'aqueue.fs.rename' %(string expected, got number%)", fs.rename, 42, dir .. "/b")
    raises("bad argument #2 to 'aqueue.fs.rename' %(string expected, got number%)", fs.rename, dir .. "/a", 42)
    assert.is_false(files.exists("42"))
  end)

  it("for data that is a number", function()
    raises("bad argument #2 to 'aqueue.fs.write' %(string expected, got number%)", fs.write, dir .. "/f", 42)
    raises("bad argument #2 to 'aqueue.fs.append' %(string expected, got number%)", fs.append, dir .. "/f", 42)
    assert.is_false(files.exists(dir .. "/f"))
  end)

  it("for mkdir options that are unknown or of the wrong type", function()
    raises("unknown option 'parent'", fs.mkdir, dir .. "/d", { parent = true })
    raises("option 'parents' must be a boolean, got string", fs.mkdir, dir .. "/d", { parents = "yes" })
    assert.is_false(files.exists(dir .. "/d"))
  end)
end)

describe("aqueue.fs.write", function()
  it("creates the file and returns true", function()
    assert.are.equal(true, fs.write(dir .. "/new", "hello\0world"))
    assert.are.equal("hello\0world", files.read(dir .. "/new"))
  end)

  it("truncates a longer file", function()
    files.write(dir .. "/f", ("x"):rep(1000))
    assert.is_true(fs.write(dir .. "/f", "short"))
    assert.are.equal("short", files.read(dir .. "/f"))
  end)

  it("writes an empty string as an empty file", function()
    assert.is_true(fs.write(dir .. "/f", ""))
    assert.are.equal("", files.read(dir .. "/f"))
  end)

  it("writes a large string completely", function()
    local data = binary(4 * 1024 * 1024 + 7) -- 64 times the smallest read, not a round size
    assert.is_true(fs.write(dir .. "/big", data))
    assert.is_true(files.read(dir .. "/big") == data)
  end)

  it("fails with ENOENT when the folder is missing", function()
    local path = dir .. "/no/such/file"
    assert_failure("ENOENT", path, fs.write(path, "x"))
  end)

  -- We run as root, which ignores permission bits; sysfs refuses to create
  -- files for everyone, root included.
  it("fails with EACCES where files may not be created (/sys, even for root)", function()
    assert_failure("EACCES", "/sys/aqueue-fs-spec", fs.write("/sys/aqueue-fs-spec", "x"))
  end)

  it("raises for data that is not a string", function()
    assert.is_false((pcall(fs.write, dir .. "/f")))
    assert.is_false((pcall(fs.write, dir .. "/f", {})))
    assert.is_false(files.exists(dir .. "/f"))
  end)
end)

describe("aqueue.fs.append", function()
  it("adds to the end of the file", function()
    files.write(dir .. "/log", "one\n")
    assert.are.equal(true, fs.append(dir .. "/log", "two\n"))
    assert.is_true(fs.append(dir .. "/log", "three\n"))
    assert.are.equal("one\ntwo\nthree\n", files.read(dir .. "/log"))
  end)

  it("creates a missing file", function()
    assert.is_true(fs.append(dir .. "/log", "first"))
    assert.are.equal("first", files.read(dir .. "/log"))
  end)

  it("keeps whole lines when many tasks append at once", function()
    local handles = {}
    for i = 1, 50 do
      handles[i] = aqueue.spawn(fs.append, dir .. "/log", ("line %02d\n"):format(i))
    end
    for i = 1, 50 do assert.is_true(handles[i]:result()) end
    local lines = {}
    for line in files.read(dir .. "/log"):gmatch("[^\n]+") do lines[#lines + 1] = line end
    table.sort(lines)
    assert.are.equal(50, #lines)
    for i = 1, 50 do assert.are.equal(("line %02d"):format(i), lines[i]) end
  end)

  it("fails with ENOENT when the folder is missing", function()
    local path = dir .. "/no/log"
    assert_failure("ENOENT", path, fs.append(path, "x"))
  end)
end)

describe("aqueue.fs.stat", function()
  it("describes a file: type, size, permission bits, times in seconds", function()
    files.write(dir .. "/f", "12345")
    sh("chmod 640 " .. dir .. "/f && touch -m -d @1700000000.25 " .. dir .. "/f")
    local st = fs.stat(dir .. "/f")
    assert.are.equal("file", st.type)
    assert.are.equal(5, st.size)
    assert.are.equal(tonumber("640", 8), st.mode)
    assert.are.equal(1700000000.25, st.mtime)
    for _, key in ipairs({ "atime", "ctime", "uid", "gid", "nlink", "ino", "dev" }) do
      assert.are.equal("number", type(st[key]), key)
    end
    assert.is_true(math.abs(st.ctime - os.time()) < 60)
  end)

  it("says directory, and other for a device", function()
    assert.are.equal("directory", fs.stat(dir).type)
    assert.are.equal("other", fs.stat("/dev/null").type)
  end)

  it("follows a symbolic link; lstat describes the link itself", function()
    files.write(dir .. "/target", "abc")
    sh("ln -s target " .. dir .. "/link")
    assert.are.equal("file", fs.stat(dir .. "/link").type)
    assert.are.equal(3, fs.stat(dir .. "/link").size)
    assert.are.equal("link", fs.lstat(dir .. "/link").type)
  end)

  it("fails with ENOENT for a missing path", function()
    assert_failure("ENOENT", dir .. "/missing", fs.stat(dir .. "/missing"))
    sh("ln -s nowhere " .. dir .. "/dangling")
    assert_failure("ENOENT", dir .. "/dangling", fs.stat(dir .. "/dangling"))
    assert.are.equal("link", fs.lstat(dir .. "/dangling").type)
  end)
end)

describe("aqueue.fs.list", function()
  it("returns the names, sorted, without . and ..", function()
    for _, name in ipairs({ "b", "a", "C", "a.txt", "10", "9" }) do files.write(dir .. "/" .. name, "") end
    sh("mkdir " .. dir .. "/sub")
    assert.are.same({ "10", "9", "C", "a", "a.txt", "b", "sub" }, fs.list(dir))
  end)

  it("returns an empty table for an empty directory", function()
    assert.are.same({}, fs.list(dir))
  end)

  it("lists a large directory", function()
    sh("cd " .. dir .. " && seq -w 1 2000 | xargs touch")
    local names = fs.list(dir)
    assert.are.equal(2000, #names)
    assert.are.equal("0001", names[1])
    assert.are.equal("2000", names[2000])
  end)

  it("fails with ENOENT for a missing directory and ENOTDIR for a file", function()
    assert_failure("ENOENT", dir .. "/missing", fs.list(dir .. "/missing"))
    files.write(dir .. "/f", "")
    assert_failure("ENOTDIR", dir .. "/f", fs.list(dir .. "/f"))
  end)
end)

describe("aqueue.fs.mkdir", function()
  it("creates a directory and returns true", function()
    assert.are.equal(true, fs.mkdir(dir .. "/d"))
    assert.are.equal("directory", fs.stat(dir .. "/d").type)
  end)

  it("fails with EEXIST when it exists, ENOENT when the parent is missing", function()
    sh("mkdir " .. dir .. "/d")
    assert_failure("EEXIST", dir .. "/d", fs.mkdir(dir .. "/d"))
    assert_failure("ENOENT", dir .. "/x/y", fs.mkdir(dir .. "/x/y"))
  end)

  it("with parents = true creates the missing parents, like mkdir -p", function()
    assert.is_true(fs.mkdir(dir .. "/a/b/c/", { parents = true }))
    assert.are.equal("directory", fs.stat(dir .. "/a/b/c").type)
    assert.is_true(fs.mkdir(dir .. "/a/b/c", { parents = true })) -- existing is fine
    assert.is_true(fs.mkdir(dir .. "/a", { parents = true }))
    assert.is_true(fs.mkdir(dir .. "//a//d//e", { parents = true }))
    assert.are.equal("directory", fs.stat(dir .. "/a/d/e").type)
  end)

  it("with parents = true still fails when a file is in the way", function()
    files.write(dir .. "/f", "")
    assert_failure("EEXIST", dir .. "/f", fs.mkdir(dir .. "/f", { parents = true }))
    assert_failure("ENOTDIR", dir .. "/f/g/h", fs.mkdir(dir .. "/f/g/h", { parents = true }))
  end)

  it("creates the same tree from many tasks at once", function()
    local handles = {}
    for i = 1, 20 do
      handles[i] = aqueue.spawn(fs.mkdir, dir .. "/p/q/r" .. (i % 3), { parents = true })
    end
    for i = 1, 20 do assert.is_true(handles[i]:result()) end
    assert.are.same({ "r0", "r1", "r2" }, fs.list(dir .. "/p/q"))
  end)

  it("fails with EPERM where directories may not be made (/sys, even for root)", function()
    assert_failure("EPERM", "/sys/aqueue-fs-spec", fs.mkdir("/sys/aqueue-fs-spec"))
  end)

  it("raises for a bad path or options", function()
    assert.is_false((pcall(fs.mkdir, nil)))
    assert.is_false((pcall(fs.mkdir, dir .. "/d", "parents")))
  end)
end)

describe("aqueue.fs.remove", function()
  it("removes a file and returns true", function()
    files.write(dir .. "/f", "x")
    assert.are.equal(true, fs.remove(dir .. "/f"))
    assert.is_false(files.exists(dir .. "/f"))
  end)

  it("removes an empty directory", function()
    sh("mkdir " .. dir .. "/d")
    assert.is_true(fs.remove(dir .. "/d"))
    assert.is_false(files.exists(dir .. "/d"))
  end)

  it("removes a link, not what it points to", function()
    sh("mkdir " .. dir .. "/d && ln -s d " .. dir .. "/link")
    assert.is_true(fs.remove(dir .. "/link"))
    assert.is_false(files.exists(dir .. "/link"))
    assert.is_true(files.exists(dir .. "/d"))
  end)

  it("fails with ENOTEMPTY for a directory that is not empty", function()
    sh("mkdir " .. dir .. "/d && touch " .. dir .. "/d/f")
    assert_failure("ENOTEMPTY", dir .. "/d", fs.remove(dir .. "/d"))
    assert.is_true(files.exists(dir .. "/d/f"))
  end)

  it("fails with ENOENT for a missing path", function()
    assert_failure("ENOENT", dir .. "/missing", fs.remove(dir .. "/missing"))
  end)

  it("fails with EPERM for a file the system keeps (/proc, even for root)", function()
    assert_failure("EPERM", "/proc/self/status", fs.remove("/proc/self/status"))
  end)
end)

describe("aqueue.fs.rename", function()
  it("moves a file and returns true", function()
    files.write(dir .. "/a", "content")
    assert.are.equal(true, fs.rename(dir .. "/a", dir .. "/b"))
    assert.is_false(files.exists(dir .. "/a"))
    assert.are.equal("content", files.read(dir .. "/b"))
  end)

  it("replaces an existing file", function()
    files.write(dir .. "/a", "new")
    files.write(dir .. "/b", "old")
    assert.is_true(fs.rename(dir .. "/a", dir .. "/b"))
    assert.are.equal("new", files.read(dir .. "/b"))
  end)

  it("moves a directory", function()
    sh("mkdir " .. dir .. "/d && touch " .. dir .. "/d/f")
    assert.is_true(fs.rename(dir .. "/d", dir .. "/e"))
    assert.are.same({ "f" }, fs.list(dir .. "/e"))
  end)

  it("fails with ENOENT naming both paths", function()
    local from, to = dir .. "/missing", dir .. "/b"
    local ok, err, code = fs.rename(from, to)
    assert.is_nil(ok)
    assert.are.equal("ENOENT", code)
    assert.are.equal("ENOENT: no such file or directory: " .. from .. " -> " .. to, err)
  end)
end)

describe("aqueue.fs from many tasks", function()
  it("runs operations concurrently and gives each task its own answer", function()
    local handles = {}
    for i = 1, 100 do
      handles[i] = aqueue.spawn(function()
        local path = dir .. "/f" .. i
        assert(fs.write(path, ("%d "):format(i):rep(i)))
        return fs.read(path)
      end)
    end
    for i = 1, 100 do
      assert.are.equal(("%d "):format(i):rep(i), handles[i]:result())
    end
    assert.are.equal(100, #fs.list(dir))
  end)
end)

describe("a cancelled fs operation", function()
  -- Opening a FIFO blocks a pool thread until a writer comes. With more such
  -- reads than the pool has threads (4 unless UV_THREADPOOL_SIZE says more),
  -- some requests are running when cancelled (they cannot be stopped) and
  -- some still queued (uv_cancel drops them). Either way the task must never
  -- resume, and every request is freed once it ends (the ASan run checks).
  it("never resumes its task, whether the request was running or queued", function()
    local n = 12
    local fifos, handles, resumed = {}, {}, {}
    for i = 1, n do
      fifos[i] = dir .. "/fifo" .. i
      sh("mkfifo " .. fifos[i])
      handles[i] = aqueue.spawn(function()
        fs.read(fifos[i])
        resumed[#resumed + 1] = i
      end)
    end
    aqueue.sleep(0.05) -- every task has started its open by now
    for i = 1, n do assert.is_true(handles[i]:cancel()) end
    -- Opening read-write never blocks, and lets a blocked reader's open end.
    for i = 1, n do sh(": <> " .. fifos[i]) end
    aqueue.sleep(0.2)
    assert.are.same({}, resumed)
    for i = 1, n do
      local ok, err = handles[i]:result()
      assert.is_nil(ok)
      assert.are.equal("cancelled", err)
    end
    -- The pool is free again.
    assert.are.equal("directory", fs.stat(dir).type)
  end)
end)
