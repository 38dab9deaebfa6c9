# Allocation-failure injection (engine/core/alloc_fail.c, aqueue-run-asan
# only): a small representative run (alloc_fail.lua: items with children, a
# hook, a retry, timers, a limit key, fs, exec and work calls, the plain
# display, --state) is counted, then run once for each N = 1..total with the
# Nth allocation of the engine's own C code failing. Each run must end (no
# hang), with no crash and no ASan/UBSan report, and either succeed as the
# normal run does or fail with an "out of memory" message (a binding's I/O
# failure: "ENOMEM: not enough memory") and status 1; a
# rerun without the failure (--retry-failed) then completes the run in the
# state file: every item and the hook done, each item counted once.
# The run is kept small (each allocation is one more pair of ASan runs) but
# reaches every allocation site of the engine that a larger run reaches: one
# item per feature, each feature's call made once. To list the sites a run
# reaches (after a change of the fixture, the list must stay the same):
#   AQUEUE_FAIL_ALLOC=count AQUEUE_FAIL_ALLOC_TRACE=1 build/aqueue-run-asan \
#     --progress plain --state DIR/state tests/e2e/fixtures/alloc_fail.lua DIR
# prints the stack of every allocation (the frame after __wrap_* is the site).
# shellcheck source=e2e/lib/common.sh
source "$(dirname "$0")/e2e/lib/common.sh"

R="$FIX/alloc_fail.lua"
RUN_TIMEOUT=60
WORKERS="${AQUEUE_ALLOC_FAIL_JOBS:-4}" # runs at once: each mostly waits (timers, commits, the pool)

# --- the count: a run without failures ---
mkdir "$TMP/count"
AQUEUE_FAIL_ALLOC=count run "$AQUEUE_RUN" --progress plain --state "$TMP/count/state" "$R" "$TMP/count"
expect_rc 0 "count: the run succeeds"
TOTAL="$(printf '%s\n' "$ERR" | sed -n 's/^aqueue: allocations: //p')"
expect_match "$TOTAL" '^[0-9]+$' "count: the number of allocations is printed"
LOG="$(sort "$TMP/count/log")"
EXPECTED_LOG="$(printf '%s\n' "done Leaf 1" "done Leaf 2" "done Leaf 3" "done Root 0" "hook 0")"
expect_eq "$LOG" "$EXPECTED_LOG" "count: every item and the hook ran once"
if [ "$TOTAL" -lt 50 ]; then
  fail "count: only $TOTAL allocations; the run does not reach the engine's C code"
fi
echo "# $TOTAL allocations: $TOTAL runs"

# log_has DIR EXACT : true when DIR/log holds every item's and the hook's
# line, each exactly once when EXACT is 1, at least once otherwise (read by
# bash itself: this runs once per N, and a grep or sort each was a good part
# of the test's time).
log_has() {
  local line want count
  local -a lines=()
  [ -r "$1/log" ] && mapfile -t lines <"$1/log"
  [ "$2" != 1 ] || [ "${#lines[@]}" -eq 5 ] || return 1
  for want in "done Leaf 1" "done Leaf 2" "done Leaf 3" "done Root 0" "hook 0"; do
    count=0
    for line in "${lines[@]}"; do [ "$line" != "$want" ] || count=$((count + 1)); done
    [ "$count" -ge 1 ] || return 1
    [ "$2" != 1 ] || [ "$count" -eq 1 ] || return 1
  done
}

# One run with allocation N failing, then the rerun; prints "N ok", or
# "N FAIL why" with the outputs in $TMP/N/.
one_run() {
  local n="$1" dir="$TMP/$1" rc err
  mkdir "$dir"
  AQUEUE_FAIL_ALLOC="$n" timeout -k 5 "$RUN_TIMEOUT" "$AQUEUE_RUN" --progress plain \
    --state "$dir/state" "$R" "$dir" </dev/null >"$dir/out" 2>"$dir/err"
  rc=$?
  slurp err "$dir/err"
  case "$err" in
  *"ERROR: AddressSanitizer"* | *"ERROR: LeakSanitizer"* | *"runtime error"*)
    echo "$n FAIL a sanitizer report (status $rc)"; return ;;
  *"handle left open at exit"*)
    echo "$n FAIL a handle left open (status $rc)"; return ;;
  esac
  if [ "$rc" -ne 0 ]; then
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "$n FAIL no end within ${RUN_TIMEOUT}s"; return; fi
    if [ "$rc" -ne 1 ]; then echo "$n FAIL status $rc (1 expected)"; return; fi
    case "$err" in
    *"out of memory"* | *"ENOMEM: not enough memory"*) ;; # a binding's I/O failure says ENOMEM
    *) echo "$n FAIL status 1 without an \"out of memory\" message"; return ;;
    esac
  elif ! log_has "$dir" 1; then
    echo "$n FAIL succeeded without running every item and the hook once"; return
  fi
  # A failed run: the rerun (failed items put back) completes it.
  if [ "$rc" -ne 0 ]; then
    timeout -k 5 "$RUN_TIMEOUT" "$AQUEUE_RUN" --progress none --retry-failed \
      --state "$dir/state" "$R" "$dir" </dev/null >"$dir/out2" 2>"$dir/err2"
    rc=$?
    if [ "$rc" -ne 0 ]; then echo "$n FAIL the rerun: status $rc"; return; fi
  fi
  # The state file holds a complete run, each item counted once (a run then
  # does nothing), and every item and the hook were done in one run or the other.
  # (This run only reads the file and fails no allocation: the plain build, as
  # for the e2e tests' tools, since an ASan start-up costs five times as much.)
  timeout -k 5 "$RUN_TIMEOUT" "$TOOL_RUN" --progress none --state "$dir/state" "$R" "$dir" \
    </dev/null >"$dir/out3" 2>"$dir/err3"
  slurp err "$dir/err3"
  if [[ $err != *"is complete (4 done, 0 failed): nothing to do"* ]]; then
    echo "$n FAIL the state file is not complete: ${err%%$'\n'*}"; return
  fi
  if ! log_has "$dir" 0; then echo "$n FAIL an item or the hook was never logged"; return; fi
  echo "$n ok"
  rm -rf "$dir"
}
# WORKERS subshells of this shell, each taking every WORKERS-th N (a fork
# each, not a new bash per N).
for ((w = 1; w <= WORKERS; w++)); do
  for ((n = w; n <= TOTAL; n += WORKERS)); do one_run "$n"; done >"$TMP/results.$w" &
done
wait
RESULTS="$(cat "$TMP"/results.*)"
FAILED="$(printf '%s\n' "$RESULTS" | grep ' FAIL ' | sort -n)"
OK_COUNT="$(printf '%s\n' "$RESULTS" | grep -c ' ok$')"
if [ -n "$FAILED" ]; then
  printf '%s\n' "$FAILED" | head -20 >&2
  first="$(printf '%s\n' "$FAILED" | head -1 | cut -d' ' -f1)"
  echo "--- run $first: stderr ---" >&2
  sed 's/^/  | /' "$TMP/$first/err" | head -60 >&2
  [ -f "$TMP/$first/err2" ] && { echo "--- its rerun: stderr ---" >&2; sed 's/^/  | /' "$TMP/$first/err2" | head -30 >&2; }
fi
expect_eq "$OK_COUNT" "$TOTAL" "every one of the $TOTAL runs with a failed allocation ended cleanly"
finish
