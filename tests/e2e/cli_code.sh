# End-to-end: -e CODE runs CODE as the script, and "-" reads the script from
# stdin (SPEC section 3): arguments, `arg`, errors and exit statuses as for a
# script file.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

# run_stdin FILE CMD ARGS... : like run, with stdin from FILE.
run_stdin() {
  local input="$1"
  shift
  LAST_CMD="$(printf '%q ' "$@") < $input"
  timeout -k 5 "$RUN_TIMEOUT" "$@" <"$input" >"$TMP/.out" 2>"$TMP/.err"
  RC=$?
  OUT="$(cat "$TMP/.out")"
  ERR="$(cat "$TMP/.err")"
  if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
    fail "the run did not end within ${RUN_TIMEOUT}s (killed by timeout, status $RC)"
  fi
}

ITEMS='local aqueue = require("aqueue")
local Task = aqueue.Item:extend("Task")
local running, most = 0, 0
function Task:process()
  running = running + 1
  if running > most then most = running end
  aqueue.sleep(0.02)
  running = running - 1
end
local items = {}
for i = 1, tonumber(arg[1]) do items[i] = Task{} end
local s = aqueue.run_queue{ initial_items = items, num_workers = 1 }
print("processed=" .. s.processed)
print("most=" .. most)'

# --- -e CODE ---
run "$AQUEUE_RUN" -e 'print("args=" .. table.concat({ ... }, ","), "n=" .. select("#", ...)); print("arg0=" .. arg[0]); print("arg1=" .. arg[1])' a "b c"
expect_rc 0 "-e with two arguments"
expect_contains "$OUT" "args=a,b c" "-e: the arguments that follow are the script's (...)"
expect_contains "$OUT" "n=2" "-e: two arguments"
expect_eq "$(value_of "$OUT" arg0)" "-e" "-e: arg[0] is -e"
expect_eq "$(value_of "$OUT" arg1)" "a" "-e: arg[1] is the first argument"

run "$AQUEUE_RUN" -e'print("joined=yes")'
expect_rc 0 "-eCODE (joined)"
expect_eq "$(value_of "$OUT" joined)" yes "-eCODE runs CODE"

run "$AQUEUE_RUN" -e 'print("n=" .. select("#", ...))'
expect_rc 0 "-e without arguments"
expect_eq "$(value_of "$OUT" n)" 0 "-e without arguments: none"

run "$AQUEUE_RUN" -w 3 -e "$ITEMS" 6
expect_rc 0 "-w 3 -e: a run_queue script"
expect_eq "$(value_of "$OUT" processed)" 6 "-e: the items ran"
expect_eq "$(value_of "$OUT" most)" 3 "-w 3 before -e wins over the script's num_workers = 1"

run "$AQUEUE_RUN" -e "$ITEMS" -w 2 4
expect_rc 0 "-e CODE then -w 2: options still parsed after -e"
expect_eq "$(value_of "$OUT" most)" 2 "-e CODE -w 2: two workers"

run "$AQUEUE_RUN" -e 'local x = = 1'
expect_rc 1 "-e with a syntax error"
expect_match "$ERR" '^\(command line\):1: ' "-e syntax error: reported as (command line):1: message"
expect_empty "$OUT" "-e syntax error: nothing on stdout"

run "$AQUEUE_RUN" -e 'error("boom")'
expect_rc 1 "-e raising"
expect_contains "$ERR" "(command line):1: boom" "-e raising: the message names (command line):1"

run "$AQUEUE_RUN" -e 'os.exit(7)'
expect_rc 7 "-e 'os.exit(7)'"

run "$AQUEUE_RUN" -e
expect_rc 2 "-e without code"
expect_contains "$ERR" "-e needs the code to run" "-e without code: the message says what is missing"

run "$AQUEUE_RUN" --state "$TMP/s.db" --status -e 'print(1)'
expect_rc 2 "--status with -e"

# --- - : the script from stdin ---
printf '%s\n' 'print("arg0=" .. arg[0]); print("args=" .. table.concat({ ... }, ","))' >"$TMP/args.lua"
run_stdin "$TMP/args.lua" "$AQUEUE_RUN" - x y
expect_rc 0 "- x y"
expect_eq "$(value_of "$OUT" arg0)" "-" "-: arg[0] is -"
expect_eq "$(value_of "$OUT" args)" "x,y" "-: the arguments after - are the script's"

printf '%s\n' "$ITEMS" >"$TMP/items.lua"
run_stdin "$TMP/items.lua" "$AQUEUE_RUN" --workers 2 - 5
expect_rc 0 "--workers 2 - (a run_queue script on stdin)"
expect_eq "$(value_of "$OUT" processed)" 5 "-: the items ran"
expect_eq "$(value_of "$OUT" most)" 2 "-: --workers 2 wins"

printf '%s\n' 'print("ok")' 'local = 1' >"$TMP/bad.lua"
run_stdin "$TMP/bad.lua" "$AQUEUE_RUN" -
expect_rc 1 "- with a syntax error"
expect_match "$ERR" '^stdin:2: ' "-: a syntax error is reported as stdin:line: message"
expect_empty "$OUT" "-: nothing ran"

: >"$TMP/empty.lua"
run_stdin "$TMP/empty.lua" "$AQUEUE_RUN" -
expect_rc 0 "- with an empty stdin"

finish
