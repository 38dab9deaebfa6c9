-- Test support: a private redis-server on 127.0.0.1, for the specs and
-- benchmarks. Never another Redis: each server has a port that was free, a
-- fresh temporary directory, and is stopped by its PID.
--   local redis_server = require("tests.support.redis_server")
--   local server = redis_server.start{
--     password = "secret",       -- --requirepass (default: none)
--     unix = true,               -- also listen on server.socket, a unix socket in server.dir
--     appendfsync = "everysec",  -- default "always" (appendonly is always on)
--   }
--   server.port, server.url ("redis://127.0.0.1:PORT"), server.socket, server.dir, server.pid
--   server:cli("DBSIZE")         -- runs redis-cli against it, returns its output line
--   server:kill()                -- kill -9, reaped (the data stays in server.dir)
--   server:start_again()         -- the same port, directory and options (the AOF is reloaded)
--   server:stop()                -- kill, and remove the directory; idempotent
--
-- The server is a child of this process (posix_spawn, `--daemonize no`) in a
-- session of its own, killed if this process dies (setpriv --pdeathsig), as
-- examples/lib/nginx.lua does for nginx. start() and kill() block the engine
-- briefly (until the server answers PING, or is reaped). Stop it from
-- `teardown`/`finally`; as a last resort it stops when garbage-collected.
local ffi = require("ffi")
local tcp = require("tests.support.tcp")

local function cdef(decl) pcall(ffi.cdef, decl) end
cdef("int kill(int pid, int sig);")
cdef("char *mkdtemp(char *template);")
cdef("int poll(void *fds, unsigned long nfds, int timeout);")
cdef("int waitpid(int pid, int *status, int options);")
cdef("int posix_spawn(int *pid, const char *path, const void *file_actions, const void *attr, char *const argv[], char *const envp[]);")
cdef("extern char **environ;")
cdef("char *realpath(const char *path, char *resolved);")
cdef("void free(void *p);")

local SIGKILL, WNOHANG = 9, 1
local START_TIMEOUT = 20 -- seconds; only a failing start waits that long

local function sleep_ms(ms) ffi.C.poll(nil, 0, ms) end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function reaped(pid)
  local r = ffi.C.waitpid(pid, nil, WNOHANG)
  return r == pid or r < 0
end

-- Starts argv (a list) as our child; returns its pid.
local function spawn(args)
  local argv = ffi.new("char *[?]", #args + 1)
  local keep = {}
  for i, a in ipairs(args) do
    keep[i] = ffi.new("char[?]", #a + 1, a)
    argv[i - 1] = keep[i]
  end
  local pid = ffi.new("int[1]")
  local err = ffi.C.posix_spawn(pid, args[1], nil, nil, argv, ffi.C.environ)
  assert(err == 0, "posix_spawn failed: " .. err)
  return pid[0]
end

local Server = {}
Server.__index = Server

function Server:log()
  local f = io.open(self.dir .. "/redis.log", "rb")
  if not f then return "" end
  local data = f:read("*a")
  f:close()
  return data
end

-- redis-cli's output (first line) for a command against this server.
function Server:cli(...)
  local words = { "redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p", tostring(self.port) }
  if self.password then
    words[#words + 1] = "-a"
    words[#words + 1] = self.password
  end
  for i = 1, select("#", ...) do
    words[#words + 1] = tostring((select(i, ...)))
  end
  for i, w in ipairs(words) do
    words[i] = shell_quote(w)
  end
  local p = assert(io.popen(table.concat(words, " ") .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return (out:gsub("\n$", ""))
end

function Server:start_again()
  local args = {
    "/usr/bin/setsid", "setpriv", "--pdeathsig", "KILL", "--", "redis-server",
    "--port", tostring(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
    "--save", "", "--appendonly", "yes", "--appendfsync", self.appendfsync,
    "--daemonize", "no", "--logfile", self.dir .. "/redis.log",
    "--enable-debug-command", "local", -- DEBUG SLEEP, for the timeout tests
  }
  if self.password then
    args[#args + 1] = "--requirepass"
    args[#args + 1] = self.password
  end
  if self.socket then
    for _, a in ipairs({ "--unixsocket", self.socket, "--unixsocketperm", "700" }) do
      args[#args + 1] = a
    end
  end
  self.pid = spawn(args)
  local waited = 0
  while true do
    -- ours when it answers from our directory: another server may have taken
    -- the port between tcp.free_port() and our bind (which then fails)
    local answer = self:cli("PING")
    if answer == "PONG" and self:cli("CONFIG", "GET", "dir"):match("[^\n]*$") == self.dir_real then return self end
    if reaped(self.pid) or waited >= START_TIMEOUT * 1000 then
      self.pid = nil
      error("redis-server did not start on port " .. self.port .. ":\n" .. self:log(), 2)
    end
    sleep_ms(5)
    waited = waited + 5
  end
end

function Server:kill()
  local pid = self.pid
  if not pid then return end
  self.pid = nil
  ffi.C.kill(pid, SIGKILL)
  while not reaped(pid) do sleep_ms(2) end
end

function Server:stop()
  if self.stopped then return end
  self.stopped = true
  self:kill()
  os.execute("rm -rf " .. shell_quote(self.dir))
end

local M = {}

function M.start(opts)
  opts = opts or {}
  local template = ffi.new("char[?]", 64, "/tmp/aqueue-redis-XXXXXX")
  assert(ffi.C.mkdtemp(template) ~= nil, "mkdtemp failed")
  local dir = ffi.string(template)
  local real = ffi.C.realpath(template, nil)
  local server = setmetatable({
    dir = dir,
    dir_real = ffi.string(real), -- as the server reports its directory
    port = tcp.free_port(),
    password = opts.password,
    appendfsync = opts.appendfsync or "always",
    socket = opts.unix and dir .. "/redis.sock" or nil,
  }, Server)
  ffi.C.free(real)
  server.url = "redis://127.0.0.1:" .. server.port
  local guard = newproxy(true)
  getmetatable(guard).__gc = function() server:stop() end
  server._guard = guard
  return server:start_again()
end

return M
