# End-to-end: what a script prints to stdout reaches a file or a pipe line by
# line as it is printed (stdout is line-buffered), before the run ends, outside
# and inside run_queue: print, io.write, io.stdout:write.
# Fixture: print_flush.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"


# wait_content FILE TEXT SECONDS DESCRIPTION: waits until FILE holds exactly
# TEXT (the script waits meanwhile: block buffering never gets there).
wait_content() {
  local deadline=$((SECONDS + $3))
  while [ "$(cat "$1" 2>/dev/null)" != "$2" ]; do
    [ "$SECONDS" -ge "$deadline" ] && fail "$4: expected [$2], got [$(cat "$1" 2>/dev/null)]"
    nap 0.02
  done
  pass "$4"
}

for target in file pipe; do
  D="$TMP/$target"
  mkdir "$D"
  if [ "$target" = file ]; then
    start_bg "$target" "$AQUEUE_RUN" "$FIX/print_flush.lua" "$D"
    OUTFILE="$TMP/$target.out"
  else
    OUTFILE="$TMP/$target.piped"
    start_bg "$target" bash -c '"$1" "$2" "$3" | cat >"$4"' _ "$AQUEUE_RUN" "$FIX/print_flush.lua" "$D" "$OUTFILE"
  fi
  deadline=$((SECONDS + START_WAIT))
  while [ ! -e "$D/printed-1" ]; do
    [ "$SECONDS" -ge "$deadline" ] && fail "$target: printed-1 did not appear"
    nap 0.02
  done
  wait_content "$OUTFILE" "print before the run
io.write before the run" "$QUICK" "$target: the lines printed before the run are there while the script waits"
  touch "$D/go-1"
  while [ ! -e "$D/printed-2" ]; do
    [ "$SECONDS" -ge "$deadline" ] && fail "$target: printed-2 did not appear"
    nap 0.02
  done
  wait_content "$OUTFILE" "print before the run
io.write before the run
print in an item
io.write in an item
io.stdout:write in an item" "$QUICK" "$target: the lines printed in an item are there while it waits"
  touch "$D/go-2"
  wait_bg "$QUICK" "$target: the run ends"
  expect_rc 0 "$target: exit status"
  expect_eq "$(tail -1 "$OUTFILE")" "print after the run" "$target: the line after the run"
done

finish
