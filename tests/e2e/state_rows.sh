# End-to-end: a state file whose rows were edited by hand (with the sqlite3
# command, say). Every row that aqueue did not write as it is stops the run
# before it starts, with a message that names the file, the item and what is
# wrong; the exit status is 1 and the file is left as it was (its rows, and
# every byte but the change counter that SQLite bumps in the file's header
# when it opens the file).
# The same for --status and --retry-failed, and for a damaged file.
# Fixtures: state_resume.lua (its "fail" run leaves 4 rows: items 1 and 3
# done, 2 and 4 failed with their fields), state_edit.lua (edits rows).
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

R="$FIX/state_resume.lua"
EDIT="$FIX/state_edit.lua"
BASE="$TMP/base.state"
run "$AQUEUE_RUN" --progress none --state "$BASE" "$R" fail "$TMP/log"
expect_rc 1 "the base run: two of four items failed"

S="$TMP/edited.state"
# edited SQL... : a copy of the base file with these statements run on it.
edited() {
  rm -f "$S" "$S-wal" "$S-shm"
  cp "$BASE" "$S"
  run "$TOOL_RUN" "$EDIT" "$S" "$@"
  expect_rc 0 "edit: $*"
  BEFORE_ROWS="$OUT"
  cp "$S" "$TMP/before.state"
}

# The state file against $TMP/before.state: its bytes (but for the file
# change counter that SQLite bumps in its header), then its rows.
unchanged() { # description
  run "$TOOL_RUN" "$EDIT" --same-as "$TMP/before.state" "$S"
  expect_rc 0 "$1: the file is read"
  expect_eq "${OUT%%$'\n'*}" "bytes: the same" "$1: the file is left as it was, byte for byte (but the change counter)"
  expect_eq "${OUT#*$'\n'}" "$BEFORE_ROWS" "$1: its rows are as they were"
}

# refused SQL PROBLEM: the edit makes the file one that neither a run, nor
# --status, nor --retry-failed takes; each says PROBLEM (a fixed text) of it.
refused() {
  local sql="$1" problem="$2"
  edited "$sql"
  run "$AQUEUE_RUN" --progress none --state "$S" "$R" fail_fixed "$TMP/log"
  expect_rc 1 "run: $problem"
  expect_contains "$ERR" "run_queue: cannot resume the run in $S: $problem (the file is left as it was; " \
    "run: the message names the file and says what is wrong"
  expect_not_contains "$OUT" "processed=" "run: nothing ran"
  unchanged "run"
  run "$AQUEUE_RUN" --state "$S" --status
  expect_rc 1 "--status: $problem"
  expect_contains "$ERR" "aqueue-run: $S: $problem (the file is left as it was; fix or delete that row)" "--status: the message"
  run "$AQUEUE_RUN" --state "$S" --retry-failed
  expect_rc 1 "--retry-failed: $problem"
  expect_contains "$ERR" "aqueue-run: $S: $problem (the file is left as it was; fix or delete that row)" "--retry-failed: the message"
  unchanged "--retry-failed"
}

# Item 2 made pending again by hand: that one the run takes.
PENDING="UPDATE items SET state = 0, outcome = 0, attempts = 0, error = NULL WHERE pid = 2"
edited "$PENDING"
run "$AQUEUE_RUN" --progress none --state "$S" "$R" fail_fixed "$TMP/log"
expect_rc 0 "a row made pending by hand, as aqueue writes them, is run"
expect_contains "$OUT" "processed=1 failed=0 resumed=true" "only that item ran"

refused "UPDATE items SET state = 0, outcome = 0, fields = 'not json' WHERE pid = 2" \
  'item 2 has fields that are not JSON: "not json" (Expected value but found invalid token at character 1)'
refused "UPDATE items SET fields = '{\"n\": 4' WHERE pid = 4" \
  'item 4 has fields that are not JSON: "{\"n\": 4" (Expected comma or object end but found T_END at character 8)'
refused "UPDATE items SET state = 0, outcome = 0, fields = '[2]' WHERE pid = 2" \
  'item 2 has fields that are not a JSON object: "[2]"'
refused "UPDATE items SET state = 0, outcome = 0, fields = NULL WHERE pid = 2" \
  'item 2 has no fields (NULL), and it is not finished'
