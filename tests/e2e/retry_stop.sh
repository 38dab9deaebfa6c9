# End-to-end: retries, seen from outside.
#   stop:  the first SIGINT while an item waits out a long retry backoff (and
#          another its delay) ends the run at once, not after the backoff:
#          exit 130, the summary says "not started" and "interrupted", the
#          handle of the item in backoff returns nil, "not retried: the queue
#          was stopped (last error: ...)";
#   tty:   the live panel shows a worker on a retry as "Class (attempt 2/3)",
#          the Queue row of a class waiting out a backoff under "retrying",
#          the " Last error " line with the failed attempt's text, and
#          Ctrl-C typed in the terminal ends the backoff wait at once;
#   json:  a progress line has a worker row with "attempt": 2 while the
#          retried attempt runs, and the classes' "retrying" / "retried".
# Fixture: retry_stop.lua (modes "stop" and "panel"); its waits in backoff are
# drawn from [0, 1e6 s], so they last for days.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/tmux.sh
source "$(dirname "$0")/lib/tmux.sh"

R="$FIX/retry_stop.lua"

# ======================= SIGINT during a backoff wait =======================
mkdir "$TMP/stop"
start_bg stop "$AQUEUE_RUN" "$R" stop "$TMP/stop"
wait_for_text "$TMP/stop.err" "retrying in" "$START_WAIT" "stop: the first attempt failed and waits to be retried"
bg_output
expect_match "$ERR" '^aqueue: Flaky:process failed \(attempt 1 of 4\), retrying in [0-9]+\.[0-9]{2} s: .*flaky failure$' \
  "stop: the retry line names the class, the attempt, the wait and the message"
sigint_ms=$((${EPOCHREALTIME/[.,]/} / 1000))
kill -INT "$BG_PID"
wait_bg "$QUICK" "stop: the run ends within ${QUICK}s of the SIGINT, not after the backoff"
stop_ms=$(($((${EPOCHREALTIME/[.,]/} / 1000)) - sigint_ms))
expect_rc 130 "stop: interrupted"
expect_match "$OUT" '^flaky result: nil, not retried: the queue was stopped \(last error: .*flaky failure\)$' \
  "stop: the handle of the item in backoff returns nil, 'not retried: ... (last error: ...)'"
expect_match "$OUT" '^later result: nil, not started: the queue was stopped$' \
  "stop: the handle of the delayed item returns nil, 'not started: ...'"
expect_no_match "$OUT" '^later started$' "stop: the delayed item never started"
expect_match "$OUT" '^after run_queue interrupted=true processed=1 failed=0 retried=[1-4] not_started=2$' \
  "stop: run_queue returned: interrupted, the Root processed, 2 not started, nothing failed"
expect_match "$ERR" "$SUMMARY_RE" "stop: the summary line is printed"
expect_match "$ERR" '^aqueue: 1 processed, 0 failed, [1-4] retried, 2 not started in [0-9.]+ s \([0-9]+ items/s\), interrupted$' \
  "stop: the summary line says not started and interrupted"
expect_no_match "$ERR" 'Flaky:process failed( \(after [0-9]+ attempts\))?:' \
  "stop: the item dropped in its backoff is not reported as a final failure"
expect_no_match "$ERR" 'ERROR: (Address|Leak)Sanitizer|runtime error:|internal error' \
  "stop: no sanitizer report or internal error"
echo "  (stop: exit ${stop_ms} ms after the SIGINT)"

# ======================= the tty panel on a retry =======================
D="$TMP/tty"
mkdir "$D"
tmux_run tty 120 30 -- "$R" panel "$D"
tmux_wait_file "$D/second" "$START_WAIT" "tty: RetryPanel's second attempt runs (second)"
tmux_wait_screen_re '^  [0-9] .+ RetryPanel \(attempt 2/3\)  second try +[0-9.:s]+$' "$QUICK" \
  "tty: the worker row shows 'RetryPanel (attempt 2/3)' and the set_desc text"
s_match '^ Queue +queued +running +retrying +done +failed +max queued$' "tty: the Queue header has a retrying column"
s_match '^   Backoff +1 +0 +1 +0 +0 +1$' "tty: Backoff, waiting out its backoff: 1 queued, 0 running, 1 retrying"
s_match '^   RetryPanel +0 +1 +0 +0 +0 +1$' "tty: RetryPanel, on its retry: 1 running, 0 retrying"
s_match '^ Overall .*failed 0  retried 2$' "tty: Overall: failed 0, retried 2"
s_match '^ Last error  RetryPanel:process failed \(attempt 1 of 3\), retrying in [0-9.]+ s: first attempt broke$' \
  "tty: the ' Last error ' line shows the last failed attempt"
