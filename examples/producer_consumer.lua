-- The asyncio.Queue post's toy program: one task pushes an item into a queue
-- every `interval` seconds, two more (Fred and George) take items out and
-- "process" each for a random time. Processing is slower than pushing, so the
-- queue builds up; the two pullers never get the same item. Where the post
-- runs forever, this pushes `items` items, waits until every one has been
-- processed (queue:join()), stops the pullers and says who got what.
--   aqueue-run examples/producer_consumer.lua [items] [interval] [max_work]
local aqueue = require("aqueue")

local items = tonumber((select(1, ...))) or 20
local interval = tonumber((select(2, ...))) or 0.1
local max_work = tonumber((select(3, ...))) or 0.5

-- Python's f"{name:^6}": centred in 6 columns.
local function centre(text, width)
  local pad = width - #text
  if pad <= 0 then return text end
  local left = math.floor(pad / 2)
  return (" "):rep(left) .. text .. (" "):rep(pad - left)
end

-- Pushes an item to the queue every interval.
local function pusher(queue)
  for counter = 0, items - 1 do
    queue:put(counter)
    aqueue.sleep(interval)
  end
end

-- Fetches an item from the queue and takes a random timespan to "process" it.
local function puller(queue, name, got)
  while true do
    local item = queue:get()
    print(("[%s] Got item: %d (size %d)"):format(centre(name, 6), item, queue:qsize()))
    got[#got + 1] = item
    aqueue.sleep(math.random() * max_work)
    queue:task_done()
  end
end

local queue = aqueue.Queue()
local got = { Fred = {}, George = {} }
local push = aqueue.spawn(pusher, queue)
local pullers = {
  aqueue.spawn(puller, queue, "Fred", got.Fred),
  aqueue.spawn(puller, queue, "George", got.George),
}

local _, err = push:result() -- the pusher has put every item
if err then error(err, 0) end
queue:join()                 -- and the pullers have processed every one
for _, p in ipairs(pullers) do
  p:cancel()                 -- they wait in queue:get() for more: stop them
end

for _, name in ipairs({ "Fred", "George" }) do
  print(("%s got: %s"):format(name, table.concat(got[name], ", ")))
end
return got
