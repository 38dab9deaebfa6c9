# End-to-end: aqueue.feed's exactly-once guarantee under kill -9 (SPEC
# section 11). A persisted run of 4000 items (fixtures/feed_kill.lua), each
# writing one record to a JSONL feed and to a CSV feed (every 7th item also
# writes one in a first attempt that then fails), is started with --state and
# killed with SIGKILL at random moments, at least MIN_KILLS times while it is
# unfinished, then rerun until a run ends by itself, then once more (the run
# is complete: nothing is written). Afterwards:
#   - the JSONL file parses line by line and holds every item exactly once,
#     each from its successful attempt (a failed attempt's record never
#     reaches the file);
#   - the CSV file has its header once, on the first line, and the same rows,
#     their quoted commas, quotes and newlines intact.
# Cheap on CPU: one process per run, one Python check at the end.
# Reproduce a failing order of kills with AQUEUE_E2E_SEED=<the printed seed>.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/kills.sh
source "$(dirname "$0")/lib/kills.sh"

F="$FIX/feed_kill.lua"
STATE="$TMP/run.db"
JSONL="$TMP/out.jsonl"
CSV="$TMP/out.csv"
MIN_KILLS=10
MAX_EXTRA_KILLS=5
ITEMS=4000
RATE=1000 # items per second at most: workers / sleep of the fixture (checked below)
kills=0
n=0

# One run killed after DELAY_MS (unless it ends first): sets KILLED and RC.
kill_run() { # delay_ms
  n=$((n + 1))
  start_bg "r$n" "$AQUEUE_RUN" --state "$STATE" --progress none "$F" "$JSONL" "$CSV"
  kill_bg_after "$1"
  kills=$((kills + KILLED))
  bg_output
  if [[ "$ERR" =~ $SAN_RE ]]; then
    keep_evidence
    fail "run $n: error output: $(printf '%s\n' "$ERR" | head -5)"
  fi
}

# Lines in the JSONL file so far (one process: no per-line work in bash).
lines_so_far() {
  [ -f "$JSONL" ] || { echo 0; return; }
  wc -l <"$JSONL"
}

# --- MIN_KILLS kills while the run is unfinished: the delays are random, and
# capped so that the items left need more time than the kills still to land.
while [ "$kills" -lt "$MIN_KILLS" ]; do
  delay=$(((60 + RANDOM % 341) * SLOW_PCT / 100))
  remaining=$((ITEMS - $(lines_so_far)))
  [ "$remaining" -lt 0 ] && remaining=0
  cap=$((remaining * 1000 * SLOW_PCT / 100 / RATE / (MIN_KILLS - kills + 1)))
  [ "$cap" -lt 20 ] && cap=20
  [ "$delay" -gt "$cap" ] && delay=$cap
  kill_run "$delay"
  echo "# run $n: kill after ${delay} ms: $([ "$KILLED" = 1 ] && echo killed || echo "ended, status $RC"), $(lines_so_far) lines"
  if [ "$KILLED" = 0 ]; then
    fail "run $n ended by itself (status $RC) before $MIN_KILLS kills had landed (only $kills)"
  fi
  [ "$n" -le $((MIN_KILLS * 3)) ] || fail "too many runs to land $MIN_KILLS kills"
done
pass "$MIN_KILLS kills with SIGKILL landed while the run was unfinished"

# --- random kills, uncapped, until a run ends by itself; else one uninterrupted run
finished=0
extra=0
while [ "$extra" -lt "$MAX_EXTRA_KILLS" ]; do
  kill_run $(((60 + RANDOM % 341) * SLOW_PCT / 100))
  if [ "$KILLED" = 0 ]; then
    echo "# run $n: ended by itself, status $RC"
    expect_rc 0 "run $n, which ended before its kill"
    finished=1
    break
  fi
  extra=$((extra + 1))
done
if [ "$finished" = 0 ]; then
  run "$AQUEUE_RUN" --state "$STATE" --progress none "$F" "$JSONL" "$CSV"
  expect_rc 0 "an uninterrupted run after $kills kills"
