# End-to-end: the live display's tty panel in a real terminal (tmux): the
# Workers rows (spinner, class, set_desc text, elapsed; idle rows), the Queue
# rows per class, the Overall line (track_overall items only), widths and the
# ellipsis, colour (and NO_COLOR), UTF-8 glyphs and their ASCII fallbacks
# (LANG=C); lines printed by the items (print, io.write, io.stdout:write,
# io.stderr:write, error tracebacks) above the panel as whole lines; the final
# frame (no worker rows), the summary and the cursor given back.
# Fixture: display_panel.lua, driven step by step through files in a folder.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/tmux.sh
source "$(dirname "$0")/lib/tmux.sh"

P="$FIX/display_panel.lua"
COLS=100
ROWS=40

SPIN_UTF8='(⠋|⠙|⠹|⠸|⠼|⠴|⠦|⠧|⠇|⠏)'
SPIN_ASCII='(\||/|-|\\)'
ELAPSED='[0-9]+(\.[0-9])?s|[0-9]+:[0-9]{2}'
ESC=$'\033'
SGR="($ESC\\[[0-9;]*m)*" # tmux may add more attribute changes (e.g. the background)

# The two runs start side by side (each goes on step by step through its
# folder's files); the checks take one after the other.
mkdir "$TMP/utf8" "$TMP/ascii"
tmux_run utf8 "$COLS" "$ROWS" LANG=C.UTF-8 -- "$P" "$TMP/utf8"
tmux_run ascii "$COLS" "$ROWS" LANG=C NO_COLOR=1 -- "$P" "$TMP/ascii"

# ======================= UTF-8, colour =======================
D="$TMP/utf8"
tmux_use utf8
tmux_wait_file "$D/ready" "$START_WAIT" "utf8: the three pages run (ready)"
tmux_wait_screen_re '^   Image +6 +0 +0 +0 +0 +6$' "$QUICK" "utf8: the panel shows the queued Image children"
tmux_expect_cursor 0 "utf8: the cursor is hidden while the panel is shown"

# --- the Workers section ---
s_match '^ Workers  3/3 busy$' "utf8: header ' Workers  3/3 busy'"
s_match "^  1 $SPIN_UTF8 Page  GET http://example\\.test/a\\.html +($ELAPSED)\$" \
  "utf8: worker 1 row: id, spinner, class, set_desc text, elapsed"
s_match "^  2 $SPIN_UTF8 Page  résumé ünïcode ✓ text +($ELAPSED)\$" \
  "utf8: worker 2 row: the non-ASCII set_desc text as it is"
s_match "^  3 $SPIN_UTF8 Page  long-desc-start x+…  ($ELAPSED)\$" \
  "utf8: worker 3 row: the long set_desc text cut with '…', then the elapsed time"
s_not_contains "LONG-DESC-END" "utf8: the end of the long text is not shown"
row3="$(s_line "$(s_line_of '^  3 ')")"
row3_width="$(str_width "$row3")"
if [ "$row3_width" -lt $((COLS - 8)) ] || [ "$row3_width" -gt $((COLS - 1)) ]; then
  screen_fail "utf8: the cut row should use the width (up to width-1 columns), it takes $row3_width: [$row3]"
fi
pass "utf8: the cut row uses the width, up to width-1 columns ($row3_width)"
s_count_is '^  [0-9]+ ' 3 "utf8: one row per worker (3)"

# --- the Queue and Overall sections ---
s_match '^ Queue +queued +running +retrying +done +failed +max queued$' "utf8: the Queue header"
s_match '^   Page +0 +3 +0 +0 +0 +3$' "utf8: Page row: 0 queued, 3 running, 0 done, 0 failed, max 3"
s_match '^   Image +6 +0 +0 +0 +0 +6$' "utf8: Image row: 6 queued, max 6"
s_match '^ Overall ─+  0/6  0%  [0-9.]+[kM]?/s  [0-9.:s]+  ETA [^ ]+  failed 0  retried 0$' \
  "utf8: Overall: an empty bar, 0/6 (only the track_overall Images), 0%, rate, elapsed, ETA, failed 0, retried 0"
