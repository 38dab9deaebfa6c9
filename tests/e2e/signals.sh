# End-to-end: signals. First SIGINT on a running queue: graceful stop (running
# items finish with their hooks, no new item starts, run_queue returns, the
# script goes on, exit 130). Second SIGINT: running items cancelled at once,
# exit 130. SIGINT with no queue running: exit 130 at once. SIGTERM: 143.
# The fixtures print READY when they are where the signal should hit; running
# items wait for a release file, so they cannot finish before the signal.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

I="$FIX/interrupt.lua"

# --- first SIGINT: graceful stop ---
mkdir "$TMP/g"
start_bg graceful "$AQUEUE_RUN" "$I" "$TMP/g"
wait_for_text "$TMP/graceful.out" READY "$START_WAIT" "graceful: the queue is running (READY)"
kill -INT "$BG_PID"
wait_for_text "$TMP/graceful.err" "interrupted: letting running items finish" "$QUICK" \
  "graceful: the first SIGINT prints 'interrupted: letting running items finish'"
kill -0 "$BG_PID" 2>/dev/null || { wait "$BG_PID"; RC=$?; bg_output; fail "graceful: the process ended at the first SIGINT (status $RC) although items were running"; }
pass "graceful: still running after the first SIGINT (running items may finish)"
touch "$TMP/g/release"
wait_bg "$QUICK" "graceful: the process ends once the running items finish"
expect_rc 130 "graceful: interrupted"
for name in Q P B; do
  expect_match "$OUT" "^finish $name\$" "graceful: running item $name finished"
done
expect_match "$OUT" '^hook Q$' "graceful: Q's hook ran (its subtree had finished)"
expect_match "$OUT" '^hook B$' "graceful: B's hook ran (no children)"
expect_no_match "$OUT" '^hook P$' "graceful: P's hook did not run (its child C never ran)"
expect_no_match "$OUT" '^start (C|D|LATE)$' "graceful: no new item started after the SIGINT"
expect_match "$OUT" '^P child result: nil, .+' "graceful: the handle of the never-started child gives nil, err (does not hang)"
expect_match "$OUT" '^after run_queue interrupted=true processed=4 failed=0 not_started=2$' \
  "graceful: run_queue returned a summary: interrupted, 4 processed, 2 not started"
expect_match "$OUT" '^script continued$' "graceful: the script went on after run_queue"
expect_match "$ERR" "$SUMMARY_RE" "graceful: the summary line is printed"
expect_match "$ERR" '^aqueue: 4 processed, 0 failed, 0 retried, 2 not started in [0-9.]+ s \([0-9]+ items/s\), interrupted$' \
  "graceful: the summary line says 4 processed, 2 not started, interrupted"
expect_no_match "$ERR" 'ERROR: (Address|Leak)Sanitizer|runtime error:|internal error|stack traceback' \
  "graceful: no error, traceback or sanitizer report"

# --- first SIGINT while a parent and its child both run: both hooks run ---
mkdir "$TMP/tree"
start_bg tree "$AQUEUE_RUN" "$FIX/interrupt_tree.lua" "$TMP/tree"
wait_for_text "$TMP/tree.out" READY "$START_WAIT" "tree: parent and child are running (READY)"
kill -INT "$BG_PID"
wait_for_text "$TMP/tree.err" "interrupted: letting running items finish" "$QUICK" "tree: the SIGINT was heard"
touch "$TMP/tree/release"
wait_bg "$QUICK" "tree: the process ends once both items finish"
expect_rc 130 "tree: interrupted"
expect_eq "$(printf '%s\n' "$OUT" | grep -E '^(finish|hook) ' | tr '\n' ' ')" "finish P finish C hook C hook P " \
  "tree: P and C finish, then C's hook, then P's (its subtree completed during the stop)"
expect_match "$OUT" '^after run_queue interrupted=true processed=2$' "tree: run_queue returned: interrupted, 2 processed"

# --- second SIGINT: cancel at once ---
mkdir "$TMP/c"
start_bg twice "$AQUEUE_RUN" "$I" "$TMP/c"
wait_for_text "$TMP/twice.out" READY "$START_WAIT" "twice: the queue is running (READY)"
kill -INT "$BG_PID"
wait_for_text "$TMP/twice.err" "interrupted: letting running items finish" "$QUICK" "twice: the first SIGINT was heard"
kill -INT "$BG_PID"
wait_bg "$QUICK" "twice: the second SIGINT ends the process at once (items never released)"
expect_rc 130 "twice: interrupted"
expect_no_match "$OUT" '^(finish|hook) (Q|P|B)$' "twice: the running items were cancelled (no finish, no hook)"
expect_no_match "$OUT" '^start (C|D|LATE)$' "twice: no new item started"
expect_match "$ERR" '^aqueue: 1 processed, 0 failed, 0 retried, 3 cancelled, 2 not started in [0-9.]+ s \([0-9]+ items/s\), interrupted$' \
  "twice: the summary line says 1 processed, 3 cancelled, 2 not started, interrupted"
expect_no_match "$ERR" 'ERROR: (Address|Leak)Sanitizer|runtime error:|internal error' \
  "twice: no sanitizer report or internal error (cancelled tasks are freed)"

# --- SIGINT / SIGTERM with no queue running ---
for sig in INT TERM; do
  want=130
  [ "$sig" = TERM ] && want=143
  for mode in idle after_run; do
    start_bg "idle_${sig}_$mode" "$AQUEUE_RUN" "$FIX/idle.lua" "$mode"
    wait_for_text "$TMP/idle_${sig}_$mode.out" READY "$START_WAIT" "SIG$sig $mode: the script is sleeping (READY)"
    kill -"$sig" "$BG_PID"
    wait_bg "$QUICK" "SIG$sig $mode: the process ends at once"
    expect_rc "$want" "SIG$sig with no queue running ($mode)"
    expect_not_contains "$OUT" "NOT REACHED" "SIG$sig $mode: the script did not go on"
    expect_no_match "$ERR" 'ERROR: (Address|Leak)Sanitizer|runtime error:|internal error|stack traceback' \
      "SIG$sig $mode: no error, traceback or sanitizer report"
  done
done

# --- output printed before a signal is not lost (stdout fully buffered into a file) ---
for sig in INT TERM; do
  start_bg "buffered_$sig" "$AQUEUE_RUN" "$FIX/idle.lua" buffered
  wait_for_text "$TMP/buffered_$sig.err" READY "$START_WAIT" "SIG$sig buffered: the script is sleeping (READY)"
  kill -"$sig" "$BG_PID"
  wait_bg "$QUICK" "SIG$sig buffered: the process ends at once"
  expect_eq "$OUT" "printed before the signal" "SIG$sig: a line printed (buffered) before the signal reaches stdout"
done

# --- SIGTERM on a running queue ---
mkdir "$TMP/t"
start_bg term "$AQUEUE_RUN" "$I" "$TMP/t"
wait_for_text "$TMP/term.out" READY "$START_WAIT" "SIGTERM: the queue is running (READY)"
kill -TERM "$BG_PID"
wait_bg "$QUICK" "SIGTERM: the process ends at once (items never released)"
expect_rc 143 "SIGTERM on a running queue (128 + 15)"
expect_no_match "$OUT" '^(finish|hook) (Q|P|B)$' "SIGTERM: the running items did not go on"
expect_not_contains "$OUT" "script continued" "SIGTERM: the script did not go on"
expect_no_match "$ERR" 'ERROR: (Address|Leak)Sanitizer|runtime error:|internal error' \
  "SIGTERM: no sanitizer report or internal error"

finish
