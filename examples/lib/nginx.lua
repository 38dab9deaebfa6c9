-- A private nginx on 127.0.0.1, for the examples (examples/crawl.lua) and, through
-- tests/support/nginx.lua, for the tests and benchmarks. Self-contained: it needs
-- only LuaJIT, the nginx command, setsid and setpriv (util-linux), and openssl
-- for tls.
--
--   local nginx = require("lib.nginx")  -- from an example (see examples/crawl.lua)
--   local server = nginx.start{
--     root = dir,                 -- the directory to serve (default: server.root, a
--                                 -- fresh empty directory inside server.prefix)
--     server = [[ location ... ]] -- directives added inside server { }
--     http = [[ gzip on; ]],      -- directives added inside http { }
--     main = [[ load_module ...; ]], -- directives added at the top of the config
--     workers = 1,                -- worker processes (default 1)
--     connections = 1024,         -- each worker's connections, and the listen backlog
--     tls = true,                 -- HTTPS with a fresh self-signed certificate
--                                 -- for 127.0.0.1 (needs the openssl command)
--     http2 = true,               -- with tls: HTTP/2 offered too (ALPN)
--   }
--   server.url      -- "http://127.0.0.1:PORT" or "https://..." (no trailing slash)
--   server.port, server.root, server.prefix (a temp dir: config, logs, pid), server.pid
--   server.cert     -- with tls: the certificate's path (PEM)
--   server:log()    -- the error log, for failure messages
--   server:stop()   -- stops nginx by PID and removes the prefix; idempotent
--
-- nginx runs with a generated config, listens on 127.0.0.1 only, on a port that
-- was free, and keeps every file it writes in the prefix. Its master process is
-- a child of this process (`daemon off`, started with posix_spawn), so stop()
-- can reap it: a daemon would be left to init, and where init does not reap
-- (containers), every run would leave zombies behind. It runs in a session and
-- process group of its own: a Ctrl-C typed at the terminal goes to the
-- terminal's foreground process group, so it reaches the script (which stops
-- gracefully, its running items still talking to the server) and not nginx;
-- the script that started the server stops it, after its run. start() waits
-- for the pid file, which nginx writes once it listens. start() and stop()
-- block the engine briefly (milliseconds; a few seconds at worst). Always stop
-- it: after run_queue returns; in a spec, from `teardown`/`finally`; as a last
-- resort the server stops itself when it is garbage-collected or the Lua state
-- closes (os.exit, end of the script).
local ffi = require("ffi")
local bit = require("bit")

local function cdef(decl) pcall(ffi.cdef, decl) end
cdef("int kill(int pid, int sig);")
cdef("unsigned int getuid(void);")
cdef("char *mkdtemp(char *template);")
cdef("int mkdir(const char *path, unsigned int mode);")
cdef("int poll(void *fds, unsigned long nfds, int timeout);")
cdef("int waitpid(int pid, int *status, int options);")
cdef("int posix_spawn(int *pid, const char *path, const void *file_actions, const void *attr, char *const argv[], char *const envp[]);")
cdef("extern char **environ;")
cdef("int socket(int domain, int type, int protocol);")
cdef("int bind(int fd, const void *addr, unsigned int len);")
cdef("int getsockname(int fd, void *addr, unsigned int *len);")
cdef("int close(int fd);")
cdef([[typedef struct {
  uint16_t family; uint16_t port; uint32_t addr; uint8_t zero[8];
} aq_nginx_sockaddr_in;]])

local SIGTERM, SIGKILL, WNOHANG = 15, 9, 1
local START_TIMEOUT, STOP_TIMEOUT = 10, 5 -- seconds

local function sleep_ms(ms) ffi.C.poll(nil, 0, ms) end

-- The whole file, or nil when it cannot be opened.
local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("*a")
  f:close()
  return data
end

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  f:close()
end

