-- aqueue.redis_run.prelude: the server-side helpers every script of a shared
-- run starts with (README "The shared run's data in Redis"). This is Lua that
-- runs inside Redis 7 (Lua 5.1 with cjson and cmsgpack), not in aqueue-run:
-- aqueue.redis_run.scripts glues it before each script's body.
--
-- KEYS are the run's fixed keys, in the order of KEY_NAMES below; the keys
-- made inside a script (a limit key's held list, a process's job set) carry
-- the same prefix, hence the same hash tag `{run}`, so every key a script
-- touches is in the run's cluster slot even when it is not in KEYS.
-- ARGV[1] is the run's order, ARGV[2] the calling process's number; each
-- script's own arguments follow.
--
-- An item is one field of the `items` hash: a MessagePack array (indices
-- below) that a script loads once, changes in place and writes back once at
-- the end (flush), however many steps of the script touched it. Counter
-- moves are summed the same way and written as one HINCRBY per counter.
-- A script pays about as much for each redis.call as for what the command
-- does, so per-item commands are gathered too: records are read with one
-- HMGET per batch, the ready queue is pushed and popped many at a time, and
-- the leases that a script releases are removed at once. A claim writes no
-- record: a running job is its lease, whose member "id:token" names the
-- claim (a token per claim script) and whose score is its expiry.
local M = {}

-- The run's fixed keys, after the prefix aq:{run}: (the index is KEYS[i]).
M.KEY_NAMES = {
  "meta",    -- hash: format, version, classes, order, limits, created, next_id, next_token, next_pid,
             --   session_start, started (max_items)
  "items",   -- hash: id -> the item's record (MessagePack)
  "keys",    -- set: every key() enqueued in the run (dedup)
  "ready",   -- list (lifo, fifo: ids) or zset (priority: score priority, member the id in hex)
  "hooks",   -- list: ids whose after_children_processed is due
  "delayed", -- zset: id -> due time (delay, retry backoff)
  "leases",  -- zset: "id:token" of a claimed job -> its lease's expiry (ms)
  "counts",  -- hash: the run's counters, and per class "c:<class>:<what>"
  "krun",    -- hash: limit key -> jobs of that key running
  "knext",   -- hash: limit key -> when the key's next start is due (limits.rate)
  "wake",    -- zset: limit key with held items -> when to look at it again
  "procs",   -- zset: process number -> its last sign of life
  "failed",  -- list: ids of the items that failed, in order
  "reaper",  -- string: the reaper's guard (SET NX PX)
}

-- What open expects each fixed key to be when it exists ("ready" depends on
-- the order); anything else is foreign data.
M.KEY_TYPES = {
  meta = "hash", items = "hash", keys = "set", hooks = "list", delayed = "zset",
  leases = "zset", counts = "hash", krun = "hash", knext = "hash", wake = "zset", procs = "zset",
  failed = "list", reaper = "string",
}

