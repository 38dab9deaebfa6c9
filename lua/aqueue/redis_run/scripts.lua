-- aqueue.redis_run.scripts: the atomic steps of a shared run, as Redis
-- server-side scripts (each one EVALSHA, whatever the size of its batch).
-- Each body runs after aqueue.redis_run.prelude (its helpers, KEYS, ARGV[1]
-- = the order, ARGV[2] = the process number); its own arguments start at
-- ARGV[3]. aqueue.redis_run calls them; README "The shared run's data in
-- Redis" says what each does.
local redis = require("aqueue.redis")
local prelude = require("aqueue.redis_run.prelude")

local BODIES = {}

-- open: ARGV format, version, classes, limits (JSON), key types (JSON),
-- lease. Creates the run's meta or checks it; registers the process. A
-- process that finds no other alive (none seen within a lease) starts a new
-- session of the run: its start time and its count of items started
-- (max_items and max_time count from there, as a run resumed from a state
-- file counts anew). Returns { first (1/0), process number, the run's limits
-- JSON, seconds since the session began } or { 0, why } when the run cannot
-- be joined.
BODIES.open = [==[
local format, version, classes, limits, types = ARGV[3], ARGV[4], ARGV[5], ARGV[6], cjson.decode(ARGV[7])
local lease = tonumber(ARGV[8])
for i, key in ipairs(KEYS) do
  local t = call('TYPE', key).ok
  local want = types[i] -- 'list|zset' for the ready queue: the order is checked below
  if t ~= 'none' and not string.find('|' .. want .. '|', '|' .. t .. '|', 1, true) then
    return { 0, fmt('key %s holds a %s, not the %s of an aqueue run', key, t, want) }
  end
end
local first = 0
if call('EXISTS', K_META) == 0 then
  for i = 2, #KEYS do
    if call('EXISTS', KEYS[i]) == 1 then
      return { 0, fmt('key %s exists but %s does not: not an aqueue run', KEYS[i], K_META) }
    end
  end
  call('HSET', K_META, 'format', format, 'version', version, 'classes', classes, 'order', ORDER,
    'limits', limits, 'created', time_text(NOW))
  first = 1
else
  local m = call('HMGET', K_META, 'format', 'version', 'classes', 'order', 'limits')
  if m[1] ~= format then
    return { 0, fmt('key %s is not the meta of an aqueue run (no format marker)', K_META) }
  elseif m[2] ~= version then
    return { 0, fmt('run written by format version %s; this aqueue reads version %s', tostring(m[2]), version) }
  elseif m[3] ~= classes then
    return { 0, fmt("the run's item classes are %s; this script's are %s",
      (string.gsub(tostring(m[3]), '\n', ', ')), (string.gsub(classes, '\n', ', '))) }
  elseif m[4] ~= ORDER then
    return { 0, fmt("the run's order is %s; this script's is %s", tostring(m[4]), ORDER) }
  end
  limits = m[5]
end
if call('ZCOUNT', K_PROCS, NOW - lease, '+inf') == 0 then
  call('HSET', K_META, 'session_start', time_text(NOW), 'started', 0)
end
local pid = call('HINCRBY', K_META, 'next_pid', 1)
call('ZADD', K_PROCS, NOW, pid)
return { first, pid, limits, time_text(NOW - tonumber(call('HGET', K_META, 'session_start'))) }
]==]

-- look: ARGV format, version. What the tools (--status, --retry-failed)
-- need to use a run they name without its script: its classes and order.
-- Writes nothing: no process joins, no session begins. Returns { 1,
-- classes, order } or { 0, why }.
BODIES.look = [==[
local m = call('HMGET', K_META, 'format', 'version', 'classes', 'order')
if not m[1] and call('EXISTS', K_META) == 0 then
  return { 0, 'no such run in this Redis' }
elseif m[1] ~= ARGV[3] then
  return { 0, fmt('key %s is not the meta of an aqueue run (no format marker)', K_META) }
elseif m[2] ~= ARGV[4] then
  return { 0, fmt('run written by format version %s; this aqueue reads version %s', tostring(m[2]), ARGV[4]) }
end
return { 1, m[3], m[4] }
]==]

