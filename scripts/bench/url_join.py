"""The reference of scripts/bench/url_join.lua: urllib.parse.urljoin on the same
(base, reference) pairs, round after round, after a warm-up round.

    python3 scripts/bench/url_join.py PAIRS_FILE JOINS   # a "base<TAB>ref" line per pair
"""
import sys
import time
from urllib.parse import urljoin


def main():
    path, joins = sys.argv[1], int(sys.argv[2])
    with open(path, encoding="utf-8") as f:
        pairs = [tuple(line.rstrip("\n").split("\t", 1)) for line in f]
    rounds = -(-joins // len(pairs))
    for base, ref in pairs:  # warm-up: urllib's caches filled
        urljoin(base, ref)
    t0 = time.perf_counter()
    for _ in range(rounds):
        for base, ref in pairs:
            urljoin(base, ref)
    elapsed = time.perf_counter() - t0
    print("url_join_py joins=%d joins_per_s=%.0f" % (rounds * len(pairs), rounds * len(pairs) / elapsed))


if __name__ == "__main__":
    main()
