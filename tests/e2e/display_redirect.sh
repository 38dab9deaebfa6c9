# End-to-end: where the live display and the script's output go when stdout
# or stderr is not the terminal, and the --progress modes on a terminal.
#   - stdout into a file (aqueue-run x.lua > out.txt, in tmux): the prints go
#     to the file untouched; the panel stays on the terminal with the
#     io.stderr:write lines and error tracebacks above it.
#   - stderr into a file (auto: plain): no panel, no escape sequence; the
#     prints on the terminal as written.
#   - --progress plain / none on a terminal: no panel, the cursor never hidden.
#   - --progress tty with stderr into a file: the panel is drawn there anyway.
# Fixture: display_panel.lua (see there for the steps).
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/tmux.sh
source "$(dirname "$0")/lib/tmux.sh"

P="$FIX/display_panel.lua"
COLS=100
ROWS=40
ESC=$'\033'

# What display_panel.lua writes to stdout, byte for byte, when it is not the
# panel's terminal (no newline is added to "unfinished-at-end").
STDOUT_WANT="print-line from Page 1
stdout-write line
partial-start partial-end
unfinished-at-endtail-after run_queue processed=8 failed=1"

# A fresh control folder with every step already allowed (runs straight through).
run_through_dir() { # name
  mkdir "$TMP/$1"
  touch "$TMP/$1/print" "$TMP/$1/finish-line" "$TMP/$1/release"
}

# --- stdout into a file ---
D="$TMP/out"
mkdir "$D"
tmux_run stdout_file "$COLS" "$ROWS" ">$TMP/out.txt" -- "$P" "$D"
tmux_wait_file "$D/ready" "$START_WAIT" "stdout file: the pages run (ready)"
tmux_wait_screen_re '^   Image +6 +0 +0 +0 +0 +6$' "$QUICK" "stdout file: the panel is on the terminal"
tmux_expect_cursor 0 "stdout file: the cursor is hidden while the panel is shown"
touch "$D/print"
tmux_wait_file "$D/printed" "$QUICK" "stdout file: Page 1 printed (printed)"
tmux_wait_screen "stderr-write line" "$QUICK" "stdout file: the io.stderr:write line is on the terminal"
s_above '^stderr-write line$' '^ Workers ' "stdout file: ... above the panel"
s_not_contains "print-line" "stdout file: print does not reach the terminal"
s_not_contains "stdout-write" "stdout file: io.stdout:write does not reach the terminal"
touch "$D/finish-line" "$D/release"
tmux_wait_exit "$QUICK" "stdout file: the run ends"
tmux_expect_rc 1 "stdout file: an item failed"
tmux_expect_cursor 1 "stdout file: the cursor is visible again"
s_count_is '^ Workers ' 1 "stdout file: one panel (the final frame)"
s_match '^aqueue: Image:process failed: .*image broken 2-1$' "stdout file: the traceback is on the terminal"
s_above '^aqueue: Image:process failed' '^ Workers ' "stdout file: ... above the panel"
s_match '^aqueue: 8 processed, 1 failed, 0 retried in [0-9.]+ s \([0-9]+ items/s\)$' "stdout file: the summary on the terminal"
s_no_match 'partial|unfinished|tail-after' "stdout file: nothing of stdout on the terminal"
OUT="$(cat "$TMP/out.txt")"
expect_eq "$OUT" "$STDOUT_WANT" "stdout file: the file has the prints, untouched"
expect_not_contains "$OUT" "$ESC" "stdout file: no escape sequence in the file"
tmux_kill_run

# --- stderr into a file: auto is plain ---
run_through_dir err
tmux_run stderr_file "$COLS" "$ROWS" "2>$TMP/err.txt" -- "$P" "$TMP/err"
tmux_wait_exit "$START_WAIT" "stderr file: the run ends"
tmux_expect_rc 1 "stderr file: an item failed"
tmux_expect_cursor 1 "stderr file: the cursor is visible"
s_not_contains " Workers" "stderr file: no panel on the terminal"
s_match '^print-line from Page 1$' "stderr file: print on the terminal"
s_match '^partial-start partial-end$' "stderr file: io.write pieces on the terminal"
s_match '^unfinished-at-endtail-after run_queue processed=8 failed=1$' \
  "stderr file: stdout as written (no newline added at the end of the run)"
