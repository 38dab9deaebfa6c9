#!/usr/bin/python3
"""Reference for sleep.lua: N items that each asyncio.sleep(S), W worker tasks, asyncio.Queue.

    /usr/bin/python3 scripts/bench/sleep_asyncio.py [N=10000] [S=0.01] [workers=1000] [ready]

With `ready`, the last item to start prints "ready" on stdout just before it sleeps.
Prints one key=value line; elapsed covers starting the workers, queueing the N items
and waiting for queue.join().
"""
import asyncio
import sys
import time


class Sleeper:
    def __init__(self, i):
        self.i = i


async def main(n, secs, workers, ready):
    t0 = time.perf_counter()
    q = asyncio.Queue()
    started = 0

    async def worker():
        nonlocal started
        while True:
            item = await q.get()
            if ready:
                started += 1
                if started == n:
                    sys.stdout.write("ready\n")
                    sys.stdout.flush()
            await asyncio.sleep(secs)
            q.task_done()

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    for i in range(1, n + 1):
        q.put_nowait(Sleeper(i))
    await q.join()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return time.perf_counter() - t0


if __name__ == "__main__":
    a = sys.argv[1:]
    n = int(a[0]) if len(a) > 0 else 10000
    secs = float(a[1]) if len(a) > 1 else 0.01
    workers = int(a[2]) if len(a) > 2 else 1000
    ready = len(a) > 3 and a[3] == "ready"
    elapsed = asyncio.run(main(n, secs, workers, ready))
    print("sleep impl=asyncio n=%d seconds=%g workers=%d elapsed=%.6f" % (n, secs, workers, elapsed))
