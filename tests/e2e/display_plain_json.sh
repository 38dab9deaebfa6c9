# End-to-end: the display's modes for logs and machines (stderr into a file).
#   plain (auto when stderr is not a terminal, or --progress plain): a line
#     "aqueue: <elapsed>  done/total (pct%)  R items/s  ETA x  running n
#     queued n  failed n  retried n" every 2 s, then the summary with the
#     last (up to 5) failures and a count of the earlier ones;
#   json (--progress json, run_queue{progress="json"}): one JSON object a
#     line, type "progress" every second, then type "summary", with figures
#     checked against what the fixture did; a set_desc text with quotes, a
#     backslash, a newline, a tab and a control character stays valid JSON;
#   none: nothing from the display, not even the summary (item tracebacks
#     still printed);
#   an unknown mode: exit 2 (command line) or an error (run_queue).
# The lines are parsed with python3 (json.loads).
# Fixture: display_steady.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

S="$FIX/display_steady.lua"

# py_checks WHAT FILE ARGS... <<'PY' code PY: runs the python code with the
# file's lines in `lines` and ARGS in `args`; the code calls check(cond,
# description, detail) for each check (one "ok" line per description here,
# however many lines it was checked on; the first failure fails the test).
py_checks() {
  local what="$1" file="$2"
  shift 2
  local code result line
  code="$(cat)"
  result="$("$PY" - "$file" "$@" 2>&1 <<PYEOF
import json, math, re, sys
lines = open(sys.argv[1], encoding="utf-8", errors="strict").read().split("\n")
if lines and lines[-1] == "":
    lines.pop()
args = sys.argv[2:]
passed = set()
def check(cond, desc, detail=""):
    # a check made for every line counts once; the first failure ends it
    if cond and desc in passed:
        return
    passed.add(desc)
    print(("PASS " if cond else "FAIL ") + desc + ("" if cond else ": " + str(detail)))
    sys.stdout.flush()
    if not cond:
        sys.exit(0)
$code
PYEOF
)"
  while IFS= read -r line; do
    case "$line" in
    "PASS "*) pass "$what: ${line#PASS }" ;;
    "FAIL "*) fail "$what: ${line#FAIL }" ;;
    *) fail "$what: python: $result" ;;
    esac
  done <<<"$result"
}

# The json run (~2.7 s, below) goes on in the background while the plain one
# runs: both mostly sleep.
start_bg json "$AQUEUE_RUN" --progress json "$S" 12 0.9 3 7

# ======================= plain, ~4.5 s =======================
# 25 Work items, the first 7 fail at once, the other 18 take 0.5 s each on
# the 2 workers the Note leaves: about 4.5 s, so progress lines at 2 s and 4 s.
run "$AQUEUE_RUN" "$S" 25 0.5 3 7
expect_rc 1 "plain (auto): items failed"
expect_match "$OUT" '^after run_queue processed=19 failed=7$' "plain: the fixture's own figures"
printf '%s\n' "$ERR" >"$TMP/plain.err"
py_checks plain "$TMP/plain.err" 25 3 7 <<'PY'
N, WORKERS, F = (int(a) for a in args)
prog_re = re.compile(r"^aqueue: (\S+)  (\d+)/(\d+) \((\d+)%\)  ([0-9.]+[kM]?) items/s  ETA (\S+)  "
                     r"running (\d+)  queued (\d+)  failed (\d+)  retried (\d+)$")
def secs(t):
    if t.endswith("s"):
        return float(t[:-1])
    parts = [int(p) for p in t.split(":")]
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
progress, other = [], []
for l in lines:
    m = prog_re.match(l)
    if m:
        progress.append(m)
    elif not (l.startswith("aqueue: Work:process failed: ") or l == "stack traceback:" or l.startswith("\t")):
        other.append(l)
check(len(progress) >= 2, "at least 2 progress lines in a ~4.5 s run", len(progress))
times = [secs(m.group(1)) for m in progress]
gaps = [b - a for a, b in zip(times, times[1:])]
# every 2 s, not every 1 or 4: the upper bound leaves a loaded 2-core machine
# 1.5 s to be late (a line comes from a timer, never early)
check(all(1.5 <= g <= 3.5 for g in gaps) and 1.5 <= times[0] <= 3.5, "a progress line every 2 s", times)
for m in progress:
    done, total, pct = int(m.group(2)), int(m.group(3)), int(m.group(4))
    running, queued, failed, retried = (int(m.group(i)) for i in (7, 8, 9, 10))
    check(total == N, "total = the %d track_overall Work items (not the Note)" % N, m.group(0))
    check(0 <= done <= total, "done within 0..total", m.group(0))
    check(abs(pct - 100.0 * done / total) <= 0.51, "pct = done/total", m.group(0))
    check(running == WORKERS, "running = %d (the Note and two Work items)" % WORKERS, m.group(0))
    check(done + (running - 1) + queued == N, "done + running Work + queued = %d" % N, m.group(0))
    check(failed == F and retried == 0, "failed %d, retried 0" % F, m.group(0))
    check(float(m.group(5).rstrip("kM")) > 0, "a rate above 0 items/s", m.group(0))
    check(m.group(6) == "?" or re.match(r"^~?(\d+(\.\d)?s|\d+:\d\d(:\d\d)?)$", m.group(6)), "an ETA ('~': an estimate)", m.group(0))
