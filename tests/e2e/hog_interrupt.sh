# End-to-end: Lua code that never yields can still be stopped. An interpreted
# loop is stopped by the watchdog's hook: SIGTERM and a second Ctrl-C end the
# run the usual way (summary, status 143 / 130), the first Ctrl-C is heard at
# once; an item's `timeout` fails the attempt and the queue goes on. A loop the
# JIT compiled runs no hook: a timed-out attempt fails when it returns, and
# after SIGTERM or a second Ctrl-C the watchdog gives the terminal back (cursor
# shown) and exits with the signal's status within about a second. The panel
# warns, naming the item, when one has held the loop for a second.
# The runs "beside", "timeout" and "term jit" keep the real second; "alone"
# and the two Ctrl-C runs only need the warning and the last resort to
# happen or not, and get them after 0.3 s (FAST_WATCHDOG).
# Fixture: hog.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/tmux.sh
source "$(dirname "$0")/lib/tmux.sh"

H="$FIX/hog.lua"
SAN_RE='ERROR: [A-Za-z]+Sanitizer|runtime error:|internal error'
LAST_RESORT='did not stop within a second'

# wait_for_file FILE SECONDS DESCRIPTION: waits until the background run makes FILE.
wait_for_file() {
  local deadline=$((SECONDS + $2))
  while [ ! -e "$1" ]; do
    kill -0 "$BG_PID" 2>/dev/null || { wait "$BG_PID"; RC=$?; bg_output; fail "$3: the run ended first"; }
    [ "$SECONDS" -ge "$deadline" ] && { bg_output; fail "$3: $(basename "$1") did not appear within $2 s"; }
    nap 0.02
  done
  pass "$3"
}

# The three runs below spin for a set wall time (0.6 s, 1.3 s, 0.5 + 1.5 s): they
# run side by side, and each is checked once it ended.
mkdir "$TMP/p" "$TMP/t"
start_bg alone env "${FAST_WATCHDOG[@]}" "$AQUEUE_RUN" "$H" "$TMP/p" alone 0.6 # (warned after 0.3 s if at all)
ALONE_PID="$BG_PID"
start_bg beside "$AQUEUE_RUN" "$H" "$TMP/p" beside
BESIDE_PID="$BG_PID"
start_bg timeout "$AQUEUE_RUN" "$H" "$TMP/t" timeout
TIMEOUT_PID="$BG_PID"

# --- the warning is for code that holds others up ---
BG_NAME=alone BG_PID="$ALONE_PID"
wait_bg "$RUN_TIMEOUT" "alone: the run ends"
expect_rc 0 "alone: the main chunk computes 0.6 s (twice the warning's time) with no other task"
expect_no_match "$ERR" 'without yielding' "alone: no warning when nothing else waits"
BG_NAME=beside BG_PID="$BESIDE_PID"
wait_bg "$RUN_TIMEOUT" "beside: the run ends"
expect_rc 0 "beside: the main chunk computes 1.3 s while a spawned task sleeps"
expect_match "$ERR" '^aqueue: the main chunk has run [0-9]+\.[0-9] s without yielding' \
  "beside: the warning names the main chunk, which holds the sleeping task up"

# --- an item's timeout interrupts its spinning process ---
BG_NAME=timeout BG_PID="$TIMEOUT_PID"
wait_bg "$RUN_TIMEOUT" "timeout: the run ends"
expect_rc 1 "timeout: items failed"
expect_match "$OUT" '^after run_queue processed=2 failed=2$' "timeout: both spinning attempts failed, both Quick items were processed"
expect_eq "$(count_lines "$ERR" '^aqueue: Slow:process failed: Slow{how="[a-z]*"}: timed out after 0\.5 s$')" 2 \
  "timeout: each Slow attempt failed with the timeout error"
expect_no_match "$OUT" '^returned forever$' "timeout: the endless spin was interrupted"
expect_match "$OUT" '^quick 1$' "timeout: the queue went on after the first spin (quick 1)"
expect_match "$OUT" '^quick 2$' "timeout: the queue went on (quick 2)"
expect_match "$ERR" '^aqueue: Slow: compiled \(worker 1\) has run [0-9]+\.[0-9] s without yielding' \
  "timeout: the 1.5 s compiled spin is warned about, naming the item"
