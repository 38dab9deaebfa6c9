-- aqueue.redis_run: a run shared by many processes, kept in Redis (SPEC
-- section 10; README "The shared run's data in Redis"). This is the data
-- layer: each method is one server-side script (aqueue.redis_run.scripts)
-- run with EVALSHA, one round trip whatever the size of its batch.
--
--   local run, err, code = redis_run.open(client, "crawl-1", {
--     classes = { "Page", "Site" },   -- the script's item classes (required)
--     fresh = false,                  -- drop the run's keys first
--     lease = 15, heartbeat = 1,      -- seconds
--     order = "lifo",                 -- | "fifo" | "priority"
--     limits = { per_key = 2, rate = 100, keys = { [key] = { per_key =, rate = } } },
--   })
--   run.first        true for the process that created the run
--   run.process_id   this process's number in the run
--   run.session_elapsed  seconds since the run's session began (open's: max_time counts from there)
--   run.max_items    set by the caller: claims hand out no process job past that many
--                    started in the session (0 or nil: no limit)
--   run.wake_in      after a claim: the seconds until a job held back by a rate
--                    may be claimed (nil when none is): when to claim again
--   run:enqueue{ { parent =, class =, fields = json, key =, priority =, delay =,
--                  limit_key =, max_attempts =, has_hook = } ... }  --> { id or false ... }
--   run:claim(n)     --> { { id, kind = "process"|"hook", class, fields, parent,
--                            attempt, token, max_attempts, start_in } ... }, reached (max_items)
--                    (start_in: the seconds a job of a rate-limited key must wait
--                    before it starts; nil: at once. token: the claim's, one
--                    for the jobs of one claim: it names this claim of the job)
--   run:complete({ { id, token, outcome = "done"|"failed"|"retry"|"hook_done",
--                    result =, error =, retry_delay =, children = { entries } } ... } [, n])
--                    --> per result: the children's ids (or false: duplicate),
--                        or false when the token was stale and nothing was recorded;
--                        with n, the jobs (and reached) of a claim(n) made by the same script too
--   run:heartbeat(held) --> how many leases were renewed (held: the jobs, tables
--                          with id and token, this process holds; a job it does not
--                          name, from a claim whose reply was lost, is left to expire)
--   run:reap()       --> requeued, failed ("stalled"), or 0, 0, true when another reap ran lately
--   run:release{ job... }  --> how many claimed jobs went back unstarted
--   run:retry_failed()     --> how many failed items went back to the queue
--   run:counters(), run:status([cap]), run:result(id), run:drop(), run:close()
--   redis_run.look(client, name) --> a run to read (counters, status, result)
--                    or retry_failed, without joining it (no process number)
--
-- Failures are nil, err, code: the client's (ECONNRESET, ETIMEDOUT, ...) and
-- EAQRUN for a run that cannot be used (a key of the run holding foreign
-- data, another format version, another set of classes or order, a missing
-- parent). Misuse (a bad option, an entry without class) raises.
-- The run's limits are the ones of the process that created it; a joining
-- process uses them whatever its own (run.limits).
local cjson = require("cjson")
local prelude = require("aqueue.redis_run.prelude")
local scripts = require("aqueue.redis_run.scripts")

local type, tonumber, tostring, error, ipairs, pairs, format =
  type, tonumber, tostring, error, ipairs, pairs, string.format

local M = {}

M.FORMAT = "aqueue-run"
M.VERSION = "2" -- bumped when a key's layout or a record's changes
M.STALL_LIMIT = 3 -- lost leases before an item fails with "stalled"
M.STATUS_CAP = 20 -- failed items status() lists

local ORDERS = { lifo = true, fifo = true, priority = true }

local Run = {}
Run.__index = Run

local function check(cond, level, fmt, ...)
  if not cond then error("aqueue.redis_run: " .. format(fmt, ...), level + 1) end
end

local function key_prefix(name)
  check(type(name) == "string" and name ~= "" and not name:find("[{}]"), 3,
    "the run name must be a non-empty string without braces, got %s", tostring(name))
  return "aq:{" .. name .. "}:"
end

-- A script's failure: EAQRUN when the script refused, else the client's.
local function failed(err, code)
  local why = code == "EREDIS" and err:match("^EREDIS: EAQRUN (.*)$")
  if why then return nil, "EAQRUN: " .. why, "EAQRUN" end
  return nil, err, code
end

-- Runs one of the run's scripts with args[1..n] after the order and the
-- process number: its reply, or nil, err, code.
local function call_script(run, script, args, n)
  local argv = { run.order, run.process_id }
  for i = 1, n do argv[i + 2] = args[i] end
  local res, err, code = run.client:run_script(script, run.keys, argv)
  if res == nil and err then return failed(err, code) end
  return res
