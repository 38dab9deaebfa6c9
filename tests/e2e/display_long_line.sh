# End-to-end: the tty panel keeps a line without its newline until the newline
# comes, but not without bound: once it reaches 64 KiB it goes above the panel
# (the rest of the line follows later). Fixture: display_long_line.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/tmux.sh
source "$(dirname "$0")/lib/tmux.sh"

D="$TMP/d"
mkdir "$D"
tmux_run long 100 30 -- "$FIX/display_long_line.lua" "$D"
tmux_wait_file "$D/written" "$START_WAIT" "70000 bytes written without a newline"
tmux_wait_screen_re '^x{500,}$' "$QUICK" "the long line is shown above the panel before its newline"
# The 70000 bytes fill the pty faster than tmux drains it, so the frame that
# carries them may be cut short (frames are dropped, never waited for): the
# panel comes back with a later frame.
tmux_wait_screen_re '^ Workers ' "$QUICK" "the panel is drawn again below the line"
s_count_is '^ Workers ' 1 "one panel on screen"
touch "$D/release"
tmux_wait_exit "$QUICK" "the run ends"
tmux_expect_rc 0 "exit status"
s_match '^x*END$' "the rest of the line follows"
tmux_kill_run

finish