expect_no_match "$ERR" '^aqueue: Slow: forever .*without yielding' "timeout: no warning for the spin its timeout cut at 0.5 s"
expect_no_match "$ERR" "$SAN_RE" "timeout: no internal error or sanitizer report"

# --- SIGTERM on an interpreted spin: the usual stop ---
mkdir "$TMP/ti"
start_bg term_interp "$AQUEUE_RUN" "$H" "$TMP/ti" interp
wait_for_file "$TMP/ti/spinning" "$START_WAIT" "term interp: the item spins"
nap 0.2
kill -TERM "$BG_PID"
wait_bg "$QUICK" "term interp: SIGTERM ends the run"
expect_rc 143 "term interp: terminated"
expect_match "$ERR" "$SUMMARY_RE" "term interp: the summary is printed"
expect_match "$ERR" ', terminated$' "term interp: the summary says terminated"
expect_not_contains "$ERR" "$LAST_RESORT" "term interp: the hook stopped the loop (not the last resort)"
expect_no_match "$ERR" "$SAN_RE" "term interp: no internal error or sanitizer report"

# --- SIGTERM on a compiled spin, in a terminal: the last resort ---
mkdir "$TMP/tj"
tmux_run term_jit 100 24 -- "$H" "$TMP/tj" jit
tmux_wait_screen_re '^ Workers  2/2 busy$' "$START_WAIT" "term jit: the panel shows both workers"
tmux_wait_file "$TMP/tj/spinning" "$START_WAIT" "term jit: the item spins"
tmux_expect_cursor 0 "term jit: the cursor is hidden under the panel"
nap 0.2
kill -TERM "$(tmux_pid)"
tmux_wait_exit "$QUICK" "term jit: SIGTERM ends the run"
tmux_expect_rc 143 "term jit: terminated"
tmux_expect_cursor 1 "term jit: the cursor is visible again"
s_contains "$LAST_RESORT" "term jit: the watchdog says why it ended the process"
tmux_kill_run

# --- Ctrl-C on an interpreted spin, in a terminal: the warning, then the usual stops ---
mkdir "$TMP/ci"
tmux_run ctrlc_interp 130 24 "${FAST_WATCHDOG[@]}" -- "$H" "$TMP/ci" interp
tmux_wait_file "$TMP/ci/spinning" "$START_WAIT" "ctrl-c interp: the item spins"
tmux_wait_screen_re '^aqueue: Hog: spinning interp \(worker 1\) has run [0-9]+\.[0-9] s without yielding' "$QUICK" \
  "ctrl-c interp: the warning names the item and its worker"
tmux_keys C-c
tmux_wait_screen "interrupted: letting running items finish" "$QUICK" \
  "ctrl-c interp: the first Ctrl-C is heard while the item spins"
tmux_running || tfail "ctrl-c interp: the run ended at the first Ctrl-C"
pass "ctrl-c interp: still running after the first Ctrl-C (a graceful stop)"
tmux_keys C-c
tmux_wait_exit "$QUICK" "ctrl-c interp: the second Ctrl-C ends the run"
tmux_expect_rc 130 "ctrl-c interp: interrupted"
tmux_expect_cursor 1 "ctrl-c interp: the cursor is visible again"
s_not_contains "$LAST_RESORT" "ctrl-c interp: the hook stopped the loop (not the last resort)"
tmux_kill_run

# --- two Ctrl-C on a compiled spin, in a terminal: the last resort ---
mkdir "$TMP/cj"
tmux_run ctrlc_jit 100 24 "${FAST_WATCHDOG[@]}" -- "$H" "$TMP/cj" jit
tmux_wait_file "$TMP/cj/spinning" "$START_WAIT" "ctrl-c jit: the item spins"
nap 0.2
tmux_keys C-c
nap 0.3
tmux_running || tfail "ctrl-c jit: the run ended at the first Ctrl-C"
pass "ctrl-c jit: the first Ctrl-C alone does not end the process"
tmux_keys C-c
tmux_wait_exit "$QUICK" "ctrl-c jit: the second Ctrl-C ends the run"
tmux_expect_rc 130 "ctrl-c jit: interrupted"
tmux_expect_cursor 1 "ctrl-c jit: the cursor is visible again"
s_contains "$LAST_RESORT" "ctrl-c jit: the watchdog says why it ended the process"
tmux_kill_run

finish