refused "UPDATE items SET state = 0, outcome = 0, fields = x'7b7d' WHERE pid = 2" \
  'item 2 has fields "{}" that are not JSON text'
refused "UPDATE items SET outcome = 7 WHERE pid = 3" \
  'item 3 has an unknown outcome 7 (0 none yet, 1 done, 2 failed)'
refused "UPDATE items SET state = 'done' WHERE pid = 1" \
  'item 1 has an unknown state "done" (0 pending, 1 open, 2 finished)'
refused "UPDATE items SET parent = 17 WHERE pid = 3" \
  'item 3 has a parent, item 17, that is not in the file'
refused "UPDATE items SET parent = 4 WHERE pid = 3" \
  'item 3 has a parent, item 4, that comes after it'
refused "UPDATE items SET parent = -1 WHERE pid = 3" \
  'item 3 has a parent -1, not an item id (0 for none)'
refused "UPDATE items SET attempts = 'twice' WHERE pid = 4" \
  'item 4 has attempts "twice", not a count'
refused "UPDATE items SET ordinal = 1.5 WHERE pid = 4" \
  'item 4 has an ordinal 1.5, not a whole number'
refused "UPDATE items SET class = '' WHERE pid = 1" \
  'item 1 has a class "", not a class name'
refused "UPDATE items SET key = 'page-1' WHERE pid = 1" \
  'item 1 has a key "page-1" that aqueue did not write (s:TEXT or n:NUMBER)'
refused "UPDATE items SET key = 'n:one' WHERE pid = 1" \
  'item 1 has a key "n:one" that aqueue did not write (s:TEXT or n:NUMBER)'
# The first bad row in row order is the one named.
refused "UPDATE items SET outcome = 9 WHERE pid = 4" "item 4 has an unknown outcome 9 (0 none yet, 1 done, 2 failed)"
edited "UPDATE items SET outcome = 9 WHERE pid = 4" "UPDATE items SET state = 8 WHERE pid = 3"
run "$AQUEUE_RUN" --state "$S" --status
expect_contains "$ERR" "$S: item 3 has an unknown state 8" "of two bad rows, the first is named"

# A damaged file: the pages of its items overwritten (its first 8 pages, with
# the schema and the tables' roots, kept).
D="$TMP/damaged.state"
cat >"$TMP/many.lua" <<'LUA'
local aqueue = require("aqueue")
local Big = aqueue.Item:extend("Big")
function Big:process() error("kept with its fields", 0) end
local items = {}
for i = 1, 3000 do items[i] = Big{ n = i, text = ("x"):rep(50) } end
aqueue.run_queue{ initial_items = items }
LUA
run "$TOOL_RUN" --progress none --state "$D" "$TMP/many.lua"
expect_rc 1 "a run of 3000 failed items (the file to damage)"
"$PY" - "$D" <<'PY'
import os, sys
path = sys.argv[1]
size = os.path.getsize(path)
assert size > 20 * 4096, size
with open(path, "r+b") as f:
    f.seek(8 * 4096)
    f.write(b"\xff" * (size - 9 * 4096))
PY
S="$D"
cp "$S" "$TMP/before.state"
run "$AQUEUE_RUN" --progress none --state "$D" "$TMP/many.lua"
expect_rc 1 "a damaged file: the run fails"
expect_contains "$ERR" "run_queue: cannot resume the run in $D: cannot read $D: database disk image is malformed (the file is left as it was; start anew with --fresh)" \
  "a damaged file: the message names it"
run "$AQUEUE_RUN" --state "$D" --status
expect_rc 1 "a damaged file: --status fails"
expect_contains "$ERR" "aqueue-run: $D: cannot read $D: database disk image is malformed (the file is left as it was)" \
  "a damaged file: --status names it"
"$PY" - "$TMP/before.state" "$D" <<'PY'
import sys
a, b = (open(p, "rb").read() for p in sys.argv[1:3])
# all but the file change counter (bytes 25-28) and its copy (93-96)
strip = lambda x: x[:24] + x[28:92] + x[96:]
sys.exit(0 if len(a) == len(b) and strip(a) == strip(b) else "changed")
PY
RC=$?
expect_rc 0 "a damaged file is left as it was, byte for byte (but the change counter)"

finish
