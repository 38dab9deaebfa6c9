# End-to-end: the tty panel on a narrow terminal (40 columns), from the start
# and after a resize from 100 columns. Every panel line must fit in width-1
# columns (so the terminal never wraps one) and, redrawn frame after frame,
# the panel must leave no rows of earlier frames behind (one " Workers"
# header on screen).
# Fixture: display_many.lua, 6 workers, 4 items.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/tmux.sh
source "$(dirname "$0")/lib/tmux.sh"

M="$FIX/display_many.lua"

# The two runs start side by side (each waits for its control files); the
# checks take one after the other.
mkdir "$TMP/start" "$TMP/resized"
tmux_run resized 100 24 -- "$M" "$TMP/resized" 6 4
tmux_run start 40 24 -- "$M" "$TMP/start" 6 4

# --- 40x24 from the start ---
D="$TMP/start"
tmux_wait_file "$D/ready" "$START_WAIT" "40x24: the 4 items run (ready)"
tmux_wait_screen_re '^ Workers  4/6 busy$' "$QUICK" "40x24: the panel shows 4/6 busy"
nap 0.5 # five more frames
tmux_screen
s_match '^   Job ' "40x24: the Queue row of Job is shown"
s_panel_fits 39 "40x24: panel lines fit in 39 columns"
s_count_is '^ Workers ' 1 "40x24: one panel after several frames (no leftover rows)"
touch "$D/free-odd" "$D/release"
tmux_wait_exit "$QUICK" "40x24: the run ends once released"
tmux_expect_rc 0 "40x24: all items succeeded"
tmux_expect_cursor 1 "40x24: the cursor is visible again"
s_count_is '^ Workers ' 1 "40x24: one panel (the final frame) at the end"
s_panel_fits 39 "40x24: the final frame fits in 39 columns"
tmux_kill_run

# --- 100x24, then 40x24 ---
D="$TMP/resized"
tmux_use resized
tmux_wait_file "$D/ready" "$START_WAIT" "100 -> 40: the 4 items run (ready)"
tmux_wait_screen_re '^ Workers  4/6 busy$' "$QUICK" "100 -> 40: the panel shows 4/6 busy"
tmux_resize 40 24
nap 0.5
tmux_screen
s_panel_fits 39 "100 -> 40: panel lines fit in 39 columns"
s_count_is '^ Workers ' 1 "100 -> 40: one panel after the resize (no leftover rows)"
touch "$D/free-odd" "$D/release"
tmux_wait_exit "$QUICK" "100 -> 40: the run ends once released"
tmux_expect_cursor 1 "100 -> 40: the cursor is visible again"
tmux_kill_run

finish
