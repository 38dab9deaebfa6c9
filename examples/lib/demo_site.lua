-- What the crawl example (and the crawl benchmark's reference) needs around
-- the crawl itself: its command line, an output folder, and the generated
-- site served by a private nginx, then the report and the clean-up.
--
--   local demo = require("lib.demo_site")
--   local opts = demo.options(arg, "examples/crawl.lua")  -- --pages --workers --delay --rate --out --url
--   local site = demo.serve(opts)   -- opts.url set; site.expected = { pages, images } or nil
--   ... run_queue ...
--   site:stop()                     -- nginx stopped by PID, the generated files removed
--   demo.report(opts, site, ok, summary)  -- "crawled N pages and saved M images ..."
local aqueue = require("aqueue")
local generator = require("lib.site")
local nginx = require("lib.nginx")

local M = {}

local NUMBER_OPTIONS = { pages = true, workers = true, delay = true, rate = true, connections = true }

-- The options of the command line `args` (defaults: 3000 pages, 16 workers,
-- 0.01 s of delay); `script` names the file whose header documents them.
function M.options(args, script)
  local opts = { pages = 3000, workers = 16, delay = 0.01 }
  local i = 1
  while args[i] do
    local name, value = args[i]:match("^%-%-(%w+)$"), args[i + 1]
    if NUMBER_OPTIONS[name] then
      opts[name] = tonumber(value) or error(("--%s needs a number"):format(name), 0)
      i = i + 2
    elseif name == "out" or name == "url" then
      opts[name] = value or error(("--%s needs a value"):format(name), 0)
      i = i + 2
    else
      error(("unknown argument %q (see the top of %s)"):format(args[i], script), 0)
    end
  end
  return opts
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Makes opts.out (default: a new folder under /tmp) and, without --url,
-- generates the site and serves it: opts.url is where. Returns the site:
-- { expected = { pages, images } (nil with --url), stop = fn }.
function M.serve(opts)
  local work_dir = os.tmpname() -- a unique name; it becomes our folder
  os.remove(work_dir)
  opts.out = opts.out or work_dir .. "/images"
  assert(aqueue.fs.mkdir(opts.out, { parents = true }))
  local site = { stop = function() end }
  if not opts.url then
    local site_dir = work_dir .. "/site"
    site.expected = generator.generate(site_dir,
      { pages = opts.pages, images = math.max(1, math.floor(opts.pages / 5)) })
    local server = nginx.start{ root = site_dir }
    opts.url = server.url
    print(("serving %d generated pages at %s (nginx pid %d)"):format(site.expected.pages, server.url, server.pid))
    function site.stop()
      server:stop()
      os.execute("rm -rf " .. shell_quote(site_dir))
    end
  end
  return site
end

-- After the run (run_queue's pcall: ok, summary): the line the tests and
-- the benchmark read, or the run's error; an error too when an uninterrupted
-- crawl of the generated site missed a page or an image.
function M.report(opts, site, ok, summary)
  if not ok then
    error(summary, 0)
  end
  local pages, images = summary.classes.Page or { done = 0 }, summary.classes.Image or { done = 0 }
  print(("crawled %d pages and saved %d images to %s in %.2f s (%.0f pages/s)"):format(
    pages.done, images.done, opts.out, summary.elapsed, pages.done / summary.elapsed))
  local expected = site.expected
  if summary.resumed then
    print(("(the run resumed from %s: %d items were done before)"):format(summary.state, summary.resumed.done))
  elseif expected and not summary.interrupted and (pages.done ~= expected.pages or images.done ~= expected.images) then
    error(("expected %d pages and %d images"):format(expected.pages, expected.images), 0)
  end
end

return M