dones = [int(m.group(2)) for m in progress]
check(dones == sorted(dones) and dones[-1] > dones[0], "done grows", dones)
summary_at = [i for i, l in enumerate(lines) if re.match(r"^aqueue: \d+ processed", l)]
check(len(summary_at) == 1, "one summary line", summary_at)
tail = lines[summary_at[0]:]
m = re.match(r"^aqueue: 19 processed, 7 failed, 0 retried in ([0-9.]+) s \((\d+) items/s\)$", tail[0])
check(m is not None, "summary: 19 processed, 7 failed, 0 retried in X s (R items/s)", tail[0])
secs_total, rate = float(m.group(1)), int(m.group(2))
check(4.0 <= secs_total <= 60, "summary: the run took about 4.5 s (at least 4; at most 60 even when loaded)", secs_total)
check(abs(rate - 26 / secs_total) <= 1, "summary: items/s = finished items / seconds", tail[0])
want = ["  failed: Work:process: ", "work failed 3", "work failed 4", "work failed 5", "work failed 6", "work failed 7"]
check(len(tail) == 7, "summary: the line, 5 failures, the count of the earlier ones, nothing else", tail)
for k, l in zip(range(3, 8), tail[1:6]):
    check(l.startswith("  failed: Work:process: ") and l.endswith(": work failed %d" % k),
          "summary: failure line for work %d (the last five, in order)" % k, l)
check(tail[6] == "  ... and 2 earlier failures", "summary: '  ... and 2 earlier failures'", tail[6])
check(other == tail, "nothing else on stderr (tracebacks, progress lines, the summary)", other)
PY

# ======================= json, ~2.7 s =======================
# 12 Work items, 7 fail at once, 5 take 0.9 s each on 2 workers (started above).
wait_bg "$RUN_TIMEOUT" "json: the run ends"
expect_rc 1 "json: items failed"
expect_match "$OUT" '^after run_queue processed=6 failed=7$' "json: the fixture's own figures"
py_checks json "$TMP/json.err" 12 3 7 <<'PY'
N, WORKERS, F = (int(a) for a in args)
NOTE_DESC = 'quote " backslash \\ newline \n tab \t bell \x07 \u00e9 end'
objs = []
for l in lines:
    if l.startswith("{"):
        try:
            objs.append(json.loads(l))
        except ValueError as e:
            check(False, "every JSON line parses", "%s: %r" % (e, l))
    else:
        check(l.startswith("aqueue: Work:process failed: ") or l == "stack traceback:" or l.startswith("\t"),
              "no other line on stderr than JSON and the failures' tracebacks", l)
check(True, "every JSON line parses (%d lines)" % len(objs))
check(len(objs) >= 3, "at least 2 progress objects and the summary in a ~2.7 s run", len(objs))
check(all(o["type"] == "progress" for o in objs[:-1]), "type 'progress' for all but the last", [o["type"] for o in objs])
check(objs[-1]["type"] == "summary", "type 'summary' for the last", objs[-1]["type"])
check(not lines[-1].startswith("aqueue: ") and lines[-1].startswith("{"), "the summary object is the last line", lines[-1])
KEYS = {"type", "elapsed", "processed", "failed", "hooks_failed", "retried", "cancelled", "not_started", "enqueued", "duplicates", "running",
        "queued", "overall", "rate", "eta", "eta_stable", "waiting", "workers", "classes"}
prog = objs[:-1]
times = [o["elapsed"] for o in prog]
# every second, not every 2: the upper bound leaves a loaded 2-core machine
# 0.9 s to be late (an object comes from a timer, never early)
check(all(0.7 <= b - a <= 1.9 for a, b in zip(times, times[1:])) and 0.7 <= times[0] <= 1.9,
      "a progress object every second", times)
