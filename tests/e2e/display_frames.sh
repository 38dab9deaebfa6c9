# End-to-end: how often the tty panel is drawn. Everything the pane receives
# is recorded (tmux pipe-pane) during a ~1.5 s run of many short items (the
# figures change all the time): every redraw erases the previous frame with
# "ESC[J", so their count is the number of frames after the first. At most
# 10 redraws a second (plus the final frame): the frame timer's own bound,
# which a slow machine only lowers; and yet regular redraws while the run goes
# on. The cursor is hidden once at the start and shown after the
# last frame.
# Fixture: display_busy.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/tmux.sh
source "$(dirname "$0")/lib/tmux.sh"

REC="$TMP/pane.bytes"
ESC=$'\033'

TMUX_NO_GO=1 tmux_run frames 100 30 -- "$FIX/display_busy.lua" 150 0.03 3
tmux_record "$REC"
nap 0.1
tmux_go
tmux_wait_exit "$START_WAIT" "the run ends"
tmux_expect_rc 0 "all items succeeded"
tmux_expect_cursor 1 "the cursor is visible again"
s_match '^aqueue: 150 processed, 0 failed, 0 retried in [0-9.]+ s \([0-9]+ items/s\)$' "the summary line"
s_count_is '^ Workers ' 1 "one panel (the final frame) on screen"
nap 0.2 # the recording's last bytes

secs="$(printf '%s\n' "$SCREEN" | sed -n -E 's/^aqueue: 150 processed.* in ([0-9.]+) s .*$/\1/p')"
[ -n "$secs" ] || tfail "cannot read the run's duration from the summary"
erases="$(grep -ao "$ESC\\[J" "$REC" | wc -l)"
hides="$(grep -ao "$ESC\\[?25l" "$REC" | wc -l)"
most="$(awk -v s="$secs" 'BEGIN { printf "%d", s * 10 + 2 }')"  # ticks, the final frame, one spare
# At least 2 a second: a floor, generous for a loaded 2-core machine (a frame
# the loop is late for is dropped, not drawn later); no redraws at all while
# the run goes on would show 0 here, or 1.
least="$(awk -v s="$secs" 'BEGIN { printf "%d", s * 2 }')"
echo "# $erases redraws in $secs s (allowed $least..$most)"
[ "$erases" -le "$most" ] || tfail "the panel was redrawn $erases times in $secs s: more than 10 a second (at most $most)"
pass "at most 10 redraws a second ($erases in $secs s)"
[ "$erases" -ge "$least" ] || tfail "the panel was redrawn only $erases times in $secs s while items ran (at least $least)"
pass "regular redraws while the run goes on ($erases in $secs s)"
expect_eq "$hides" 1 "the cursor is hidden once"
last_hide="$(grep -aob "$ESC\\[?25l" "$REC" | tail -1 | cut -d: -f1)"
last_show="$(grep -aob "$ESC\\[?25h" "$REC" | tail -1 | cut -d: -f1)"
last_erase="$(grep -aob "$ESC\\[J" "$REC" | tail -1 | cut -d: -f1)"
if ! { [ -n "$last_show" ] && [ "$last_show" -gt "$last_hide" ] && [ "$last_show" -gt "$last_erase" ]; }; then
  tfail "expected the cursor shown (ESC[?25h) after the last frame: hide at ${last_hide:-none}, last erase at ${last_erase:-none}, show at ${last_show:-none}"
fi
pass "the cursor is shown again after the last frame"
tmux_kill_run

finish
