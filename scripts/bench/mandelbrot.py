#!/usr/bin/python3
"""CPU work on all cores: examples/mandelbrot.lua with the thread pool at 1 thread and at 2
(UV_THREADPOOL_SIZE), on the same image; prints both times and the speed-up (SPEC section 8:
target >= 1.8x on 2 cores).

    scripts/bench/mandelbrot.py [--repeat N] [--size WxH] [--max-iter N]

The aqueue-run under test comes from $AQUEUE_RUN (default: <repo>/build/aqueue-run). The time
of a run is the one the example prints (run_queue's elapsed: every row computed and the file
written); the thread counts alternate run by run and the median of each is reported.
scripts/bench/run_all runs this too (--only mandelbrot).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
EXAMPLE = os.path.join(REPO, "examples", "mandelbrot.lua")

# big enough for about 1.5 s at one thread on the 2-core machine of SPEC section 8
WIDTH, HEIGHT, MAX_ITER = 2000, 1500, 1000

DONE = re.compile(r"wrote .*: (\d+)x(\d+), \d+ rows in ([0-9.]+) s on (\d+) pool threads")


class BenchError(Exception):
    pass


def run_once(aqueue_run, threads, width, height, max_iter, out):
    """One render with a pool of `threads`; returns its time in seconds."""
    env = dict(os.environ, UV_THREADPOOL_SIZE=str(threads))
    cmd = [aqueue_run, "--progress", "none", EXAMPLE, str(width), str(height), out, str(max_iter)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    m = DONE.search(p.stdout)
    if p.returncode != 0 or not m:
        raise BenchError("%s exited with %s\n--- stdout:\n%s--- stderr (end):\n%s"
                         % (" ".join(cmd), p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    if int(m.group(4)) != threads:
        raise BenchError("asked for %d pool threads, the example ran on %s" % (threads, m.group(4)))
    return float(m.group(3))


def measure(aqueue_run, repeat, width=WIDTH, height=HEIGHT, max_iter=MAX_ITER, threads=(1, 2),
            log=None):
    """Runs the example `repeat` times per pool size, alternating; returns
    {threads: median seconds}."""
    times = {n: [] for n in threads}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "mandelbrot.ppm")
        for i in range(repeat):
            for n in threads:
                t = run_once(aqueue_run, n, width, height, max_iter, out)
                if log:
                    log("mandelbrot %dx%d, %d pool thread%s, run %d: %.3f s"
                        % (width, height, n, "" if n == 1 else "s", i + 1, t))
                times[n].append(t)
    return {n: statistics.median(ts) for n, ts in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs per pool size (default 3)")
    ap.add_argument("--size", default="%dx%d" % (WIDTH, HEIGHT), help="image size, WxH")
    ap.add_argument("--max-iter", type=int, default=MAX_ITER)
    a = ap.parse_args()
    aqueue_run = os.path.abspath(os.environ.get("AQUEUE_RUN") or os.path.join(REPO, "build", "aqueue-run"))
    if not os.access(aqueue_run, os.X_OK):
        sys.exit("mandelbrot.py: no aqueue-run at %s: build it or set AQUEUE_RUN" % aqueue_run)
    width, height = (int(v) for v in a.size.lower().split("x"))
    print("aqueue-run: %s; %d CPUs; median of %d runs each" % (aqueue_run, os.cpu_count() or 0,
                                                              max(1, a.repeat)))
    try:
        t = measure(aqueue_run, max(1, a.repeat), width, height, a.max_iter,
                    log=lambda m: print(m, file=sys.stderr, flush=True))
    except BenchError as e:
        sys.exit("mandelbrot.py: %s" % e)
    speedup = t[1] / t[2]
    print("mandelbrot %dx%d, max_iter %d:" % (width, height, a.max_iter))
    print("  1 pool thread   %.3f s" % t[1])
    print("  2 pool threads  %.3f s" % t[2])
    print("  speed-up        %.2fx  (target >= 1.8x: %s)" % (speedup, "met" if speedup >= 1.8 else "NOT met"))


if __name__ == "__main__":
    main()
