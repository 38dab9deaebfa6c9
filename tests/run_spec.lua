-- Runs busted specs inside aqueue-run, so specs may call yielding functions
-- (aqueue.sleep, run_queue, handle:result()) directly.
--   aqueue-run tests/run_spec.lua tests/spec/items_spec.lua [busted options]
local ok, err = pcall(require("busted.runner"), { standalone = false })
-- busted ends with os.exit(0) when everything passed; failures arrive here as
-- an error without a message.
if ok then
  os.exit(0)
end
if err ~= nil then
  io.stderr:write(tostring(err), "\n")
end
os.exit(1)
