# End-to-end: --max-items N and --max-time S set run_queue's limits from the
# command line and win over the script's (SPEC section 3); aqueue.stopping()
# turns true when the limit stops the run. Bad values are bad usage (exit 2).
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

L="$FIX/cli_limits.lua"
limits_case() { # processed, not_started, stopped, description, aqueue-run options... -- script args
  run "$AQUEUE_RUN" "${@:5}"
  limits_expect "$@"
}
# The checks of limits_case on the run's RC and OUT.
limits_expect() { # processed, not_started, stopped, description
  local processed="$1" not_started="$2" stopped="$3" what="$4"
  expect_rc 0 "$what"
  expect_eq "$(value_of "$OUT" processed)" "$processed" "$what: $processed items processed"
  expect_eq "$(value_of "$OUT" not_started)" "$not_started" "$what: $not_started items not started"
  expect_eq "$(value_of "$OUT" stopped)" "$stopped" "$what: summary.stopped is $stopped"
  expect_eq "$(value_of "$OUT" stopping_before)" false "$what: aqueue.stopping() is false before the run"
}

# --- --max-items: the run stops once N items have started ---
limits_case 6 0 nil "no limit" "$L" 6 0.01 - -
limits_case 3 3 max_items "--max-items 3" --max-items 3 "$L" 6 0.01 - -
expect_eq "$(value_of "$OUT" stopping_seen)" true "--max-items 3: the third item saw aqueue.stopping() true"
expect_eq "$(value_of "$OUT" stopping_after)" true "--max-items 3: aqueue.stopping() stays true after run_queue returned"
limits_case 2 4 max_items "--max-items=2" --max-items=2 "$L" 6 0.01 - -
limits_case 4 2 max_items "--max-items 4, the script gives max_items = 2: the command line wins" \
  --max-items 4 "$L" 6 0.01 2 -
limits_case 5 1 max_items "--max-items 5, the script gives max_items = 1: the command line wins" \
  --max-items 5 "$L" 6 0.01 1 -
limits_case 2 4 max_items "no --max-items, the script gives max_items = 2" "$L" 6 0.01 2 -

# --- --max-time: the run stops after S seconds; the running item finishes ---
# The first item sleeps 0.5 s: the stop comes while it runs (its 0.2 s timer is
# due before the sleep's, on any machine), the other four never start. (The
# three runs mostly wait: they go side by side.)
start_bg time1 "$AQUEUE_RUN" --max-time 0.2 "$L" 5 0.5 - -
start_bg time2 "$AQUEUE_RUN" --max-time=0.2 "$L" 5 0.5 - 3600
start_bg time3 "$AQUEUE_RUN" --max-time 0.2 --max-items 4 "$L" 5 0.5 - -
use_bg time1
wait_bg "$RUN_TIMEOUT" "--max-time 0.2: the run ends"
limits_expect 1 4 max_time "--max-time 0.2"
expect_eq "$(value_of "$OUT" stopping_seen)" true "--max-time 0.2: the running item saw aqueue.stopping() true"
use_bg time2
wait_bg "$RUN_TIMEOUT" "--max-time=0.2 with the script's max_time: the run ends"
limits_expect 1 4 max_time "--max-time=0.2, the script gives max_time = 3600: the command line wins"
use_bg time3
wait_bg "$RUN_TIMEOUT" "--max-time with --max-items: the run ends"
limits_expect 1 4 max_time "--max-time with --max-items, the time comes first"

# --- bad values: exit 2, a message naming the option and the value ---
bad_usage() { # description, args...
  local what="$1"
  shift
  run "$AQUEUE_RUN" "$@"
  expect_rc 2 "$what"
  expect_match "$ERR" '^aqueue-run: ' "$what: the message names aqueue-run"
  expect_empty "$OUT" "$what: the script did not run"
}
for v in 0 -1 2.5 abc 3x "" 1e3 99999999999999999999; do
  bad_usage "--max-items '$v'" --max-items "$v" "$L" 6 0.01 - -
  expect_contains "$ERR" "--max-items needs a whole number of items >= 1, got '$v'" "--max-items '$v': the message shows the value"
done
bad_usage "--max-items without a value" --max-items
for v in 0 -1 abc 1s "" inf nan -inf; do
  bad_usage "--max-time '$v'" --max-time "$v" "$L" 6 0.01 - -
  expect_contains "$ERR" "--max-time needs a number of seconds > 0, got '$v'" "--max-time '$v': the message shows the value"
done
bad_usage "--max-time without a value" --max-time

# --- the help names them ---
run "$AQUEUE_RUN" --help
for word in --max-items --max-time "-e CODE" "wins over the script"; do
  expect_contains "$OUT" "$word" "--help mentions $word"
done

finish
