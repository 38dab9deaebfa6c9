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

finish
