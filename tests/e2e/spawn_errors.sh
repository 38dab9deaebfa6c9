# End-to-end: an error in a task started with aqueue.spawn (README, "Errors").
# Nobody waiting on it when it fails: it is printed with its traceback, the
# script goes on, and aqueue-run exits with status 1 (a later :result() still
# gets it). A :result() already waiting: it gets `nil, message`, nothing is
# printed, the exit status is 0.
# Fixture: spawn_errors.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

S="$FIX/spawn_errors.lua"
REPORT='^aqueue: error in a spawned task: spawned boom$'

run "$AQUEUE_RUN" "$S" unawaited
expect_rc 1 "an error nobody waits for"
expect_match "$ERR" "$REPORT" "it is printed"
expect_contains "$ERR" "stack traceback:" "with its traceback"
expect_contains "$OUT" "the script went on to its end" "the script goes on"

run "$AQUEUE_RUN" "$S" late
expect_rc 1 "an error that :result() asks for only afterwards"
expect_match "$ERR" "$REPORT" "it is printed when it happens"
expect_contains "$OUT" "result:	nil	spawned boom" "the later :result() still returns nil, message"

run "$AQUEUE_RUN" "$S" in_item
expect_rc 1 "an error in a task an item spawned"
expect_match "$ERR" "$REPORT" "it is printed"
expect_contains "$OUT" "processed=1 failed=0" "it is not the item's failure"

run "$AQUEUE_RUN" "$S" awaited
expect_rc 0 "an error a :result() waits for"
expect_contains "$OUT" "result:	nil	spawned boom" ":result() returns nil, message"
expect_not_contains "$ERR" "error in a spawned task" "nothing is printed"

finish
