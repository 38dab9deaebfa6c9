-- A real crawl, with no internet: generates a website of a few thousand linked
-- pages with images, serves it with a private nginx on 127.0.0.1, crawls it
-- from the index page and saves every image into a folder and one record per
-- page into a feed (pages.jsonl), with the live display. nginx runs in its own
-- process group (a Ctrl-C stops the crawl gracefully, against a live server)
-- and is stopped by PID after the run.
--
-- It is written as a crawler for any site is: pages are selected with CSS
-- (aqueue.html), links are followed as absolute URLs that stay on the site
-- (aqueue.url), each page is fetched once (Item:key()), robots.txt is obeyed,
-- every host gets its own limits (Item:limit_key()), 429 and 503 answers are
-- retried after the wait the server asks for, and failed fetches run again
-- with backoff. An item names its page by its path on the site, so a resumed
-- crawl goes on against the same site served at another address.
--
--   aqueue-run examples/crawl.lua [--pages N] [--workers N] [--delay S]
--                                 [--rate R] [--connections N] [--out DIR] [--url URL]
--
--   --pages N     pages to generate (default 3000)
--   --workers N   concurrent items (default 16)
--   --delay S     a pause before each page, seconds (default 0.01): a polite
--                 crawler, and a demo slow enough to watch; 0 for full speed
--   --rate R      at most R requests started per second per host (default: no limit)
--   --connections N  at most N connections to the site (default: one per worker)
--   --out DIR     where the images and pages.jsonl go (default: a new folder under /tmp)
--   --url URL     crawl a site that is already served there instead (the
--                 benchmark does this); no site is generated, no nginx started
--
-- Resumable: `aqueue-run --state crawl.state examples/crawl.lua --out DIR`,
-- stopped in any way (Ctrl-C, kill -9) and run again with the same command,
-- goes on where it was: the site is generated again (the same pages), only
-- what was not fetched yet is fetched, and pages.jsonl gets each page once.
local aqueue = require("aqueue")
local url = aqueue.url
io.stdout:setvbuf("line") -- progress lines appear at once, also through a pipe

-- The example's helpers ship with it, in lib/ beside the script (copy both):
-- the command line, the generated site and its server, the report.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local demo = require("lib.demo_site")

local opts = demo.options(arg, "examples/crawl.lua")
local site = demo.serve(opts) -- opts.url: the generated site's, or --url
aqueue.http.configure{ max_per_host = opts.connections or opts.workers } -- (default: one per worker)

-- One record per page, written when the page's item completes: with --state,
-- exactly once across crashes and reruns.
local pages_feed = assert(aqueue.feed.open(opts.out .. "/pages.jsonl", { format = "jsonl" }))

-- The path (and query) of a URL on the site, or nil for a URL elsewhere:
-- links() writes URLs as url.join does, so those on the site start with its
-- root ("http://127.0.0.1:8080/").
local site_root = url.join(opts.url, "/")
local site_host = url.parse(site_root).host
local function site_path(link)
  if link:sub(1, #site_root) == site_root then
    return link:sub(#site_root)
  end
end

-- What pages and images share. Each path is enqueued once: a second enqueue
-- of the same key() is a duplicate.
local Fetch = aqueue.Item:extend("Fetch")
Fetch.retries = 2           -- a failed fetch runs again, up to twice,
Fetch.retry_backoff = 0.5   -- after a random wait of up to 0.5 s, then 1 s
Fetch.timeout = 30          -- seconds for one attempt
function Fetch:key()
  return self.path
end
function Fetch:limit_key()
  return site_host -- limits (--rate) count per host: a crawl of many sites returns each URL's
end

-- GET the item's page: the response, or an error (retried) for anything but
-- a 200. 429 and 503 are asked again after the server's Retry-After first.
function Fetch:get(options)
  options = options or {}
  options.retry_on = { 429, 503 }
  local res, err = aqueue.http.get(url.join(opts.url, self.path), options)
  if not res then
    error(err, 0)
  elseif res.status ~= 200 then
    error(("GET %s: status %d"):format(self.path, res.status), 0)
  end
  return res
end

local Page = Fetch:extend("Page")
Page.track_overall = true
local Image = Fetch:extend("Image")

function Page:process(enqueue, set_desc)
  set_desc("GET " .. self.path)
  if opts.delay > 0 then
    aqueue.sleep(opts.delay)
  end
  local page = self:get():html()
  local links = page:links() -- a[href], absolute, without fragments, each once
  assert(pages_feed:write{ path = self.path, title = page:css_first("title::text"), links = #links })
  for _, link in ipairs(links) do
    local path = site_path(link) -- stay on the site
    if path then
      enqueue(Page{ path = path })
    end
  end
  for _, src in ipairs(page:links("img")) do -- img[src], absolute
    local path = site_path(src)
    if path then
      enqueue(Image{ path = path })
    end
  end
end

function Image:process(enqueue, set_desc)
  local name = self.path:match("[^/]+$")
  set_desc("save " .. name)
  self:get{ output = opts.out .. "/" .. name }
end

local ok, summary = pcall(aqueue.run_queue, {
  initial_items = { Page{ path = "/index.html" } },
  num_workers = opts.workers,
  robots = true, -- robots.txt fetched once per host and obeyed
  limits = opts.rate and { rate = opts.rate } or nil,
})
pages_feed:close()
site.stop()
demo.report(opts, site, ok, summary)
