# End-to-end: one run shared by two aqueue-run processes through Redis
# (--redis, SPEC section 10), on a private redis-server of this test.
#   share:    a tree with hooks, key() duplicates and a retry, run by two
#             processes (the second joins the run the first created): every
#             item processed once, every hook once, a duplicate never, both
#             processes worked, the run's counters agree; --status says so;
#   rerun:    a finished run gives a new process nothing to do;
#   fresh:    --fresh drops the run and starts it anew;
#   refusals: unreachable server, wrong password, a run key holding foreign
#             data, a script with other item classes: one clear line, exit 2.
#   display:  --progress json shows the whole run's figures (all processes);
#   many:     a parent with 3000 children (more than one script call holds);
#   retry failed: --retry-failed (alone, then with the script) runs the
#             failed items again, and only them;
#   max items: two processes with --max-items 50 start 50 items in all, then
#             both stop; the queue is kept and a later process finishes it.
# Fixtures: redis_tree.lua, redis_max_items.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/redis.sh
source "$(dirname "$0")/lib/redis.sh"

T="$FIX/redis_tree.lua"

# A private redis-server (appendonly, appendfsync always) on a free port,
# with a password, stopped by its PID when the test ends.
redis_start --password secret
URL="$REDIS_URL"
PORT="$REDIS_PORT"

# ================================= share =================================
LOG="$TMP/share.log"
start_bg a "$AQUEUE_RUN" --progress none --redis "$URL" --run share "$T" "$LOG" A
wait_for_text "$LOG" "A root" "$START_WAIT" "share: the first process creates the run"
start_bg b "$AQUEUE_RUN" --progress none --redis "$URL" --run share "$T" "$LOG" B
use_bg a
wait_bg "$RUN_TIMEOUT" "share: the first process ends"
expect_eq "$(cat "$TMP/a.err" | grep -c 'aqueue-run:')" 0 "share: no refusal (A)"
use_bg b
wait_bg "$RUN_TIMEOUT" "share: the second process ends"
L="$(cat "$LOG")"
# 6 Mids x 40 leaf names, each key named twice: 120 leaves
expect_eq "$(count_lines "$L" ' leaf ')" 120 "share: 120 distinct leaves processed"
expect_eq "$(printf '%s\n' "$L" | grep ' leaf ' | sed 's/^. //' | sort -u | wc -l)" 120 "share: no leaf twice"
expect_eq "$(count_lines "$L" '^. mid ')" 6 "share: every Mid processed once"
expect_eq "$(count_lines "$L" '^. root$')" 1 "share: the root once"
expect_eq "$(printf '%s\n' "$L" | grep ' hook mid ' | sed 's/^. //' | sort -u | wc -l)" 6 "share: each Mid's hook ran"
expect_eq "$(count_lines "$L" ' hook mid ')" 6 "share: ... once"
expect_eq "$(count_lines "$L" ' hook root$')" 1 "share: the root's hook once"
expect_eq "$(printf '%s\n' "$L" | tail -1 | sed 's/^. //')" "hook root" "share: the root's hook last"
expect_eq "$(count_lines "$L" ' flaky ')" 2 "share: the flaky item ran twice (a retry)"
expect_match "$(count_lines "$L" '^A leaf ')" '^[1-9][0-9]*$' "share: the first process processed leaves"
expect_match "$(count_lines "$L" '^B leaf ')" '^[1-9][0-9]*$' "share: the second process processed leaves"
A_OUT="$(cat "$TMP/a.out")"
B_OUT="$(cat "$TMP/b.out")"
# 1 root + 6 mids + 120 leaves + 1 flaky = 128 items done in the whole run
expect_contains "$A_OUT" "run_done=128 run_failed=0 run_pending=0" "share: A reports the run's counters"
expect_contains "$B_OUT" "run_done=128 run_failed=0 run_pending=0" "share: B reports the same"
A_N="$(printf '%s\n' "$A_OUT" | sed -n 's/^processed=\([0-9]*\) .*/\1/p')"
B_N="$(printf '%s\n' "$B_OUT" | sed -n 's/^processed=\([0-9]*\) .*/\1/p')"
expect_eq "$((A_N + B_N))" 128 "share: the processes' own counts add up to the run's"

