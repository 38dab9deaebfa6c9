# shellcheck shell=bash disable=SC2034 # (FIX, ELAPSED_MS, SUMMARY_RE... are used by the tests that source this)
# tests/e2e/lib/common.sh — helpers shared by the end-to-end tests of aqueue-run.
# Sourced (not run) by tests/e2e/*.sh; kept in a subfolder so ctest does not
# take it for a test.
#
#   source "$(dirname "$0")/lib/common.sh"
#   run "$AQUEUE_RUN" "$FIX/args.lua" a b        # sets RC, OUT, ERR (file contents)
#   expect_rc 0 "what was run"
#   expect_contains "$OUT" "needle" "what"
#   ...
#   finish                                       # prints the count, exit 0
#
# Every expect_* counts one check; the first failure prints what was expected
# and what came (with the command's stdout/stderr) and exits 1. Temporary files
# live in $TMP, removed on exit; background processes started with `start_bg`
# are killed on exit.

set -u

if [ -z "${AQUEUE_RUN:-}" ]; then
  echo "FAIL: AQUEUE_RUN is not set (the path of aqueue-run or aqueue-run-asan)" >&2
  exit 1
fi
if [ ! -x "$AQUEUE_RUN" ]; then
  echo "FAIL: AQUEUE_RUN=$AQUEUE_RUN is not an executable" >&2
  exit 1
fi

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FIX="$E2E_DIR/fixtures"
TEST_NAME="$(basename "$0" .sh)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/aqueue-e2e-$TEST_NAME.XXXXXX")"
CHECKS=0
SKIPS=0
BG_PIDS=""
# Limits of the waits for a condition (a marker, a line, a screen, the end of
# a run). Only a failing test reaches one, so they are generous, for a loaded
# 2-core machine running the ASan build; a passing test waits only as long as
# the condition takes. What a test must show happens "at once" (a signal ends
# the run, a timeout cuts a wait) is measured against a wait of 30 s or more,
# or one that never ends (a fixture waiting for a control file).
RUN_TIMEOUT="${AQUEUE_E2E_TIMEOUT:-60}" # one whole run, before it counts as hung
# The aqueue-run for the tests' own tools (fixtures that prepare or inspect
# files, not the runs under test): always the plain build, as the ASan twin of
# a test is there to check the runs under test, and an ASan start-up (leak
# check included) costs five times as much.
TOOL_RUN="${AQUEUE_TOOL_RUN:-$AQUEUE_RUN}"
# The Debian python3 (scripts/lib/setup.sh installs it) for the checks
# written in Python, not whatever python3 comes first on PATH: a version
# manager's shim there costs a second a call on a loaded machine.
PY=/usr/bin/python3
[ -x "$PY" ] || PY="$(command -v python3)"
START_WAIT=30 # a run's first marker (ASan start-up is slower)
QUICK=20      # what follows at once from what the test did (a signal, a key, a file)
# The engine's test knobs (engine/core/test_knobs.h, README "Development"),
# for the runs that need a timed event of the display or the watchdog to
# happen, not its real timing: env "${FAST_DISPLAY[@]}" "$AQUEUE_RUN" ...
# (tmux_run takes them as they are). The real timings keep their own test:
# the ETA's 3 s display_waiting.sh (tty), the 2 s / 1 s progress lines
# display_plain_json.sh, the watchdog's 1 s hog_interrupt.sh (the runs
# without FAST_WATCHDOG).
# (The ETA's time stays ten ticks long: a line delayed by a loaded machine
# does not skip the estimates.)
FAST_DISPLAY=(AQUEUE_TEST_ETA_STABLE_MS=1000 AQUEUE_TEST_PLAIN_TICK_MS=100 AQUEUE_TEST_JSON_TICK_MS=100)
FAST_WATCHDOG=(AQUEUE_TEST_NO_YIELD_WARN_MS=300 AQUEUE_TEST_EXIT_GRACE_MS=300)

# nap SECONDS: sleeps without starting a process (read's timeout on a pipe
# that nobody writes, opened for the nap only, so no process started by the
# test inherits it). The polling loops nap between their looks: a `sleep`
# there cost a fork and an exec each time, a good part of the suite's time.
mkfifo "$TMP/.nap"
nap() { read -r -t "$1" _ <>"$TMP/.nap" || true; }

