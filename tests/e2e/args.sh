# End-to-end: the script's arguments — the global `arg` as luajit sets it, and
# `...` in the main chunk; options after the script belong to the script.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

S="$FIX/args.lua"

run "$AQUEUE_RUN" "$S"
expect_rc 0 "no script arguments"
expect_eq "$(value_of "$OUT" nargs)" 0 "no arguments: select('#', ...) is 0"
expect_eq "$(value_of "$OUT" '#arg')" 0 "no arguments: #arg is 0"
expect_eq "$(value_of "$OUT" 'arg\[0\]')" "$S" "arg[0] is the script path as given"
expect_eq "$(value_of "$OUT" 'arg\[-1\]')" "$AQUEUE_RUN" "arg[-1] is the interpreter when there are no options"
expect_eq "$(value_of "$OUT" arg_min)" -1 "no options: the lowest index is -1"

# plain, spaced, empty, option-like and non-ASCII arguments, after options
# shellcheck disable=SC2016 # a literal $HOME: it must reach the script unexpanded
run "$AQUEUE_RUN" -w 2 --order=fifo "$S" a "b c" "" -w --help -- "héllo wörld" '$HOME' "*"
expect_rc 0 "arguments after options"
expect_eq "$(value_of "$OUT" nargs)" 9 "select('#', ...) counts all 9 arguments"
expect_eq "$(value_of "$OUT" '#arg')" 9 "#arg is 9"
i=1
# shellcheck disable=SC2016
for want in a "b c" "" -w --help -- "héllo wörld" '$HOME' "*"; do
  expect_eq "$(value_of "$OUT" "arg\\[$i\\]")" "$want" "arg[$i] is [$want]"
  expect_eq "$(value_of "$OUT" "vararg\\[$i\\]")" "$want" "...[$i] is [$want]"
  i=$((i + 1))
done
expect_eq "$(value_of "$OUT" 'arg\[0\]')" "$S" "arg[0] is the script"
expect_eq "$(value_of "$OUT" 'arg\[-1\]')" "--order=fifo" "arg[-1] is the last option"
expect_eq "$(value_of "$OUT" 'arg\[-2\]')" "2" "arg[-2] is the value of -w"
expect_eq "$(value_of "$OUT" 'arg\[-3\]')" "-w" "arg[-3] is -w"
expect_eq "$(value_of "$OUT" 'arg\[-4\]')" "$AQUEUE_RUN" "arg[-4] is the interpreter"
expect_eq "$(value_of "$OUT" arg_min)" -4 "nothing below the interpreter"

# options after the script are the script's: not parsed, even invalid ones
run "$AQUEUE_RUN" "$S" -w 0 --state x --bogus --version
expect_rc 0 "option-like arguments after the script are not aqueue-run's"
expect_eq "$(value_of "$OUT" '#arg')" 6 "the script got all 6 option-like arguments"
expect_eq "$(value_of "$OUT" 'arg\[1\]')" "-w" "arg[1] is -w (not handled by aqueue-run)"
expect_eq "$(value_of "$OUT" 'arg\[6\]')" "--version" "arg[6] is --version (not handled by aqueue-run)"
expect_not_contains "$OUT" "aqueue-run 0" "--version after the script did not print the version"

# "--" ends the options: a script whose name starts with "-"
cp "$S" "$TMP/-dash.lua"
RUN_CWD="$TMP" run "$AQUEUE_RUN" -- -dash.lua one
expect_rc 0 "'aqueue-run -- -dash.lua one' runs the script"
expect_eq "$(value_of "$OUT" 'arg\[0\]')" "-dash.lua" "after --: arg[0] is -dash.lua"
expect_eq "$(value_of "$OUT" 'arg\[1\]')" "one" "after --: arg[1] is one"
expect_eq "$(value_of "$OUT" 'arg\[-1\]')" "--" "after --: arg[-1] is --"
RUN_CWD="$TMP" run "$AQUEUE_RUN" -dash.lua
expect_rc 2 "without --, -dash.lua is taken for an unknown option"

# a script path with spaces
mkdir "$TMP/a dir"
cp "$S" "$TMP/a dir/my script.lua"
run "$AQUEUE_RUN" "$TMP/a dir/my script.lua" "x y"
expect_rc 0 "a script path with spaces"
expect_eq "$(value_of "$OUT" 'arg\[0\]')" "$TMP/a dir/my script.lua" "a path with spaces: arg[0] is the path"
expect_eq "$(value_of "$OUT" 'arg\[1\]')" "x y" "a path with spaces: arg[1] is 'x y'"

# many arguments
many=()
for i in $(seq 1 500); do many+=("a$i"); done
run "$AQUEUE_RUN" "$S" "${many[@]}"
expect_rc 0 "500 arguments"
expect_eq "$(value_of "$OUT" nargs)" 500 "500 arguments: select('#', ...) is 500"
expect_eq "$(value_of "$OUT" 'arg\[500\]')" a500 "500 arguments: arg[500] is a500"

finish
