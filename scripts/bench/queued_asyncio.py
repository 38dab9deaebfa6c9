#!/usr/bin/python3
"""Reference for queued.lua: N items put into an asyncio.Queue at once, then processed.

    /usr/bin/python3 scripts/bench/queued_asyncio.py [N=1000000] [workers=100]

Reports VmRSS when all N are queued and VmHWM at the end; run_all measures the
peak RSS itself (ru_maxrss from wait4).
"""
import asyncio
import re
import sys
import time


def status_kb(field):
    try:
        with open("/proc/self/status") as f:
            m = re.search(field + r":\s*(\d+)", f.read())
        return int(m.group(1)) if m else -1
    except OSError:
        return -1


class Noop:
    def __init__(self, i):
        self.i = i

    def process(self):
        pass


async def main(n, workers):
    t0 = time.perf_counter()
    q = asyncio.Queue()

    async def worker():
        while True:
            item = await q.get()
            item.process()
            q.task_done()

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    for i in range(1, n + 1):
        q.put_nowait(Noop(i))
    rss_queued = status_kb("VmRSS")
    await q.join()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return rss_queued, time.perf_counter() - t0


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    rss_queued, elapsed = asyncio.run(main(n, workers))
    print("queued impl=asyncio n=%d rss_queued_kb=%d hwm_kb=%d elapsed=%.6f"
          % (n, rss_queued, status_kb("VmHWM"), elapsed))