s_above '^ Workers' '^ Queue' "utf8: Workers above Queue"
s_above '^ Queue' '^ Overall' "utf8: Queue above Overall"
expect_eq "$(printf '%s\n' "$SCREEN" | grep -v '^$' | tail -1 | cut -c1-8)" " Overall" \
  "utf8: the Overall line is the panel's last line"
s_panel_fits $((COLS - 1)) "utf8: every panel line fits in width-1 columns"

# --- redrawn while the items run ---
# (waits for the change: a loaded machine may draw the next frames late)
before="$(printf '%s\n' "$SCREEN" | grep '^  1 ')"
deadline=$(($((${EPOCHREALTIME/[.,]/} / 1000)) + QUICK * 1000))
while :; do
  nap 0.05
  tmux_screen
  after="$(printf '%s\n' "$SCREEN" | grep '^  1 ')"
  [ "$before" != "$after" ] && break
  [ "$((${EPOCHREALTIME/[.,]/} / 1000))" -ge "$deadline" ] && tfail "utf8: worker 1's row did not change in $QUICK s (spinner, elapsed): [$after]"
done
pass "utf8: the panel is redrawn while items run (spinner / elapsed move)"

# --- colour ---
tmux_screen -e
s_match "$ESC\\[[0-9;]*1m$SGR Workers" "utf8: colour: the Workers header is bold"
s_match "^  1 $ESC\\[[0-9;]*36m$SGR$SPIN_UTF8" "utf8: colour: the spinner is cyan"
s_match "$ESC\\[[0-9;]*2m$SGR─" "utf8: colour: the empty part of the bar is dim"

# --- printed lines go above the panel, whole ---
touch "$D/print"
tmux_wait_file "$D/printed" "$QUICK" "utf8: Page 1 printed (printed)"
tmux_wait_screen "stderr-write line" "$QUICK" "utf8: the printed lines appear"
n_print="$(s_line_of '^print-line from Page 1$')"
n_out="$(s_line_of '^stdout-write line$')"
n_err="$(s_line_of '^stderr-write line$')"
n_hdr="$(s_line_of '^ Workers')"
if ! { [ "$n_print" -gt 0 ] && [ "$n_print" -lt "$n_out" ] && [ "$n_out" -lt "$n_err" ] && [ "$n_err" -lt "$n_hdr" ]; }; then
  tfail "utf8: expected print < io.stdout:write < io.stderr:write < the panel, got lines $n_print $n_out $n_err $n_hdr"
fi
pass "utf8: print, io.stdout:write, io.stderr:write lines appear in order, above the panel"
expect_eq "$n_hdr" "$((n_err + 1))" "utf8: the panel follows the printed lines directly"
s_not_contains "partial-start" "utf8: an io.write line without its newline is not shown yet"
s_count_is '^ Workers' 1 "utf8: one panel on screen"
s_match '^ Workers  3/3 busy$' "utf8: the panel is still whole after the prints"
s_match '^ Overall ' "utf8: the Overall line is still there after the prints"

touch "$D/finish-line"
tmux_wait_file "$D/line-done" "$QUICK" "utf8: Page 1 ended its line (line-done)"
tmux_wait_screen "partial-start partial-end" "$QUICK" "utf8: the finished io.write line appears"
s_match '^partial-start partial-end$' "utf8: the two io.write pieces make one whole line"
s_above '^partial-start partial-end$' '^ Workers' "utf8: the io.write line is above the panel"
s_count_is '^ Workers' 1 "utf8: still one panel on screen"

# --- the end: failures, the final frame, the summary ---
touch "$D/release"
tmux_wait_exit "$QUICK" "utf8: the run ends once released"
tmux_expect_rc 1 "utf8: an item failed"
tmux_expect_cursor 1 "utf8: the cursor is visible again after the run"
s_match '^aqueue: Image:process failed: .*image broken 2-1$' "utf8: the failed item's error is printed"
s_above '^aqueue: Image:process failed' '^ Workers' "utf8: the error traceback is above the panel"
s_above '^stack traceback:$' '^ Workers' "utf8: its stack traceback too"
s_match '^unfinished-at-end$' "utf8: a line left without newline at the end of the run is flushed, whole"
s_above '^unfinished-at-end$' '^ Workers' "utf8: ... above the final frame"
s_count_is '^ Workers' 1 "utf8: one final frame on screen"
s_match '^ Workers  0/3 busy$' "utf8: final frame: 0/3 busy"
s_count_is '^  [0-9]+ ' 0 "utf8: final frame: no worker rows (all idle by then)"
s_match '^   Page +0 +0 +0 +3 +0 +3$' "utf8: final frame: Page 3 done"
s_match '^   Image +0 +0 +0 +5 +1 +6$' "utf8: final frame: Image 5 done, 1 failed, max queued 6"
s_match '^ Overall ━+  6/6  100%  [0-9.]+[kM]?/s  [0-9.:s]+  ETA [^ ]+  failed 1  retried 0$' \
  "utf8: final frame: a full bar, 6/6 100%, failed 1"
