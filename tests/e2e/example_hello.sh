# End-to-end: examples/hello.lua, the README's tour (the seed's RootItem and
# ChildItem): five children, then the root's after_children_processed once.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

run "$AQUEUE_RUN" --progress plain examples/hello.lua
expect_rc 0 "the tour's example runs"
for n in 1 2 3 4 5; do
  expect_match "$OUT" "^child $n done\$" "child $n was processed"
done
expect_eq "$(count_lines "$OUT" '^All done!$')" 1 "the root's hook ran once"
expect_eq "$(printf '%s\n' "$OUT" | tail -n 1)" "All done!" "... after all five children"
expect_match "$ERR" '^aqueue: 6 processed, 0 failed, 0 retried in [0-9.]+ s' "the summary counts the root and five children"

# README's tour shows this example and its output: they must agree. The code
# block after "## A tour" is the example without its header comment; the lines
# the tour shows it printing are the run's (the children's order depends on
# timing, so they are compared sorted).
README="$E2E_DIR/../../README.md"
tour_code="$(sed -n '/^## A tour/,$p' "$README" | sed -n '/^```lua$/,/^```$/p' | sed '1d;/^```$/,$d')"
expect_eq "$tour_code" "$(sed '/^--/d' examples/hello.lua)" "README's tour shows examples/hello.lua as it is"
tour_out="$(sed -n '/^\$ scripts\/run examples\/hello.lua$/,/^```$/p' "$README" | sed '1d;$d')"
expect_eq "$(printf '%s\n' "$tour_out" | grep -v '^aqueue: ' | sort)" "$(printf '%s\n' "$OUT" | sort)" \
  "README's tour shows what the example prints"
expect_match "$tour_out" '^aqueue: 6 processed, 0 failed, 0 retried in [0-9.]+ s \([0-9]+ items/s\)$' \
  "README's tour shows the summary's form"

finish
