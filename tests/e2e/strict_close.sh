# End-to-end: a handle left open at exit is reported, never hidden
# (engine/core/open_handles.h):
#   reported: one line naming its type and address, in every mode;
#   strict:   with AQUEUE_STRICT_CLOSE=1 (the suite's setting) the run fails
#             with status 70; with AQUEUE_STRICT_CLOSE=0 it exits as it would;
#   clean:    a run that closes everything prints nothing and exits 0.
# Fixture: leak_handle.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

# The fixture's handle memory is deliberately never freed.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

AQUEUE_STRICT_CLOSE=1 run "$AQUEUE_RUN" "$FIX/leak_handle.lua"
expect_rc 70 "strict: a handle left open fails the run"
expect_eq "$OUT" "timer left open" "strict: the script ran"
expect_match "$ERR" '^aqueue: handle left open at exit: timer 0x[0-9a-f]+ \(inactive, referenced\)$' \
  "strict: the handle is named by type and address"
expect_eq "$(count_lines "$ERR" 'handle left open at exit')" 1 "strict: one line for the one handle"

AQUEUE_STRICT_CLOSE=0 run "$AQUEUE_RUN" "$FIX/leak_handle.lua"
expect_rc 0 "not strict: the run exits as it would"
expect_match "$ERR" '^aqueue: handle left open at exit: timer 0x[0-9a-f]+ ' "not strict: still reported"

AQUEUE_STRICT_CLOSE=1 run "$AQUEUE_RUN" -e 'require("aqueue").sleep(0.01); print("ok")'
expect_rc 0 "clean: a run that closes everything exits 0"
expect_not_contains "$ERR" "left open" "clean: nothing reported"
finish
