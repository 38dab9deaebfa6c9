# End-to-end: items that wait for a time (a delay, a key's rate) and a
# pending max_time never keep the process alive once it is told to stop:
# SIGTERM and a second SIGINT end it at once, and the first SIGINT drops the
# waiting items at once instead of waiting for their timers.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

F="$FIX/waiting_timers.lua"

start_bg term "$AQUEUE_RUN" --progress plain "$F"
wait_for_text "$TMP/term.out" READY "$START_WAIT" "term: the sleeper runs (READY)"
kill -TERM "$BG_PID"
wait_bg "$QUICK" "term: SIGTERM ends the process although items wait for timers"
expect_rc 143 "term: terminated"
expect_match "$ERR" '^aqueue: .*, terminated$' "term: the summary says terminated"

start_bg twice "$AQUEUE_RUN" --progress plain "$F"
wait_for_text "$TMP/twice.out" READY "$START_WAIT" "twice: the sleeper runs (READY)"
kill -INT "$BG_PID"
wait_for_text "$TMP/twice.err" "interrupted: letting running items finish" "$QUICK" "twice: the first SIGINT is heard"
kill -INT "$BG_PID"
wait_bg "$QUICK" "twice: the second SIGINT ends the process at once"
expect_rc 130 "twice: interrupted"
expect_no_match "$OUT" '^later ran$' "twice: the delayed item never ran"

finish
