# End-to-end: a task waiting on something that can never happen is reported,
# and aqueue-run exits (status 1) instead of hanging.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

for mode in item spawn; do
  RUN_TIMEOUT=10 run "$AQUEUE_RUN" "$FIX/stuck.lua" "$mode"
  expect_rc 1 "$mode waiting on itself"
  expect_match "$OUT" '^waiting on my own (handle|task)$' "$mode: the waiting task started"
  expect_not_contains "$OUT" "NOT REACHED" "$mode: nothing went on after the impossible wait"
  expect_match "$ERR" '[Ww]ait' "$mode: stderr reports the task(s) still waiting"
  expect_no_match "$ERR" 'ERROR: (Address|Leak)Sanitizer|runtime error:|internal error' \
    "$mode: a clean exit (no sanitizer report or internal error)"
done

finish
