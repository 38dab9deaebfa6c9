-- aqueue.field_names: catches misspelt scheduling fields. A field set on an
-- item class or instance whose name is close to a field the engine reads
-- (`retires`, `timout`) would otherwise be ignored without a word; it is an
-- error naming the field meant. Close means: the same first letter and at
-- most 2 edits (insert, delete, replace, swap two neighbours) away, 1 for
-- names of 5 letters or fewer; a user's own field far from all of these
-- (`url`, `depth`, `entries`) is never flagged.
local byte, sub = string.byte, string.sub
local min = math.min

-- The names the engine reads on items (item.lua, run_queue.lua). `process`
-- is left out: a missing process is already an error at enqueue, and user
-- fields like `processed` and `progress` are 2 edits away from it. `key` and
-- `init` are too short to tell a typo from another word.
local KNOWN = {
  "retries", "retry_backoff", "retry_backoff_max", "timeout", "delay", "priority", "track_overall",
  "after_children_processed", "limit_key",
}
local is_known = {}
for _, name in ipairs(KNOWN) do is_known[name] = true end

-- Edit distance with adjacent swaps (optimal string alignment), or a number
-- above `limit` as soon as it cannot be within it.
local function distance(a, b, limit)
  local la, lb = #a, #b
  if math.abs(la - lb) > limit then return limit + 1 end
  local prev2, prev, cur = {}, {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur[0] = i
    local ca = byte(a, i)
    local row_min = i
    for j = 1, lb do
      local cb = byte(b, j)
      local cost = ca == cb and 0 or 1
      local d = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if i > 1 and j > 1 and ca == byte(b, j - 1) and byte(a, i - 1) == cb then
        d = min(d, prev2[j - 2] + 1)
      end
      cur[j] = d
      if d < row_min then row_min = d end
    end
    if row_min > limit then return limit + 1 end
    prev2, prev, cur = prev, cur, prev2
  end
  return prev[lb]
end

-- The known field `name` is probably a misspelling of, or nil.
local function meant(name)
  if is_known[name] then return nil end
  local first = sub(name, 1, 1)
  local best, best_d = nil, 3
  for i = 1, #KNOWN do
    local known = KNOWN[i]
    if sub(known, 1, 1) == first then
      local limit = #known <= 5 and 1 or 2
      local d = distance(name, known, limit)
      if d <= limit and d < best_d then
        best, best_d = known, d
      end
    end
  end
  return best
end

-- Verdicts by name: false (fine) or the field meant. Bounded, so a script
-- that makes field names on the fly cannot grow it without end.
local verdicts, nverdicts, MAX_VERDICTS = {}, 0, 10000

local function check_name(name)
  local v = verdicts[name]
  if v == nil then
    v = meant(name) or false
    if nverdicts < MAX_VERDICTS then
      verdicts[name] = v
      nverdicts = nverdicts + 1
    end
  end
  return v
end

local function message(owner, name, known)
  return ("%s.%s: unknown field, did you mean %s?"):format(owner, name, known)
end

-- Raises when `name`, set on `owner` (a class name), looks like a misspelt
-- known field. Raises at `level`.
local function check_field(owner, name, level)
  if type(name) ~= "string" then return end
  local known = check_name(name)
  if known then error(message(owner, name, known), level + 1) end
end

-- Raises when one of instance `item`'s own fields looks like a misspelt known
-- field (fields the engine sets, `_aq_*` and `parent`, are skipped).
local function check_instance(item, owner, level)
  local name = next(item) -- not `for name in next, item`: see state.check
  while name ~= nil do
    if type(name) == "string" then
      local known = verdicts[name]
      if known == nil then known = check_name(name) end
      if known then error("enqueue: " .. message(owner, name, known), level + 1) end
    end
    name = next(item, name)
  end
end

return { check_field = check_field, check_instance = check_instance, meant = meant, distance = distance }
