# End-to-end: aqueue-run's options — help, version, bad usage, refused options.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

# --- help ---
for opt in -h --help; do
  run "$AQUEUE_RUN" "$opt"
  expect_rc 0 "$opt"
  expect_match "$OUT" '^usage: aqueue-run \[options\] script\.lua \[args\.\.\.\]' "$opt prints the usage line on stdout"
  for word in --workers --order --version --help; do
    expect_contains "$OUT" "$word" "$opt mentions $word"
  done
  expect_empty "$ERR" "$opt writes nothing on stderr"
done

# help wins over a script that would fail, and the script does not run
run "$AQUEUE_RUN" --help "$FIX/exit.lua" main 3
expect_rc 0 "--help before a script"
expect_not_contains "$OUT" "before exit" "--help before a script does not run it"

# --- version ---
run "$AQUEUE_RUN" --version
expect_rc 0 "--version"
expect_match "$OUT" '^aqueue-run [0-9]+\.[0-9]+\.[0-9]+' "--version prints 'aqueue-run X.Y.Z'"
expect_eq "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" 1 "--version prints one line"
expect_empty "$ERR" "--version writes nothing on stderr"
version_line="$OUT"
run "$AQUEUE_RUN" "$FIX/version.lua"
expect_rc 0 "version.lua"
lib_version="$(value_of "$OUT" version)"
expect_contains "$version_line" "aqueue-run $lib_version" \
  "--version names the same version as require('aqueue')._VERSION ($lib_version)"
run "$AQUEUE_RUN" -w 3 --version
expect_rc 0 "-w 3 --version"
expect_eq "$OUT" "$version_line" "--version after another option prints the same line"

# --- bad usage: exit 2, a message on stderr, nothing on stdout, the script does not run ---
bad_usage() { # description, args...
  local what="$1"
  shift
  run "$AQUEUE_RUN" "$@"
  expect_rc 2 "$what"
  [ -n "$ERR" ] || fail "$what: expected a message on stderr, got none"
  expect_match "$ERR" 'aqueue-run' "$what: the message names aqueue-run"
  expect_not_contains "$OUT" "before exit" "$what: the script did not run"
}
S="$FIX/exit.lua"
bad_usage "no arguments at all"
expect_contains "$ERR" "--help" "no arguments: the message points to --help"
bad_usage "only options, no script" -w 3
bad_usage "unknown long option" --bogus "$S" main 0
expect_contains "$ERR" "--bogus" "unknown option: the message names it"
bad_usage "unknown short option" -x "$S" main 0
expect_contains "$ERR" "-x" "unknown short option: the message names it"
bad_usage "-w without a value" -w
bad_usage "-w with a word" -w abc "$S" main 0
expect_contains "$ERR" "abc" "-w abc: the message shows the bad value"
bad_usage "-w 0" -w 0 "$S" main 0
bad_usage "-w -3" -w -3 "$S" main 0
bad_usage "-w 2.5" -w 2.5 "$S" main 0
bad_usage "-w with trailing junk (-w4x)" -w4x "$S" main 0
bad_usage "--workers= (empty)" --workers= "$S" main 0
bad_usage "--workers=0" --workers=0 "$S" main 0
bad_usage "--workers without a value" --workers
bad_usage "--order without a value" --order
bad_usage "--order with an unknown mode" --order random "$S" main 0
expect_contains "$ERR" "random" "--order random: the message shows the bad value"
bad_usage "--order= (empty)" --order= "$S" main 0
bad_usage "--progress with an unknown mode" --progress fancy "$S" main 0
expect_contains "$ERR" "fancy" "--progress fancy: the message shows the bad value"
bad_usage "--progress without a value" --progress

# --- the state file options (their behaviour: state_resume.sh) ---
bad_usage "--state without a value" --state
bad_usage "--state= (empty)" --state= "$S" main 0
for opt in --fresh --status --retry-failed; do
  bad_usage "$opt without --state" "$opt" "$S" main 0
  expect_contains "$ERR" "$opt needs --state FILE" "$opt: the message names what is missing"
done
bad_usage "--fresh with --status" --state "$TMP/state.db" --fresh --status
run "$AQUEUE_RUN" --state "$TMP/state.db" "$S" main 0
expect_rc 0 "--state with a script that runs no queue"
[ ! -e "$TMP/state.db" ] || fail "--state: a script that runs no queue must not create the state file"
pass "--state: no state file was created without a run"

finish