s_above '^ Overall ' '^ Last error ' "tty: the Last error line is below the Overall line"
s_no_match 'Backoff \(attempt' "tty: no worker row for the item in backoff"
touch "$D/release"
tmux_wait_screen_re '^   RetryPanel +0 +0 +0 +1 +0 +1$' "$QUICK" "tty: RetryPanel done after its retry"
tmux_running || tfail "tty: the run ended although Backoff still waits to be retried"
pass "tty: still running while Backoff waits out its backoff"
tmux_keys C-c
tmux_wait_exit "$QUICK" "tty: Ctrl-C ends the backoff wait at once"
tmux_expect_rc 130 "tty: interrupted"
s_match '^aqueue: 1 processed, 0 failed, 2 retried, 1 not started in [0-9.]+ s \([0-9]+ items/s\), interrupted$' \
  "tty: the summary: 1 processed, 2 retried, 1 not started, interrupted"
s_match '^after run_queue interrupted=true processed=1 failed=0 retried=2 not_started=1$' \
  "tty: run_queue returned: interrupted, 1 not started"
tmux_kill_run

# ======================= json progress on a retry =======================
mkdir "$TMP/json"
start_bg json "$AQUEUE_RUN" --progress json "$R" panel "$TMP/json"
wait_for_text "$TMP/json.err" '"attempt":2' "$START_WAIT" "json: a progress line while the retried attempt runs"
touch "$TMP/json/release"
wait_for_text "$TMP/json.out" "retry panel done" "$QUICK" "json: RetryPanel finished"
kill -INT "$BG_PID"
wait_bg "$QUICK" "json: the SIGINT ends the run at once"
expect_rc 130 "json: interrupted"
result="$("$PY" - "$TMP/json.err" <<'PY'
import json, sys
objs = []
for line in open(sys.argv[1], encoding="utf-8"):
    if line.startswith("{"):
        objs.append(json.loads(line))
def fail(msg):
    print("FAIL " + msg)
    sys.exit(0)
progress = [o for o in objs if o["type"] == "progress"]
rows = [(o, r) for o in progress for r in o["workers"]["rows"] if r["class"] == "RetryPanel" and r["attempt"] == 2]
if not rows:
    fail("no progress line with a RetryPanel worker row with attempt 2: %r" % [o["workers"] for o in progress])
o, r = rows[0]
if r["desc"] != "second try" or r["hook"] is not False:
    fail("the row: %r" % r)
if any(r2["attempt"] != 1 for o2 in progress for r2 in o2["workers"]["rows"] if r2["class"] == "Backoff"):
    fail("a Backoff row shows a retry: %r" % [o2["workers"] for o2 in progress])
b, p = o["classes"].get("Backoff"), o["classes"].get("RetryPanel")
if not b or (b["queued"], b["running"], b["retrying"], b["retried"]) != (1, 0, 1, 1):
    fail("classes.Backoff while RetryPanel's retry runs: %r" % b)
if not p or (p["running"], p["retrying"], p["retried"]) != (1, 0, 1):
    fail("classes.RetryPanel while its retry runs: %r" % p)
if o["retried"] != 2:
    fail("retried while RetryPanel's retry runs: %r" % o["retried"])
summary = [o for o in objs if o["type"] == "summary"]
if len(summary) != 1:
    fail("expected one summary line, got %d" % len(summary))
s = summary[0]
if (s["processed"], s["failed"], s["retried"], s["not_started"], s["why"]) != (1, 0, 2, 1, "interrupted"):
    fail("the summary: %r" % s)
print("PASS")
PY
)"
[ "$result" = "PASS" ] || fail "json: $result"
pass "json: a worker row with \"attempt\": 2, the classes' retrying/retried figures, and the summary"
expect_match "$OUT" '^after run_queue interrupted=true processed=1 failed=0 retried=2 not_started=1$' \
  "json: run_queue returned: interrupted, 1 not started"
expect_no_match "$ERR" 'ERROR: (Address|Leak)Sanitizer|runtime error:|internal error' \
  "json: no sanitizer report or internal error"

finish
