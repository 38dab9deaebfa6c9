# End-to-end: a process that enqueues children in a loop without end can be
# stopped with Ctrl-C: enqueue gives the loop a turn every few thousand calls,
# so the SIGINT is handled during the loop and the next enqueue says
# "stopped". (Without the turns the signal is only seen after the loop gave
# up at its limit, which the fixture says.)
# Fixture: enqueue_forever.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

start_bg forever "$AQUEUE_RUN" "$FIX/enqueue_forever.lua"
wait_for_text "$TMP/forever.out" READY "$START_WAIT" "the producer is enqueueing (READY)"
kill -INT "$BG_PID"
wait_bg 60 "the run ends after the Ctrl-C"
expect_rc 130 "interrupted"
expect_match "$OUT" '^enqueue said stopped after over 20000 children$' \
  "the producer's enqueue returned nil, \"stopped\" after the Ctrl-C"
expect_no_match "$OUT" 'not seen' "the Ctrl-C was seen during the enqueue loop"
expect_match "$OUT" '^after run_queue interrupted=true$' "run_queue returned an interrupted summary"
expect_no_match "$ERR" 'ERROR: (Address|Leak)Sanitizer|runtime error:|internal error|stack traceback' \
  "no error, traceback or sanitizer report"
finish