# has_text FILE TEXT: true when FILE holds TEXT (read by bash itself: no grep).
has_text() {
  local content
  [ -r "$1" ] || return 1
  IFS= read -r -d '' content <"$1"
  [[ $content == *"$2"* ]]
}

# slurp VAR FILE: VAR gets FILE's text as "$(<FILE)" gives it (NUL bytes
# dropped, the trailing newlines cut; empty for a missing file), read by bash
# itself: a command substitution forks, and the tests read many outputs.
slurp() {
  local -a parts=()
  local IFS= text
  [ -r "$2" ] && mapfile -d '' -t parts <"$2"
  text="${parts[*]}"
  while [[ $text == *$'\n' ]]; do text="${text%$'\n'}"; done
  printf -v "$1" '%s' "$text"
}

cleanup() {
  local pid
  for pid in $BG_PIDS; do
    kill -KILL "$pid" 2>/dev/null
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# The output of the last run, shown with a failure.
_show_last_run() {
  if [ -n "${LAST_CMD:-}" ]; then
    echo "  command: $LAST_CMD" >&2
    echo "  exit status: ${RC:-?}" >&2
    echo "  --- stdout ---" >&2
    printf '%s\n' "${OUT:-}" | sed 's/^/  | /' >&2
    echo "  --- stderr ---" >&2
    printf '%s\n' "${ERR:-}" | sed 's/^/  | /' >&2
  fi
}

# The clock in milliseconds is $((${EPOCHREALTIME/[.,]/} / 1000)) (bash 5):
# no date process and no subshell per reading; the polling loops read it often.

fail() {
  echo "FAIL [$TEST_NAME]: $*" >&2
  _show_last_run
  exit 1
}

pass() {
  CHECKS=$((CHECKS + 1))
  echo "ok $CHECKS - $*"
}

skip() {
  SKIPS=$((SKIPS + 1))
  echo "SKIP - $*"
}

finish() {
  if [ "$SKIPS" -gt 0 ]; then
    echo "$TEST_NAME: all $CHECKS checks passed ($SKIPS skipped)"
  else
    echo "$TEST_NAME: all $CHECKS checks passed"
  fi
  exit 0
}

# run CMD ARGS... : runs to completion (bounded by RUN_TIMEOUT) with stdin from
# /dev/null, in the directory RUN_CWD when that is set; sets RC, OUT, ERR and
# ELAPSED_MS. A run killed for taking too long fails the test.
run() {
  LAST_CMD="$(printf '%q ' "$@")${RUN_CWD:+ (in $RUN_CWD)}"
  local rc start=${EPOCHREALTIME/[.,]/}
  # (no subshell and no cat without RUN_CWD: a process less per run, and the
  # suite makes many runs)
  if [ -n "${RUN_CWD:-}" ]; then
    (
      cd "$RUN_CWD" || exit 125
      exec timeout -k 5 "$RUN_TIMEOUT" "$@" </dev/null >"$TMP/.out" 2>"$TMP/.err"
    )
  else
    timeout -k 5 "$RUN_TIMEOUT" "$@" </dev/null >"$TMP/.out" 2>"$TMP/.err"
  fi
  rc=$?
  local end=${EPOCHREALTIME/[.,]/}
  ELAPSED_MS=$(((end - start) / 1000))
  RC=$rc
  slurp OUT "$TMP/.out"
  slurp ERR "$TMP/.err"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    fail "the run did not end within ${RUN_TIMEOUT}s (killed by timeout, status $rc)"
  fi
}

expect_rc() { # want, description
  if [ "$RC" != "$1" ]; then
    fail "$2: expected exit status $1, got $RC"
  fi
  pass "$2: exit status $1"
}

expect_eq() { # got, want, description
  if [ "$1" != "$2" ]; then
    fail "$3: expected [$2], got [$1]"
  fi
  pass "$3"
}

expect_contains() { # haystack, needle, description
  case "$1" in
  *"$2"*) pass "$3" ;;
  *) fail "$3: expected the text to contain [$2]" ;;
  esac
}

expect_not_contains() { # haystack, needle, description
  case "$1" in
  *"$2"*) fail "$3: expected the text NOT to contain [$2]" ;;
  *) pass "$3" ;;
  esac
}

expect_match() { # text, extended regex (one line must match), description
  if ! grep -Eq -- "$2" <<<"$1"; then
    fail "$3: expected a line matching /$2/"
  fi
  pass "$3"
}

