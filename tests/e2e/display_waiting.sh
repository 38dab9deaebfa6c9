# End-to-end: idle workers say what the waiting items wait for, and the ETA
# is marked as an estimate ("~") while the total grows or has just grown.
#   json:  "waiting":{"delayed","backing_off","rate","per_key","rate_key",
#          "per_key_key"} and "eta_stable" (false on the first line, whose
#          total has just grown from 0; true once it has not grown for 3 s (the knob: 1 s);
#          false again when an item enqueues a new one)
#   plain: "idle: 4 delayed, 4 waiting for rate (host a), 2 waiting for
#          per_key (host b), 3 backing off", "ETA ~..." then "ETA ..."
#   tty:   the same after the Workers header (cut to fit a narrow terminal),
#          "ETA ~" then "ETA " on the Overall line
# The json and plain runs shorten the ETA's 3 s and their lines' period
# (FAST_DISPLAY): which line is an estimate follows from the order of the
# lines, not their times. The tty run keeps the real 3 s.
# Fixture: display_waiting.lua (see there for the items).
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/tmux.sh
source "$(dirname "$0")/lib/tmux.sh"

STABLE_WAIT=30 # the ETA is exact 3 s (tty) after the total last grew (a limit, as START_WAIT)
IDLE='idle: 4 delayed, 4 waiting for rate (host a), 2 waiting for per_key (host b), 3 backing off'

# json_line FILE FROM LUA_EXPR: the index (from 0) of the first progress line
# at or after FROM for which LUA_EXPR (over the object `o`) holds, or -1.
json_line() {
  "$TOOL_RUN" "$FIX/json_line.lua" "$1" "$2" "$3"
}

# wait_json FILE FROM LUA_EXPR SECONDS DESCRIPTION: waits for such a line; sets LINE_AT.
wait_json() {
  local deadline=$((SECONDS + $4))
  while :; do
    LINE_AT="$(json_line "$1" "$2" "$3")"
    [ "$LINE_AT" -ge 0 ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      bg_output
      fail "$5: no progress line from #$2 with $3 within $4 s"
    fi
    nap 0.1
  done
  pass "$5"
}

progress_count() { grep -c '^{"type":"progress"' "$1"; }

# The three runs (json, plain, tty) wait for an exact ETA: they run side by
# side, each in its own directory. The tty's first screen is checked first,
# while its ETA is still an estimate (for 3 s: a screen read that late would
# take a stalled machine).
mkdir "$TMP/json" "$TMP/plain" "$TMP/tty"
start_bg json env "${FAST_DISPLAY[@]}" "$AQUEUE_RUN" --progress json "$FIX/display_waiting.lua" "$TMP/json"
JSON_PID="$BG_PID"
start_bg plain env "${FAST_DISPLAY[@]}" "$AQUEUE_RUN" --progress plain "$FIX/display_waiting.lua" "$TMP/plain"
PLAIN_PID="$BG_PID"
tmux_run tty 160 30 -- "$FIX/display_waiting.lua" "$TMP/tty"
tmux_wait_file "$TMP/tty/ready" "$START_WAIT" "tty: the Flaky items have failed (ready)"
tmux_wait_screen " Workers  2/4 busy  $IDLE" "$QUICK" "tty: the reasons after the Workers header"
tmux_wait_screen_re '^ Overall .*  ETA ~[0-9]' "$QUICK" "tty: an estimated ETA ('~') at first"

# ======================= json =======================
D="$TMP/json"
BG_NAME=json BG_PID="$JSON_PID"
E="$TMP/json.err"
wait_for_text "$E" '{"type":"progress"' "$START_WAIT" "json: a progress line"
wait_json "$E" 0 'o.eta_stable == false' 1 "json: the first progress line: eta_stable false (the total has just grown)"
expect_eq "$LINE_AT" 0 "json: ... and it is the first line"
wait_json "$E" 0 'same(o.waiting, { delayed = 4, backing_off = 3, rate = 4, per_key = 2, rate_key = "host a", per_key_key = "host b" }) and o.workers.busy == 2' \
  "$START_WAIT" "json: waiting: 4 delayed, 3 backing off, 4 for the rate of host a, 2 for per_key of host b"
wait_json "$E" 0 'o.eta_stable == true and o.overall.total == 16' "$STABLE_WAIT" \
  "json: eta_stable true once the total has not grown for a while"
touch "$D/grow"
deadline=$((SECONDS + QUICK))
while [ ! -e "$D/grown" ]; do
  [ "$SECONDS" -ge "$deadline" ] && fail "json: grown did not appear"
  nap 0.02
done
wait_json "$E" 0 'o.overall.total == 17' "$QUICK" "json: the new item counts in the total"
first17="$LINE_AT"
wait_json "$E" "$first17" 'true' 1 "json: (the line that first shows it)"
expect_eq "$(json_line "$E" "$first17" 'o.eta_stable == false')" "$first17" \
  "json: eta_stable false again on the line where the total grew"
expect_eq "$(json_line "$E" "$first17" 'o.waiting.delayed == 5')" "$first17" "json: 5 delayed now"
touch "$D/release"
kill -INT "$BG_PID"
wait_bg "$QUICK" "json: the run stops on SIGINT"
expect_rc 130 "json: interrupted"
expect_match "$(tail -1 "$E")" '^\{"type":"summary",.*"eta_stable":(true|false),"waiting":\{"delayed":0,' \
  "json: the summary object has the fields too"

# ======================= plain =======================
D="$TMP/plain"
BG_NAME=plain BG_PID="$PLAIN_PID"
E="$TMP/plain.err"
wait_for_text "$E" "aqueue: " "$START_WAIT" "plain: a progress line"
wait_for_text "$E" "$IDLE" "$START_WAIT" "plain: the idle workers' reasons"
# (The first lines may come before the rate is known, "ETA ?": with lines
# every 100 ms, one may come at once when the loop's clock was behind.)
first="$(grep -m1 '  [0-9]*/[0-9]* (' "$E")"
expect_match "$first" '  ETA (~[0-9]|\?)' "plain: the first line's ETA is not exact"
first_eta="$(grep -m1 '  [0-9]*/[0-9]* (.*  ETA [~0-9]' "$E")"
expect_match "$first_eta" '  ETA ~[0-9]' "plain: the first ETA figure is an estimate ('~')"
deadline=$((SECONDS + STABLE_WAIT))
while ! grep -q '  ETA [0-9]' "$E"; do
  [ "$SECONDS" -ge "$deadline" ] && { bg_output; fail "plain: no exact ETA within $STABLE_WAIT s"; }
  nap 0.1
done
pass "plain: an exact ETA (no '~') once the total has not grown for a while"
touch "$D/release"
kill -INT "$BG_PID"
wait_bg "$QUICK" "plain: the run stops on SIGINT"
expect_rc 130 "plain: interrupted"

# ======================= tty =======================
D="$TMP/tty"
tmux_wait_screen_re '^ Overall .*  ETA [0-9]' "$STABLE_WAIT" "tty: an exact ETA once the total has not grown for a while"
tmux_resize 60 30
tmux_wait_screen_re '^ Workers  2/4 busy  idle: 4 delayed, 4 waiting for r' "$QUICK" "tty, 60 columns: the reasons, cut"
s_panel_fits 59 "tty, 60 columns: the panel fits"
touch "$D/release"
tmux_keys C-c
tmux_wait_exit "$QUICK" "tty: the run stops on Ctrl-C"
s_no_match 'idle: ' "tty: the final frame has no reasons (no worker rows)"
tmux_kill_run

finish
