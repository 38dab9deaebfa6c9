-- A real crawl, with no internet: generates a website of a few thousand linked
-- pages with images, serves it with a private nginx on 127.0.0.1, crawls it
-- from the index page (each URL fetched once) and saves every image into a
-- folder, with the live display. nginx runs in its own process group (a Ctrl-C
-- stops the crawl gracefully, against a live server) and is stopped by PID
-- after the run.
-- Politely: each URL once (Item:key()), failed fetches retried with backoff,
-- a timeout per fetch, and optionally a rate per host (limits).
--
--   aqueue-run examples/crawl.lua [--pages N] [--workers N] [--delay S]
--                                 [--rate R] [--out DIR] [--url URL]
--
--   --pages N     pages to generate (default 3000)
--   --workers N   concurrent items (default 16)
--   --delay S     a pause before each page, seconds (default 0.01): a polite
--                 crawler, and a demo slow enough to watch; 0 for full speed
--   --rate R      at most R requests started per second per host (default: no limit)
--   --out DIR     where the images go (default: a new folder under /tmp)
--   --url URL     crawl a site that is already served there instead (the
--                 benchmark does this); no site is generated, no nginx started
--
-- Resumable: `aqueue-run --state crawl.state examples/crawl.lua --out DIR`,
-- stopped in any way (Ctrl-C, kill -9) and run again with the same command,
-- goes on where it was: the site is generated again (the same pages), and
-- only what was not fetched yet is fetched.
local aqueue = require("aqueue")
io.stdout:setvbuf("line") -- progress lines appear at once, also through a pipe

-- The example's helpers ship with it, in lib/ beside the script (copy both).
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local site = require("lib.site")
local nginx = require("lib.nginx")

local opts = { pages = 3000, workers = 16, delay = 0.01 }
local NUMBER_OPTIONS = { pages = true, workers = true, delay = true, rate = true }
do
  local i = 1
  while arg[i] do
    local name, value = arg[i]:match("^%-%-(%w+)$"), arg[i + 1]
    if NUMBER_OPTIONS[name] then
      opts[name] = tonumber(value) or error(("--%s needs a number"):format(name), 0)
      i = i + 2
    elseif name == "out" or name == "url" then
      opts[name] = value or error(("--%s needs a value"):format(name), 0)
      i = i + 2
    else
      error(("unknown argument %q (see the top of examples/crawl.lua)"):format(arg[i]), 0)
    end
  end
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local work_dir = os.tmpname() -- a unique name; it becomes our folder
os.remove(work_dir)
opts.out = opts.out or work_dir .. "/images"
assert(aqueue.fs.mkdir(opts.out, { parents = true }))

-- The site and its server.
local server, expected
if not opts.url then
  local site_dir = work_dir .. "/site"
  expected = site.generate(site_dir, { pages = opts.pages, images = math.max(1, math.floor(opts.pages / 5)) })
  server = nginx.start{ root = site_dir }
  opts.url = server.url
  print(("serving %d generated pages at %s (nginx pid %d)"):format(expected.pages, server.url, server.pid))
end
opts.url = opts.url:gsub("/$", "")
aqueue.http.configure{ max_per_host = opts.workers } -- one connection per worker

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
if server then
  server:stop()
  os.execute("rm -rf " .. shell_quote(work_dir .. "/site"))
end
if not ok then
  error(summary, 0)
end

local pages, images = summary.classes.Page or { done = 0 }, summary.classes.Image or { done = 0 }
print(("crawled %d pages and saved %d images to %s in %.2f s (%.0f pages/s)"):format(
  pages.done, images.done, opts.out, summary.elapsed, pages.done / summary.elapsed))
if summary.resumed then
  print(("(the run resumed from %s: %d items were done before)"):format(summary.state, summary.resumed.done))
elseif expected and not summary.interrupted and (pages.done ~= expected.pages or images.done ~= expected.images) then
  error(("expected %d pages and %d images"):format(expected.pages, expected.images), 0)
end