expect_no_match() { # text, extended regex, description
  if grep -Eq -- "$2" <<<"$1"; then
    fail "$3: expected no line matching /$2/, found: $(grep -E -- "$2" <<<"$1" | head -3)"
  fi
  pass "$3"
}

expect_empty() { # text, description
  if [ -n "$1" ]; then
    fail "$2: expected no output, got [$1]"
  fi
  pass "$2"
}

# The number of lines of text matching an extended regex.
count_lines() { # text, regex
  grep -Ec -- "$2" <<<"$1"
}

# The value of "key=value" on a line of text (the first such line).
value_of() { # text, key
  sed -n "s/^$2=//p;T;q" <<<"$1"
}

# The summary line aqueue prints at the end of run_queue.
SUMMARY_RE='^aqueue: [0-9]+ processed, [0-9]+ failed, [0-9]+ retried(, [0-9]+ cancelled)?(, [0-9]+ not started)? in [0-9]+\.[0-9]+ s \([0-9]+ items/s\)(, (interrupted|terminated|stopped[a-z :.]*))?$'

# keep_evidence : copies the test's temporary folder (its logs, the runs'
# outputs, their files) to a folder that outlives the test, and says where:
# for the report of a failure that is hard to reproduce (the kill tests).
keep_evidence() {
  local keep
  keep="$(mktemp -d "${TMPDIR:-/tmp}/aqueue-$TEST_NAME-failed.XXXXXX")" || return
  cp -a "$TMP"/. "$keep"/ 2>/dev/null
  echo "# kept the test's files (logs, outputs, state) in $keep" >&2
}

# --- background runs, for signals ---

# start_bg NAME CMD ARGS... : starts CMD in the background with stdout and
# stderr in $TMP/NAME.out and $TMP/NAME.err; sets BG_PID.
declare -A BG_PID_OF=() BG_CMD_OF=() # NAME -> pid, command: for runs started side by side
start_bg() {
  local name="$1"
  shift
  LAST_CMD="$(printf '%q ' "$@") (in the background)"
  "$@" </dev/null >"$TMP/$name.out" 2>"$TMP/$name.err" &
  BG_PID=$!
  BG_PIDS="$BG_PIDS $BG_PID"
  BG_NAME="$name"
  BG_PID_OF[$name]=$BG_PID
  BG_CMD_OF[$name]=$LAST_CMD
}

# use_bg NAME : makes the run started as NAME the current background run
# (several runs that mostly wait go side by side, then are checked in turn).
use_bg() {
  BG_NAME="$1"
  BG_PID="${BG_PID_OF[$1]}"
  LAST_CMD="${BG_CMD_OF[$1]}"
}

# Loads the background run's output into OUT and ERR (for messages and checks).
bg_output() {
  slurp OUT "$TMP/$BG_NAME.out"
  slurp ERR "$TMP/$BG_NAME.err"
}

# wait_for_text FILE TEXT SECONDS DESCRIPTION : waits until FILE contains
# TEXT; fails when the time is up or the background process ended first.
wait_for_text() {
  local file="$1" text="$2" secs="$3" what="$4"
  local deadline=$((SECONDS + secs))
  while ! has_text "$file" "$text"; do
    if ! kill -0 "$BG_PID" 2>/dev/null; then
      # it may have written the text just before ending
      has_text "$file" "$text" && break
      wait "$BG_PID"
      RC=$?
      bg_output
      fail "$what: the process ended (status $RC) before printing [$text]"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      RC="(still running)"
      bg_output
      fail "$what: [$text] did not appear within ${secs}s"
    fi
    nap 0.02
  done
  pass "$what"
}

# wait_bg SECONDS DESCRIPTION : waits for the background process to end; sets
# RC, OUT, ERR. Fails (and kills it) when it is still running after SECONDS.
wait_bg() {
  local secs="$1" what="$2"
  local deadline=$((SECONDS + secs))
  while kill -0 "$BG_PID" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL "$BG_PID" 2>/dev/null
      wait "$BG_PID" 2>/dev/null
      RC="(killed: still running after ${secs}s)"
      bg_output
      fail "$what: expected the process to end within ${secs}s, it was still running"
    fi
    nap 0.02
  done
  wait "$BG_PID"
  RC=$?
  bg_output
  pass "$what"
}
