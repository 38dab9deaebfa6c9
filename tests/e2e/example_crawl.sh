# End-to-end: examples/crawl.lua, the README's demo. It generates a site,
# serves it with its own nginx on 127.0.0.1, crawls every page once (its
# links read with aqueue.html), saves every image, writes one record per page
# to pages.jsonl (aqueue.feed), and stops nginx by PID — also when
# interrupted by a Ctrl-C sent to its process group; resumed, its feed holds
# each page once.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

S=examples/crawl.lua

# A whole crawl: 300 pages (+ the index) and the 60 images they show.
run "$AQUEUE_RUN" --progress plain "$S" --pages 300 --workers 8 --delay 0 --out "$TMP/images"
expect_rc 0 "a crawl of a generated site"
expect_match "$OUT" '^serving 301 generated pages at http://127\.0\.0\.1:[0-9]+ \(nginx pid [0-9]+\)$' \
  "it says where it serves the site"
expect_match "$OUT" "^crawled 301 pages and saved 60 images to $TMP/images in [0-9.]+ s \\([0-9]+ pages/s\\)$" \
  "every page was crawled once and every image saved"
expect_match "$ERR" '^aqueue: 361 processed, 0 failed, 0 retried, [0-9]+ duplicates skipped in [0-9.]+ s' \
  "the summary counts 301 pages + 60 images, and the links to pages already seen"
expect_eq "$(find "$TMP/images" -name '*.gif' | wc -l)" 60 "60 image files in the output folder"
expect_eq "$(find "$TMP/images" -name '*.part' | wc -l)" 0 "no partial downloads left"
expect_eq "$(head -c 6 "$TMP/images/1.gif")" "GIF89a" "the saved files are the images"
# The feed: one JSON record per page, each page once, with the page's title
# (from its <title>) and its number of links.
feed_check() { # FILE PAGES: "records distinct titled" of the feed
  "$PY" - "$1" "$2" <<'PY'
import json, sys
recs = [json.loads(line) for line in open(sys.argv[1])]
urls = {r["path"] for r in recs}
titled = sum(1 for r in recs if r.get("title") == "Page %s" % r["path"].rsplit("/", 1)[-1].split(".")[0])
print(len(recs), len(urls), titled, int(sys.argv[2]))
PY
}
read -r records distinct titled _ <<<"$(feed_check "$TMP/images/pages.jsonl" 301)"
expect_eq "$records" 301 "pages.jsonl: one record per page"
expect_eq "$distinct" 301 "pages.jsonl: each page once"
expect_eq "$titled" 300 "pages.jsonl: each generated page's title, read with CSS (the index has none)"
pid=$(printf '%s\n' "$OUT" | sed -n 's/.*(nginx pid \([0-9]*\)).*/\1/p')
if kill -0 "$pid" 2>/dev/null; then fail "nginx (pid $pid) is still running after the crawl"; fi
pass "nginx (pid $pid) was stopped"

# --rate: 21 pages + 4 images from one host at 40 starts/s are 24 gaps of 25 ms.
run "$AQUEUE_RUN" --progress plain "$S" --pages 20 --workers 8 --delay 0 --rate 40 --out "$TMP/rated"
expect_rc 0 "a crawl with --rate"
secs=$(printf '%s\n' "$OUT" | sed -n 's/^crawled 21 pages and saved 4 images to .* in \([0-9.]*\) s.*/\1/p')
[ -n "$secs" ] || fail "the rated crawl did not report 21 pages and 4 images: $OUT"
"$PY" -c "import sys; sys.exit(0 if float('$secs') >= 0.6 else 1)" ||
  fail "25 requests at 40/s took $secs s: less than the 0.6 s the rate allows"
pass "25 requests at 40/s took $secs s (>= 0.6 s)"

# Ctrl-C during a slow crawl, as a terminal sends it: SIGINT to the whole
# foreground process group (setsid gives the run a group of its own, as a shell
# does for a job). nginx is in a group of its own: the run stops gracefully,
# its running fetches finish against the live server (nothing fails, nothing is
# retried), and the example stops nginx afterwards. With --state, running it
# again finishes the crawl without fetching twice.
start_bg slow setsid "$AQUEUE_RUN" --progress plain --state "$TMP/slow.state" "$S" --pages 1000 --workers 4 --delay 0.05 --out "$TMP/slow"
wait_for_text "$TMP/slow.out" "nginx pid" "$START_WAIT" "the slow crawl started its server"
expect_eq "$(ps -o pgid= -p "$BG_PID" | tr -d ' ')" "$BG_PID" "the run leads its own process group"
pid=$(sed -n 's/.*(nginx pid \([0-9]*\)).*/\1/p' "$TMP/slow.out")
[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" != "$BG_PID" ] || fail "nginx (pid $pid) is in the run's process group"
pass "nginx (pid $pid) runs in a process group of its own"
nap 0.5
kill -INT -- "-$BG_PID"
wait_bg "$QUICK" "the interrupted crawl ended"
expect_rc 130 "an interrupted crawl exits 130"
expect_match "$ERR" '^aqueue: [0-9]+ processed, 0 failed, 0 retried, .*interrupted$' \
  "the summary says it was interrupted, with nothing failed or retried"
expect_not_contains "$ERR" "failed (attempt" "no fetch failed because of the Ctrl-C"
if kill -0 "$pid" 2>/dev/null; then fail "nginx (pid $pid) is still running after Ctrl-C"; fi
pass "nginx (pid $pid) was stopped after Ctrl-C"
first=$(find "$TMP/slow" -name '*.gif' | wc -l)

run "$AQUEUE_RUN" --progress plain --state "$TMP/slow.state" "$S" --pages 1000 --workers 8 --delay 0 --out "$TMP/slow"
expect_rc 0 "the crawl resumed from its state file"
expect_match "$ERR" "^aqueue: resuming the run in $TMP/slow.state: " "it says it resumes"
expect_match "$OUT" "^\(the run resumed from $TMP/slow.state: [0-9]+ items were done before\)$" "the example says so too"
expect_match "$OUT" "saved $((200 - first)) images" "only the images not saved before were fetched"
expect_eq "$(find "$TMP/slow" -name '*.gif' | wc -l)" 200 "every image is in the output folder"
read -r records distinct _ <<<"$(feed_check "$TMP/slow/pages.jsonl" 1001)"
expect_eq "$records" 1001 "the resumed crawl's feed: one record per page, across the Ctrl-C"
expect_eq "$distinct" 1001 "... each page once"

finish
