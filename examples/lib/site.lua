-- A generated website for the crawl example and its benchmark: `pages` HTML
-- pages linked to each other, and `images` small GIF files, the pages linking
-- to them. Deterministic: the same arguments give the same site.
--
--   local site = require("lib.site")  -- from an example (see examples/crawl.lua)
--   local info = site.generate(dir, { pages = 3000, images = 600 })
--   -- info.pages, info.images: how many of each a crawl from /index.html finds
local M = {}

-- A 1x1 GIF whose one colour comes from n, so every image is a distinct file.
local function gif(n)
  local r, g, b = n % 256, math.floor(n / 256) % 256, (n * 37) % 256
  return "GIF89a\1\0\1\0\128\0\0" .. string.char(r, g, b, 255 - r, 255 - g, 255 - b)
    .. "!\249\4\0\0\0\0\0,\0\0\0\0\1\0\1\0\0\2\2D\1\0;"
end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  f:close()
end

-- Page i links to the next page (so all are reachable from the index), to
-- four pseudo-random ones (so the crawl meets many duplicates) and shows two
-- images.
local function page_html(i, pages, images)
  local links = { ("<a href=\"/page/%d.html\">next</a>"):format(i % pages + 1) }
  for k = 1, 4 do
    links[#links + 1] = ("<a href=\"/page/%d.html\">see also</a>"):format((i * 7919 + k * 104729) % pages + 1)
  end
  local imgs = {}
  for k = 0, 1 do
    imgs[#imgs + 1] = ("<img src=\"/img/%d.gif\" alt=\"\">"):format((i * 31 + k * 17) % images + 1)
  end
  return ("<!doctype html><html><head><title>Page %d</title></head><body><h1>Page %d</h1>\n%s\n%s\n</body></html>\n")
    :format(i, i, table.concat(links, "\n"), table.concat(imgs, "\n"))
end

function M.generate(dir, opts)
  local pages, images = opts.pages or 3000, opts.images or 600
  os.execute(("mkdir -p '%s/page' '%s/img'"):format(dir, dir))
  write(dir .. "/index.html", "<!doctype html><html><body><a href=\"/page/1.html\">start</a></body></html>\n")
  local used = {}
  for i = 1, pages do
    write(("%s/page/%d.html"):format(dir, i), page_html(i, pages, images))
    for k = 0, 1 do
      used[(i * 31 + k * 17) % images + 1] = true
    end
  end
  local found = 0
  for n = 1, images do
    write(("%s/img/%d.gif"):format(dir, n), gif(n))
    if used[n] then
      found = found + 1
    end
  end
  return { pages = pages + 1, images = found } -- + the index
end

return M
