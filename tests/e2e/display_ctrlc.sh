# End-to-end: Ctrl-C typed in the terminal (tmux send-keys C-c) while the
# live panel is shown. Once: the "interrupted" message above the panel, the
# running items finish, exit 130, the final frame and the summary (", 2 not
# started ..., interrupted"), the cursor visible again. Twice: the run ends at
# once (", 3 cancelled"). In both, the screen is left clean: one panel, no
# leftover rows of an earlier frame (the terminal echoes "^C" at the cursor,
# after the panel's last line). Those screen checks come last, after the
# exit status and cursor checks of both runs.
# Fixture: display_exit.lua (the "wait" way).
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/tmux.sh
source "$(dirname "$0")/lib/tmux.sh"

X="$FIX/display_exit.lua"
COLS=90
ROWS=30

# The two runs start side by side (each waits for the test); the checks take
# one after the other.
for name in once twice; do
  mkdir "$TMP/$name"
  tmux_run "$name" "$COLS" "$ROWS" -- "$X" "$TMP/$name" wait
done

# Makes run NAME the current one and waits until its three items run.
use_waiting() { # name
  tmux_use "$1"
  tmux_wait_file "$TMP/$1/ready" "$START_WAIT" "$1: three items run and wait (ready)"
  tmux_wait_screen_re '^ Workers  3/3 busy$' "$QUICK" "$1: the panel shows 3/3 busy"
  tmux_expect_cursor 0 "$1: the cursor is hidden while the panel is shown"
}

# --- Ctrl-C once: graceful ---
use_waiting once
tmux_keys C-c
tmux_wait_screen "interrupted: letting running items finish" "$QUICK" "once: the first Ctrl-C is acknowledged"
nap 0.3 # a few more frames
tmux_screen
SCREEN_ONCE_MID="$SCREEN"
s_match '^aqueue: interrupted: letting running items finish \(Ctrl-C again to stop now\)$' \
  "once: the message is a whole line"
tmux_running || tfail "once: the run ended at the first Ctrl-C although items were running"
pass "once: still running (the items may finish)"
tmux_expect_cursor 0 "once: the cursor stays hidden while the panel is still shown"
touch "$TMP/once/release"
tmux_wait_exit "$QUICK" "once: the run ends once the items finish"
SCREEN_ONCE_END="$SCREEN"
tmux_expect_rc 130 "once: interrupted"
tmux_expect_cursor 1 "once: the cursor is visible again"
s_match '^ Workers  0/3 busy$' "once: the final frame says 0/3 busy"
s_match '^   Waiter +0 +0 +0 +3 +0 +5$' "once: final frame: 3 done, max queued 5"
s_match '^aqueue: 3 processed, 0 failed, 0 retried, 2 not started in [0-9.]+ s \([0-9]+ items/s\), interrupted$' \
  "once: the summary line says 2 not started, interrupted"
s_above '^ Overall ' '^aqueue: 3 processed' "once: the summary follows the final frame"
s_match '^after run_queue interrupted=true processed=3$' "once: the script went on after run_queue"
tmux_kill_run

# --- Ctrl-C twice ---
use_waiting twice
tmux_keys C-c
tmux_wait_screen "interrupted: letting running items finish" "$QUICK" "twice: the first Ctrl-C is acknowledged"
tmux_keys C-c
tmux_wait_exit "$QUICK" "twice: the second Ctrl-C ends the run at once"
SCREEN_TWICE_END="$SCREEN"
tmux_expect_rc 130 "twice: interrupted"
tmux_expect_cursor 1 "twice: the cursor is visible again"
s_match '^aqueue: 0 processed, 0 failed, 0 retried, 3 cancelled, 2 not started in [0-9.]+ s \([0-9]+ items/s\), interrupted$' \
  "twice: the summary line says 3 cancelled, 2 not started, interrupted"
s_not_contains "after run_queue" "twice: the script did not go on"
tmux_kill_run
PANE="" # (lib/tmux.sh) the checks below are on saved screens, not a live pane

# --- the screen left clean ---
SCREEN="$SCREEN_ONCE_MID"
s_count_is '^ Workers ' 1 "once: one panel on screen after the Ctrl-C (no leftover header)"
s_above 'interrupted: letting running items finish' '^ Workers ' "once: the message is above the panel"
SCREEN="$SCREEN_ONCE_END"
s_count_is '^ Workers ' 1 "once: one panel (the final frame) on the end screen"
s_panel_fits $((COLS - 1)) "once: the final frame fits in width-1 columns"
SCREEN="$SCREEN_TWICE_END"
s_count_is '^ Workers ' 1 "twice: one panel (the final frame) on the end screen"
s_panel_fits $((COLS - 1)) "twice: the final frame fits in width-1 columns"

finish