end

-- --- enqueue ---

local function text_or_empty(v, prefix)
  if v == nil then return "" end
  return prefix .. tostring(v)
end

-- Leaves out the fields at the end of list `t` (n long) that have their
-- default: the scripts read a missing one as its default, and a number not
-- sent is one neither side formats or parses (prelude's ENTRY).
local function trimmed(t, n, defaults)
  while n > 0 and t[n] == defaults[n] do
    t[n] = nil
    n = n - 1
  end
  return t
end

-- An entry as the scripts read it (prelude's ENTRY fields), under `parent`
-- (an id, or nil).
local ENTRY_DEFAULTS = { false, false, "", 0, 0, "", 1, 0, 0 }
local function packed_entry(e, parent)
  check(type(e) == "table" and type(e.class) == "string" and type(e.fields) == "string", 3,
    "an entry needs class and fields (strings)")
  return trimmed({ e.class, e.fields, text_or_empty(e.key, "k"), e.priority or 0, e.delay or 0,
    text_or_empty(e.limit_key, "k"), e.max_attempts or 1, e.has_hook and 1 or 0, parent or 0 }, 9, ENTRY_DEFAULTS)
end

-- enqueue(entries) -> { id or false (a duplicate key) ... }. The batch is
-- one JSON argument, whatever its size.
function Run:enqueue(entries)
  if #entries == 0 then return {} end
  local packed = {}
  for i, e in ipairs(entries) do packed[i] = packed_entry(e, e.parent) end
  return call_script(self, scripts.enqueue, { cjson.encode(packed) }, 1)
end

-- --- claim and complete ---

local KIND = { process = "process", hook = "hook" }

-- The claim scripts' first arguments (prelude's ARGV[3..7]).
local CLAIM_ARGS = 6
local function claim_args(run, n)
  check(type(n) == "number" and n >= 1, 3, "claim needs a number of jobs >= 1")
  local limits = run.limits
  if limits.keys and not run.limit_keys_json then run.limit_keys_json = cjson.encode(limits.keys) end
  return { n, run.lease, limits.per_key or 0, limits.rate or 0, run.limit_keys_json or "", run.max_items or 0 }
end

-- The claim script's flat reply as job tables.
local function jobs_of(res, starts, token)
  local jobs, wait = {}, {}
  for i = 1, starts and #starts or 0, 2 do
    wait[starts[i]] = tonumber(starts[i + 1])
  end
  for i = 1, #res, 7 do
    jobs[#jobs + 1] = {
      id = res[i], kind = KIND[res[i + 1]], class = res[i + 2], fields = res[i + 3],
      parent = res[i + 4] ~= 0 and res[i + 4] or nil, attempt = res[i + 5], token = token,
      max_attempts = res[i + 6], start_in = wait[res[i]],
    }
  end
  return jobs
end

-- The lease of job j (id and token) in the store: "id:token".
local function lease_member(j)
  return format("%d:%d", j.id, j.token)
end

-- claim(n) -> up to n jobs due now, and true once the session started
-- run.max_items items (no process job past it).
function Run:claim(n)
  local res, err, code = call_script(self, scripts.claim, claim_args(self, n), CLAIM_ARGS)
  if not res then return nil, err, code end
  self.wake_in = tonumber(res[3])
  return jobs_of(res[1], res[4], res[5]), res[2] == 1
end

local OUTCOMES = { done = true, failed = true, retry = true, hook_done = true }

-- complete's argument: the results packed in one JSON text (scripts.lua's
-- complete says the layout).
local NO_CHILDREN = {}
local RESULT_DEFAULTS = { false, false, false, NO_CHILDREN, "", "", 0 }
local function packed_results(results)
  local packed = {}
  for i, r in ipairs(results) do
    check(OUTCOMES[r.outcome], 3, "unknown outcome %s", tostring(r.outcome))
    local children = NO_CHILDREN
    if r.children and #r.children > 0 then
      children = {}
      for k, c in ipairs(r.children) do children[k] = packed_entry(c, nil) end
    end
    packed[i] = trimmed({ format("%d", r.id), lease_member(r), r.outcome, children, r.result or "", r.error or "",
      r.retry_delay or 0 }, 7, RESULT_DEFAULTS)
  end
  return cjson.encode(packed)
end

-- The complete script's reply: per result the children's ids, or false.
local function replies_of(res)
  local replies = {}
  for i, reply in ipairs(res) do
    if reply[1] == 1 then
      local ids = {}
      for k = 2, #reply do ids[k - 1] = reply[k] end
      replies[i] = ids
    else
      replies[i] = false
    end
  end
  return replies
