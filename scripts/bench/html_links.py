#!/usr/bin/python3
"""Parse + select all links of a 300 KB page: aqueue.html against parsel, pages per second,
measured in the same run on the same page (issue 16: target >= 1.5x parsel).

    scripts/bench/html_links.py [--repeat N] [--seconds S] [--size BYTES]

The page is generated deterministically (the same bytes every run, from a fixed-seed
generator of its own): sections with headings, paragraphs with inline links, lists, tables,
entities, comments and a script, about one link per 110 bytes, like a listing page. Each
side parses it and takes a::attr(href) over and over for --seconds after 3 warm-up pages:
aqueue with scripts/bench/html_links.lua (html.parse(text):css("a::attr(href)"), from a
task, so on the thread pool as a crawl would; also inline, for information), parsel with
`python3 -c` running parsel.Selector(text).css('a::attr(href)').getall() on the page read
as text (str), as a Scrapy callback gets it. The runs alternate, --repeat times: the
figures are the medians, the ratio the median of each run's ratio to the parsel run right
after it (pairs measured close in time: on a shared machine the load moves between runs).
Both must find the same number of links. scripts/bench/run_all runs this too (--only html).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LUA = os.path.join(HERE, "html_links.lua")
SIZE = 300 * 1024

PARSEL = r"""
import sys, time, parsel
text = open(sys.argv[1], encoding="utf-8").read()
seconds = float(sys.argv[2])
def links_of(t):
    return len(parsel.Selector(text=t).css("a::attr(href)").getall())
for _ in range(3):
    links = links_of(text)
n, t0 = 0, time.perf_counter()
while True:
    links = links_of(text)
    n += 1
    if time.perf_counter() - t0 >= seconds:
        break
print("html_links impl=parsel links=%d pages_per_s=%.1f" % (links, n / (time.perf_counter() - t0)))
"""


class BenchError(Exception):
    pass


def make_page(size=SIZE):
    """The benchmark page: `size` bytes or a little more, the same every time."""
    seed = [20261206]

    def rnd(n):  # a small LCG: the page must not depend on Python's random module
        seed[0] = (seed[0] * 1103515245 + 12345) % 2147483648
        return seed[0] % n

    words = ("alpha beta gamma delta crawl queue page link item price stock new sale shop "
             "review rating about contact help search result list more next prev").split()
    parts = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Listing</title>'
             '<script>var a = "<a href=x>"; if (1 < 2) {}</script></head><body>\n'
             '<nav><a href="/">Home</a> <a href="/about">About</a> <a href="https://example.org/">Out</a></nav>\n']
    size_now = len(parts[0])
    section = 0
    while size_now < size:
        section += 1
        chunk = ['<section id="s%d" class="block c%d"><h2>%s &amp; %s</h2>\n'
                 % (section, section % 5, words[rnd(len(words))], words[rnd(len(words))])]
        for p in range(4):
            text = " ".join(words[rnd(len(words))] for _ in range(8))
            chunk.append('<p>%s <a href="/item/%d-%d?ref=%d#top" class="l">%s</a> %s.</p>\n'
                         % (text, section, p, rnd(1000), words[rnd(len(words))], words[rnd(len(words))]))
        chunk.append("<ul>")
        for i in range(6):
            chunk.append('<li><a href="%s">%s</a></li>' % (
                "../cat/%d/%d.html" % (section, i) if i % 3 else "https://cdn%d.example.com/x/%d" % (i, rnd(99999)),
                words[rnd(len(words))]))
        chunk.append("</ul>\n<table><tr><td>%d</td><td>&euro; %d.%02d</td></tr></table>"
                     "<!-- section %d -->\n</section>\n" % (rnd(100), rnd(500), rnd(100), section))
        s = "".join(chunk)
        parts.append(s)
        size_now += len(s)
    parts.append("</body></html>\n")
    return "".join(parts)


def run(cmd, timeout=300):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    for line in p.stdout.splitlines():
        if line.startswith("html_links "):
            return dict(f.split("=", 1) for f in line.split()[1:])
    raise BenchError("%s exited with %s\n--- stdout:\n%s--- stderr (end):\n%s"
                     % (" ".join(cmd), p.returncode, p.stdout[-2000:], p.stderr[-2000:]))


def measure(aqueue_run, python, repeat, seconds=2.0, size=SIZE, log=None):
    """Returns {"aqueue": pages/s, "inline": pages/s, "parsel": pages/s, "ratio": aqueue/parsel,
    "links": n, "bytes": n} (medians of `repeat` alternating runs; the ratio: of each pair's)."""
    rates = {"aqueue": [], "inline": [], "parsel": []}
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "page.html")
        page = make_page(size)
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)
        links = set()
        for i in range(repeat):
            aq = run([aqueue_run, "--progress", "none", LUA, path, str(seconds)])
            py = run([python, "-c", PARSEL, path, str(seconds)])
            rates["aqueue"].append(float(aq["pages_per_s"]))
            rates["inline"].append(float(aq["inline_pages_per_s"]))
            rates["parsel"].append(float(py["pages_per_s"]))
            ratios.append(float(aq["pages_per_s"]) / float(py["pages_per_s"]))
            links |= {int(aq["links"]), int(py["links"])}
            if log:
                log("html_links run %d: aqueue %s pages/s (inline %s), parsel %s pages/s"
                    % (i + 1, aq["pages_per_s"], aq["inline_pages_per_s"], py["pages_per_s"]))
    if len(links) != 1:
        raise BenchError("aqueue and parsel found different numbers of links: %s" % sorted(links))
    out = {k: statistics.median(v) for k, v in rates.items()}
    out["ratio"] = statistics.median(ratios)
    out["links"] = links.pop()
    out["bytes"] = len(page.encode("utf-8"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side (default 3)")
    ap.add_argument("--seconds", type=float, default=2.0, help="seconds of parsing per run (default 2)")
    ap.add_argument("--size", type=int, default=SIZE, help="page size in bytes (default 300 KB)")
    a = ap.parse_args()
    aqueue_run = os.path.abspath(os.environ.get("AQUEUE_RUN") or os.path.join(REPO, "build", "aqueue-run"))
    python = os.environ.get("BENCH_PYTHON") or "/usr/bin/python3"
    if not os.access(aqueue_run, os.X_OK):
        sys.exit("html_links.py: no aqueue-run at %s: build it or set AQUEUE_RUN" % aqueue_run)
    try:
        r = measure(aqueue_run, python, max(1, a.repeat), a.seconds, a.size,
                    log=lambda m: print(m, file=sys.stderr, flush=True))
    except BenchError as e:
        sys.exit("html_links.py: %s" % e)
    ratio = r["ratio"]
    print("parse + a::attr(href) of a %d-byte page (%d links), median of %d runs:"
          % (r["bytes"], r["links"], max(1, a.repeat)))
    print("  aqueue.html  %.1f pages/s  (inline, on the loop thread: %.1f)" % (r["aqueue"], r["inline"]))
    print("  parsel       %.1f pages/s" % r["parsel"])
    print("  ratio        %.2fx  (median of the runs' ratios; target >= 1.5x: %s)"
          % (ratio, "met" if ratio >= 1.5 else "NOT met"))


if __name__ == "__main__":
    main()