-- enqueue: ARGV the entries, packed (prelude's ENTRY fields; each carries
-- its parent). Returns one id or false per entry; a missing or finished
-- parent refuses the whole batch before anything is written.
BODIES.enqueue = [==[
local entries = cjson.decode(ARGV[3])
for _, e in ipairs(entries) do
  local err = parent_error(e[E_PARENT])
  if err then return { err = 'EAQRUN ' .. err } end
end
know_keys(entries)
local ids = {}
for k, e in ipairs(entries) do
  ids[k] = enqueue_entry(e, e[E_PARENT] or 0)
end
flush()
return ids
]==]

-- claim: ARGV n, lease, per_key, rate, per-key limits (JSON or ''),
-- max_items (0: none), from ARGV[CLAIM_AT].
-- Up to n jobs: due hooks first, then the held items of limit keys that may
-- start again, then the ready queue (due delayed items join it first). A
-- job of a limit key that may not start yet waits in the key's held list.
-- max_items counts the first attempts of process jobs started in the
-- session (the meta's `started`): none starts past it (hooks still do).
-- A rate's starts are handed out up to RATE_AHEAD before they are due, each
-- with the seconds to wait before it starts (the process delays it by its
-- own timer): a start then does not hang on a claim reaching the server at
-- the right millisecond, which a loaded machine misses.
-- The claim writes no record: each job gets a lease "id:token" (one token
-- per claim: it names this claim of the job, whichever job it is), whose
-- expiry is in whole milliseconds (an integer is cheaper to write than a
-- float, in the zset and in the AOF).
-- Returns { jobs, reached, wake_in, starts, token }: jobs is id, kind,
-- class, fields, parent, attempt, max_attempts of each job, one after the
-- other in one flat list (a list of lists costs the server more to send);
-- reached is 1 once the session started max_items items, else 0; wake_in
-- the seconds until a key held back by its rate may be claimed again ('':
-- none is); starts is id, seconds to wait, for the jobs that must wait.
local CLAIM_STEP = [==[
local n, lease = tonumber(ARGV[CLAIM_AT]), tonumber(ARGV[CLAIM_AT + 1])
local per_key, rate = tonumber(ARGV[CLAIM_AT + 2]), tonumber(ARGV[CLAIM_AT + 3])
local overrides = ARGV[CLAIM_AT + 4] ~= '' and cjson.decode(ARGV[CLAIM_AT + 4]) or nil
local max_items = tonumber(ARGV[CLAIM_AT + 5])
local MAX_SCAN = 4096 -- ready items looked at per claim (held ones move out of the way)
local RATE_AHEAD = 0.05 -- seconds (see above)
local jobs, ids, leased, starts = {}, {}, {}, {}
local expiry = tostring(math.floor((NOW + lease) * 1000))
local token = next_number('next_token')
local member_suffix = ':' .. token

local function limits_of(key)
  local o = overrides and overrides[key]
  if o then return o.per_key or per_key, o.rate or rate end
  return per_key, rate
end
-- nil when a job of `key` may start now; else 'n' (per_key is full) or the
-- time its rate allows the next start.
local function blocked(key)
  local pk, r = limits_of(key)
  if pk > 0 and tonumber(call('HGET', K_KRUN, key) or 0) >= pk then return 'n' end
  if r > 0 then
    local due = tonumber(call('HGET', K_KNEXT, key) or 0)
    if due > NOW + RATE_AHEAD then return due - RATE_AHEAD end
  end
  return nil
end
-- A token bucket with a burst of 1, as in one process
-- (engine/core/rate_schedule.h): the next start is due one interval after
-- this one was due, so starts that came late by less than the catch-up
-- window (an interval, at least 10 ms: a claim waits for its turn at the
-- server and for the process's loop) are made up, by the next claims or
-- this one; a key idle for longer saves up no burst: its next start is due
-- one interval from now.
local function key_started(key)
  call('HINCRBY', K_KRUN, key, 1)
  local _, r = limits_of(key)
  if r > 0 then
    local interval = 1 / r
    local due = tonumber(call('HGET', K_KNEXT, key) or 0)
    if due < NOW - math.max(interval, 0.01) then due = NOW end
    call('HSET', K_KNEXT, key, time_text(due + interval))
    if due > NOW then
      local j = #starts
      starts[j + 1], starts[j + 2] = ids[#ids], time_text(due - NOW) -- (the job just started)
    end
  end
end

-- How many more first attempts max_items lets start (math.huge: no limit).
local function room()
  if max_items == 0 then return math.huge end
  return max_items - meta_number('started')
end

-- Job `id` (text: the same as a string) starts.
local function start(id, text, r, kind)
  if kind == 'process' and r[ATT] == 0 then next_number('started') end
  leased[#leased + 1], leased[#leased + 2] = expiry, text .. member_suffix
  ids[#ids + 1] = id
  count(r, 'queued', -1)
  count(r, 'running', 1)
  local j = #jobs
  jobs[j + 1], jobs[j + 2], jobs[j + 3], jobs[j + 4] = id, kind, r[CLASS], r[FIELDS]
  jobs[j + 5], jobs[j + 6], jobs[j + 7] = r[PARENT], kind == 'process' and r[ATT] + 1 or 0, r[MAXA]
end

local hook_texts = call('LPOP', K_HOOKS, n) or {}
local hooks = {}
for i, text in ipairs(hook_texts) do hooks[i] = tonumber(text) end
load_many(hooks, hook_texts)
for i, id in ipairs(hooks) do start(id, hook_texts[i], RECS[id], 'hook') end

local due = call('ZRANGEBYSCORE', K_DELAYED, '-inf', NOW, 'LIMIT', 0, 1000)
if #due > 0 then
  call('ZREM', K_DELAYED, unpack(due))
  for i, id in ipairs(due) do due[i] = tonumber(id) end
  load_many(due)
  for _, id in ipairs(due) do
    local r = RECS[id]
    ready_push(id, r, false)
    count(r, 'delayed', -1)
    count(r, 'queued', 1)
  end
end

for _, key in ipairs(call('ZRANGEBYSCORE', K_WAKE, '-inf', NOW, 'LIMIT', 0, 100)) do
  local held = held_key(key)
  while #ids < n and room() > 0 and not blocked(key) do
    local text = call('LPOP', held)
    if not text then break end
    local id = tonumber(text)
    start(id, text, load(id), 'process')
    key_started(key)
  end
  if call('EXISTS', held) == 0 then
    call('ZREM', K_WAKE, key)
  else
    local b = blocked(key)
    if b == 'n' then
      call('ZREM', K_WAKE, key) -- woken again when one of its running jobs ends
    elseif b then
      call('ZADD', K_WAKE, b, key)
    end -- else: it may start more, this claim is full
  end
end

local scanned = 0
while #ids < n and scanned < MAX_SCAN and room() > 0 do
  local popped, texts = ready_pop(math.min(n - #ids, MAX_SCAN - scanned, room())) -- (a retry takes no room: a claim may come short)
  if #popped == 0 then break end
  scanned = scanned + #popped
  for i, id in ipairs(popped) do
    local r = RECS[id]
    if r[LKEY] == '' then
      start(id, texts[i], r, 'process')
    else
      local key = string.sub(r[LKEY], 2)
      local held = held_key(key)
      local b = call('EXISTS', held) == 1 and 'held' or blocked(key)
      if not b then
        start(id, texts[i], r, 'process')
        key_started(key)
      else
        call('RPUSH', held, texts[i]) -- behind the key's earlier items
        if b ~= 'held' and b ~= 'n' then call('ZADD', K_WAKE, b, key) end
      end
    end
  end
end

drop_unleased()
call_many('ZADD', K_LEASES, leased)
call('ZADD', K_PROCS, NOW, PID)
local reached = room() <= 0 and 1 or 0
-- the seconds until a job held back by a rate may start ('' when none is):
-- a process whose claim came short asks again then, not after a fixed poll
local next_wake = call('ZRANGE', K_WAKE, 0, 0, 'WITHSCORES')[2]
local wake_in = next_wake and time_text(math.max(0, tonumber(next_wake) - NOW)) or ''
]==]
BODIES.claim = 'local CLAIM_AT = 3\n' .. CLAIM_STEP .. 'flush()\nreturn { jobs, reached, wake_in, starts, token }\n'

-- complete: ARGV[COMPLETE_AT] the results, packed: one JSON array whose
-- results are arrays { id (a string), lease member ("id:token"), outcome,
-- { the children's entries (prelude's ENTRY fields, parent unused) },
-- result, error, retry_delay }, the fields at the end that have their
-- default ({}, '', '', 0) left out. A result whose lease is gone (reaped, or
-- completed already) is stale: a late completion of a process presumed
-- dead, refused. Returns per result { 1, child ids or false... } when
-- recorded, { 0 } for a stale one.
local COMPLETE_STEP = [==[
local results = cjson.decode(ARGV[COMPLETE_AT])
local replies, completed, texts, members, children = {}, {}, {}, {}, {}
local NONE = {}
for k, res in ipairs(results) do
  completed[k], texts[k], members[k] = tonumber(res[1]), res[1], res[2]
  for _, c in ipairs(res[4] or NONE) do children[#children + 1] = c end
end
load_many(completed, texts)
local live = leased_now(members)
know_keys(children) -- (a stale result's children are looked up, never added)
for k, res in ipairs(results) do
  local id, member, outcome = completed[k], res[2], res[3]
  local result, err, retry_delay = res[5] or '', res[6] or '', res[7] or 0
  local r = RECS[id]
  local want = outcome == 'hook_done' and 'H' or 'Q'
  if not live[member] or not r or r[ST] ~= want then
    replies[k] = { 0 }
  else
    live[member] = nil -- (the same result twice in one batch: the second is stale)
    local reply = { 1 }
    for _, c in ipairs(res[4] or NONE) do reply[#reply + 1] = enqueue_entry(c, id) end
    unlease(r, member)
    if outcome ~= 'hook_done' then r[ATT] = r[ATT] + 1 end
    if outcome == 'hook_done' then
      hook_over(id, r, err ~= '')
    elseif outcome == 'retry' then
      call('ZADD', K_DELAYED, NOW + retry_delay, id)
      count(r, 'delayed', 1)
      add('retried', 1)
      touch(id)
    else
      processed(id, r, outcome, result, err)
    end
    replies[k] = reply
  end
end
]==]
BODIES.complete = 'local COMPLETE_AT = 3\n' .. COMPLETE_STEP .. 'flush()\nreturn replies\n'

-- complete_claim: complete's argument at ARGV[9], after claim's. The
-- completions first (they free limit slots and queue hooks), then a claim:
-- a busy process gets its next jobs with the same round trip. Returns
-- { complete's replies, and claim's jobs, reached, wake_in, starts and
-- token }.
BODIES.complete_claim = 'local CLAIM_AT, COMPLETE_AT = 3, 9\n' .. COMPLETE_STEP .. CLAIM_STEP
  .. 'flush()\nreturn { replies, jobs, reached, wake_in, starts, token }\n'

-- heartbeat: ARGV lease, held (JSON list of lease members "id:token").
-- Renews this process's sign of life and each lease it names that is still
-- held (a token names one claim, so a lease another process holds now is
-- never renewed). A job the process does not name (a claim whose reply was
-- lost) keeps its lease as it was: it expires and the reaper puts the job
-- back. Returns how many leases were renewed.
BODIES.heartbeat = [==[
call('ZADD', K_PROCS, NOW, PID)
local held = cjson.decode(ARGV[4])
local live = leased_now(held)
local renewed, expiry, n = {}, tostring(math.floor((NOW + tonumber(ARGV[3])) * 1000)), 0
for member in pairs(live) do
  renewed[#renewed + 1], renewed[#renewed + 2], n = expiry, member, n + 1
end
call_many('ZADD', K_LEASES, renewed)
return n
]==]

-- reap: ARGV guard (ms), stall limit. Unless another reap ran within the
-- guard, puts the jobs whose lease expired back in their queue (the lost
-- lease counts as an attempt); a job that lost `stall limit` leases fails
-- with "stalled". Returns { requeued, failed, busy (1: skipped) }.
BODIES.reap = [==[
if not call('SET', K_REAPER, PID, 'NX', 'PX', ARGV[3]) then return { 0, 0, 1 } end
local stall_limit = tonumber(ARGV[4])
local requeued, failed = 0, 0
for _, member in ipairs(call('ZRANGEBYSCORE', K_LEASES, '-inf', math.floor(NOW * 1000), 'LIMIT', 0, 1000)) do
  local id = lease_id(member)
  local r = load(id)
  unlease(r, member)
  r[LOST] = r[LOST] + 1
  if r[ST] == 'Q' then r[ATT] = r[ATT] + 1 end
  touch(id)
  if r[LOST] < stall_limit then
    requeue(id, r, false)
    requeued = requeued + 1
  else
    if r[ST] == 'Q' then processed(id, r, 'failed', '', 'stalled') else hook_over(id, r, true) end
    failed = failed + 1
  end
end
flush()
return { requeued, failed, 0 }
]==]

-- release: ARGV lease members ("id:token"). Hands claimed jobs that did
-- not start back to the front of their queue, their attempt not counted.
-- Returns how many.
BODIES.release = [==[
local members = { unpack(ARGV, 3) }
local live = leased_now(members)
local released = 0
for _, member in ipairs(members) do
  if live[member] then
    live[member] = nil
    local id = lease_id(member)
    local r = load(id)
    unlease(r, member)
    if r[ST] == 'Q' and r[ATT] == 0 then META_NEXT.started = meta_number('started') - 1 end -- (max_items: it did not start)
    requeue(id, r, true)
    released = released + 1
  end
end
flush()
return released
]==]

-- retry_failed: no ARGV. Puts the run's failed items back in the ready
-- queue, as --retry-failed does with a state file: attempts, lost leases and
-- the outcome reset, the counters moved (failed to queued). An item whose
-- subtree had finished opens again, and so do its ancestors' that had: each
-- counts it (or the ancestor below) among its open children again. A hook
-- that already ran does not run again (the item's own, and an ancestor's:
-- its subtree reopens as one whose hook is over). A failed item whose hook
-- is queued or running stays failed. Returns how many were put back.
BODIES.retry_failed = [==[
local failed_ids = call('LRANGE', K_FAILED, 0, -1)
for i, id in ipairs(failed_ids) do failed_ids[i] = tonumber(id) end
load_many(failed_ids)
local kept, put_back = {}, 0
-- Item `id`'s subtree was finished and is open again: its parent counts it.
local function reopen_up(id)
  local parent = RECS[id][PARENT]
  while parent ~= 0 do
    local pr = load(parent)
    pr[PEND] = pr[PEND] + 1
    touch(parent)
    if pr[ST] ~= 'F' then return end
    pr[ST] = 'G' -- open again, its hook over (or none)
    add('waiting', 1)
    parent = pr[PARENT]
  end
end
for _, id in ipairs(failed_ids) do
  local r = RECS[id]
  if r[ST] == 'P' or r[ST] == 'G' or r[ST] == 'F' then
    if r[ST] == 'F' then
      reopen_up(id)
    else
      add('waiting', -1)
    end
    if r[ST] ~= 'P' then r[HOOK] = 0 end -- its hook ran (or it had none)
    r[ST], r[ATT], r[LOST], r[OUT], r[ERR], r[RES] = 'Q', 0, 0, '', '', ''
    touch(id)
    ready_push(id, r, false)
    count(r, 'failed', -1)
    count(r, 'queued', 1)
    put_back = put_back + 1
  else
    kept[#kept + 1] = id
  end
end
call('DEL', K_FAILED)
call_many('RPUSH', K_FAILED, kept)
flush()
return put_back
]==]

-- counters: ARGV lease. Returns { HGETALL counts, processes seen within a lease }.
BODIES.counters = [==[
return { call('HGETALL', K_COUNTS), call('ZCOUNT', K_PROCS, NOW - tonumber(ARGV[3]), '+inf') }
]==]

-- status: ARGV lease, cap. Returns { HGETALL counts, processes alive,
-- { id, class, error } of the first `cap` failed items, how many failed,
-- { process, seconds since its last sign of life } per process }.
BODIES.status = [==[
local failed = {}
for _, id in ipairs(call('LRANGE', K_FAILED, 0, tonumber(ARGV[4]) - 1)) do
  local r = load(tonumber(id))
  failed[#failed + 1] = { tonumber(id), r[CLASS], r[ERR] }
end
local procs = {}
local seen = call('ZRANGE', K_PROCS, 0, -1, 'WITHSCORES')
for i = 1, #seen, 2 do procs[#procs + 1] = { tonumber(seen[i]), time_text(NOW - tonumber(seen[i + 1])) } end
return { call('HGETALL', K_COUNTS), call('ZCOUNT', K_PROCS, NOW - tonumber(ARGV[3]), '+inf'), failed,
  call('LLEN', K_FAILED), procs }
]==]

-- result: ARGV id. Returns { state, result, error } or {} for an unknown id.
BODIES.result = [==[
local r = load(tonumber(ARGV[3]))
if not r then return {} end
local states = { Q = 'queued' } -- (running too: a claim writes no record)
return { states[r[ST]] or r[OUT], r[RES], r[ERR] }
]==]

local M = {}
for name, body in pairs(BODIES) do
  M[name] = redis.script(prelude.TEXT .. body)
end
return M
