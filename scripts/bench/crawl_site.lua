-- What the crawl benchmarks share (scripts/bench/crawl.lua, http_crawl.lua):
-- the generated site, kept between runs; the aqueue-run that runs them; and
-- one crawl of a served site by a crawl script, as requests per second.
--   local crawl_site = require("scripts.bench.crawl_site")
--   local dir = crawl_site.site(20000)
--   local rate = crawl_site.crawl_rate(script, url, { "--workers", "100" })
local aqueue = require("aqueue")
local site = require("examples.lib.site")

local M = {}

-- The aqueue-run running this script: the lowest negative index of arg.
function M.aqueue_run()
  local i = -1
  while arg[i - 1] do
    i = i - 1
  end
  return arg[i]
end

-- The folder of a generated site of `pages` pages (a fifth as many images),
-- made on first use and kept (generating 24k files takes a while).
function M.site(pages)
  local dir = ("%s/aqueue-bench-site-%d"):format(os.getenv("TMPDIR") or "/tmp", pages)
  local ready = io.open(dir .. "/.complete")
  if ready then
    ready:close()
  else
    os.execute("rm -rf '" .. dir .. "'")
    site.generate(dir, { pages = pages, images = math.max(1, math.floor(pages / 5)) })
    io.open(dir .. "/.complete", "w"):close()
  end
  return dir
end

-- Where the crawls save their images: a tmpfs (/dev/shm) where there is one.
-- On ext4 (/tmp here) creating the 4000 files took the pool threads 5-6 s of
-- kernel time a crawl, more than the whole loop thread, and that time swung
-- with how recently the last crawl's files were deleted (ext4 scans for
-- recently deleted inodes): it hid the toolkit's cost behind the disk's, at
-- 0.76-0.89x from run to run, where on tmpfs the loop thread decides.
local out_root
local function images_root()
  if out_root then return out_root end
  local probe = io.open("/dev/shm/.aqueue-bench-probe", "w")
  if probe then
    probe:close()
    os.remove("/dev/shm/.aqueue-bench-probe")
    out_root = "/dev/shm"
  else
    out_root = os.getenv("TMPDIR") or "/tmp"
  end
  return out_root
end

-- One crawl of the site at url by `script` (examples/crawl.lua or one with
-- its command line), with `args` besides --url, --delay 0 and --out: its
-- requests/s (pages and images fetched per second of its run_queue).
function M.crawl_rate(script, url, args)
  local name = os.tmpname() -- (a unique name: the file it makes goes at once)
  os.remove(name)
  local out_dir = images_root() .. "/aqueue-bench-crawl-" .. name:match("[^/]+$")
  local cmd = { M.aqueue_run(), "--progress", "none", script, "--url", url, "--delay", "0", "--out", out_dir }
  for _, a in ipairs(args) do cmd[#cmd + 1] = a end
  local crawl = assert(aqueue.exec(cmd))
  os.execute("rm -rf '" .. out_dir .. "'")
  local p, i, t = crawl.stdout:match("crawled (%d+) pages and saved (%d+) images to .- in ([%d.]+) s")
  assert(p, "crawl output: " .. crawl.stdout .. crawl.stderr)
  return (tonumber(p) + tonumber(i)) / tonumber(t)
end

return M
