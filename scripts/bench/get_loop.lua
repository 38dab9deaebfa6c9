-- `tasks` tasks each looping aqueue.http.get on url for `seconds`, every
-- answer a 200: the number of requests made. For the HTTP benchmarks
-- (scripts/bench/http_client.lua, http_crawl.lua).
--   local get_loop = require("scripts.bench.get_loop")
local aqueue = require("aqueue")

return function(url, tasks, seconds)
  local count, stop_at, handles = 0, aqueue.now() + seconds, {}
  for i = 1, tasks do
    handles[i] = aqueue.spawn(function()
      while aqueue.now() < stop_at do
        local res = assert(aqueue.http.get(url))
        assert(res.status == 200, "status " .. res.status)
        count = count + 1
      end
      return true
    end)
  end
  for i = 1, tasks do assert(handles[i]:result()) end
  return count
end
