-- aqueue: the Lua API (SPEC section 2). `local aqueue = require("aqueue")`.
local core = require("aqueue.core")
local item = require("aqueue.item")
local handle = require("aqueue.handle")
local run = require("aqueue.run_queue")
local http = require("aqueue.http")
local fs = require("aqueue.fs")
local exec = require("aqueue.exec")
local work = require("aqueue.work")
local sync = require("aqueue.sync")
local gather = require("aqueue.gather")
local sched = require("aqueue.sched")
require("aqueue.output") -- print & co. go above the live display's panel

local Item = item.Item

-- The method forms of process's two arguments.
function Item:enqueue(child)
  local h, err = run.enqueue_child(self, child, 3) -- not a tail call: level 3
  return h, err                                    -- must be the caller's
end

function Item:set_desc(text)
  run.set_desc(text)
end

-- aqueue.stopping(): true once a graceful stop of the run began (first
-- Ctrl-C, max_items, max_time), until the next run_queue starts. One FFI
-- call: cheap enough to ask in every turn of a loop.
local C, E = sched.C, sched.E
local function stopping()
  return C.aq__sched_stopping(E) ~= 0
end

return {
  _VERSION = "0.1.0",
  Item = Item,
  run_queue = run.run_queue,
  sleep = require("aqueue.sleep_core").sleep,
  now = core.now,
  spawn = handle.spawn,
  gather = gather.gather,
  wait_any = gather.wait_any,
  with_timeout = gather.with_timeout,
  stopping = stopping,
  json = require("cjson"),
  errors = require("aqueue.errors"),       -- code -> description of every I/O failure code
  http = http,
  url = require("aqueue.url"),             -- join, parse, build, encode, decode, query (libcurl loaded on first use)
  redis = require("aqueue.redis"),         -- aqueue.redis.connect(url [, opts]): loads hiredis on first use
  html = require("aqueue.html"),           -- aqueue.html.parse(text [, base_url [, encoding]]): loads libxml2 on first use
  fs = fs,
  exec = exec.exec,
  work = work.work,
  Queue = sync.Queue,
  Semaphore = sync.Semaphore,
  Event = sync.Event,
  QueueFull = sync.QueueFull,
  QueueEmpty = sync.QueueEmpty,
  store = require("aqueue.store"),          -- aqueue.store(name [, path])
  diskqueue = require("aqueue.diskqueue"),  -- aqueue.diskqueue.open(path [, { maxsize = n }])
  feed = require("aqueue.feed"),            -- aqueue.feed.open(path [, { format =, fields = }])
}