fi
expect_match "$OUT" '^done processed=[0-9]+ failed=0$' "the last run finished with nothing failed"
# (a killed run may not have come as far as printing them)
expect_eq "${OUT%%$'\n'*}" "F items=$ITEMS workers=20 sleep=0.02" "the fixture's figures match ITEMS and RATE"
expect_no_match "$ERR" "$SAN_RE" "the last run: no sanitizer report or error"

# --- once more: the run is complete, the feeds are left as they are
before="$(cksum <"$JSONL") $(cksum <"$CSV")"
run "$AQUEUE_RUN" --state "$STATE" --progress none "$F" "$JSONL" "$CSV"
expect_rc 0 "a rerun of the complete run"
expect_match "$OUT" '^done processed=0 failed=0$' "the rerun of the complete run processed nothing"
expect_eq "$(cksum <"$JSONL") $(cksum <"$CSV")" "$before" "the rerun left both feeds as they were"
echo "# $kills kills, $n killed or finished runs"

# --- the feeds against the guarantee
result="$("$PY" - "$JSONL" "$CSV" "$ITEMS" <<'PY'
import csv, json, sys
jsonl_path, csv_path, items = sys.argv[1], sys.argv[2], int(sys.argv[3])
problems = []
def text_of(n):
    return 'item %d, "quoted"\nsecond line' % n
def check(kind, records):
    seen = {}
    for i, r in enumerate(records, 1):
        seen.setdefault(r["n"], []).append(i)
        want_attempt = 2 if r["n"] % 7 == 0 else 1
        if r["attempt"] != want_attempt or r["text"] != text_of(r["n"]):
            problems.append("%s record %d is not item %d's successful attempt: %r" % (kind, i, r["n"], r))
            break
    twice = {n: at for n, at in seen.items() if len(at) > 1}
    missing = [n for n in range(1, items + 1) if n not in seen]
    extra = [n for n in seen if not 1 <= n <= items]
    if twice:
        problems.append("%s: %d items written more than once (item: record numbers), e.g. %r"
                        % (kind, len(twice), dict(list(twice.items())[:5])))
    if missing:
        problems.append("%s: %d items missing, e.g. %r" % (kind, len(missing), missing[:10]))
    if extra:
        problems.append("%s: records of items that do not exist: %r" % (kind, extra[:10]))
records = []
with open(jsonl_path, "rb") as f:
    for i, line in enumerate(f, 1):
        if not line.endswith(b"\n"):
            problems.append("JSONL line %d has no end of line: %r" % (i, line[:80]))
            break
        try:
            records.append(json.loads(line))
        except ValueError as e:
            problems.append("JSONL line %d is not JSON (%s): %r" % (i, e, line[:80]))
            break
check("JSONL", records)
with open(csv_path, newline="") as f:
    rows = list(csv.reader(f))
if not rows or rows[0] != ["n", "attempt", "text"]:
    problems.append("CSV: the first row is not the header: %r" % (rows[:1],))
headers = sum(1 for r in rows if r == ["n", "attempt", "text"])
if headers != 1:
    problems.append("CSV: %d header rows" % headers)
try:
    check("CSV", [{"n": int(r[0]), "attempt": int(r[1]), "text": r[2]} for r in rows[1:]])
except (ValueError, IndexError) as e:
    problems.append("CSV: a row is not n,attempt,text (%s)" % e)
with open(csv_path, "rb") as f:
    data = f.read()
if data.count(b"\r\n") != len(rows) or not data.endswith(b"\r\n"):
    problems.append("CSV: %d CRLF line ends for %d rows" % (data.count(b"\r\n"), len(rows)))
for p in problems:
    print("FAIL " + p)
if not problems:
    print("PASS %d JSONL records and %d CSV rows, each item once" % (len(records), len(rows) - 1))
PY
)"
case "$result" in
PASS*) pass "the feeds: ${result#PASS }" ;;
*)
  keep_evidence
  fail "the feeds break the exactly-once guarantee (state: $STATE):
$result" ;;
esac

finish
