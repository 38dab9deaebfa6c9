# End-to-end: a claim whose reply is lost (the connection drops, or the server
# restarts, after the claim's script ran) on a run shared through Redis
# (--redis, SPEC section 10), on a private redis-server of this test.
# The jobs of that claim are the process's in Redis, which the process never
# learns: they must come back to the queue (README "The shared run's data in
# Redis": "a claim's jobs come back after their lease") and the run must end
# with every item processed, once. The claims hold a 1 s lease; the run is
# given 20 s (the lease, a reaper step every 5 heartbeats, and room for a
# loaded machine).
# Fixture: redis_lost_claim.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/redis.sh
source "$(dirname "$0")/lib/redis.sh"

redis_start
LOG="$TMP/items.log"
RUN_TIMEOUT=20
start_bg lost "$AQUEUE_RUN" --progress none --redis "$REDIS_URL" --run lost "$FIX/redis_lost_claim.lua" "$LOG"
deadline=$((SECONDS + RUN_TIMEOUT))
while kill -0 "$BG_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
  nap 0.05
done
if kill -0 "$BG_PID" 2>/dev/null; then
  fail "the run did not end within ${RUN_TIMEOUT}s: the jobs of the lost claim stay leased to the live process, its heartbeat renewing them ($(rcli ZCARD "aq:{lost}:leases") jobs leased; counters: $(rcli HGETALL "aq:{lost}:counts" | paste -sd' '))"
fi
wait_bg "$QUICK" "the run ends"
expect_rc 0 "the run"
expect_contains "$OUT" "run_done=20 run_failed=0" "every item done, in the store"
expect_eq "$(grep -c '^item ' "$LOG")" 20 "20 items processed"
expect_eq "$(sort -u "$LOG" | grep -c '^item ')" 20 "each once (item 1, 2.2 s long, kept its 1 s lease by heartbeat)"
finish
