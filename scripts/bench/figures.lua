-- Figures gathered per key over a benchmark's runs, and their medians.
--   local figures = require("scripts.bench.figures").new()
--   figures:add("rate", 123.4)   ...   figures:median("rate")
local median = require("scripts.bench.median")

local Figures = {}
Figures.__index = Figures

function Figures:add(key, value)
  self[key] = self[key] or {}
  table.insert(self[key], value)
end

function Figures:median(key)
  return median(self[key])
end

return {
  new = function() return setmetatable({}, Figures) end,
}
