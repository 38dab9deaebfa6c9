-- The crawl example as it was before the crawling toolkit (links found with
-- gmatch, URLs joined by hand, no feed, no robots.txt): the reference of the
-- crawl benchmark (scripts/bench/crawl.lua), which runs it beside
-- examples/crawl.lua on the same site to show what the toolkit costs.
-- Same arguments and output as examples/crawl.lua.
local aqueue = require("aqueue")
io.stdout:setvbuf("line") -- progress lines appear at once, also through a pipe

-- The example's helpers ship with it, in lib/ beside the script (copy both).
local here = arg[0]:match("^(.*)/scripts/bench/[^/]*$") or "."
package.path = here .. "/examples/?.lua;" .. package.path
local demo = require("lib.demo_site")

local opts = demo.options(arg, "scripts/bench/crawl_gmatch.lua")
local site = demo.serve(opts)
opts.url = opts.url:gsub("/$", "")
aqueue.http.configure{ max_per_host = opts.connections or opts.workers } -- (default: one per worker)

-- The crawl: a Page enqueues the pages and images it links to. Each URL is
-- enqueued once: a second enqueue of the same key() is a duplicate.
local Fetch = aqueue.Item:extend("Fetch") -- what pages and images share
Fetch.retries = 2           -- a failed fetch runs again, up to twice,
Fetch.retry_backoff = 0.5   -- after a random wait of up to 0.5 s, then 1 s
Fetch.timeout = 30          -- seconds for one attempt
function Fetch:key()
  return self.path
end
function Fetch:limit_key()
  return "127.0.0.1" -- one host here; a real crawler returns the URL's host
end

local Page = Fetch:extend("Page")
Page.track_overall = true
local Image = Fetch:extend("Image")

function Page:process(enqueue, set_desc)
  set_desc("GET " .. self.path)
  if opts.delay > 0 then
    aqueue.sleep(opts.delay)
  end
  local res = assert(aqueue.http.get(opts.url .. self.path))
  if res.status ~= 200 then
    error(("GET %s: status %d"):format(self.path, res.status))
  end
  for href in res.body:gmatch('href="(/[^"]*)"') do
    enqueue(Page{ path = href })
  end
  for src in res.body:gmatch('src="(/[^"]*)"') do
    enqueue(Image{ path = src })
  end
end

function Image:process(enqueue, set_desc)
  local name = self.path:match("[^/]+$")
  set_desc("save " .. name)
  local res = assert(aqueue.http.get(opts.url .. self.path, { output = opts.out .. "/" .. name }))
  if res.status ~= 200 then
    error(("GET %s: status %d"):format(self.path, res.status))
  end
end

local ok, summary = pcall(aqueue.run_queue, {
  initial_items = { Page{ path = "/index.html" } },
  num_workers = opts.workers,
  limits = opts.rate and { rate = opts.rate } or nil,
})
site.stop()
demo.report(opts, site, ok, summary)