-- A port on 127.0.0.1 that nothing listened on when this returned.
local function free_port()
  local AF_INET, SOCK_STREAM, SOCK_CLOEXEC = 2, 1, 0x80000
  local fd = ffi.C.socket(AF_INET, SOCK_STREAM + SOCK_CLOEXEC, 0)
  assert(fd >= 0, "socket() failed")
  local sa = ffi.new("aq_nginx_sockaddr_in")
  sa.family = AF_INET
  sa.addr = 0x0100007F -- 127.0.0.1 in network byte order, on little-endian x86
  local len = ffi.new("unsigned int[1]", ffi.sizeof(sa))
  local ok = ffi.C.bind(fd, sa, ffi.sizeof(sa)) == 0 and ffi.C.getsockname(fd, sa, len) == 0
  ffi.C.close(fd)
  assert(ok, "cannot bind a socket to 127.0.0.1")
  return bit.rshift(bit.bswap(sa.port), 16)
end

local function find_nginx()
  for _, path in ipairs({ os.getenv("AQUEUE_NGINX") or "", "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx" }) do
    local f = path ~= "" and io.open(path, "rb")
    if f then
      f:close()
      return path
    end
  end
  error("nginx is not installed (Debian: apt-get install nginx-light), or set AQUEUE_NGINX", 3)
end



-- Single-quoted for sh. Paths come from mkdtemp or the caller.
local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function succeeded(...)
  local a, _, c = ...
  return a == 0 or (a == true and (c == nil or c == 0)) -- Lua 5.1 and 5.2 styles
end

-- Reaps child pid if it has exited; true once it is gone.
local function reaped(pid)
  local r = ffi.C.waitpid(pid, nil, WNOHANG)
  return r == pid or r < 0
end