run "$AQUEUE_RUN" --progress none --redis "$URL" --run share --status
expect_rc 0 "status: exit 0"
expect_contains "$OUT" "complete: 0 queued, 0 delayed, 0 running, 128 done, 0 failed" "status: the run's counts"
expect_match "$OUT" '^  Leaf +0 +0 +120 +0$' "status: the counts of a class"

# ================================= rerun =================================
run "$AQUEUE_RUN" --progress none --redis "$URL" --run share "$T" "$TMP/rerun.log" C
expect_rc 0 "rerun: exit 0"
expect_contains "$OUT" "processed=0 failed=0 retried=0 run_done=128" "rerun: a finished run has nothing to do"

# ================================= fresh =================================
run env "${FAST_DISPLAY[@]}" "$AQUEUE_RUN" --progress json --redis "$URL" --run share --fresh "$T" "$TMP/fresh.log" D
expect_rc 0 "fresh: exit 0"
expect_contains "$OUT" "processed=128 failed=0 retried=1 run_done=128" "fresh: the run starts anew"
# --progress json: each line has the whole run's figures, read from the store
expect_match "$ERR" '"type":"summary".*"run":\{"processes":1,"queued":[0-9]+,"running":[0-9]+,"done":[0-9]+,"failed":0,"rate":[0-9.]+\}' \
  "display: the JSON summary has the whole run's figures"

# ================= many children: more than one script call holds =================
run "$AQUEUE_RUN" --progress none --redis "$URL" --run many -e 'local aqueue = require("aqueue")
local Leaf = aqueue.Item:extend("Leaf")
function Leaf:process() end
local Root = aqueue.Item:extend("Root")
local hooks = 0
function Root:process(enqueue) for i = 1, 3000 do enqueue(Leaf{ i = i }) end end
function Root:after_children_processed() hooks = hooks + 1 end
local s = aqueue.run_queue{ initial_items = { Root{} }, num_workers = 50 }
print(("processed=%d hooks=%d run_done=%d"):format(s.processed, hooks, s.counters.done))'
expect_rc 0 "many children: exit 0"
expect_contains "$OUT" "processed=3001 hooks=1 run_done=3001" "many children: all processed, the hook once"

# ================================ retry failed ================================
RETRY_SCRIPT='local aqueue = require("aqueue")
local Job = aqueue.Item:extend("Job")
function Job:process()
  if self.n % 2 == 0 and not io.open(arg[1]) then error("not yet") end
  print("ran " .. self.n)
end
local items = {}
for n = 1, 4 do items[n] = Job{ n = n } end
local s = aqueue.run_queue{ initial_items = items, order = "fifo", num_workers = 1 }
print(("processed=%d failed=%d run_done=%d run_failed=%d"):format(s.processed, s.failed, s.counters.done,
  s.counters.failed))'
run "$AQUEUE_RUN" --progress none --redis "$URL" --run retry -e "$RETRY_SCRIPT" "$TMP/fixed"
expect_rc 1 "retry failed: the first run has failures"
expect_contains "$OUT" "processed=2 failed=2 run_done=2 run_failed=2" "retry failed: 2 of 4 failed"
touch "$TMP/fixed"
run "$AQUEUE_RUN" --progress none --redis "$URL" --run retry --retry-failed
expect_rc 0 "retry failed: alone, exit 0"
expect_contains "$ERR" "2 failed items of run retry put back" "retry failed: says how many"
run "$AQUEUE_RUN" --progress none --redis "$URL" --run retry -e "$RETRY_SCRIPT" "$TMP/fixed"
expect_rc 0 "retry failed: the next run succeeds"
expect_eq "$(grep '^ran' <<<"$OUT" | tr '\n' ' ')" "ran 2 ran 4 " "retry failed: only the failed items ran again"
expect_contains "$OUT" "processed=2 failed=0 run_done=4 run_failed=0" "retry failed: the run's counters"
run "$AQUEUE_RUN" --progress none --redis "$URL" --run retry --retry-failed -e "$RETRY_SCRIPT" "$TMP/fixed"
expect_rc 0 "retry failed: with the script, nothing failed"
expect_contains "$ERR" "0 failed items of run retry put back" "retry failed: with the script, says so"
expect_contains "$OUT" "processed=0 failed=0 run_done=4" "retry failed: nothing to run"

