#!/usr/bin/env python3
"""Checks the floors of engine/ (README, "How it works") from a build's object files.

    python3 scripts/dev/check_floors.py BUILD_DIR

Reads every object file of the engine (nm: what each defines, what it calls) and
fails (status 1) when
  - a file calls a function of a file on a higher floor
    (include < store < core < modules < main.c), or
  - files call each other in a circle, through any chain.
Prints each problem with the functions that tie the files. Uses the normal
flavour's objects (aqueue-run) and those of the http, redis, url and html modules.
"""
import collections
import pathlib
import subprocess
import sys

FLOORS = ["engine/include/", "engine/store/", "engine/core/", "engine/modules/", "engine/main.c"]


def floor_of(path):
    for i, prefix in enumerate(FLOORS):
        if path.startswith(prefix):
            return i
    return None


SOURCE_ROOT = pathlib.Path(__file__).resolve().parents[2]


def source_of(obj):
    # build/CMakeFiles/<target>.dir/engine/core/task.c.o -> engine/core/task.c
    # (None for an object left from a source file that no longer exists)
    parts = obj.parts
    name = "/".join(parts[parts.index("engine"):])[: -len(".o")]
    return name if (SOURCE_ROOT / name).is_file() else None


def read_objects(build):
    objects = []
    for target in sorted((build / "CMakeFiles").glob("*.dir")):
        name = target.name[: -len(".dir")]
        if name == "aqueue-run" or (name.startswith("aqueue-run-") and "asan" not in name and "tsan" not in name) \
                or name in ("aqueue_http_core", "aqueue_redis_core", "aqueue_url_core", "aqueue_html_core"):
            objects += [o for o in target.rglob("*.o") if "/engine/" in str(o)]
    defined, called = {}, collections.defaultdict(set)
    sources = {str(obj): source_of(obj) for obj in objects}
    sources = {obj: src for obj, src in sources.items() if src is not None}
    if not sources:
        return set(), {}
    # One nm for all the objects (-A: each line starts "object:"): nm's start-up
    # costs more than reading an object.
    out = subprocess.run(["nm", "-A", *sources], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        obj, _, symbol = line.partition(":")
        src = sources[obj]
        fields = symbol.split()
        if len(fields) == 3 and fields[1] in "TDBR":
            defined[fields[2]] = src
        elif len(fields) == 2 and fields[0] == "U":
            called[src].add(fields[1])
    edges = collections.defaultdict(lambda: collections.defaultdict(set))
    for src, names in called.items():
        for n in names:
            if n in defined and defined[n] != src:
                edges[src][defined[n]].add(n)
    return set(called) | set(defined.values()), edges


def circles(nodes, edges):
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return found


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build = pathlib.Path(sys.argv[1])
    nodes, edges = read_objects(build)
    if not nodes:
        sys.exit(f"no engine object files under {build}/CMakeFiles: build first")
    problems = 0
    for src in sorted(edges):
        for dst, names in sorted(edges[src].items()):
            a, b = floor_of(src), floor_of(dst)
            if a is not None and b is not None and b > a:
                print(f"up a floor: {src} -> {dst}: {', '.join(sorted(names))}")
                problems += 1
    for group in circles(nodes, edges):
        print("circle: " + ", ".join(group))
        for a in group:
            for b, names in sorted(edges[a].items()):
                if b in group:
                    print(f"  {a} -> {b}: {', '.join(sorted(names))}")
        problems += 1
    print(f"{len(nodes)} files, {sum(len(d) for d in edges.values())} calls between files, {problems} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