-- Starts `command` as our child, with `sh -c "exec ..."`: the child's pid is the
-- command's. setsid gives it a session and process group of its own (it does not
-- fork: the child of posix_spawn leads no group), so no signal a terminal sends
-- to our process group reaches it. It is killed if this process dies, even by
-- SIGKILL (setpriv sets the parent-death signal, which survives its exec), so a
-- script or test killed mid-run never leaves a server behind.
local function spawn(command)
  local args = { "sh", "-c", "exec setsid setpriv --pdeathsig KILL -- " .. command }
  local argv = ffi.new("char *[?]", #args + 1)
  local keep = {}
  for i, a in ipairs(args) do
    keep[i] = ffi.new("char[?]", #a + 1, a)
    argv[i - 1] = keep[i]
  end
  local pid = ffi.new("int[1]")
  local err = ffi.C.posix_spawn(pid, "/bin/sh", nil, nil, argv, ffi.C.environ)
  assert(err == 0, "posix_spawn failed: " .. err)
  return pid[0]
end

local function config(o)
  return table.concat({
    o.main or "",
    "daemon off;",
    -- One worker: nginx runs as a single process, so the parent-death signal
    -- (see spawn) takes all of it down; a master's workers would outlive it.
    o.workers == 1 and "master_process off;" or "master_process on;",
    "worker_processes " .. o.workers .. ";",
    ffi.C.getuid() == 0 and "user root;" or "",
    "pid " .. o.prefix .. "/nginx.pid;",
    "lock_file " .. o.prefix .. "/nginx.lock;",
    "error_log " .. o.prefix .. "/error.log warn;",
    ("events { worker_connections %d; }"):format(o.connections),
    "http {",
    "  include /etc/nginx/mime.types;",
    "  default_type application/octet-stream;",
    "  access_log off;",
    "  keepalive_requests 100000;",
    "  client_body_temp_path " .. o.prefix .. "/tmp/body;",
    "  proxy_temp_path " .. o.prefix .. "/tmp/proxy;",
    "  fastcgi_temp_path " .. o.prefix .. "/tmp/fastcgi;",
    "  uwsgi_temp_path " .. o.prefix .. "/tmp/uwsgi;",
    "  scgi_temp_path " .. o.prefix .. "/tmp/scgi;",
    o.http or "",
    "  server {",
    ("    listen 127.0.0.1:%d backlog=%d"):format(o.port, o.connections)
      .. (o.tls and (o.http2 and " ssl http2;" or " ssl;") or ";"),
    o.tls and ("    ssl_certificate %s/cert.pem;\n    ssl_certificate_key %s/key.pem;"):format(o.prefix, o.prefix) or "",
    "    server_name localhost;",
    "    root " .. o.root .. ";",
    o.server or "",
    "  }",
    "}",
    "",
  }, "\n")
end

local Server = {}
Server.__index = Server

function Server:log()
  return read_file(self.prefix .. "/error.log") or ""
end

function Server:stop()
  if self.stopped then return end
  self.stopped = true
  local pid = self.pid
  if pid then
    ffi.C.kill(pid, SIGTERM) -- fast shutdown: the master stops its workers
    local waited = 0
    while not reaped(pid) and waited < STOP_TIMEOUT * 1000 do
      sleep_ms(5)
      waited = waited + 5
    end
    if not reaped(pid) then
      ffi.C.kill(pid, SIGKILL)
      while not reaped(pid) do sleep_ms(5) end
    end
  end
  os.execute("rm -rf " .. shell_quote(self.prefix))
end

-- Starts nginx (see the top of the file for opts). Raises when it cannot.
local function start(opts)
  opts = opts or {}
  local bin = find_nginx()
  local template = ffi.new("char[?]", 64, "/tmp/aqueue-nginx-XXXXXX")
  assert(ffi.C.mkdtemp(template) ~= nil, "mkdtemp failed")
  local prefix = ffi.string(template)
  ffi.C.mkdir(prefix .. "/tmp", 448) -- 0700
  local root = opts.root
  if not root then
    root = prefix .. "/html"
    ffi.C.mkdir(root, 493) -- 0755
  end
  local server = setmetatable({ prefix = prefix, root = root }, Server)
  -- Stops nginx if the server object is dropped or the state closes first.
  local guard = newproxy(true)
  getmetatable(guard).__gc = function() server:stop() end
  server._guard = guard

  if opts.tls then
    local cmd = ("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
      .. "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1")
      :format(shell_quote(prefix .. "/key.pem"), shell_quote(prefix .. "/cert.pem"))
    if not succeeded(os.execute(cmd)) then
      server:stop()
      error("cannot make a certificate with the openssl command", 2)
    end
    server.cert = prefix .. "/cert.pem"
  end

  local conf = prefix .. "/nginx.conf"
  local last_log
  for _ = 1, 5 do -- another process may take the free port before nginx does
    local port = free_port()
    write_file(conf, config({
      prefix = prefix, root = root, port = port, workers = opts.workers or 1, connections = opts.connections or 1024,
      server = opts.server, http = opts.http, main = opts.main, tls = opts.tls, http2 = opts.http2,
    }))
    os.remove(prefix .. "/error.log")
    os.remove(prefix .. "/nginx.pid")
    server.pid = spawn(("%s -p %s -c %s -e %s 2>>%s"):format(shell_quote(bin), shell_quote(prefix .. "/"), shell_quote(conf),
      shell_quote(prefix .. "/error.log"), shell_quote(prefix .. "/error.log")))
    local waited, exited = 0, false
    while waited < START_TIMEOUT * 1000 do
      if read_file(prefix .. "/nginx.pid") then break end
      if reaped(server.pid) then exited = true break end
      sleep_ms(2)
      waited = waited + 2
    end
    if not exited then
      if waited >= START_TIMEOUT * 1000 then
        local log = server:log()
        server:stop()
        error("nginx did not start in " .. START_TIMEOUT .. " s:\n" .. log, 2)
      end
      server.port = port
      server.url = (opts.tls and "https" or "http") .. "://127.0.0.1:" .. port
      return server
    end
    server.pid = nil
    last_log = server:log()
    if not last_log:find("in use", 1, true) then break end
  end
  server:stop()
  error("nginx failed to start:\n" .. (last_log or ""), 2)
end

return { start = start }