M.TEXT = [==[
local K_META, K_ITEMS, K_KEYS, K_READY, K_HOOKS, K_DELAYED, K_LEASES, K_COUNTS,
  K_KRUN, K_KNEXT, K_WAKE, K_PROCS, K_FAILED, K_REAPER = unpack(KEYS)
local PREFIX = string.sub(K_META, 1, -5)
local ORDER, PID = ARGV[1], ARGV[2]
local tonumber, call, fmt = tonumber, redis.call, string.format

local clock = call('TIME')
local NOW = tonumber(clock[1]) + tonumber(clock[2]) / 1e6
local function time_text(t) return fmt('%.6f', t) end

local function held_key(limit_key) return PREFIX .. 'held:' .. limit_key end

-- An item's record. ST: Q to process (ready, held, delayed, or running: its
-- lease says so), P processed with its subtree open, H hook due (queued or
-- running), G hook over with children still open, F subtree finished. ATT
-- counts the attempts that ended (a lost lease is one). LKEY is '' or
-- 'k'..key.
local CLASS, FIELDS, PARENT, ST, ATT, PEND, HOOK, LKEY, MAXA, PRIO, LOST, RES, ERR, OUT =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14

-- call(command, key, list...) in chunks of 1000 arguments (Lua's unpack
-- has a limit; an even size keeps field-value pairs together).
local function call_many(command, key, list)
  for i = 1, #list, 1000 do
    call(command, key, unpack(list, i, math.min(i + 999, #list)))
  end
end

local RECS, DIRTY = {}, {}
local function load(id)
  local r = RECS[id]
  if r == nil then
    local packed = call('HGET', K_ITEMS, id)
    if not packed then return nil end
    r = cmsgpack.unpack(packed)
    RECS[id] = r
  end
  return r
end
local function touch(id) DIRTY[id] = true end
-- Reads the records of ids (numbers) not read yet, in one HMGET. texts:
-- the same ids as strings when the caller has them (a number passed to
-- redis.call is formatted with printf, which costs as much as the HMGET).
local function load_many(ids, texts)
  texts = texts or ids
  local missing, missing_texts = {}, {}
  for i, id in ipairs(ids) do
    if RECS[id] == nil then
      missing[#missing + 1], missing_texts[#missing + 1] = id, texts[i]
    end
  end
  for i = 1, #missing, 1000 do
    local last = math.min(i + 999, #missing)
    local packed = call('HMGET', K_ITEMS, unpack(missing_texts, i, last))
    for j = i, last do
      if packed[j - i + 1] then RECS[missing[j]] = cmsgpack.unpack(packed[j - i + 1]) end
    end
  end
end

-- Which of the lease members ("id:token") are leased now: a set of them.
local function leased_now(members)
  local alive = {}
  for i = 1, #members, 1000 do
    local last = math.min(i + 999, #members)
    local scores = call('ZMSCORE', K_LEASES, unpack(members, i, last))
    for j = i, last do
      if scores[j - i + 1] then alive[members[j]] = true end
    end
  end
  return alive
end
-- The id of lease member "id:token".
local function lease_id(member) return tonumber(string.match(member, '^(%d+):')) end

local DELTA = {}
local function add(what, by) DELTA[what] = (DELTA[what] or 0) + by end
-- A counter of the run and of the item's class. The class counters' names
-- are made once per class and counter: a string built per item costs the
-- script more than the count itself.
local CLASS_COUNTER = {}
local function count(r, what, by)
  add(what, by)
  local names = CLASS_COUNTER[r[CLASS]]
  if not names then
    names = {}
    CLASS_COUNTER[r[CLASS]] = names
  end
  local name = names[what]
  if not name then
    name = 'c:' .. r[CLASS] .. ':' .. what
    names[what] = name
  end
  add(name, by)
end

local META_NEXT = {}
local function meta_number(field)
  if META_NEXT[field] == nil then META_NEXT[field] = tonumber(call('HGET', K_META, field) or 0) end
  return META_NEXT[field]
end
local function next_number(field)
  local n = meta_number(field) + 1
  META_NEXT[field] = n
  return n
end

-- key() values: SEEN holds those known to be taken (enqueued before, or
-- earlier in this script), NEW_KEYS those this script adds.
local SEEN, NEW_KEYS = {}, {}

-- Commands gathered until the end of the script (or until a pop needs the
-- ready queue): pushes to the ready queue, lease removals.
local READY_BACK, READY_FRONT, UNLEASED = {}, {}, {}
local function flush_ready()
  if #READY_BACK > 0 then
    call_many(ORDER == 'priority' and 'ZADD' or ORDER == 'lifo' and 'LPUSH' or 'RPUSH', K_READY, READY_BACK)
    READY_BACK = {}
  end
  if #READY_FRONT > 0 then
    call_many('LPUSH', K_READY, READY_FRONT) -- (last first: the first ends at the head)
    READY_FRONT = {}
  end
end

-- The leases of the jobs that left theirs in this script go now.
local function drop_unleased()
  call_many('ZREM', K_LEASES, UNLEASED)
  UNLEASED = {}
end

local function flush()
  flush_ready()
  drop_unleased()
  call_many('SADD', K_KEYS, NEW_KEYS)
  local records = {}
  for id in pairs(DIRTY) do
    records[#records + 1] = id
    records[#records + 1] = cmsgpack.pack(RECS[id])
  end
  call_many('HSET', K_ITEMS, records)
  for what, by in pairs(DELTA) do
    if by ~= 0 then call('HINCRBY', K_COUNTS, what, by) end
  end
  for field, v in pairs(META_NEXT) do call('HSET', K_META, field, v) end
end

-- The ready queue: lifo and fifo are a list, priority a zset whose members
-- are fixed-width hex ids, so equal priorities come out in enqueue order.
-- front: a released job, which goes back to the head of its queue.
local function ready_push(id, r, front)
  if ORDER == 'priority' then
    READY_BACK[#READY_BACK + 1] = r[PRIO]
    READY_BACK[#READY_BACK + 1] = fmt('%012x', id)
  elseif front and ORDER == 'fifo' then
    table.insert(READY_FRONT, 1, id)
  else
    READY_BACK[#READY_BACK + 1] = id
  end
end
-- Up to n ids from the head of the ready queue, their records read: the
-- ids, and the same as strings.
local function ready_pop(n)
  flush_ready()
  local ids, texts = {}, {}
  if ORDER == 'priority' then
    local z = call('ZPOPMIN', K_READY, n)
    for i = 1, #z, 2 do
      local id = tonumber(z[i], 16)
      ids[#ids + 1], texts[#ids + 1] = id, tostring(id)
    end
  else
    texts = call('LPOP', K_READY, n) or {}
    for i, v in ipairs(texts) do ids[i] = tonumber(v) end
  end
  load_many(ids, texts)
  return ids, texts
end

-- A job of limit key `key` no longer runs: a key with held items is looked at
-- by the next claim.
local function key_ended(key)
  if call('HINCRBY', K_KRUN, key, -1) <= 0 then call('HDEL', K_KRUN, key) end
  if call('EXISTS', held_key(key)) == 1 then call('ZADD', K_WAKE, NOW, key) end
end

-- The running job of record r (Q: process, H: its hook) leaves its lease
-- `member`.
local function unlease(r, member)
  UNLEASED[#UNLEASED + 1] = member
  count(r, 'running', -1)
  if r[ST] == 'Q' and r[LKEY] ~= '' then key_ended(string.sub(r[LKEY], 2)) end
end

-- Puts a job that was running back in its queue (a lost lease, a release).
local function requeue(id, r, front)
  if r[ST] == 'Q' then
    ready_push(id, r, front)
  elseif front then
    call('LPUSH', K_HOOKS, id)
  else
    call('RPUSH', K_HOOKS, id)
  end
  count(r, 'queued', 1)
end

-- Item `id` was processed, or its hook ran: walks up the tree while subtrees
-- finish. An item whose subtree (children included) is over queues its hook,
-- once; without a hook, or after it, the item is finished and its parent has
-- one open child less.
local function settle(id)
  while id ~= 0 do
    local r = load(id)
    if r[PEND] > 0 then return end
    if r[ST] == 'P' and r[HOOK] == 1 then
      r[ST], r[LOST] = 'H', 0
      call('RPUSH', K_HOOKS, id)
      count(r, 'queued', 1)
      touch(id)
      return
    elseif r[ST] ~= 'P' and r[ST] ~= 'G' then
      return
    end
    r[ST] = 'F'
    add('waiting', -1)
    if r[OUT] == 'done' then r[FIELDS] = '' end -- kept for failed items only (--retry-failed)
    touch(id)
    local parent = r[PARENT]
    if parent ~= 0 then
      local pr = load(parent)
      pr[PEND] = pr[PEND] - 1
      touch(parent)
    end
    id = parent
  end
end

-- process() is over for good for item `id`: done or failed.
local function processed(id, r, outcome, result, err)
  r[ST], r[OUT], r[RES], r[ERR] = 'P', outcome, result, err
  add('waiting', 1)
  count(r, outcome, 1)
  if outcome == 'failed' then call('RPUSH', K_FAILED, id) end
  touch(id)
  settle(id)
end

-- The hook of item `id` is over (hook_failed: it raised).
local function hook_over(id, r, hook_failed)
  r[ST] = 'G'
  add(hook_failed and 'hooks_failed' or 'hooks_done', 1)
  touch(id)
  settle(id)
end

-- Enqueue entries arrive packed: one JSON array per batch (an argument of
-- the script, decoded here in one cjson.decode), whose entries are arrays of
-- ENTRY fields: class, fields, key ('' or 'k'..key), priority, delay, limit
-- key ('' or 'k'..key), max_attempts, has_hook (1/0), parent (0 or id).
-- The fields at the end that have their default (the ones in ENTRY_DEFAULT)
-- are left out: a typical child is [class, fields], which costs neither side
-- a number to format or parse. A batch costs the call a handful of
-- arguments whatever its size.
local E_CLASS, E_FIELDS, E_KEY, E_PRIO, E_DELAY, E_LKEY, E_MAXA, E_HOOK, E_PARENT = 1, 2, 3, 4, 5, 6, 7, 8, 9
local function parent_error(parent)
  if parent == nil or parent == 0 then return nil end
  local pr = load(parent)
  if not pr then return 'no item ' .. parent .. ' in this run' end
  if pr[ST] == 'F' then return 'item ' .. parent .. "'s subtree is finished" end
  return nil
end

-- Learns with one SMISMEMBER which keys of `entries` were enqueued before;
-- enqueue_entry needs it for its entry.
local function know_keys(entries)
  local keys = {}
  for _, e in ipairs(entries) do
    local key = e[E_KEY]
    if key and key ~= '' then keys[#keys + 1] = string.sub(key, 2) end
  end
  for i = 1, #keys, 1000 do
    local last = math.min(i + 999, #keys)
    local known = call('SMISMEMBER', K_KEYS, unpack(keys, i, last))
    for j = i, last do
      if known[j - i + 1] == 1 then SEEN[keys[j]] = true end
    end
  end
end

-- Enqueues entry `e` under `parent` (0: a root): its id, or false for a
-- duplicate key.
local function enqueue_entry(e, parent)
  local key = e[E_KEY]
  if key and key ~= '' then
    key = string.sub(key, 2)
    if SEEN[key] then
      add('duplicates', 1)
      return false
    end
    SEEN[key] = true
    NEW_KEYS[#NEW_KEYS + 1] = key
  end
  local id = next_number('next_id')
  local r = { e[E_CLASS], e[E_FIELDS], parent, 'Q', 0, 0, e[E_HOOK] == 1 and 1 or 0,
    e[E_LKEY] or '', e[E_MAXA] or 1, e[E_PRIO] or 0, 0, '', '', '' }
  RECS[id] = r
  touch(id)
  if parent ~= 0 then
    local pr = load(parent)
    pr[PEND] = pr[PEND] + 1
    touch(parent)
  end
  local delay = e[E_DELAY]
  if delay and delay > 0 then
    call('ZADD', K_DELAYED, NOW + delay, id)
    count(r, 'delayed', 1)
  else
    ready_push(id, r, false)
    count(r, 'queued', 1)
  end
  add('enqueued', 1)
  return id
end
]==]

return M
