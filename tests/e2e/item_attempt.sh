# End-to-end: self.attempt inside process survives a resume from the state
# file: an item whose first attempt failed (and was committed) runs as
# attempt 2 after kill -9 and a rerun.
# Fixture: attempt.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

F="$FIX/attempt.lua"
S="$TMP/attempt.state"
LOG="$TMP/attempt.log"
start_bg first "$AQUEUE_RUN" --progress none --state "$S" "$F" first "$LOG"
wait_for_text "$LOG" "attempt 1" "$START_WAIT" "the first attempt ran"
wait_for_text "$TMP/first.err" "retrying in" "$QUICK" "the first attempt failed and a retry is scheduled"
wait_for_text "$LOG" "committed" "$QUICK" "the failed attempt is committed to the state file"
kill -KILL "$BG_PID"
wait "$BG_PID" 2>/dev/null

run "$AQUEUE_RUN" --progress none --state "$S" "$F" again "$LOG"
expect_rc 0 "the resumed run succeeds"
expect_contains "$ERR" "resuming the run in $S: 1 items to run" "it resumes the item"
expect_eq "$(tail -1 "$LOG")" "attempt 2" "the resumed item runs as attempt 2"
finish