ERR="$(cat "$TMP/err.txt")"
expect_not_contains "$ERR" "$ESC" "stderr file: no escape sequence in the file"
expect_not_contains "$ERR" " Workers" "stderr file: no panel in the file"
expect_match "$ERR" '^stderr-write line$' "stderr file: the io.stderr:write line is in the file"
expect_match "$ERR" '^aqueue: Image:process failed: .*image broken 2-1$' "stderr file: the traceback is in the file"
expect_match "$ERR" '^aqueue: 8 processed, 1 failed, 0 retried in [0-9.]+ s \([0-9]+ items/s\)$' \
  "stderr file: the summary is in the file"
expect_match "$ERR" '^  failed: Image:process: .*image broken 2-1$' "stderr file: with the failure"
tmux_kill_run

# --- --progress plain and none on a terminal ---
for mode in plain none; do
  run_through_dir "$mode"
  TMUX_NO_GO=1 tmux_run "$mode" "$COLS" "$ROWS" -- --progress "$mode" "$P" "$TMP/$mode"
  tmux_record "$TMP/$mode.bytes"
  nap 0.1
  tmux_go
  tmux_wait_exit "$START_WAIT" "--progress $mode on a terminal: the run ends"
  tmux_expect_rc 1 "--progress $mode: an item failed"
  tmux_expect_cursor 1 "--progress $mode: the cursor is visible"
  nap 0.1
  expect_eq "$(grep -ac "$ESC\\[?25l" "$TMP/$mode.bytes")" 0 "--progress $mode: the cursor is never hidden"
  s_not_contains " Workers" "--progress $mode: no panel"
  s_match '^stderr-write line$' "--progress $mode: io.stderr:write straight to the terminal"
  s_match '^aqueue: Image:process failed: .*image broken 2-1$' "--progress $mode: the traceback"
  if [ "$mode" = plain ]; then
    # stdout and stderr are one terminal: the display writes both, in order,
    # and the summary starts its own line after the unfinished one.
    s_match '^unfinished-at-end$' "--progress plain: the unfinished line, ended by the summary"
    s_match '^aqueue: 8 processed, 1 failed, 0 retried in [0-9.]+ s \([0-9]+ items/s\)$' "--progress plain: the summary"
    s_above '^unfinished-at-end$' '^aqueue: 8 processed' "--progress plain: the unfinished line before the summary"
    s_above '^aqueue: 8 processed' '^tail-after run_queue processed=8 failed=1$' "--progress plain: the script's later output after it"
  else
    s_match '^unfinished-at-endtail-after run_queue processed=8 failed=1$' "--progress $mode: stdout as written"
    s_no_match '^aqueue: [0-9]+ processed' "--progress none: no summary"
    s_no_match '^  failed: ' "--progress none: no failure list"
  fi
  tmux_kill_run
done

# --- --progress tty with stderr into a file ---
run_through_dir tty
run "$AQUEUE_RUN" --progress tty "$P" "$TMP/tty"
expect_rc 1 "--progress tty into a file: an item failed"
expect_eq "$(head -c 6 "$TMP/.err" | od -An -c | tr -d ' \n')" '033[?25l' \
  "--progress tty into a file: stderr starts by hiding the cursor"
expect_contains "$ERR" " Workers" "--progress tty into a file: the panel is drawn"
expect_contains "$ERR" "${ESC}[?25h" "--progress tty into a file: the cursor is shown again"
expect_match "${ERR//"${ESC}[?25h"/}" '^aqueue: 8 processed, 1 failed, 0 retried in [0-9.]+ s \([0-9]+ items/s\)$' \
  "--progress tty into a file: the summary on its own line (after the cursor is shown)"
expect_eq "$OUT" "$STDOUT_WANT" "--progress tty into a file: stdout (a file too) untouched"

finish
