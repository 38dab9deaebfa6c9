# shellcheck shell=bash disable=SC2034 # (SAN_RE, SLOW_PCT are used by the tests that source this)
# tests/e2e/lib/kills.sh — what the kill -9 tests share (sourced after
# common.sh): the pattern of error output a killed or finished run must not
# show, the slowness factor of the build under test, the seeded random delays,
# and a kill of the background run after a delay. No process is started but
# the run itself (the clock and the nap are bash's own).
#
#   source "$(dirname "$0")/lib/kills.sh"
#   start_bg r1 "$AQUEUE_RUN" ...; kill_bg_after 250   # sets RC, KILLED

# A sanitizer report, a Lua error or an engine's internal error.
SAN_RE='ERROR: (Address|Leak)Sanitizer|runtime error:|internal error|stack traceback|panic'

# Kill delays are scaled by SLOW_PCT: the ASan runner starts up and loads a
# resumed run 2-3x slower (its items' sleeps are not slower).
# AQUEUE_E2E_SLOW_PCT sets it for other slow builds (ThreadSanitizer's: 500).
SLOW_PCT=100
case "$AQUEUE_RUN" in *-asan) SLOW_PCT=200 ;; esac
SLOW_PCT="${AQUEUE_E2E_SLOW_PCT:-$SLOW_PCT}"

# The delays' seed: AQUEUE_E2E_SEED=<the printed seed> replays an order of kills.
SEED="${AQUEUE_E2E_SEED:-$((${EPOCHREALTIME/[.,]/} % 32768))}"
RANDOM=$SEED
echo "# seed $SEED (AQUEUE_E2E_SEED=$SEED reproduces the order of the delays)"

# kill_bg_after DELAY_MS : kills the background run (start_bg) with SIGKILL
# after DELAY_MS, unless it ended first, and reaps it. Sets RC, and KILLED to
# 1 when our SIGKILL ended it (an exited but unreaped process still takes the
# signal, so only the status, 137 = 128 + SIGKILL, says whether it landed).
kill_bg_after() {
  nap "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
  kill -KILL "$BG_PID" 2>/dev/null
  { wait "$BG_PID"; } 2>/dev/null # (no "Killed" notice from bash)
  RC=$?
  KILLED=0
  [ "$RC" -eq 137 ] && KILLED=1
  return 0
}
