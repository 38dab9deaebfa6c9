# End-to-end: the state file (--state), seen from outside.
#   resume:   a run killed (SIGKILL) while its parent waits, after its children
#             finished and were committed: the rerun runs the parent again,
#             whose children are recognized (not run again); its hook runs once;
#   complete: a rerun of a finished run does nothing and says so;
#   ctrl-c:   a run stopped by Ctrl-C keeps its queued items: the rerun runs
#             exactly those, so every item ran once;
#   status / retry-failed / fresh, the command-line checks, a missing class,
#   an item that cannot be saved, files that are not ours (left untouched),
#   a file in use, and a disk that refuses writes.
# Fixture: state_resume.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

R="$FIX/state_resume.lua"

# ============================ resume after kill -9 ============================
S="$TMP/tree.state"
LOG="$TMP/tree.log"
start_bg hang "$AQUEUE_RUN" --progress none --state "$S" "$R" hang "$LOG"
wait_for_text "$LOG" "parent children done" "$START_WAIT" "resume: the parent's children finished"
wait_for_text "$LOG" "committed" "$QUICK" "resume: the children's completion is committed"
kill -KILL "$BG_PID"
wait "$BG_PID" 2>/dev/null
expect_eq "$(count_lines "$(cat "$LOG")" '^child ')" 3 "resume: 3 children ran before the kill"
expect_eq "$(count_lines "$(cat "$LOG")" '^parent hook')" 0 "resume: no hook before the kill"

run "$AQUEUE_RUN" --progress none --state "$S" "$R" finish "$LOG"
expect_rc 0 "resume: the rerun succeeds"
expect_contains "$ERR" "resuming the run in $S: 1 items to run" "resume: says what it resumes"
expect_contains "$OUT" "processed=1 failed=0 resumed=true" "resume: only the parent ran again"
L="$(cat "$LOG")"
expect_eq "$(count_lines "$L" '^child ')" 3 "resume: no child ran twice"
expect_eq "$(count_lines "$L" '^parent start')" 2 "resume: the parent ran again"
expect_eq "$(count_lines "$L" '^parent hook')" 1 "resume: the hook ran once"
expect_eq "$(printf '%s\n' "$L" | tail -1)" "parent hook" "resume: the hook ran last"

# =========================== a finished run is kept ===========================
run "$AQUEUE_RUN" --progress none --state "$S" "$R" finish "$LOG"
expect_rc 0 "complete: a rerun succeeds"
expect_contains "$ERR" "the run in $S is complete (4 done, 0 failed): nothing to do" "complete: says so"
expect_eq "$(count_lines "$(cat "$LOG")" '^parent start')" 2 "complete: nothing ran"

run "$AQUEUE_RUN" --state "$S" --status
expect_rc 0 "status: exit 0"
expect_contains "$OUT" "complete: 0 to run, 4 done, 0 failed" "status: the counts"
expect_match "$OUT" '^  Child +0 +3 +0$' "status: the counts of a class"

# ======================= failed items: --status, --retry-failed =======================
S="$TMP/fail.state"
run "$AQUEUE_RUN" --progress none --state "$S" "$R" fail "$TMP/fail.log"
expect_rc 1 "failed items: the run fails"
run "$AQUEUE_RUN" --state "$S" --status
expect_contains "$OUT" "complete: 0 to run, 2 done, 2 failed" "status: the counts"
expect_match "$OUT" '^  Flaky #2 \{"n":2\}: broken 2$' "status: a failed item with its fields and error"
expect_match "$OUT" '^  Flaky #4 \{"n":4\}: broken 4$' "status: the other one"
run "$AQUEUE_RUN" --state "$S" --retry-failed
expect_rc 0 "retry-failed without a script"
expect_contains "$ERR" "2 failed items of $S put back" "retry-failed: says how many"
run "$AQUEUE_RUN" --progress none --state "$S" "$R" fail_fixed "$TMP/fail.log"
expect_rc 0 "retry-failed: the rerun succeeds"
expect_contains "$OUT" "processed=2 failed=0 resumed=true" "retry-failed: only the failed items ran again"
expect_eq "$(sort "$TMP/fail.log" | tr '\n' ' ')" "flaky 1 flaky 2 flaky 3 flaky 4 " "retry-failed: each item done once"