end

-- complete(results [, claim_n]) -> per result the children's ids, or false
-- (stale token: nothing of it was recorded). With claim_n, the same script
-- then claims up to claim_n jobs: returns replies, jobs, reached (claim's).
function Run:complete(results, claim_n)
  if claim_n then
    local args = claim_args(self, claim_n)
    args[CLAIM_ARGS + 1] = packed_results(results)
    local res, err, code = call_script(self, scripts.complete_claim, args, CLAIM_ARGS + 1)
    if not res then return nil, err, code end
    self.wake_in = tonumber(res[4])
    return replies_of(res[1]), jobs_of(res[2], res[5], res[6]), res[3] == 1
  end
  local res, err, code = call_script(self, scripts.complete, { packed_results(results) }, 1)
  if not res then return nil, err, code end
  return replies_of(res)
end

-- release(jobs) -> how many of these claimed jobs (tables with id and token)
-- went back to their queue unstarted.
function Run:release(jobs)
  local args = {}
  for i, j in ipairs(jobs) do args[i] = lease_member(j) end
  if #args == 0 then return 0 end
  return call_script(self, scripts.release, args, #args)
end

-- --- leases ---

-- heartbeat(held) -> how many of the leases of `held` (jobs: tables with id
-- and token) were renewed.
local EMPTY_JSON_LIST = "[]" -- (cjson encodes an empty table as {})
function Run:heartbeat(held)
  local members = {}
  for i, j in ipairs(held or {}) do members[i] = lease_member(j) end
  local json = #members > 0 and cjson.encode(members) or EMPTY_JSON_LIST
  return call_script(self, scripts.heartbeat, { self.lease, json }, 2)
end

-- reap() -> requeued, failed; or 0, 0, true when a reap ran within the last
-- heartbeat (of any process).
function Run:reap()
  local guard_ms = math.max(1, math.floor(self.heartbeat_interval * 1000))
  local res, err, code = call_script(self, scripts.reap, { guard_ms, M.STALL_LIMIT }, 2)
  if not res then return nil, err, code end
  return res[1], res[2], res[3] == 1 or nil
end

-- retry_failed() -> how many failed items went back to the queue (attempts
-- reset; their finished subtrees open again; hooks that ran do not run
-- again).
function Run:retry_failed()
  return call_script(self, scripts.retry_failed, {}, 0)
end

-- --- what the run holds ---

local COUNTERS = { "queued", "delayed", "running", "done", "failed", "waiting", "enqueued", "duplicates",
  "retried", "hooks_done", "hooks_failed" }
local CLASS_COUNTERS = { "queued", "delayed", "running", "done", "failed" }

local function counters_of(flat, alive)
  local c = { processes_alive = alive, per_class = {} }
  for _, what in ipairs(COUNTERS) do c[what] = 0 end
  for i = 1, #flat, 2 do
    local field, v = flat[i], tonumber(flat[i + 1])
    local class, what = field:match("^c:(.*):([^:]+)$")
    if class then
      local pc = c.per_class[class]
      if not pc then
        pc = {}
        for _, w in ipairs(CLASS_COUNTERS) do pc[w] = 0 end
        c.per_class[class] = pc
      end
      pc[what] = v
    else
      c[field] = v
    end
  end
  c.finished = c.queued == 0 and c.delayed == 0 and c.running == 0 and c.waiting == 0
  return c
end

-- counters() -> { queued, delayed, running, done, failed, waiting (processed,
-- subtree open), enqueued, duplicates, retried, hooks_done, hooks_failed,
-- processes_alive, per_class = { [class] = { queued, delayed, running, done,
-- failed } }, finished }. queued and running count hook jobs too.
function Run:counters()
  local res, err, code = call_script(self, scripts.counters, { self.lease }, 1)
  if not res then return nil, err, code end
  return counters_of(res[1], res[2])
end

-- status([cap]) -> { counters, failed = { { id, class, error } ... } (the
-- first cap), failed_total, processes = { { id, age } ... } }.
function Run:status(cap)
  local res, err, code = call_script(self, scripts.status, { self.lease, cap or M.STATUS_CAP }, 2)
  if not res then return nil, err, code end
  local failed_items, processes = {}, {}
  for i, f in ipairs(res[3]) do failed_items[i] = { id = f[1], class = f[2], error = f[3] } end
  for i, p in ipairs(res[5]) do processes[i] = { id = p[1], age = tonumber(p[2]) } end
  return { counters = counters_of(res[1], res[2]), failed = failed_items, failed_total = res[4],
    processes = processes }
end

-- result(id) -> state ("queued" | "running" | "done" | "failed"), result
-- JSON (nil when none), error (nil when none); nil for an unknown id.
function Run:result(id)
  local res, err, code = call_script(self, scripts.result, { id }, 1)
  if not res then return nil, err, code end
  if not res[1] then return nil end
  local result, why = res[2], res[3]
  return res[1], result ~= "" and result or nil, why ~= "" and why or nil
end

-- --- life ---

-- drop(client, name) -> how many keys were deleted: every key of the run.
function M.drop(client, name)
  local pattern = key_prefix(name):gsub("[%*%?%[%]\\]", "\\%0") .. "*"
  local cursor, deleted = "0", 0
  repeat
    local res, err, code = client:call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
    if not res then return nil, err, code end
    cursor = res[1]
    if #res[2] > 0 then
      local n
      n, err, code = client:call("UNLINK", unpack(res[2]))
      if not n then return nil, err, code end
      deleted = deleted + n
    end
  until cursor == "0"
  return deleted
end

function Run:drop()
  return M.drop(self.client, self.name)
end

-- close(): this process leaves the run (its jobs stay leased until they are
-- completed, released or reaped).
function Run:close()
  if self.closed then return true end
  self.closed = true
  if self.process_id == 0 or self.client:state() == "closed" then return true end -- (0: look's)
  local res, err, code = self.client:call("ZREM", self.key.procs, self.process_id)
  if not res then return nil, err, code end
  return true
end

local OPTIONS = {
  classes = "table", fresh = "boolean", lease = "number", heartbeat = "number", order = "string",
  limits = "table",
}

-- The run object of `name` (key prefix, keys), not opened yet.
local function new_run(client, name, order, lease, heartbeat)
  local prefix = key_prefix(name)
  local keys, key = {}, {}
  for i, k in ipairs(prelude.KEY_NAMES) do
    keys[i], key[k] = prefix .. k, prefix .. k
  end
  return setmetatable({
    client = client, name = name, keys = keys, key = key, order = order, process_id = 0,
    lease = lease or 15, heartbeat_interval = heartbeat or 1,
  }, Run)
end

-- look(client, name) -> a run to read and to retry the failed items of
-- without joining it (its process_id is 0; it is not counted among the
-- run's processes and begins no session), with run.classes; or nil, err,
-- code (EAQRUN: no such run, not a run, another format version).
function M.look(client, name)
  local run = new_run(client, name, "lifo")
  local res, err, code = call_script(run, scripts.look, { M.FORMAT, M.VERSION }, 2)
  if not res then return nil, err, code end
  if res[1] == 0 then
    return nil, format("EAQRUN: run %s: %s", name, res[2]), "EAQRUN"
  end
  run.classes, run.order, run.limits = {}, res[3], {}
  for class in res[2]:gmatch("[^\n]+") do run.classes[#run.classes + 1] = class end
  return run
end

-- open(client, name, opts) -> run, or nil, err, code.
function M.open(client, name, opts)
  key_prefix(name) -- (checks the name)
  check(type(opts) == "table" and type(opts.classes) == "table" and #opts.classes > 0, 2,
    "open needs opts.classes, the list of the script's item classes")
  for k, v in pairs(opts) do
    check(OPTIONS[k] == type(v), 2, "option %s: expected %s, got %s", tostring(k), tostring(OPTIONS[k]), type(v))
  end
  local order = opts.order or "lifo"
  check(ORDERS[order], 2, "unknown order %s", order)
  local classes = {}
  for i, c in ipairs(opts.classes) do classes[i] = tostring(c) end
  table.sort(classes)

  if opts.fresh then
    local ok, err, code = M.drop(client, name)
    if not ok then return nil, err, code end
  end
  local types = {}
  for i, k in ipairs(prelude.KEY_NAMES) do
    types[i] = prelude.KEY_TYPES[k] or "list|zset"
  end
  local run = new_run(client, name, order, opts.lease, opts.heartbeat)
  local res, err, code = call_script(run, scripts.open, {
    M.FORMAT, M.VERSION, table.concat(classes, "\n"), cjson.encode(opts.limits or {}), cjson.encode(types),
    run.lease,
  }, 6)
  if not res then return nil, err, code end
  if res[1] == 0 and type(res[2]) == "string" then
    return nil, format("EAQRUN: run %s: %s", name, res[2]), "EAQRUN"
  end
  run.first, run.process_id, run.limits = res[1] == 1, res[2], cjson.decode(res[3])
  run.session_elapsed = tonumber(res[4])
  return run
end

return M
