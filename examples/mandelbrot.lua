-- Renders the Mandelbrot set on every core, the AsynQueue seed's demo done
-- with aqueue: an Image item enqueues one Row item per line of pixels; each
-- Row computes its pixels with aqueue.work, on the thread pool, so rows render
-- in parallel; when every row is done the Image's after_children_processed
-- writes the picture as a binary PPM (P6) file.
--   aqueue-run examples/mandelbrot.lua [width [height [output [max_iter]]]]
-- Defaults: 800 600 mandelbrot.ppm 256. The pool has one thread per core;
-- UV_THREADPOOL_SIZE=n chooses another number.
local aqueue = require("aqueue")
local pool_size = require("aqueue.work").pool_size

local width = math.floor(tonumber(arg[1]) or 800)
local height = math.floor(tonumber(arg[2]) or 600)
local output = arg[3] or "mandelbrot.ppm"
local max_iter = math.floor(tonumber(arg[4]) or 256)
assert(width >= 1 and height >= 1 and max_iter >= 1,
  "usage: aqueue-run mandelbrot.lua [width [height [output [max_iter]]]]")

-- One row of pixels as a string of width * 3 bytes (R, G, B). It runs on a
-- pool thread, in that thread's own Lua state: all it sees is its arguments
-- and the standard library, so it must not use the script's locals.
local function render_row(py, width, max_iter, x0, y0, scale)
  local char, cos, log = string.char, math.cos, math.log
  local ci = y0 - (py + 0.5) * scale
  local pixels = {}
  for px = 0, width - 1 do
    local cr = x0 + (px + 0.5) * scale
    local zr, zi, zr2, zi2, n = 0, 0, 0, 0, 0
    while n < max_iter and zr2 + zi2 <= 256 do
      zi = 2 * zr * zi + ci
      zr = zr2 - zi2 + cr
      zr2, zi2 = zr * zr, zi * zi
      n = n + 1
    end
    if n == max_iter then
      pixels[px + 1] = "\0\0\0" -- in the set
    else
      -- smooth escape count, then a cosine palette whose channels are out of
      -- phase, so no point outside the set is black
      local mu = n + 1 - log(log(zr2 + zi2) / 2 / log(2)) / log(2)
      local v = 3 * log(mu + 1)
      pixels[px + 1] = char(
        math.floor(127.5 + 127.5 * cos(v + 4.0)),
        math.floor(127.5 + 127.5 * cos(v + 4.6)),
        math.floor(127.5 + 127.5 * cos(v + 5.4)))
    end
  end
  return table.concat(pixels)
end

local Image = aqueue.Item:extend("Image")
local Row = aqueue.Item:extend("Row")
Row.track_overall = true

function Image:process(enqueue, set_desc)
  set_desc(("image %dx%d"):format(self.width, self.height))
  -- the whole set, centred on -0.6 (inside it), in whichever of its 3.5 x 2.6
  -- extent is the tighter fit
  self.scale = math.max(3.5 / self.width, 2.6 / self.height)
  self.x0 = -0.6 - self.width * self.scale / 2
  self.y0 = self.height * self.scale / 2
  self.rows = {}
  for y = 0, self.height - 1 do
    enqueue(Row{ y = y })
  end
end

function Row:process(enqueue, set_desc)
  local image = self.parent
  set_desc(("row %d of %d"):format(self.y + 1, image.height))
  image.rows[self.y + 1] = assert(aqueue.work(render_row, self.y, image.width, image.max_iter,
    image.x0, image.y0, image.scale))
end

-- Runs once every row is done (or failed): writes the file.
function Image:after_children_processed()
  for y = 1, self.height do
    if not self.rows[y] then
      error(("row %d failed: not writing %s"):format(y, self.path))
    end
  end
  local f = assert(io.open(self.path, "wb"))
  f:write(("P6\n%d %d\n255\n"):format(self.width, self.height))
  f:write(table.concat(self.rows))
  assert(f:close())
  self.written = true
end

local image = Image{ width = width, height = height, max_iter = max_iter, path = output }
local summary = aqueue.run_queue{
  initial_items = { image },
  -- more workers than pool threads, so a row is always queued for a thread
  -- that finishes one
  num_workers = 2 * pool_size() + 2,
}
if image.written then
  print(("wrote %s: %dx%d, %d rows in %.3f s on %d pool threads"):format(
    output, width, height, height, summary.elapsed, pool_size()))
end
