# End-to-end: loading the script — missing, a directory, unreadable, empty,
# syntax errors (exactly "file:line: message"), shebang lines.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

# --- missing script ---
run "$AQUEUE_RUN" "$TMP/no-such-script.lua" a b
expect_rc 2 "a missing script"
expect_contains "$ERR" "$TMP/no-such-script.lua" "a missing script: the message names the path"
expect_empty "$OUT" "a missing script: nothing on stdout"

# --- a directory ---
mkdir "$TMP/adir.lua"
run "$AQUEUE_RUN" "$TMP/adir.lua"
expect_rc 2 "a directory as the script"
expect_contains "$ERR" "$TMP/adir.lua" "a directory: the message names the path"
expect_contains "$ERR" "directory" "a directory: the message says it is a directory"
expect_no_match "$ERR" "stack traceback" "a directory: no traceback"

# --- unreadable ---
# As root a chmod 000 file stays readable; then the check runs as the
# unprivileged user nobody (setpriv), or is skipped when that is impossible.
mkdir "$TMP/pub"
chmod 711 "$TMP" "$TMP/pub"
printf 'print("NOT REACHED: an unreadable script ran")\n' >"$TMP/pub/secret.lua"
chmod 000 "$TMP/pub/secret.lua"
unreadable_case() { # how, command prefix...
  local how="$1"
  shift
  run "$@" "$AQUEUE_RUN" "$TMP/pub/secret.lua"
  expect_rc 2 "an unreadable script (chmod 000, $how)"
  expect_contains "$ERR" "$TMP/pub/secret.lua" "an unreadable script: the message names the path"
  expect_contains "$ERR" "ermission denied" "an unreadable script: the message gives the reason"
  expect_not_contains "$OUT" "NOT REACHED" "an unreadable script did not run"
}
if [ ! -r "$TMP/pub/secret.lua" ]; then
  unreadable_case "as uid $(id -u)" env
else
  echo "note: running as uid $(id -u), which can read a chmod 000 file; trying as user nobody"
  as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  if command -v setpriv >/dev/null 2>&1 && "${as_nobody[@]}" test -x "$AQUEUE_RUN" 2>/dev/null &&
    ! "${as_nobody[@]}" test -r "$TMP/pub/secret.lua" 2>/dev/null; then
    unreadable_case "run as nobody through setpriv" "${as_nobody[@]}"
  else
    skip "unreadable script: running as uid $(id -u), which can still read a chmod 000 file, and cannot run aqueue-run as an unprivileged user"
  fi
fi
chmod 600 "$TMP/pub/secret.lua"

# --- empty script ---
run "$AQUEUE_RUN" "$FIX/empty.lua"
expect_rc 0 "an empty script"
expect_empty "$OUT" "an empty script prints nothing on stdout"
expect_empty "$ERR" "an empty script prints nothing on stderr"

# --- syntax errors: exactly "file:line: message", exit 1 ---
# The expected text is what LuaJIT itself says when it loads the file.
luajit_says() {
  if command -v luajit >/dev/null 2>&1; then
    AQ_E2E_FILE="$1" luajit -e 'local f, err = loadfile(os.getenv("AQ_E2E_FILE")); io.write(tostring(err))'
  fi
}
syntax_case() { # description, file, expected line
  local what="$1" file="$2" line="$3"
  run "$AQUEUE_RUN" "$file" some args
  expect_rc 1 "$what"
  expect_eq "$(printf '%s\n' "$ERR" | wc -l | tr -d ' ')" 1 "$what: exactly one line on stderr"
  expect_match "$ERR" "^$(printf '%s' "$file" | sed 's/[.[\*^$]/\\&/g'):$line: .+" "$what: stderr is '$file:$line: message'"
  local want
  want="$(luajit_says "$file")"
  if [ -n "$want" ]; then
    expect_eq "$ERR" "$want" "$what: the message is LuaJIT's own"
  else
    skip "$what: no luajit binary to compare the message with"
  fi
  expect_no_match "$ERR" 'stack traceback|\[C\]|aqueue-run:|internal' "$what: no traceback or C-level noise"
  expect_empty "$OUT" "$what: nothing ran (stdout empty)"
}
printf 'print("NOT REACHED")\nlocal x = = 1\n' >"$TMP/syntax1.lua"
syntax_case "a syntax error on line 2" "$TMP/syntax1.lua" 2
printf 'print("NOT REACHED")\n\n\nlocal t = {\n  a = 1,\n  b = 2\n\nprint(t)\n' >"$TMP/syntax2.lua"
syntax_case "an unclosed table (reported on line 8)" "$TMP/syntax2.lua" 8
printf 'print("NOT REACHED")\nlocal s = "unfinished\nprint(s)\n' >"$TMP/syntax3.lua"
syntax_case "an unfinished string" "$TMP/syntax3.lua" 2
printf '#!/usr/bin/env aqueue-run\nprint("NOT REACHED")\nfunction f(\n' >"$TMP/syntax4.lua"
syntax_case "a syntax error after a shebang line (line numbers count the shebang)" "$TMP/syntax4.lua" 4
# a relative path is reported as given
mkdir -p "$TMP/rel"
cp "$TMP/syntax1.lua" "$TMP/rel/bad.lua"
RUN_CWD="$TMP/rel" run "$AQUEUE_RUN" bad.lua
expect_rc 1 "a syntax error in a relative path"
expect_match "$ERR" '^bad\.lua:2: ' "a syntax error in a relative path is reported as 'bad.lua:2: ...'"

# --- a shebang line is skipped; the script can be run directly ---
printf '#!%s\nprint("shebang ok", ...)\n' "$AQUEUE_RUN" >"$TMP/direct.lua"
chmod 755 "$TMP/direct.lua"
run "$TMP/direct.lua" x y
expect_rc 0 "a script with '#!aqueue-run' run directly"
expect_eq "$OUT" "shebang ok	x	y" "the shebang script ran with its arguments"

finish
