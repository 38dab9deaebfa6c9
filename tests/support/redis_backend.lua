-- The redis backend for the backend spec (tests/backend/queue_backend_spec.lua):
--   require("tests.support.redis_backend").install(url)
-- makes every later run_queue of this process keep its queue in Redis at
-- `url` (a private redis-server: tests/support/redis_server.lua), as
-- --redis URL does, in the run named by run_queue's `state` option (the
-- spec's "state file"), or a new one when it gives none.
local queue_backend = require("aqueue.queue_backend")

local M = {}

local opened = 0

function M.install(url)
  local open = queue_backend.open
  queue_backend.open = function(state, opts, level)
    opened = opened + 1
    opts.redis = url
    opts.run = state or ("run-%d-%d"):format(os.time(), opened)
    opts.classes = opts.classes or { "BackendProbe" } -- a backend opened outside run_queue
    return open(nil, opts, level + 1)
  end
end

return M