for o in prog:
    check(KEYS <= set(o), "every field", sorted(KEYS - set(o)))
    cls, w = o["classes"], o["workers"]
    check(set(cls) == {"Note", "Work"}, "classes Note and Work", sorted(cls))
    for name, c in cls.items():
        check(set(c) == {"queued", "running", "retrying", "done", "failed", "hooks_failed", "retried", "max_queued"}, "class fields", c)
    wk, nt = cls["Work"], cls["Note"]
    check(wk["queued"] + wk["running"] + wk["done"] + wk["failed"] == N, "Work: queued+running+done+failed = %d" % N, wk)
    check(wk["max_queued"] == N and nt["max_queued"] == 1, "max_queued: Work %d, Note 1" % N, cls)
    check(nt["running"] == 1, "the Note runs all along", nt)
    check(o["overall"]["total"] == N, "overall total = the Work items only", o["overall"])
    check(o["overall"]["done"] == wk["done"] + wk["failed"], "overall done = Work done + failed", o)
    check(abs(o["overall"]["percent"] - round(100.0 * o["overall"]["done"] / N, 1)) <= 0.051, "overall percent", o["overall"])
    check(o["processed"] == wk["done"] + nt["done"] and o["failed"] == wk["failed"] == F, "processed / failed", o)
    check(o["retried"] == 0 and o["cancelled"] == 0 and o["not_started"] == 0, "retried, cancelled, not_started 0", o)
    check(o["enqueued"] == N + 1, "enqueued = %d" % (N + 1), o["enqueued"])
    check(o["queued"] == wk["queued"] + nt["queued"] and o["running"] == wk["running"] + nt["running"],
          "queued / running = the sums over the classes", o)
    check(w["total"] == WORKERS and w["busy"] == o["running"] == len(w["rows"]), "workers: total, busy = running = rows", w)
    check(isinstance(o["rate"], (int, float)) and o["rate"] >= 0, "a rate", o["rate"])
    check(o["eta"] is None or o["eta"] >= 0, "an ETA or null", o["eta"])
    ids = [r["id"] for r in w["rows"]]
    check(ids == sorted(set(ids)) and all(1 <= i <= WORKERS for i in ids), "worker ids", ids)
    for r in w["rows"]:
        check(set(r) == {"id", "class", "hook", "desc", "attempt", "elapsed"} and r["hook"] is False and r["elapsed"] >= 0,
              "worker row fields", r)
        if r["class"] == "Note":
            check(r["desc"] == NOTE_DESC, "the Note's tricky set_desc text comes through exactly", repr(r["desc"]))
        else:
            check(r["class"] == "Work" and re.match(r"^work (\d+)$", r["desc"]) and int(r["desc"][5:]) > F,
                  "a Work row: class and set_desc text", r)
    check([r["class"] for r in w["rows"]].count("Note") == 1, "the Note's row is there", w["rows"])
s = objs[-1]
check((KEYS | {"why", "errors_total", "errors"}) <= set(s), "summary: every field", sorted((KEYS | {"why", "errors_total", "errors"}) - set(s)))
check(s["processed"] == N - F + 1 and s["failed"] == F and s["hooks_failed"] == 0 and s["retried"] == 0 and s["cancelled"] == 0
      and s["not_started"] == 0, "summary: %d processed, %d failed" % (N - F + 1, F), s)
check(s["enqueued"] == N + 1 and s["running"] == 0 and s["queued"] == 0, "summary: enqueued, nothing left", s)
check(s["overall"] == {"done": N, "total": N, "percent": 100.0}, "summary: overall 100%", s["overall"])
check(s["workers"] == {"total": WORKERS, "busy": 0, "rows": []}, "summary: no busy worker", s["workers"])
check(s["classes"] == {"Note": {"queued": 0, "running": 0, "retrying": 0, "done": 1, "failed": 0, "hooks_failed": 0, "retried": 0,
                                "max_queued": 1},
                       "Work": {"queued": 0, "running": 0, "retrying": 0, "done": N - F, "failed": F, "hooks_failed": 0, "retried": 0,
                                "max_queued": N}},
      "summary: the classes' figures", s["classes"])
check(s["why"] is None, "summary: why null (the run was not cut short)", s["why"])
check(s["errors_total"] == F, "summary: errors_total %d" % F, s["errors_total"])
check(len(s["errors"]) == 5 and all(e.startswith("Work:process: ") and e.endswith(": work failed %d" % k)
                                    for e, k in zip(s["errors"], range(F - 4, F + 1))),
      "summary: the last 5 errors, in order", s["errors"])
check(s["elapsed"] >= times[-1], "summary: elapsed", s["elapsed"])
PY