# ========================= os.exit commits what was done =========================
run "$AQUEUE_RUN" --progress none --state "$TMP/exit.state" "$R" exit "$TMP/exit.log"
expect_rc 3 "os.exit: the status it gave"
run "$AQUEUE_RUN" --progress none --state "$TMP/exit.state" "$R" exit_rest "$TMP/exit.log"
expect_contains "$OUT" "processed=7 failed=0 resumed=true" "os.exit: the items done before it are not run again"
expect_eq "$(sort -u "$TMP/exit.log" | wc -l) $(wc -l <"$TMP/exit.log")" "10 10" "os.exit: every item ran once"

# ==================== dedup keys are kept across a restart ====================
S="$TMP/keys.state"
LOG="$TMP/keys.log"
start_bg keys "$AQUEUE_RUN" --progress none --state "$S" "$R" keys "$LOG"
wait_for_text "$LOG" "keyed a" "$START_WAIT" "keys: the keyed item ran"
wait_for_text "$LOG" "committed" "$QUICK" "keys: the keyed item's completion is committed"
kill -KILL "$BG_PID"
wait "$BG_PID" 2>/dev/null
run "$AQUEUE_RUN" --progress none --state "$S" "$R" keys_again "$LOG"
expect_rc 0 "keys: the rerun succeeds"
expect_eq "$(count_lines "$(cat "$LOG")" '^a: duplicate$')" 1 "keys: the key seen before the restart is a duplicate"
expect_eq "$(count_lines "$(cat "$LOG")" '^keyed a$')" 1 "keys: the keyed item ran once"

# ============================ Ctrl-C keeps the queue ============================
S="$TMP/many.state"
LOG="$TMP/many.log"
start_bg many "$AQUEUE_RUN" --progress none --state "$S" "$R" many "$LOG"
wait_for_text "$LOG" "slow 5" "$START_WAIT" "ctrl-c: items are running"
kill -INT "$BG_PID"
wait_bg "$QUICK" "ctrl-c: the run stops"
expect_eq "$RC" 130 "ctrl-c: exit 130"
first=$(count_lines "$(cat "$LOG")" '^slow ')

# a missing class is named; the run is kept
run "$AQUEUE_RUN" --progress none --state "$S" "$R" noslow "$LOG"
expect_rc 1 "missing class: the rerun fails"
expect_contains "$ERR" "its items are of class Slow, which this script does not define" "missing class: named"
run "$AQUEUE_RUN" --state "$S" --status
expect_contains "$OUT" "unfinished: $((40 - first)) to run" "missing class: the run is kept"

run "$AQUEUE_RUN" --progress none --state "$S" "$R" many_quick "$LOG"
expect_rc 0 "ctrl-c: the rerun succeeds"
expect_contains "$OUT" "processed=$((40 - first)) failed=0 resumed=true" "ctrl-c: the rerun ran the rest"
expect_eq "$(sort "$LOG" | uniq -d | wc -l)" 0 "ctrl-c: no item ran twice"
expect_eq "$(sort -u "$LOG" | wc -l)" 40 "ctrl-c: every item ran"

# ===================== status, retry-failed, fresh, usage =====================
run "$AQUEUE_RUN" --state "$S" --fresh --progress none "$R" many_quick "$TMP/fresh.log"
expect_rc 0 "fresh: succeeds"
expect_eq "$(wc -l <"$TMP/fresh.log")" 40 "fresh: the run started anew"

run "$AQUEUE_RUN" --fresh "$R" many "$LOG"
expect_rc 2 "usage: --fresh without --state"
expect_contains "$ERR" "--fresh needs --state FILE" "usage: says what is missing"
run "$AQUEUE_RUN" --state "$S" --status "$R"
expect_rc 2 "usage: --status with a script"
run "$AQUEUE_RUN" --state "$TMP/none.state" --status
expect_rc 2 "status: a file that does not exist"
expect_contains "$ERR" "$TMP/none.state does not exist" "status: names the missing file"
[ ! -e "$TMP/none.state" ] && pass "status: creates no file" || fail "status: created $TMP/none.state"

run "$AQUEUE_RUN" --progress none --state "$TMP/bad.state" "$R" bad "$TMP/bad.log"
expect_rc 1 "unsavable: the script fails"
expect_contains "$ERR" "Slow.callback cannot be saved in the state file: it is a function" "unsavable: names class and field"

