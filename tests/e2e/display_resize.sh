# End-to-end: the tty panel with more workers than fit, and terminal resizes
# (tmux resize-window sends SIGWINCH). The worker rows take at most half the
# terminal's height, busy rows first, then "+K more (J busy)"; after each
# resize the panel is redrawn for the new size with no leftover rows of the
# old one (one " Workers" header on screen) and its lines fit the new width.
# (Widths of at least 60 columns here; narrower ones: display_narrow.sh.)
# Fixture: display_many.lua, 20 workers, 16 items.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/tmux.sh
source "$(dirname "$0")/lib/tmux.sh"

M="$FIX/display_many.lua"
SPIN='(⠋|⠙|⠹|⠸|⠼|⠴|⠦|⠧|⠇|⠏)'
BUSY_ROW="^  [ 1-9][0-9] $SPIN Job  busy item [0-9]+ =+…  [0-9.:s]+\$"
IDLE_ROW='^  [ 1-9][0-9] · idle$'
WORKER_LINE='^  ([ 1-9][0-9] |\+[0-9]+ more)'

# The worker rows of SCREEN's panel, in order, on one line: "busy" or "idle"
# for each.
row_kinds() {
  s_panel | u8grep -E '^  [ 1-9][0-9] ' | sed -E 's/^.* busy item [0-9]+ .*$/busy/; s/^.* idle$/idle/' | tr '\n' ' '
}

# The item numbers of the busy rows, sorted, on one line.
busy_items() {
  s_panel | sed -n -E 's/^.* busy item ([0-9]+) .*$/\1/p' | sort -n | tr '\n' ' '
}

# After a resize: waits for the layout of the new size (a line matching
# REGEX), then a little more (later frames must not bring leftovers back).
settle() { # regex, what
  tmux_wait_screen_re "$1" "$QUICK" "$2"
  nap 0.3
  tmux_screen
}

D="$TMP/m"
mkdir "$D"
tmux_run many 100 30 -- "$M" "$D" 20 16
tmux_wait_file "$D/ready" "$START_WAIT" "100x30: the 16 items run (ready)"

# --- 100x30: 16 of 20 busy; at most 14 worker lines (half of 29) ---
settle '^  \+7 more \(3 busy\)$' "100x30: 13 rows and '+7 more (3 busy)'"
s_match '^ Workers  16/20 busy$' "100x30: header 16/20 busy"
s_count_is "$BUSY_ROW" 13 "100x30: 13 busy rows"
s_count_is "$IDLE_ROW" 0 "100x30: no idle row while busy ones are hidden"
s_count_is "$WORKER_LINE" 14 "100x30: 14 worker lines: at most half the height"
s_match '^printed-before-resize$' "100x30: the line printed by item 2"
s_above '^printed-before-resize$' '^ Workers ' "100x30: ... above the panel"
s_count_is '^ Workers ' 1 "100x30: one panel"
s_panel_fits 99 "100x30: panel lines fit in 99 columns"

# --- the odd items end: busy rows first, then idle ones ---
touch "$D/free-odd"
tmux_wait_file "$D/odd-done" "$QUICK" "100x30: the odd items ended (odd-done)"
settle '^  \+7 more \(0 busy\)$' "100x30, 8 busy: 13 rows and '+7 more (0 busy)'"
s_match '^ Workers  8/20 busy$' "100x30, 8 busy: header 8/20 busy"
expect_eq "$(row_kinds)" "busy busy busy busy busy busy busy busy idle idle idle idle idle " \
  "100x30, 8 busy: the 8 busy rows first, then 5 idle rows"
expect_eq "$(busy_items)" "2 4 6 8 10 12 14 16 " "100x30, 8 busy: the busy rows are the even items"
s_match '^   Job +0 +8 +0 +8 +0 +16$' "100x30, 8 busy: Job 0 queued, 8 running, 8 done, max 16"
s_match '^ Overall (━)+(─)+  8/16  50%  ' "100x30, 8 busy: Overall 8/16 50%"

# --- shrink to 60x16: 6 rows + "+14 more (2 busy)" (at most 7 worker lines) ---
tmux_resize 60 16
settle '^  \+14 more \(2 busy\)$' "60x16: the panel is redrawn with '+14 more (2 busy)'"
s_count_is '^ Workers ' 1 "60x16: one panel, no leftover header of the old one"
s_count_is "$BUSY_ROW" 6 "60x16: 6 busy rows"
s_count_is "$WORKER_LINE" 7 "60x16: 7 worker lines: at most half the height"
s_count_is '^ (Queue|Overall) ' 2 "60x16: one Queue header, one Overall line"
s_panel_fits 59 "60x16: panel lines fit in 59 columns"
s_no_match 'END-OF-DESC' "60x16: the long descriptions are cut"
s_match '^ Overall .*8/16  50%' "60x16: the Overall figures are still shown"

# --- grow to 120x50: every worker has a row ---
tmux_resize 120 50
settle "$IDLE_ROW" "120x50: idle rows come back"
tmux_wait_screen_re '^  20 · idle$' "$QUICK" "120x50: the row of worker 20 is shown"
nap 0.2
tmux_screen
s_count_is '^ Workers ' 1 "120x50: one panel"
s_count_is "$WORKER_LINE" 20 "120x50: 20 worker lines, no '+more'"
expect_eq "$(row_kinds)" \
  "busy busy busy busy busy busy busy busy idle idle idle idle idle idle idle idle idle idle idle idle " \
  "120x50: busy rows first, then the 12 idle ones"
expect_eq "$(busy_items)" "2 4 6 8 10 12 14 16 " "120x50: the busy rows are the even items"
s_panel_fits 119 "120x50: panel lines fit in 119 columns"
s_count_is "$BUSY_ROW" 8 "120x50: the 8 busy rows, their descriptions cut for the new width"
s_match '^ Overall (━)+(─)+  8/16  50%  .*failed 0  retried 0$' "120x50: the Overall line, full again"

# --- several resizes in a row ---
tmux_resize 70 20
tmux_resize 100 24
tmux_resize 64 18
tmux_resize 110 40
# 110x40: 39 usable lines, at most 19 worker lines: 18 rows + "+2 more (0 busy)"
settle '^  \+2 more \(0 busy\)$' "resizes in a row: the layout of the last size (110x40)"
s_count_is '^ Workers ' 1 "resizes in a row: one panel"
s_count_is '^ Queue ' 1 "resizes in a row: one Queue header"
s_count_is '^ Overall ' 1 "resizes in a row: one Overall line"
s_count_is "$WORKER_LINE" 19 "resizes in a row: 19 worker lines"
s_panel_fits 109 "resizes in a row: panel lines fit in 109 columns"

# --- the end ---
touch "$D/release"
tmux_wait_exit "$QUICK" "the run ends once released"
tmux_expect_rc 0 "all items succeeded"
tmux_expect_cursor 1 "the cursor is visible again"
s_count_is '^ Workers ' 1 "the end: one panel (the final frame)"
s_match '^ Workers  0/20 busy$' "the end: final frame 0/20 busy"
s_match '^aqueue: 16 processed, 0 failed, 0 retried in [0-9.]+ s \([0-9]+ items/s\)$' "the end: the summary line"
s_match '^after run_queue processed=16$' "the end: the script went on"
s_panel_fits 109 "the end: the final frame fits in 109 columns"

finish
