# End-to-end: the terminal given back on every way a run with the live panel
# ends (tmux): the cursor is visible again, the final frame stays (one panel
# on screen), the summary follows it, with the reason when the run was cut
# short. Ways: an error raised in the main chunk after run_queue, an error
# inside an item, SIGTERM, os.exit inside an item. (The normal end:
# display_tty.sh; Ctrl-C: display_ctrlc.sh.)
# Fixture: display_exit.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/tmux.sh
source "$(dirname "$0")/lib/tmux.sh"

X="$FIX/display_exit.lua"
COLS=90
ROWS=30

# The end screen of every way: cursor back, one final frame, the summary.
# $1: the session name, $2: a regex the summary line must match.
check_end() {
  local what="$1" summary_re="$2"
  tmux_expect_cursor 1 "$what: the cursor is visible again"
  s_count_is '^ Workers ' 1 "$what: one panel (the final frame) on screen"
  s_match '^ Workers  0/3 busy$' "$what: the final frame says 0/3 busy"
  s_match "$summary_re" "$what: the summary line"
  s_match "$SUMMARY_RE" "$what: the summary line has the common form"
  s_above '^ Overall ' '^aqueue: [0-9]+ processed' "$what: the summary follows the final frame"
  s_panel_fits $((COLS - 1)) "$what: the final frame fits in width-1 columns"
}

# The four runs start side by side: two end by themselves, two wait for the
# test (sigterm runs the "wait" way); the checks take one run after the other.
for way in main_error item_error os_exit sigterm; do
  mkdir "$TMP/$way"
  tmux_run "$way" "$COLS" "$ROWS" -- "$X" "$TMP/$way" "$([ "$way" = sigterm ] && echo wait || echo "$way")"
done

# Waits until the three items of the "wait" way run.
wait_waiting() { # name
  tmux_wait_file "$TMP/$1/ready" "$START_WAIT" "$1: three items run and wait (ready)"
  tmux_wait_screen_re '^ Workers  3/3 busy$' "$QUICK" "$1: the panel shows 3/3 busy"
  tmux_expect_cursor 0 "$1: the cursor is hidden while the panel is shown"
}

# --- an error in the main chunk after run_queue ---
tmux_use main_error
tmux_wait_exit "$START_WAIT" "main_error: the run ends"
tmux_expect_rc 1 "main_error: the script raised"
check_end main_error '^aqueue: 3 processed, 0 failed, 0 retried in [0-9.]+ s \([0-9]+ items/s\)$'
s_match '^after run_queue interrupted=false processed=3$' "main_error: the script went on after run_queue"
s_match 'main chunk raised after run_queue$' "main_error: the error message"
s_match '^stack traceback:$' "main_error: its traceback"
s_above '^aqueue: 3 processed' 'main chunk raised after run_queue$' "main_error: the error comes after the summary"
tmux_kill_run

# --- an error inside an item ---
tmux_use item_error
tmux_wait_exit "$START_WAIT" "item_error: the run ends"
tmux_expect_rc 1 "item_error: an item failed"
check_end item_error '^aqueue: 2 processed, 1 failed, 0 retried in [0-9.]+ s \([0-9]+ items/s\)$'
s_match '^aqueue: Waiter:process failed: .*item 1 raised$' "item_error: the item's error"
s_above '^aqueue: Waiter:process failed' '^ Workers ' "item_error: the error is above the panel"
s_match '^  failed: Waiter:process: .*item 1 raised$' "item_error: the summary names the failure"
tmux_kill_run

# --- SIGTERM ---
tmux_use sigterm
wait_waiting sigterm
pid="$(tmux_pid)"
[ -n "$pid" ] || tfail "sigterm: cannot find the pid of aqueue-run"
kill -TERM "$pid"
tmux_wait_exit "$QUICK" "sigterm: SIGTERM ends the run at once"
tmux_expect_rc 143 "sigterm: terminated (128 + 15)"
check_end sigterm '^aqueue: 0 processed, 0 failed, 0 retried, 3 cancelled, 2 not started in [0-9.]+ s \([0-9]+ items/s\), terminated$'
tmux_kill_run

# --- os.exit inside an item ---
tmux_use os_exit
tmux_wait_file "$TMP/os_exit/ready" "$START_WAIT" "os_exit: the items run (ready)"
tmux_wait_screen_re '^  [0-9] (⠋|⠙|⠹|⠸|⠼|⠴|⠦|⠧|⠇|⠏) Exiter  about to call os\.exit ' "$QUICK" \
  "os_exit: the Exiter's row is on the panel"
tmux_expect_cursor 0 "os_exit: the cursor is hidden while the panel is shown"
touch "$TMP/os_exit/exit"
tmux_wait_exit "$QUICK" "os_exit: os.exit in an item ends the run"
tmux_expect_rc 3 "os_exit: the status given to os.exit"
check_end os_exit '^aqueue: 0 processed, 0 failed, 0 retried, 3 cancelled in [0-9.]+ s \([0-9]+ items/s\), stopped by os\.exit$'
s_not_contains "after run_queue" "os_exit: the script did not go on"
tmux_kill_run

finish
