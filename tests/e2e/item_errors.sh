# End-to-end: errors — in the main chunk (message, traceback naming file:line),
# in an item's process and in an after_children_processed hook (reported, the
# queue goes on, exit 1), and the summary line.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

line_of() { # file, marker comment -> its line number
  grep -n -- "$2" "$1" | head -1 | cut -d: -f1
}

# --- a runtime error in the main chunk ---
S="$FIX/runtime_error.lua"
err_line=$(line_of "$S" "ERROR LINE")
call_line=$(line_of "$S" "CALL LINE")
main_line=$(line_of "$S" "MAIN CALL LINE")
run "$AQUEUE_RUN" "$S"
expect_rc 1 "an error in the main chunk"
expect_eq "$OUT" "before the error" "the main chunk ran up to the error and no further"
expect_eq "$(printf '%s\n' "$ERR" | head -1)" "$S:$err_line: kaboom in inner: 42" \
  "the first line of stderr is 'file:line: message'"
expect_match "$ERR" '^stack traceback:$' "a stack traceback follows"
expect_match "$ERR" "$S:$err_line: in function 'inner'" "the traceback names inner at $S:$err_line"
expect_match "$ERR" "$S:$call_line: in function 'outer'" "the traceback names outer at $S:$call_line"
expect_match "$ERR" "$S:$main_line: in main chunk" "the traceback names the main chunk at $S:$main_line"
expect_no_match "$ERR" 'internal error|aqueue-run:' "no engine noise around the script's error"

run "$AQUEUE_RUN" "$FIX/error_object.lua" tostring
expect_rc 1 "an error object with __tostring"
expect_eq "$(printf '%s\n' "$ERR" | head -1)" "custom error object says hello" \
  "an error object is shown through its __tostring"
run "$AQUEUE_RUN" "$FIX/error_object.lua" table
expect_rc 1 "an error object that is a plain table"
expect_eq "$(printf '%s\n' "$ERR" | head -1)" '{"code":404}' "a plain table error is shown encoded, not as table: 0x..."
run "$AQUEUE_RUN" "$FIX/error_object.lua" item_table
expect_rc 1 "an item raising a plain table"
expect_match "$ERR" '^aqueue: Raiser:process failed: Raiser\{\}: \{"code":500\}$' "the item's table error is shown encoded"
expect_match "$ERR" '^aqueue: Raiser:after_children_processed failed: Raiser\{\}: custom hook error$' \
  "the hook's error object is shown through its __tostring"
expect_match "$ERR" '^  failed: Raiser:process: \{"code":500\}$' "the summary lists it encoded"
expect_match "$ERR" '^aqueue: error in a spawned task: \{"code":7\}$' "a spawned task's table error is shown encoded"
expect_no_match "$ERR" 'table: 0x' "no table address anywhere"
run "$AQUEUE_RUN" "$FIX/error_object.lua" nil
expect_rc 1 "error() with no value"
[ -n "$ERR" ] || fail "error() with no value: expected a message on stderr"
pass "error() with no value: something is reported on stderr"

# --- a failing item: reported, the queue goes on, exit 1 ---
S="$FIX/failing_items.lua"
job_line=$(line_of "$S" "JOB ERROR LINE")
run "$AQUEUE_RUN" "$S" process
expect_rc 1 "a failed item"
expect_match "$ERR" "^aqueue: Job:process failed: Job\\{n=3\\}: $S:$job_line: job 3 is bad$" \
  "the failure is reported as 'aqueue: Job:process failed: <the item>: file:line: message'"
expect_match "$ERR" '^stack traceback:$' "the failure comes with a traceback"
expect_match "$ERR" "$S:$job_line: in function" "the traceback names the line that raised"
expect_eq "$(count_lines "$ERR" ':process failed: ')" 1 "exactly one failure is reported"
expect_match "$ERR" "^  failed: Job:process: $S:$job_line: job 3 is bad\$" "the final summary lists the failure"
for n in 1 2 4 5; do
  expect_match "$OUT" "^job done $n\$" "the queue went on: job $n done"
done
expect_no_match "$OUT" '^job done 3$' "job 3 did not complete"
expect_match "$OUT" '^grandchild done$' "the child enqueued by the failed item before it raised still ran"
expect_match "$OUT" '^parent hook ran$' "the parent's after_children_processed ran despite the failed child"
expect_eq "$(value_of "$OUT" processed)" 6 "summary.processed is 6 (Parent, jobs 1 2 4 5, Grandchild)"
expect_eq "$(value_of "$OUT" failed)" 1 "summary.failed is 1"
expect_match "$OUT" '^after run_queue$' "run_queue returned and the script went on"
expect_match "$ERR" "$SUMMARY_RE" "stderr has the summary line"
expect_match "$ERR" '^aqueue: 6 processed, 1 failed, 0 retried in [0-9.]+ s \([0-9]+ items/s\)$' \
  "the summary line says '6 processed, 1 failed'"

# --- a failing after_children_processed hook ---
hook_line=$(line_of "$S" "HOOK ERROR LINE")
run "$AQUEUE_RUN" "$S" hook
expect_rc 1 "a failed after_children_processed hook"
expect_match "$ERR" "^aqueue: Parent:after_children_processed failed: Parent\\{\\}: $S:$hook_line: the parent hook broke$" \
  "the hook failure is reported with class, phase, the item, file:line and message"
for n in 1 2 3 4 5; do
  expect_match "$OUT" "^job done $n\$" "hook failure: job $n done"
done
expect_match "$OUT" '^after run_queue$' "hook failure: run_queue returned and the script went on"
# the parent's process succeeded: it stays processed; the hook is counted on its own
expect_eq "$(value_of "$OUT" processed)" 6 "hook failure: summary.processed is 6 (the parent too)"
expect_eq "$(value_of "$OUT" failed)" 0 "hook failure: summary.failed is 0 (no process failed)"
expect_eq "$(value_of "$OUT" hooks_failed)" 1 "hook failure: summary.hooks_failed is 1"
expect_match "$ERR" '^aqueue: 6 processed, 0 failed, 0 retried, 1 hook failed in [0-9.]+ s \([0-9]+ items/s\)$' \
  "hook failure: the summary line says '6 processed, 0 failed, 0 retried, 1 hook failed'"
run "$AQUEUE_RUN" --progress json "$S" hook
expect_rc 1 "a failed hook, --progress json"
expect_match "$(tail -n 1 <<<"$ERR")" '^\{"type":"summary",.*"processed":6,"failed":0,"hooks_failed":1,' \
  "hook failure: the JSON summary has processed 6, failed 0, hooks_failed 1"
expect_match "$(tail -n 1 <<<"$ERR")" '"Parent":\{[^}]*"failed":0,"hooks_failed":1,' \
  "hook failure: the JSON summary counts the hook on its class"

# --- no failures ---
run "$AQUEUE_RUN" "$S" ok
expect_rc 0 "a queue without failures"
expect_match "$ERR" '^aqueue: 6 processed, 0 failed, 0 retried in [0-9.]+ s \([0-9]+ items/s\)$' \
  "the summary line says '6 processed, 0 failed'"
expect_eq "$(count_lines "$ERR" '.')" 1 "stderr holds only the summary line"

finish
