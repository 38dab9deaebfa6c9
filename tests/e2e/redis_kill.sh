# End-to-end: a run shared through Redis (--redis, SPEC section 10) under
# kill -9, of its processes and of redis-server itself.
#
# A tree of 20221 items (fixtures/redis_kill.lua: Root -> 20 Branch -> 10 Mid
# -> 100 Leaf, hooks on Root, Branch and Mid, key() duplicates between
# neighbouring Mids, 1000 leaves that fail their first attempt and are
# retried) is run by three processes on a private redis-server (appendonly,
# appendfsync always): a and b run from start to end; the third is killed
# with SIGKILL at KILLS random moments, started again after each, and its
# last start runs to the end. Once, at a random kill, redis-server is killed
# with SIGKILL too and started again on its files. Claims hold a short lease
# (LEASE), so the items of a killed process come back soon.
# Then, from the store (the run's counters, its item records, --status):
#   - every item was completed, and recorded once: 20221 done, 20221 item
#     records, 20221 enqueued (a duplicate key never made a second record),
#     221 hooks done, nothing failed, queued, running or waiting;
# and from the log the processes share (a line per processing, tagged with
# the process that wrote it, in the order of the writes):
#   - every item was processed and every hook ran;
#   - an item (a key) processed more than once, or a hook run more than once,
#     was processed (run) before only by processes that were killed: those
#     whose lease was lost; no process that lived processed anything twice;
#   - every hook ran after the last processing of each of its children (and
#     after their hooks);
#   - the kills landed while a killed process held leaves (begun there, not
#     ended there), which other processes then ran;
#   - the retries the store counted lie between the first attempts that
#     failed in processes that lived and all that failed.
# Reproduce a failing order of kills with AQUEUE_E2E_SEED=<the printed seed>.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/redis.sh
source "$(dirname "$0")/lib/redis.sh"
# shellcheck source=lib/kills.sh
source "$(dirname "$0")/lib/kills.sh" # SAN_RE, SLOW_PCT, SEED

F="$FIX/redis_kill.lua"
LOG="$TMP/side.log"
RUN_NAME="kill"
LEASE=3 # seconds: the run's default is about 15
KILLS=10
EXPECTED_ITEMS=20221
EXPECTED_HOOKS=221

# Kill delays are drawn from [100, 400] ms after the killed process processed
# its first item (its LOG.TAG.busy file: a kill that only hit the start-up of
# a process on a loaded machine would lose no claim), scaled by SLOW_PCT
# (lib/kills.sh: the ASan runner's processing is slower). They are
# capped so that the run cannot finish before the last kill: the leaves left
# take at least left / MAX_RATE seconds (three processes of 16 workers, each
# leaf sleeping 0.01 s: the fixture's figures), shared among the kills still
# to come.
MAX_RATE=4800
LEAVES=20000
REDIS_KILL_AT=$((3 + RANDOM % 6)) # redis-server dies with the process of this kill
REDIS_DOWN_MS=$((100 + RANDOM % 301))

START_MS=$((${EPOCHREALTIME/[.,]/} / 1000))
redis_start

# start_proc TAG : a process of the run, in the background.
start_proc() {
  start_bg "$1" "$AQUEUE_RUN" --progress none --redis "$REDIS_URL" --run "$RUN_NAME" "$F" "$LOG" "$1" "$LEASE"
}

# check_stderr TAG : no sanitizer report, Lua error or internal error in that
# process's stderr (a kill -9 itself leaves none).
check_stderr() {
  if grep -Eq -- "$SAN_RE" "$TMP/$1.err"; then
    use_bg "$1"
    bg_output
    keep_evidence
    fail "process $1: error output: $(grep -E -- "$SAN_RE" "$TMP/$1.err" | head -3)"
  fi
}

