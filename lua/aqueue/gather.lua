-- aqueue.gather, aqueue.wait_any, aqueue.with_timeout: waiting for several
-- tasks at once, or for one with a time limit (asyncio.gather, asyncio.wait
-- with FIRST_COMPLETED, asyncio.wait_for).
--
-- They wait like handle:result(): the waiting task gives its worker slot back
-- meanwhile, so waiting never deadlocks. The tasks gather and with_timeout
-- spawn for functions belong to them: when the waiting task is cancelled
-- (handle:cancel(), an item's timeout, a second Ctrl-C), or with_timeout's
-- time runs out, they are cancelled too, with whatever they wait on.
-- Handles passed in belong to the caller and are never cancelled here.
local core = require("aqueue.core")
local handle = require("aqueue.handle")
local sync = require("aqueue.sync")

local spawn, is_handle, wait_handles = handle.spawn, handle.is_handle, handle.wait_handles
local timed_out, check_timeout = sync.timed_out, sync.check_timeout
local select, type, error, unpack, tostring = select, type, error, unpack, tostring
local huge = math.huge

local function pack(...)
  return { n = select("#", ...), ... }
end

local function check_task(what)
  if not core.current() then
    error(what .. " waits, so it must be called from an aqueue task (the main chunk, process, "
      .. "a hook or a spawned task), not from a coroutine the script created itself: "
      .. "use aqueue.spawn", 3)
  end
end

-- The guard for a wait on tasks this call spawned: cancels those still running.
local function cancel_on_end(owned)
  return function()
    for i = 1, #owned do
      owned[i]:cancel()
    end
  end
end

-- aqueue.gather(fn_or_handle, ...): runs each function as a task of its own
-- (they run concurrently), waits for them and for each handle until all have
-- finished, and returns one value per argument, in argument order: the first
-- value each returned. When one failed (raised, was cancelled, or the item
-- failed), it returns nil, err with the error of the first failed argument in
-- argument order, after all have finished.
local function gather(...)
  local n = select("#", ...)
  local hs = { ... }
  for i = 1, n do
    local v = hs[i]
    if type(v) ~= "function" and not is_handle(v) then
      error(("aqueue.gather(fn_or_handle, ...): argument #%d must be a function or a handle "
        .. "(from enqueue or aqueue.spawn), got %s"):format(i, type(v)), 2)
    end
  end
  check_task("aqueue.gather()")
  local owned = {}
  for i = 1, n do
    if type(hs[i]) == "function" then
      hs[i] = spawn(hs[i])
      owned[#owned + 1] = hs[i]
    end
  end
  local waiting, m = {}, 0
  for i = 1, n do
    if not hs[i]:_finished() then
      m = m + 1
      waiting[m] = hs[i]
    end
  end
  if m > 0 then
    wait_handles(waiting, m, m, nil, #owned > 0 and cancel_on_end(owned) or nil)
  end
  local values = {}
  for i = 1, n do
    local err = hs[i]:_error()
    if err ~= nil then
      return nil, err
    end
    values[i] = (hs[i]:result())
  end
  return unpack(values, 1, n)
end

-- aqueue.wait_any(handles [, timeout]): waits until the first of the handles
-- (a non-empty list) has finished and returns that handle and its index in
-- the list; when some have already finished, the first of those in list order,
-- at once. Its results are then h:result(). The others go on. With a timeout,
-- nil, "timeout", "ETIMEDOUT" when none finished in that many seconds.
local function wait_any(handles, timeout)
  if type(handles) ~= "table" or is_handle(handles) or #handles == 0 then
    error("aqueue.wait_any(handles [, timeout]): handles must be a non-empty list of handles, got "
      .. (type(handles) == "table" and (is_handle(handles) and "a handle" or "an empty table") or type(handles)), 2)
  end
  local n = #handles
  for i = 1, n do
    if not is_handle(handles[i]) then
      error(("aqueue.wait_any(handles [, timeout]): handles[%d] must be a handle (from enqueue or "
        .. "aqueue.spawn), got %s"):format(i, type(handles[i])), 2)
    end
  end
  timeout = check_timeout("aqueue.wait_any(handles [, timeout])", timeout)
  check_task("aqueue.wait_any()")
  for i = 1, n do
    if handles[i]:_finished() then
      return handles[i], i
    end
  end
  local i = wait_handles(handles, n, 1, timeout)
  if not i then
    return timed_out()
  end
  return handles[i], i
end

-- The task with_timeout spawns: fn's results after true, or false and the
-- error value as raised (so with_timeout raises it as it was).
local function call_protected(fn, ...)
  return pack(pcall(fn, ...))
end

-- aqueue.with_timeout(seconds, fn, ...): fn(...)'s results when it returns
-- within that many seconds; else nil, "timeout", "ETIMEDOUT", and fn's task
-- is cancelled (what it waits on is cancelled and freed; it never runs
-- again). An error fn raises is raised again here. fn runs as a task of its
-- own, like aqueue.spawn.
local function with_timeout(seconds, fn, ...)
  local what = "aqueue.with_timeout(seconds, fn, ...)"
  if type(seconds) ~= "number" or not (seconds >= 0) then
    error(what .. ": seconds must be a number >= 0, got " .. tostring(seconds), 2)
  end
  if type(fn) ~= "function" then
    error(what .. ": fn must be a function, got " .. type(fn), 2)
  end
  check_task("aqueue.with_timeout()")
  local h = spawn(call_protected, fn, ...)
  local owned = { h }
  if not wait_handles(owned, 1, 1, seconds ~= huge and seconds or nil, cancel_on_end(owned)) then
    h:cancel()
    return timed_out()
  end
  local r = h:result()
  if not r[1] then
    error(r[2], 0)
  end
  return unpack(r, 2, r.n)
end

return {
  gather = gather,
  wait_any = wait_any,
  with_timeout = with_timeout,
}
