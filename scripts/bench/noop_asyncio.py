#!/usr/bin/python3
"""Reference for noop.lua: N no-op items through an asyncio queue, W worker tasks.

    /usr/bin/python3 scripts/bench/noop_asyncio.py [N=1000000] [order=lifo] [workers=100]

order: fifo -> asyncio.Queue, lifo -> asyncio.LifoQueue, priority -> asyncio.PriorityQueue
(entries are (priority, seq, item) so items are never compared). The timed part
mirrors aqueue's run_queue: start the workers, create and put the N items, wait
for queue.join(), stop the workers. Prints one key=value line (read by run_all).
"""
import asyncio
import itertools
import sys
import time


class Noop:
    priority = 0

    def __init__(self, i):
        self.i = i

    def process(self):
        pass


async def main(n, order, workers):
    t0 = time.perf_counter()
    if order == "fifo":
        q = asyncio.Queue()
    elif order == "lifo":
        q = asyncio.LifoQueue()
    elif order == "priority":
        q = asyncio.PriorityQueue()
    else:
        raise SystemExit("order must be lifo, fifo or priority")

    if order == "priority":
        async def worker():
            while True:
                _, _, item = await q.get()
                item.process()
                q.task_done()
        seq = itertools.count()
        put = lambda item: q.put_nowait((item.priority, next(seq), item))
    else:
        async def worker():
            while True:
                item = await q.get()
                item.process()
                q.task_done()
        put = q.put_nowait

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    for i in range(1, n + 1):
        put(Noop(i))
    await q.join()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return time.perf_counter() - t0


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    order = sys.argv[2] if len(sys.argv) > 2 else "lifo"
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    elapsed = asyncio.run(main(n, order, workers))
    print("noop impl=asyncio order=%s n=%d workers=%d elapsed=%.6f items_per_s=%.0f"
          % (order, n, workers, elapsed, n / elapsed))