# ============================ files that are not ours ============================
printf 'just some text\n' >"$TMP/text.state"
cp "$TMP/text.state" "$TMP/text.orig"
run "$AQUEUE_RUN" --progress none --state "$TMP/text.state" "$R" finish "$TMP/x.log"
expect_rc 1 "foreign: refused"
expect_contains "$ERR" "$TMP/text.state is not an aqueue state file" "foreign: says what it is"
cmp -s "$TMP/text.state" "$TMP/text.orig" && pass "foreign: left untouched" || fail "foreign: the file changed"

"$PY" - "$TMP/other.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("create table t(a)"); c.execute("insert into t values (1)"); c.commit()
PY
cp "$TMP/other.db" "$TMP/other.orig"
run "$AQUEUE_RUN" --progress none --state "$TMP/other.db" "$R" finish "$TMP/x.log"
expect_rc 1 "other program's database: refused"
expect_contains "$ERR" "is a database of another program" "other program's database: says so"
cmp -s "$TMP/other.db" "$TMP/other.orig" && pass "other database: untouched" || fail "other database: changed"

cp "$TMP/many.state" "$TMP/newer.state"
"$PY" - "$TMP/newer.state" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("pragma journal_mode = delete"); c.execute("pragma user_version = 99"); c.close()
PY
cp "$TMP/newer.state" "$TMP/newer.orig"
run "$AQUEUE_RUN" --state "$TMP/newer.state" --status
expect_rc 1 "newer: refused"
expect_contains "$ERR" "written by a newer aqueue (file format 99" "newer: says so"
cmp -s "$TMP/newer.state" "$TMP/newer.orig" && pass "newer: untouched" || fail "newer: changed"

head -c 3000 "$TMP/newer.orig" >"$TMP/cut.state"
"$PY" - "$TMP/cut.state" <<'PY'
import sys
# back to the current format, so only the damage is left to find
b = bytearray(open(sys.argv[1], "rb").read()); b[60:64] = (1).to_bytes(4, "big"); open(sys.argv[1], "wb").write(b)
PY
cp "$TMP/cut.state" "$TMP/cut.orig"
run "$AQUEUE_RUN" --progress none --state "$TMP/cut.state" "$R" finish "$TMP/x.log"
expect_rc 1 "damaged: refused"
expect_contains "$ERR" "$TMP/cut.state is damaged" "damaged: says so"
cmp -s "$TMP/cut.state" "$TMP/cut.orig" && pass "damaged: untouched" || fail "damaged: changed"

# ================================ a file in use ================================
start_bg inuse "$AQUEUE_RUN" --progress none --state "$TMP/inuse.state" "$R" hang "$TMP/inuse.log"
wait_for_text "$TMP/inuse.log" "parent children done" "$START_WAIT" "in use: the first run holds the file"
run "$AQUEUE_RUN" --progress none --state "$TMP/inuse.state" "$R" finish "$TMP/inuse.log"
expect_rc 1 "in use: a second run is refused"
expect_contains "$ERR" "$TMP/inuse.state is in use by another process" "in use: says so"
kill -KILL "$BG_PID"
wait "$BG_PID" 2>/dev/null

# ============================ a read-only state file ============================
# (root writes whatever the mode says: the run is then made as "nobody")
chmod 711 "$TMP" && mkdir "$TMP/ro" && chmod 777 "$TMP/ro"
cp "$TMP/many.state" "$TMP/ro/ro.state"
chmod 444 "$TMP/ro/ro.state"
cp "$TMP/ro/ro.state" "$TMP/ro.orig"
as_user=()
[ "$(id -u)" = 0 ] && as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
run "${as_user[@]}" "$AQUEUE_RUN" --progress none --state "$TMP/ro/ro.state" "$R" many "$TMP/ro/ro.log"
expect_rc 1 "read-only: refused"
expect_contains "$ERR" "cannot write $TMP/ro/ro.state: the file is read-only" "read-only: says so"
cmp -s "$TMP/ro/ro.state" "$TMP/ro.orig" && pass "read-only: untouched" || fail "read-only: changed"

# ====================== a disk that refuses to grow the file ======================
# The file may grow to 64 KiB only (writes beyond fail with EFBIG instead of
# killing the process): the run stops with a clear error, and what was
# committed is still there to resume.
run bash -c "trap '' XFSZ; ulimit -f 64; exec \"\$0\" \"\$@\"" "$AQUEUE_RUN" --progress none \
  --state "$TMP/full.state" "$R" many "$TMP/full.log"
expect_rc 1 "full disk: the run fails"
expect_match "$ERR" "state file $TMP/full.state: cannot write: .*; stopping" "full disk: says so"
finish