# secs MS : SECS = MS milliseconds as seconds (printf -v: no subshell)
secs() { printf -v SECS '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

start_proc a
wait_for_text "$LOG" "a P root" "$START_WAIT" "the first process creates the run and processes its root"
start_proc b

killed=""
for k in $(seq 1 "$KILLS"); do
  start_proc "v$k"
  deadline=$((SECONDS + START_WAIT))
  until [ -e "$LOG.v$k.busy" ]; do
    kill -0 "$BG_PID" 2>/dev/null || { wait "$BG_PID"; RC=$?; bg_output; fail "process v$k ended (status $RC) before processing an item"; }
    [ "$SECONDS" -lt "$deadline" ] || { bg_output; fail "process v$k processed no item within ${START_WAIT}s"; }
    nap 0.01
  done
  delay=$(((100 + RANDOM % 301) * SLOW_PCT / 100))
  left=$((LEAVES - $(grep -c ' P l' "$LOG")))
  cap=$((left * 1000 / MAX_RATE / (KILLS - k + 2)))
  [ "$cap" -lt 50 ] && cap=50
  [ "$delay" -gt "$cap" ] && delay=$cap
  kill_bg_after "$delay" # sets RC and KILLED (lib/kills.sh)
  if [ "$KILLED" -ne 1 ]; then
    bg_output
    keep_evidence
    fail "process v$k ended by itself (status $RC) before its kill after $delay ms"
  fi
  killed="$killed v$k"
  check_stderr "v$k"
  note=""
  if [ "$k" -eq "$REDIS_KILL_AT" ]; then
    secs "$REDIS_DOWN_MS"
    redis_restart "$SECS"
    note=", and redis-server killed, started again after $REDIS_DOWN_MS ms"
  fi
  echo "# kill $k: process v$k after $delay ms$note"
  for tag in a b; do
    kill -0 "${BG_PID_OF[$tag]}" 2>/dev/null ||
      fail "process $tag ended before kill $k: the run finished before the kills were done (too fast a machine for these delays?)"
  done
done
pass "$KILLS kills with SIGKILL landed while the run was unfinished (and one of redis-server)"

last="v$((KILLS + 1))"
start_proc "$last"
# store_state : what the run holds, for a failure report.
store_state() {
  echo "the run's counters: $(rcli HGETALL "aq:{$RUN_NAME}:counts" | paste -sd' ')"
  echo "leases: $(rcli ZRANGE "aq:{$RUN_NAME}:leases" 0 9 WITHSCORES | paste -sd' ')"
  echo "ready: $(rcli LLEN "aq:{$RUN_NAME}:ready"), hooks: $(rcli LLEN "aq:{$RUN_NAME}:hooks"), delayed: $(rcli ZCARD "aq:{$RUN_NAME}:delayed")"
  echo "processes: $(rcli ZRANGE "aq:{$RUN_NAME}:procs" 0 -1 WITHSCORES | paste -sd' '), server time $(rcli TIME | paste -sd.)"
}
for tag in a b "$last"; do
  use_bg "$tag"
  deadline=$((SECONDS + RUN_TIMEOUT))
  while kill -0 "$BG_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
    nap 0.05
  done
  if kill -0 "$BG_PID" 2>/dev/null; then
    bg_output
    keep_evidence
    fail "process $tag did not end within ${RUN_TIMEOUT}s (seed $SEED):
$(store_state)"
  fi
  wait "$BG_PID"
  RC=$?
  bg_output
  [ "$RC" -eq 0 ] || keep_evidence
  expect_rc 0 "process $tag"
  expect_no_match "$ERR" "$SAN_RE" "process $tag: no sanitizer report or error"
  expect_contains "$OUT" "run_done=$EXPECTED_ITEMS run_failed=0 run_pending=0" \
    "process $tag reports the whole run's counters"
done
TOTAL_MS=$(($((${EPOCHREALTIME/[.,]/} / 1000)) - START_MS))
echo "# $KILLS kills, redis-server killed at kill $REDIS_KILL_AT, ${TOTAL_MS} ms in all"

# --- the store ---
run "$TOOL_RUN" --progress none --redis "$REDIS_URL" --run "$RUN_NAME" --status
expect_rc 0 "--status: exit 0"
expect_contains "$OUT" "complete: 0 queued, 0 delayed, 0 running, $EXPECTED_ITEMS done, 0 failed" \
  "--status: every item done, once"
expect_match "$OUT" '^  Leaf +0 +0 +20000 +0$' "--status: 20000 leaves done"
COUNTS="$(rcli HGETALL "aq:{$RUN_NAME}:counts")"
RECORDS="$(rcli HLEN "aq:{$RUN_NAME}:items")"
expect_eq "$RECORDS" "$EXPECTED_ITEMS" "the store holds one record per item"

# --- the log against the counters and the guarantee ---
result="$("$PY" - "$LOG" "$killed" "$EXPECTED_ITEMS" "$EXPECTED_HOOKS" "$RECORDS" "$COUNTS" <<'PY' 2>&1
import sys
log_path, killed, n_items, n_hooks, records = sys.argv[1], set(sys.argv[2].split()), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
BRANCHES, MIDS, LEAVES, DUPS, FLAKY_EVERY = 20, 10, 100, 10, 20
flat = sys.argv[6].split("\n")
counts = {flat[i]: int(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}

# the tree: path -> children; the leaves are keys (a duplicate is one item)
children = {"root": ["b%d" % b for b in range(1, BRANCHES + 1)]}
for b in range(1, BRANCHES + 1):
    children["b%d" % b] = ["m%d" % ((b - 1) * MIDS + m) for m in range(MIDS)]
leaves = []
for g in range(BRANCHES * MIDS):
    # a Mid's own leaves; the DUPS it names of the next Mid are that Mid's
    children["m%d" % g] = ["l%d.%d" % (g, i) for i in range(1, LEAVES + 1)]
    leaves += children["m%d" % g]
items = set(children) | set(leaves)
hooked = set(children)
assert len(items) == n_items and len(hooked) == n_hooks

problems = []
lines = {}  # (kind, path) -> [(position, tag)]
fails = {"lived": 0, "all": 0}
begun, ended = {}, {}  # tag -> the leaves whose process() began / ended (P or F) in that process
for pos, line in enumerate(open(log_path, encoding="utf-8"), 1):
    parts = line.split()
    if len(parts) == 2 and parts[1] == "S":
        continue
    if len(parts) != 3 or parts[1] not in ("B", "P", "H", "F") or parts[2] not in items:
        problems.append("line %d of the log is not a processing of the tree: %r" % (pos, line))
        continue
    tag, kind, path = parts
    if kind == "B":
        begun.setdefault(tag, set()).add(path)
        continue
    lines.setdefault((kind, path), []).append((pos, tag))
    if kind in ("P", "F"):
        ended.setdefault(tag, set()).add(path)
    if kind == "F":
        fails["all"] += 1
        fails["lived"] += tag not in killed

again = {"P": 0, "H": 0}
last = {}
for kind, group, what in (("P", items, "processed"), ("H", hooked, "hook run")):
    missing = [p for p in group if (kind, p) not in lines]
    if missing:
        problems.append("%d items never %s: %s" % (len(missing), what, sorted(missing)[:5]))
    for p in group:
        seen = lines.get((kind, p), [])
        if not seen:
            continue
        last[kind, p] = seen[-1][0]
        again[kind] += len(seen) - 1
        twice = [(pos, tag) for pos, tag in seen[:-1] if tag not in killed]
        if twice:
            problems.append("%s %s by %s (line %d), a process that lived, and %s again later (lines %s)"
                            % (p, what, twice[0][1], twice[0][0], what, [s[0] for s in seen]))
# A leaf named by two Mids is the child of the one whose enqueue the store
# took first: its hook, at least, comes after the leaf.
def hooks_after(parent, done_at):
    return all(h_pos > done_at for h_pos, _ in lines.get(("H", parent), []))
for parent, kids in children.items():
    for kid in kids:
        done_at = max(last.get(("P", kid), 0), last.get(("H", kid), 0))
        parents = [parent]
        g, i = (int(x) for x in kid[1:].split(".")) if kid[0] == "l" else (0, DUPS + 1)
        if i <= DUPS:
            parents.append("m%d" % ((g - 1) % (BRANCHES * MIDS)))
        if not any(hooks_after(p, done_at) for p in parents):
            problems.append("the hook of %s ran before %s was done (line %d): hooks at lines %s"
                            % (" or ".join(parents), kid, done_at,
                               [h[0] for p in parents for h in lines.get(("H", p), [])]))

def count(name):
    return counts.get(name, 0)
want = {"done": n_items, "enqueued": n_items, "hooks_done": n_hooks, "failed": 0, "hooks_failed": 0,
        "queued": 0, "running": 0, "delayed": 0, "waiting": 0,
        "c:Leaf:done": LEAVES * MIDS * BRANCHES, "c:Mid:done": MIDS * BRANCHES, "c:Branch:done": BRANCHES,
        "c:Root:done": 1}
for name, value in want.items():
    if count(name) != value:
        problems.append("the run's counter %s is %d, expected %d" % (name, count(name), value))
if records != count("done"):
    problems.append("%d item records, but %d done" % (records, count("done")))
if not fails["lived"] <= count("retried") <= fails["all"]:
    problems.append("the run counted %d retries; the log has %d failed first attempts, %d in processes that lived"
                    % (count("retried"), fails["all"], fails["lived"]))
# The leaves a killed process held at its kill: begun there, not ended there.
# Their lease was lost; "every item was processed" above says another process
# ran each of them. (Processed again, counted in `again`, are only those whose
# completion the killed process had not sent yet: a narrower window that a
# kill may miss every time.)
held = sum(len(paths - ended.get(tag, set())) for tag, paths in begun.items() if tag in killed)
if held == 0:
    problems.append("no kill landed while the killed process held items (no leaf begun and not ended in a killed process)")

for msg in problems[:20]:
    print("FAIL " + msg)
if not problems:
    print("PASS %d items and %d hooks, each recorded once; %d leaves held by killed processes at their kill; "
          "%d processings and %d hook runs again after a lost lease; %d retries (%d first attempts failed)"
          % (n_items, n_hooks, held, again["P"], again["H"], count("retried"), fails["all"]))
PY
)"
case "$result" in
PASS*) pass "the log and the counters: ${result#PASS }" ;;
*)
  keep_evidence
  fail "the log or the counters break the guarantee (seed $SEED):
$result" ;;
esac

finish