# ============================ max items (whole run) ============================
M="$FIX/redis_max_items.lua"
LOG="$TMP/max.log"
start_bg ma "$AQUEUE_RUN" --progress none --max-items 50 --redis "$URL" --run max "$M" "$LOG" A
wait_for_text "$LOG" "A leaf" "$START_WAIT" "max items: the first process runs leaves"
start_bg mb "$AQUEUE_RUN" --progress none --max-items 50 --redis "$URL" --run max "$M" "$LOG" B
use_bg ma
wait_bg "$RUN_TIMEOUT" "max items: the first process ends"
use_bg mb
wait_bg "$RUN_TIMEOUT" "max items: the second process ends"
L="$(cat "$LOG")"
expect_eq "$(printf '%s\n' "$L" | wc -l)" 50 "max items: 50 process() calls in the whole run"
expect_match "$(count_lines "$L" '^B ')" '^[1-9][0-9]*$' "max items: the second process ran some of them"
expect_contains "$(cat "$TMP/ma.out")" "stopped=max_items" "max items: the first process stopped on it"
expect_contains "$(cat "$TMP/mb.out")" "stopped=max_items" "max items: the second one too"
run "$AQUEUE_RUN" --progress none --redis "$URL" --run max --status
expect_contains "$OUT" "251 queued, 0 delayed, 0 running, 50 done" "max items: the rest is kept"
run "$AQUEUE_RUN" --progress none -w 100 --redis "$URL" --run max "$M" "$LOG" C
expect_rc 0 "max items: a later process exits 0"
expect_contains "$OUT" "processed=251 stopped=nil run_done=301" "max items: it finishes the run"

# ================================ refusals ================================
run "$AQUEUE_RUN" --progress none --redis "redis://127.0.0.1:1" --run share "$T" "$TMP/x.log" X
expect_rc 2 "unreachable: exit 2"
expect_contains "$ERR" "aqueue-run: ECONNREFUSED: cannot connect to redis://127.0.0.1:1/0" "unreachable: says so"

run "$AQUEUE_RUN" --progress none --redis "redis://:wrong@127.0.0.1:$PORT" --run share "$T" "$TMP/x.log" X
expect_rc 2 "wrong password: exit 2"
expect_contains "$ERR" "aqueue-run: EAUTH: authentication failed" "wrong password: says so"
expect_not_contains "$ERR" "wrong" "wrong password: the password is not printed"

rcli SET "aq:{foreign}:meta" "not ours" >/dev/null
run "$AQUEUE_RUN" --progress none --redis "$URL" --run foreign "$T" "$TMP/x.log" X
expect_rc 2 "foreign data: exit 2"
expect_contains "$ERR" "EAQRUN: run foreign: key aq:{foreign}:meta holds a string" "foreign data: names the key"
expect_eq "$(rcli GET "aq:{foreign}:meta")" "not ours" "foreign data: left as it was"

run "$AQUEUE_RUN" --progress none --redis "$URL" --run share -e 'local aqueue = require("aqueue")
local Other = aqueue.Item:extend("Other")
function Other:process() end
aqueue.run_queue{ initial_items = { Other{} }, progress = "none" }'
expect_rc 2 "other classes: exit 2"
expect_contains "$ERR" "the run's item classes are Flaky, Leaf, Mid, Root; this script's are Other" \
  "other classes: names both sets"
expect_not_contains "$ERR" "stack traceback" "refusals: one line, no traceback"

run "$AQUEUE_RUN" --progress none --redis "$URL" --run none --status
expect_rc 2 "status of no run: exit 2"
expect_contains "$ERR" "run none: no such run" "status of no run: says so"

finish
