# End-to-end: the examples are self-contained. A user who copies examples/*.lua
# and examples/lib/ (what README says they need) to a folder of their own runs
# them from there: nothing is loaded from this repository's tests or scripts.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

REPO="$(cd "$E2E_DIR/../.." && pwd)"
MINE="$TMP/my examples" # a space in the path, as a user's folder may have
mkdir -p "$MINE"
cp "$REPO"/examples/*.lua "$MINE/"
cp -r "$REPO/examples/lib" "$MINE/lib"

# From inside the folder, the script named without a directory.
RUN_CWD="$MINE" run "$AQUEUE_RUN" --progress plain hello.lua
expect_rc 0 "hello.lua runs from a copy"
expect_eq "$(printf '%s\n' "$OUT" | sort | tr '\n' ' ')" "All done! child 1 done child 2 done child 3 done child 4 done child 5 done " \
  "hello.lua prints what README shows"

RUN_CWD="$MINE" run "$AQUEUE_RUN" --progress plain crawl.lua --pages 20 --workers 4 --delay 0 --out "$TMP/images"
expect_rc 0 "crawl.lua runs from a copy, with its lib/ beside it"
expect_match "$OUT" '^crawled 21 pages and saved 4 images to ' "the copied crawl fetched the whole site"

# From another directory, the script named by its path.
RUN_CWD="$TMP" run "$AQUEUE_RUN" --progress plain "$MINE/crawl.lua" --pages 20 --workers 4 --delay 0 --out "$TMP/images2"
expect_rc 0 "crawl.lua runs by its path from elsewhere"
expect_match "$OUT" '^crawled 21 pages and saved 4 images to ' "... and fetched the whole site"

RUN_CWD="$MINE" run "$AQUEUE_RUN" --progress plain mandelbrot.lua 40 30 "$TMP/m.ppm" 50
expect_rc 0 "mandelbrot.lua runs from a copy"
expect_eq "$(head -c 2 "$TMP/m.ppm")" "P6" "it wrote the picture"

RUN_CWD="$MINE" run "$AQUEUE_RUN" --progress plain producer_consumer.lua 4 0.01 0.01
expect_rc 0 "producer_consumer.lua runs from a copy"
expect_match "$OUT" '^(Fred|George) got: ' "it says who got what"

finish