s_match '^aqueue: 8 processed, 1 failed, 0 retried in [0-9]+\.[0-9]+ s \([0-9]+ items/s\)$' \
  "utf8: the summary line"
s_match "$SUMMARY_RE" "utf8: the summary line has the common form"
s_above '^ Overall ' '^aqueue: 8 processed' "utf8: the summary comes after the final frame"
s_match '^  failed: Image:process: .*image broken 2-1$' "utf8: the summary names the failure"
expect_eq "$(s_line "$(($(s_line_of '^aqueue: 8 processed') + 1))")" \
  "$(printf '%s\n' "$SCREEN" | grep -E '^  failed: ')" "utf8: the failure line follows the summary line"
s_match '^tail-after run_queue processed=8 failed=1$' "utf8: the script goes on after run_queue, writing straight out"
s_above '^aqueue: 8 processed' '^tail-after' "utf8: the script's later output is below the summary"
s_panel_fits $((COLS - 1)) "utf8: every panel line of the end screen fits in width-1 columns"
tmux_screen -e
s_match "^   Image.*$ESC\\[[0-9;]*31m$SGR +1" "utf8: colour: a failed count is red"
s_match "$ESC\\[[0-9;]*32m$SGR━" "utf8: colour: the done part of the bar is green"
tmux_kill_run

# ======================= LANG=C, NO_COLOR =======================
D="$TMP/ascii"
tmux_use ascii
tmux_wait_file "$D/ready" "$START_WAIT" "ascii: the three pages run (ready)"
tmux_wait_screen_re '^   Image +6 +0 +0 +0 +0 +6$' "$QUICK" "ascii: the panel shows the queued Image children"
s_match '^ Workers  3/3 busy$' "ascii: header"
s_match "^  1 $SPIN_ASCII Page  GET http://example\\.test/a\\.html +($ELAPSED)\$" "ascii: an ASCII spinner"
s_match "^  2 $SPIN_ASCII Page  r\\?sum\\? \\?n\\?code \\? text +($ELAPSED)\$" \
  "ascii: non-ASCII text shown as one '?' per character"
s_match "^  3 $SPIN_ASCII Page  long-desc-start x+~  ($ELAPSED)\$" "ascii: the long text is cut with '~'"
s_match '^ Overall -+  0/6  0%  ' "ascii: the empty bar is drawn with '-'"
s_no_match '[^ -~]' "ascii: only ASCII characters on screen"
s_panel_fits $((COLS - 1)) "ascii: every panel line fits in width-1 columns"
tmux_screen -e
s_not_contains "$ESC" "ascii: NO_COLOR: no colour or attribute on screen"
touch "$D/print" "$D/finish-line" "$D/release"
tmux_wait_exit "$QUICK" "ascii: the run ends once released"
tmux_expect_rc 1 "ascii: an item failed"
tmux_expect_cursor 1 "ascii: the cursor is visible again after the run"
s_count_is '^  [0-9]+ ' 0 "ascii: final frame: no worker rows (all idle by then)"
s_match '^ Overall #+  6/6  100%  ' "ascii: the full bar is drawn with '#'"
s_match '^aqueue: 8 processed, 1 failed, 0 retried in [0-9.]+ s \([0-9]+ items/s\)$' "ascii: the summary line"
s_match '^partial-start partial-end$' "ascii: printed lines whole"
s_above '^print-line from Page 1$' '^ Workers' "ascii: printed lines above the panel"
tmux_screen -e
s_not_contains "$ESC" "ascii: NO_COLOR: no colour in the final frame (failed counts included)"
tmux_kill_run

finish
