-- Test support: loopback TCP sockets made with LuaJIT's FFI, for tests that need
-- a port nobody listens on, or a server that accepts connections and never
-- answers. Everything binds 127.0.0.1 only.
--   local tcp = require("tests.support.tcp")
--   local port = tcp.free_port()          -- a port that was free a moment ago
--   local s = tcp.stalled_listener()      -- s.port, s.url; s:close()
local ffi = require("ffi")
local bit = require("bit")

local function cdef(decl) pcall(ffi.cdef, decl) end
cdef("int socket(int domain, int type, int protocol);")
cdef("int bind(int fd, const void *addr, unsigned int len);")
cdef("int listen(int fd, int backlog);")
cdef("int getsockname(int fd, void *addr, unsigned int *len);")
cdef("int close(int fd);")
cdef([[typedef struct {
  uint16_t family; uint16_t port; uint32_t addr; uint8_t zero[8];
} aq_test_sockaddr_in;]])

local AF_INET, SOCK_STREAM, SOCK_CLOEXEC = 2, 1, 0x80000
local LOOPBACK = 0x0100007F -- 127.0.0.1 in network byte order, on little-endian x86

local function htons(n) return bit.rshift(bit.bswap(n), 16) end

-- A socket bound to 127.0.0.1 on a port the kernel picked; returns fd, port.
local function bound_socket()
  local fd = ffi.C.socket(AF_INET, SOCK_STREAM + SOCK_CLOEXEC, 0)
  assert(fd >= 0, "socket() failed")
  local sa = ffi.new("aq_test_sockaddr_in")
  sa.family = AF_INET
  sa.addr = LOOPBACK
  sa.port = 0
  if ffi.C.bind(fd, sa, ffi.sizeof(sa)) ~= 0 then
    ffi.C.close(fd)
    error("bind(127.0.0.1:0) failed")
  end
  local len = ffi.new("unsigned int[1]", ffi.sizeof(sa))
  assert(ffi.C.getsockname(fd, sa, len) == 0, "getsockname() failed")
  return fd, htons(sa.port)
end

-- A port on 127.0.0.1 that nothing listened on when this returned.
local function free_port()
  local fd, port = bound_socket()
  ffi.C.close(fd)
  return port
end

local Stalled = {}
Stalled.__index = Stalled

function Stalled:close()
  if self.fd then
    ffi.C.close(self.fd)
    self.fd = nil
  end
end

-- A listening socket that never accepts: the kernel completes connections and
-- takes the request bytes, and no answer ever comes. Close it when done.
local function stalled_listener()
  local fd, port = bound_socket()
  assert(ffi.C.listen(fd, 128) == 0, "listen() failed")
  return setmetatable({ fd = fd, port = port, url = ("http://127.0.0.1:%d/"):format(port) }, Stalled)
end

return { free_port = free_port, stalled_listener = stalled_listener }