# run_queue{progress="json"}, a short run: the summary object only
run "$AQUEUE_RUN" "$S" 3 0.01 2 1 json
expect_rc 1 "run_queue{progress=\"json\"}: an item failed"
printf '%s\n' "$ERR" >"$TMP/json2.err"
py_checks 'run_queue{progress="json"}' "$TMP/json2.err" <<'PY'
objs = [json.loads(l) for l in lines if l.startswith("{")]
check(len(objs) >= 1 and objs[-1]["type"] == "summary", "the last line is a JSON summary", lines[-1:])
check(objs[-1]["processed"] == 3 and objs[-1]["failed"] == 1 and objs[-1]["errors_total"] == 1,
      "its figures: 3 processed (2 Work, the Note), 1 failed", objs[-1])
check(not any(re.match(r"^aqueue: \d+ processed", l) for l in lines), "no plain summary line", lines)
PY

# ======================= plain: the summary's failure lines =======================
run "$AQUEUE_RUN" --progress plain "$S" 6 0 2 6
expect_rc 1 "plain, 6 failures: items failed"
expect_eq "$(printf '%s\n' "$ERR" | sed -n '/^aqueue: [0-9]* processed/,$p' | sed -E 's/ in [0-9.]+ s \([0-9]+ items\/s\)$/ in T/; s/: [^ ]*display_steady\.lua:[0-9]+:/: FILE:LINE:/')" \
  "aqueue: 1 processed, 6 failed, 0 retried in T
  failed: Work:process: FILE:LINE: work failed 2
  failed: Work:process: FILE:LINE: work failed 3
  failed: Work:process: FILE:LINE: work failed 4
  failed: Work:process: FILE:LINE: work failed 5
  failed: Work:process: FILE:LINE: work failed 6
  ... and 1 earlier failure" "plain, 6 failures: the last 5, then '... and 1 earlier failure'"
run "$AQUEUE_RUN" --progress plain "$S" 3 0 2 0
expect_rc 0 "plain, no failure: success"
expect_match "$ERR" '^aqueue: 4 processed, 0 failed, 0 retried in [0-9.]+ s \([0-9]+ items/s\)$' "plain, no failure: the summary"
expect_no_match "$ERR" '^  (failed:|\.\.\.)' "plain, no failure: no failure lines"
expect_eq "$(printf '%s\n' "$ERR" | grep -vc '^aqueue: [0-9]* processed')" 0 "plain, no failure: nothing but the summary"

# ======================= none =======================
for how in cli lua; do
  if [ "$how" = cli ]; then
    run "$AQUEUE_RUN" --progress none "$S" 4 0.02 2 2
  else
    run "$AQUEUE_RUN" "$S" 4 0.02 2 2 none
  fi
  expect_rc 1 "none ($how): items failed"
  expect_eq "$(printf '%s\n' "$ERR" | grep -c '^aqueue: Work:process failed: .*work failed [12]$')" 2 \
    "none ($how): the two items' errors are still printed"
  expect_eq "$(printf '%s\n' "$ERR" | grep -Evc '^aqueue: Work:process failed: |^stack traceback:$|^	')" 0 \
    "none ($how): nothing else on stderr (no progress, no summary)"
  expect_eq "$OUT" "work 3
work 4
after run_queue processed=3 failed=2" "none ($how): stdout as printed"
done

# ======================= auto and unknown modes =======================
run "$AQUEUE_RUN" --progress auto "$S" 2 0 2 0
expect_rc 0 "--progress auto with stderr into a file"
expect_match "$ERR" '^aqueue: 3 processed, 0 failed, 0 retried in [0-9.]+ s \([0-9]+ items/s\)$' \
  "--progress auto with stderr into a file: plain (the summary line)"
expect_not_contains "$ERR" $'\033' "--progress auto with stderr into a file: no escape sequence"

run "$AQUEUE_RUN" --progress fancy "$S" 2 0 2 0
expect_rc 2 "--progress fancy: bad usage"
expect_contains "$ERR" "--progress must be auto, tty, plain, json or none, got 'fancy'" "--progress fancy: the message"
expect_empty "$OUT" "--progress fancy: the script did not run"
run "$AQUEUE_RUN" "$S" 2 0 2 0 fancy
expect_rc 1 "run_queue{progress=\"fancy\"}: an error"
expect_contains "$ERR" 'run_queue: progress must be "auto", "tty", "plain", "json" or "none", got "fancy"' \
  "run_queue{progress=\"fancy\"}: the message"
expect_no_match "$OUT" '^(work|after run_queue)' "run_queue{progress=\"fancy\"}: no item ran, run_queue did not return"

finish
