# End-to-end: limits for the whole of a run shared through Redis (--redis,
# SPEC section 10), and processes joining a running run, on a private
# redis-server of this test.
#   join:    a starts the run alone; b and c join it once a has processed
#            some items: all three process items, every item once, the
#            counters agree;
#   per_key: with limits.per_key = 2, no more than 2 items of a key run at
#            once across the three processes (from the items' own records,
#            timed by the server's clock), and the slow keys reach 2;
#   rate:    the key "fast" (rate = 100 per second) starts its items at
#            100/s within 5 % over the run, from the server-timed starts:
#            the slope of a least-squares line through them (each start is
#            read by a round trip to the server: on a loaded machine the
#            first or the last can come 100 ms late, which the span from
#            the first to the last start would count as a slower rate).
# Fixture: redis_limits.lua (380 items, about 3 s of work).
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/redis.sh
source "$(dirname "$0")/lib/redis.sh"

F="$FIX/redis_limits.lua"
LOG="$TMP/records.log"
EXPECTED_ITEMS=380 # 300 Fast + 4 keys x 20 Slow
redis_start
export AQUEUE_TEST_REDIS_URL="$REDIS_URL"

start_proc() {
  start_bg "$1" "$AQUEUE_RUN" --progress none --redis "$REDIS_URL" --run limits "$F" "$LOG" "$1"
}

# ================================= join =================================
start_proc a
deadline=$((SECONDS + START_WAIT))
records=()
while [ "${#records[@]}" -lt 10 ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "join: the first process recorded no 10 items within ${START_WAIT}s"
  nap 0.02
  [ -f "$LOG" ] && mapfile -t records <"$LOG"
done
pass "join: the first process runs the run alone (${#records[@]} items recorded)"
start_proc b
start_proc c
for tag in a b c; do
  use_bg "$tag"
  wait_bg "$RUN_TIMEOUT" "join: process $tag ends"
  expect_rc 0 "join: process $tag"
  expect_contains "$OUT" "failed=0 run_done=$EXPECTED_ITEMS run_failed=0 run_pending=0" \
    "join: process $tag reports the whole run's counters"
done

result="$("$PY" - "$LOG" "$EXPECTED_ITEMS" <<'PY' 2>&1
import sys
from collections import Counter, defaultdict
log_path, expected = sys.argv[1], int(sys.argv[2])
records = [line.split() for line in open(log_path, encoding="utf-8")]
bad = [r for r in records if len(r) != 5]
if bad:
    sys.exit("malformed records: %r" % bad[:3])
by_tag = Counter(r[0] for r in records)
names = Counter(r[2] for r in records)
print("join", len(records), len(names), max(names.values()), *(by_tag.get(t, 0) for t in "abc"))
# per key: the most items running at once (an end before a start at the same instant)
events = defaultdict(list)
for tag, key, name, start, end in records:
    events[key] += [(float(start), 1), (float(end), -1)]
most = {}
for key, ev in events.items():
    ev.sort()
    running = peak = 0
    for _, step in ev:
        running += step
        peak = max(peak, running)
    most[key] = peak
print("per_key", max(v for k, v in most.items() if k != "fast"), min(v for k, v in most.items() if k != "fast"),
      " ".join("%s=%d" % kv for kv in sorted(most.items())))
starts = sorted(float(r[3]) for r in records if r[1] == "fast")
mean_i, mean_t = (len(starts) - 1) / 2, sum(starts) / len(starts)
slope = (sum((i - mean_i) * (t - mean_t) for i, t in enumerate(starts))
         / sum((i - mean_i) ** 2 for i in range(len(starts)))) # seconds per start
print("rate", len(starts), "%.2f" % (1 / slope))
PY
)"
read -r _ n distinct most_times a_n b_n c_n <<<"$(grep '^join ' <<<"$result")" ||
  fail "the records cannot be read: $result"
expect_eq "$n" "$EXPECTED_ITEMS" "join: $EXPECTED_ITEMS items recorded"
expect_eq "$distinct" "$EXPECTED_ITEMS" "join: each a different item"
expect_eq "$most_times" 1 "join: no item processed twice"
echo "# items per process: a $a_n, b $b_n, c $c_n"
for tag_n in "a:$a_n" "b:$b_n" "c:$c_n"; do
  expect_match "${tag_n#*:}" '^[1-9][0-9]*$' "join: process ${tag_n%%:*} processed items of the run"
done

# ================================ per_key ================================
read -r _ most least detail <<<"$(grep '^per_key ' <<<"$result")"
echo "# most items of a key running at once: $detail"
expect_eq "$most" 2 "per_key: never more than 2 items of a slow key at once, across the processes"
expect_eq "$least" 2 "per_key: every slow key had 2 at once (the limit was what held them)"

# ================================= rate ==================================
read -r _ starts rate <<<"$(grep '^rate ' <<<"$result")"
echo "# key fast: $starts starts at $rate/s (asked: 100/s), by the server's clock"
rate_x100=${rate/./}
if [ "$rate_x100" -lt 9500 ] || [ "$rate_x100" -gt 10500 ]; then
  fail "rate: the key fast started $rate items/s over the run, asked 100/s (within 5 %)"
fi
pass "rate: 100/s within 5 % over the run ($rate/s)"

finish
