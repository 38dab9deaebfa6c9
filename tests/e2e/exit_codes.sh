# End-to-end: exit statuses — 0 success, 1 the script raised or items failed,
# 2 bad usage, and os.exit from the main chunk, items, hooks and spawned tasks.
# (130 and 143 are tested in signals.sh.)
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

run "$AQUEUE_RUN" "$FIX/empty.lua"
expect_rc 0 "a script that does nothing"
run "$AQUEUE_RUN" "$FIX/failing_items.lua" ok
expect_rc 0 "a queue whose items all succeed"
run "$AQUEUE_RUN" "$FIX/failing_items.lua" process
expect_rc 1 "a queue with a failed item"
run "$AQUEUE_RUN" "$FIX/runtime_error.lua"
expect_rc 1 "a script that raises"
run "$AQUEUE_RUN" --no-such-option "$FIX/empty.lua"
expect_rc 2 "bad usage"
run "$AQUEUE_RUN" "$TMP/missing.lua"
expect_rc 2 "a missing script"

# os.exit(value): the status, stdout flushed first, nothing after it runs.
S="$FIX/exit.lua"
exit_case() { # where, value, wanted status
  local where="$1" value="$2" want="$3"
  run "$AQUEUE_RUN" "$S" "$where" "$value"
  expect_rc "$want" "os.exit($value) $where"
  expect_eq "$OUT" "before exit" "os.exit($value) $where: what was printed before it is flushed, nothing after"
  expect_no_match "$ERR" 'ERROR: (Address|Leak)Sanitizer|runtime error:|stack traceback|internal error' \
    "os.exit($value) $where: a clean exit (no error, traceback or sanitizer report)"
}
exit_case main 0 0
exit_case main 3 3
exit_case main 42 42
exit_case main 255 255
exit_case main true 0
exit_case main false 1
exit_case main none 0
exit_case after_sleep 42 42
exit_case after_sleep false 1
exit_case in_spawn 5 5
exit_case in_item 7 7
exit_case in_item 0 0
exit_case in_hook 9 9
# (An exit inside an item does not wait for the other running items: they
# sleep 2 s, then print "NOT REACHED: a sleeper finished", which the "nothing
# after" check of in_item above would have seen. An order, not a time bound.)

finish
