-- The url.join benchmark (SPEC section 11): joins per second through
-- aqueue.url.join against Python's urllib.parse.urljoin (scripts/bench/
-- url_join.py) on the same list of (base, reference) pairs, in the same run.
-- The pairs are what a crawl joins: 50 pages of a site, each with 40 links
-- of every form (relative, dot segments, absolute path, query, fragment,
-- protocol-relative, another host), a page's links one after the other.
-- Prints one line of key=value figures (read by run_all), each the median of
-- `runs`, interleaved with the reference.
--   aqueue-run scripts/bench/url_join.lua [joins=500000] [runs=5]
local aqueue = require("aqueue")
local url = aqueue.url

local joins = tonumber(arg[1]) or 500000
local runs = tonumber(arg[2]) or 5
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../../?.lua;" .. package.path
local python = os.getenv("BENCH_PYTHON") or "/usr/bin/python3"

local median = require("scripts.bench.median")

-- The pairs, and the file that hands the same pairs to the reference (a
-- line "base<TAB>ref" each).
local LINKS = {
  "page-%d.html", "./page-%d.html", "../up/%d.html", "../../top-%d/", "/abs/path/%d?x=1&y=2",
  "?page=%d", "#section-%d", "//cdn.example.org/static/%d.js", "https://other.example.com/a/%d",
  "sub/dir/./x/../%d.html", "g;x=%d/../y", "%d/", "/", "", "../%d/../../q?s=t#f",
  "item?id=%d&sort=asc", "images/photo%d.jpg", "mailto:someone%d@example.com",
  "http://www.example.com/en/products/%d", "./../catalog/%d/index.html",
}
local pairs_list = {}
for page = 1, 50 do
  local base = ("https://www.example.com/en/section-%d/sub/page-%d.html?ref=%d"):format(page % 7, page, page)
  for i = 1, 40 do
    pairs_list[#pairs_list + 1] = { base, LINKS[(i - 1) % #LINKS + 1]:format(i + page) }
  end
end
local list_path = os.tmpname()
local f = assert(io.open(list_path, "w"))
for _, p in ipairs(pairs_list) do f:write(p[1], "\t", p[2], "\n") end
f:close()

-- joins/s of url.join over the pairs, round after round.
local function aqueue_rate()
  local n, join = #pairs_list, url.join
  local rounds = math.ceil(joins / n)
  local t0 = aqueue.now()
  for _ = 1, rounds do
    for i = 1, n do
      local p = pairs_list[i]
      if not join(p[1], p[2]) then error("cannot join " .. p[2] .. " to " .. p[1]) end
    end
  end
  return rounds * n / (aqueue.now() - t0)
end

local function reference_rate()
  local res = assert(aqueue.exec{ python, here .. "/url_join.py", list_path, tostring(joins) })
  local rate = res.code == 0 and res.stdout:match("joins_per_s=([%d.]+)")
  assert(rate, "url_join.py: " .. res.stdout .. res.stderr)
  return tonumber(rate)
end

local rates, refs = {}, {}
local ok, err = pcall(function()
  aqueue_rate() -- warm-up: the JIT, the module loaded
  for _ = 1, runs do
    refs[#refs + 1] = reference_rate()
    rates[#rates + 1] = aqueue_rate()
  end
end)
os.remove(list_path)
assert(ok, err)
local rate, ref = median(rates), median(refs)
print(("url_join pairs=%d joins=%d joins_per_s=%.0f ref_joins_per_s=%.0f ratio=%.3f")
  :format(#pairs_list, joins, rate, ref, rate / ref))
