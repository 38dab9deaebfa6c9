# End-to-end: aqueue.diskqueue survives kill -9 at random moments.
# Fixture: diskqueue_kill.lua, 2 producers and 4 consumers on one disk queue
# (maxsize 50) moving the numbers 1..N, logging "put N" once put(N) returned,
# "got N" and "done N" around the work, then task_done(). The test kills it
# with SIGKILL once it opened the queue and wrote 1-STEP more lines to the log
# (a point in its work, not in time: the kill lands in the middle of the work
# on a fast machine and on a loaded one alike), reruns it, and again, KILLS
# times, then lets a run finish; and checks on the log:
#   * every number 1..N was done at least once, and every number logged as
#     put was done (nothing committed is lost);
#   * every log line is whole, and every "done N" follows a "got N";
#   * the redeliveries are bounded: duplicate "done" lines <= (4 + 2) * kills.
#     Why: a number is done twice only when
#       (a) its consumer logged "done N" and was killed before task_done()
#           returned, i.e. before N's removal was committed: N is delivered
#           again. task_done() returns only once the removal is committed,
#           and a consumer logs its next "done" after that, so a kill leaves
#           at most one such number per consumer: 4 per kill;
#       (b) a producer's put(N) was committed but it was killed before it
#           logged "put N": the rerun resumes after its last logged number and
#           puts N again. It logs right after put returns, without yielding
#           in between, so at most one such number per producer: 2 per kill.
#     An item got but not yet logged "done" at a kill is delivered again too,
#     but it is then done once, not twice: it adds nothing.
#   * at least one rerun found items left in the file (the kills hit while
#     the queue was busy), and a run after the end finds the file empty.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

N=3000         # about 3 * N log lines in all
KILLS=15       # kills before the run that may finish, each of an unfinished run
STEP=200       # a run is killed after 1..STEP more log lines (and the lines written
               # while the kill comes): far less than the work in all
CONSUMERS=4
PRODUCERS=2
F="$FIX/diskqueue_kill.lua"
D="$TMP/q"
mkdir "$D"

# LOG_LINES: the lines of the log so far (read by bash itself: the loop
# below looks 200 times a second, and a wc there was a fork each time). The
# log only grows: each look reads only the lines added since the last one,
# from a descriptor kept open (a partial last line is counted when its
# newline comes).
LOG_LINES=0
LOG_FD=""
count_log_lines() {
  local line
  if [ -z "$LOG_FD" ]; then
    [ -r "$D/log" ] || return 0
    exec {LOG_FD}<"$D/log"
  fi
  while IFS= read -r line <&"$LOG_FD"; do LOG_LINES=$((LOG_LINES + 1)); done
  return 0
}

kills=0
runs=0
left_total=0
finished=0
while [ "$finished" -eq 0 ]; do
  runs=$((runs + 1))
  start_bg "run$runs" "$AQUEUE_RUN" "$F" "$D" "$N"
  if [ "$kills" -lt "$KILLS" ]; then
    # once the queue is open and the run has done its share of the work
    # (wait_for_text fails when the run ends first: it was not to finish)
    wait_for_text "$TMP/run$runs.out" "start left=" "$RUN_TIMEOUT" "run $runs opened its queue"
    count_log_lines
    target=$((LOG_LINES + 1 + RANDOM % STEP))
    while count_log_lines && [ "$LOG_LINES" -lt "$target" ]; do
      kill -0 "$BG_PID" 2>/dev/null || { bg_output; fail "run $runs ended before its kill: the work is too short for $KILLS kills"; }
      nap 0.005
    done
    grep -qs FINISHED "$TMP/run$runs.out" && fail "run $runs finished before its kill: the work is too short for $KILLS kills"
    kill -KILL "$BG_PID"
    wait "$BG_PID" 2>/dev/null
    RC=$?
    bg_output
    [ "$RC" -eq 137 ] || fail "run $runs: expected to be killed (status 137), got status $RC"
    kills=$((kills + 1))
  else
    wait_bg "$RUN_TIMEOUT" "run $runs ends by itself"
    expect_rc 0 "run $runs: exit status"
    expect_match "$OUT" '^FINISHED$' "run $runs: every item put was marked done"
    expect_no_match "$ERR" 'ERROR: (Address|Leak)Sanitizer|runtime error:|stack traceback' \
      "run $runs: no error, traceback or sanitizer report"
    finished=1
  fi
  left=$(sed -n 's/^start left=//p' "$TMP/run$runs.out")
  left_total=$((left_total + ${left:-0}))
done
pass "$kills runs killed (SIGKILL) while working, then one finished: $runs runs"
[ "$left_total" -gt 0 ] || fail "no rerun found items left in the queue file: the kills never hit a busy queue"
pass "reruns found items left in the queue file ($left_total in all)"

# --- the log ---
LOG="$D/log"
bad=$(grep -Evc '^(put|got|done) [0-9]+$' "$LOG")
expect_eq "$bad" 0 "every log line is whole"

missing=$(awk -v n="$N" '$1 == "done" { d[$2] = 1 } END { m = 0; for (i = 1; i <= n; i++) if (!(i in d)) m++; print m }' "$LOG")
expect_eq "$missing" 0 "every number 1..$N was done at least once"

lost=$(awk '$1 == "put" { p[$2] = 1 } $1 == "done" { d[$2] = 1 } END { m = 0; for (k in p) if (!(k in d)) m++; print m }' "$LOG")
expect_eq "$lost" 0 "every number logged as put was done"

unexplained=$(awk '$1 == "got" { g[$2]++ } $1 == "done" { if (++d[$2] > g[$2]) bad++ } END { print bad + 0 }' "$LOG")
expect_eq "$unexplained" 0 "every 'done N' follows a 'got N'"

out_of_range=$(awk -v n="$N" '$2 < 1 || $2 > n { bad++ } END { print bad + 0 }' "$LOG")
expect_eq "$out_of_range" 0 "only numbers 1..$N went through the queue"

done_lines=$(grep -c '^done ' "$LOG")
dups=$((done_lines - N))
bound=$(((CONSUMERS + PRODUCERS) * kills))
[ "$dups" -le "$bound" ] || fail "$dups numbers were done more than once: more than (consumers + producers) * kills = $bound"
pass "$dups redelivered numbers, within (consumers + producers) * kills = $bound"

# --- after the end: nothing left, nothing done again ---
run "$AQUEUE_RUN" "$F" "$D" "$N"
expect_rc 0 "a run after the end"
expect_match "$OUT" '^start left=0$' "a run after the end finds the queue file empty"
expect_eq "$(grep -c '^done ' "$LOG")" "$done_lines" "a run after the end does nothing again"

finish
