# End-to-end: the display never stalls the run when its terminal or pipe does
# not take output. The run's items go on (a file records each), frames and
# progress lines are dropped meanwhile, and once the terminal takes output
# again every printed line arrives, in order, with the final frame and the
# summary:
#   - a terminal stopped with XOFF (Ctrl-S, as a paused pager or a full pty)
#     in tmux, then resumed with Ctrl-Q;
#   - stderr a pipe (a fifo) whose reader waits before reading, with 200 KB of
#     stderr lines written first (more than the pipe holds), --progress json;
#     after the run the shell's stderr is still in blocking mode.
# Fixture: display_stall.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/tmux.sh
source "$(dirname "$0")/lib/tmux.sh"

N=20

wait_lines() { # file, count, seconds, description
  local deadline=$(($((${EPOCHREALTIME/[.,]/} / 1000)) + $3 * 1000))
  while [ "$( (cat "$1" 2>/dev/null || true) | wc -l)" -lt "$2" ]; do
    [ "$((${EPOCHREALTIME/[.,]/} / 1000))" -ge "$deadline" ] &&
      tfail "$4: $(basename "$1") has $( (cat "$1" 2>/dev/null || true) | wc -l) lines, not $2, after $3 s"
    nap 0.05
  done
  pass "$4"
}

# ================ a pipe nobody reads for a while: the start ================
# (The run waits for its reader while the tty part runs: the two go side by
# side, and the pipe's checks come after the tty's.)
D="$TMP/pipe"
mkdir "$D"
touch "$D/start"
mkfifo "$TMP/fifo"
# The reader opens the fifo at once, and reads only once "go" exists.
(
  exec 3<"$TMP/fifo"
  while [ ! -e "$TMP/go" ]; do nap 0.05; done
  cat <&3 >"$TMP/err.txt"
) &
BG_PIDS="$BG_PIDS $!"
reader=$!
PIPE_CMD="$AQUEUE_RUN --progress json display_stall.lua $D $N 200000 2>fifo"
(
  {
    "$AQUEUE_RUN" --progress json "$FIX/display_stall.lua" "$D" "$N" 200000 >"$TMP/out.txt"
    echo $? >"$TMP/rc"
    # The shell's stderr (the same open file as aqueue-run's): still blocking?
    "$PY" -c 'import fcntl, os; print(1 if fcntl.fcntl(2, fcntl.F_GETFL) & os.O_NONBLOCK else 0)' >"$TMP/nonblock"
  } 2>"$TMP/fifo"
) &
BG_PIDS="$BG_PIDS $!"

# ======================= a stopped terminal =======================
D="$TMP/tty"
mkdir "$D"
tmux_run tty 100 40 -- "$FIX/display_stall.lua" "$D" "$N" 0
tmux_wait_screen_re '^ Workers  1/2 busy' "$START_WAIT" "tty: the panel is drawn (the gate waits)"
tmux_keys C-s # XOFF: the terminal takes no more output
nap 0.5     # (the line discipline has taken the key; if not, the run ends early and the test fails)
touch "$D/start"
# Every job prints and changes its row: with writes that block, the first one
# would stop the whole run here.
wait_lines "$D/progress" "$N" 20 "tty: all $N jobs ran while the terminal was stopped"
[ ! -e "$D/finished" ] || tfail "tty: run_queue returned before its last frame and summary were written"
pass "tty: run_queue waits to write its last frame and summary"
tmux_running || tfail "tty: aqueue-run ended while its terminal was stopped"
tmux_keys C-q # XON
tmux_wait_exit "$QUICK" "tty: the run ends once the terminal takes output again"
tmux_expect_rc 0 "tty: all items succeeded"
tmux_expect_cursor 1 "tty: the cursor is visible again"
s_match "^aqueue: $((N + 1)) processed, 0 failed, 0 retried in " "tty: the summary"
s_above '^ Overall ' "^aqueue: $((N + 1)) processed" "tty: after the final frame"
s_count_is '^ Workers ' 1 "tty: one panel on screen (the final frame)"
expect_eq "$(tm capture-pane -p -J -S - -t "$PANE" | u8grep -E '^printed by job [0-9]+$' | sed 's/^printed by job //' | tr '\n' ' ')" \
  "$(tr '\n' ' ' <"$D/progress")" "tty: every printed line arrived, once, in the order printed"
tmux_kill_run

# ======================= a pipe nobody reads for a while =======================
D="$TMP/pipe"
LAST_CMD="$PIPE_CMD"
wait_lines "$D/progress" "$N" 20 "pipe: all $N jobs ran while nobody read stderr (200 KB waiting)"
[ ! -e "$TMP/rc" ] || fail "pipe: aqueue-run ended before its summary could be written"
pass "pipe: aqueue-run waits to write the rest and its summary"
touch "$TMP/go"
deadline=$(($((${EPOCHREALTIME/[.,]/} / 1000)) + 20000))
while [ ! -e "$TMP/nonblock" ] || kill -0 "$reader" 2>/dev/null; do
  [ "$((${EPOCHREALTIME/[.,]/} / 1000))" -ge "$deadline" ] && fail "pipe: the run did not end after the reader read"
  nap 0.05
done
RC="$(cat "$TMP/rc")"
ERR="$(cat "$TMP/err.txt")"
OUT="$(cat "$TMP/out.txt")"
expect_rc 0 "pipe: all items succeeded"
expect_eq "$(grep -c '^stderr line [0-9]* of the gate \.\.\.\.$' "$TMP/err.txt")" 6250 "pipe: every stderr line arrived"
expect_eq "$(grep '^stderr line' "$TMP/err.txt" | sed 's/^stderr line 0*\([0-9]*\) .*/\1/' | awk '$1 != NR' | head -1)" "" \
  "pipe: in order"
last="$(tail -1 "$TMP/err.txt")"
expect_match "$last" '^\{"type":"summary",.*"processed":'"$((N + 1))"',' "pipe: the summary is the last line"
expect_eq "$(grep -c '^printed by job' "$TMP/out.txt")" "$N" "pipe: stdout (a file) has every printed line"
expect_eq "$(cat "$TMP/nonblock")" 0 "pipe: the shell's stderr is still in blocking mode after the run"
expect_eq "$(grep -vc '^stderr line\|^{"type":"\(progress\|summary\)"' "$TMP/err.txt")" 0 \
  "pipe: nothing else, no progress line cut into a stderr line"

finish
