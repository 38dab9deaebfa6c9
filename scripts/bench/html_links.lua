-- The aqueue side of the HTML benchmark (scripts/bench/html_links.py): parses
-- the page in PATH and selects all its links, a::attr(href), over and over
-- for SECONDS; prints pages per second.
--   aqueue-run scripts/bench/html_links.lua PATH [SECONDS]
-- From the script's task a page of 300 KB is parsed on the thread pool (as
-- every page of 64 KB or more is, aqueue.html.pool_min_bytes), so this
-- measures the path a crawl takes, the hop to the pool included; the
-- `inline` figure is the same work from a coroutine that cannot wait, where
-- the parse runs on the loop thread.
local html = require("aqueue.html")
local clock = require("aqueue").now -- wall time: the parse runs on another thread

local path, seconds = arg[1], tonumber(arg[2] or "2")
local f = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
local page = f:read("*a")
f:close()

local function links_of(text)
  return #html.parse(text):css("a::attr(href)")
end

-- Runs links_of for `seconds` (after 3 warm-up pages); returns pages/s and the
-- link count of one page.
local function measure(secs)
  local links
  for _ = 1, 3 do links = links_of(page) end
  local n, t0 = 0, clock()
  repeat
    links = links_of(page)
    n = n + 1
  until clock() - t0 >= secs
  return n / (clock() - t0), links
end

local rate, links = measure(seconds)
local inline_rate = coroutine.wrap(measure)(seconds)
print(("html_links impl=aqueue bytes=%d links=%d pages_per_s=%.1f inline_pages_per_s=%.1f")
  :format(#page, links, rate, inline_rate))
