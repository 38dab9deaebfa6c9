-- The median of a list of figures (sorts the list in place; the upper middle
-- one of an even count), for the benchmarks that print the median of their runs.
--   local median = require("scripts.bench.median")
return function(t)
  table.sort(t)
  return t[math.floor((#t + 1) / 2)]
end
