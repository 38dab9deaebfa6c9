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
