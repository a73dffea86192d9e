#!/usr/bin/env python3
"""How even hash sharding is, and what balancing by pixel count would cost (issue 28).

Compares, for a folder of n inputs over N shards,

* ``hash``: what ``imgtrans.shard`` does (jump consistent hash of the relative path);
* ``pixels``: greedy balancing by pixel count (largest file first onto the least loaded shard), the
  best a planner that knows every size can do without splitting files;

by the work of the busiest shard over the mean (1.00 = perfect), and by the share of the existing
files that change shard when 1 % more files are added to the folder (a re-run after files arrived).

The sizes are drawn, with a fixed seed, log-uniformly between 0.3 and 24 megapixels (a scan archive of
mixed sizes); only the assignment is computed, no image is read. The
cost side is measured on real files: the time to read one image header (what pixel balancing needs in
every process before the first conversion) against the time to hash one path, over ``--headers``
(default: the photos of ``resources/samples`` and ``tests/data/photos``, read repeatedly).

    .venv/bin/python benchmarks/shard_balance.py
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imgtrans.shard import shard_of  # noqa: E402


def greedy(sizes: dict[str, float], n: int) -> dict[str, int]:
    heap = [(0.0, i) for i in range(n)]
    out = {}
    for name, px in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        load, i = heapq.heappop(heap)
        out[name] = i
        heapq.heappush(heap, (load + px, i))
    return out


def peak_over_mean(assign: dict[str, int], sizes: dict[str, float], n: int) -> float:
    loads = [0.0] * n
    for name, i in assign.items():
        loads[i] += sizes[name]
    return max(loads) / (sum(loads) / n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--counts", default="100,1000,20000,200000")
    ap.add_argument("--headers", type=Path, nargs="*", default=None)
    ap.add_argument("--plan-files", type=int, default=20000, help="time make_plan over this many files (0: no)")
    args = ap.parse_args()
    rng = random.Random(0)
    n = args.shards
    r1 = random.Random(1)
    probe = [math.exp(r1.uniform(math.log(0.3e6), math.log(24e6))) for _ in range(100000)]
    print(f"{n} shards; sizes log-uniform 0.3-24 MP (coefficient of variation "
          f"{statistics.pstdev(probe) / statistics.mean(probe):.2f})")
    print(f"{'files':>8} {'hash peak/mean':>15} {'pixels peak/mean':>17} {'moved +1% (hash)':>17} "
          f"{'moved +1% (pixels)':>19}")
    for count in map(int, args.counts.split(",")):
        sizes = {f"scans/{i:06d}.tif": math.exp(rng.uniform(math.log(0.3e6), math.log(24e6))) for i in range(count)}
        extra = {f"new/{i:06d}.tif": math.exp(rng.uniform(math.log(0.3e6), math.log(24e6)))
                 for i in range(max(1, count // 100))}
        h = {k: shard_of(k, n) for k in sizes}
        h2 = {k: shard_of(k, n) for k in {**sizes, **extra}}
        g = greedy(sizes, n)
        g2 = greedy({**sizes, **extra}, n)
        moved_h = sum(h[k] != h2[k] for k in sizes) / count
        moved_g = sum(g[k] != g2[k] for k in sizes) / count
        print(f"{count:>8} {peak_over_mean(h, sizes, n):>15.3f} {peak_over_mean(g, sizes, n):>17.3f} "
              f"{moved_h:>16.1%} {moved_g:>18.1%}")
    files = args.headers or sorted([*(ROOT / "resources" / "samples").glob("*.jpg"),
                                    *(ROOT / "tests" / "data" / "photos").glob("*.png")])
    from PIL import Image

    reps = max(1, 2000 // len(files))
    t = time.perf_counter()
    for _ in range(reps):
        for f in files:
            with Image.open(f) as im:
                _ = im.size
    header_us = (time.perf_counter() - t) / (reps * len(files)) * 1e6
    keys = [f"scans/{i:06d}.tif" for i in range(20000)]
    t = time.perf_counter()
    for k in keys:
        shard_of(k, n)
    hash_us = (time.perf_counter() - t) / len(keys) * 1e6
    print(f"one image header (PIL, {len(files)} real files, page cache warm, local disk): {header_us:.0f} us; "
          f"one path hashed to its shard: {hash_us:.1f} us")
    if args.plan_files:
        import shutil
        import tempfile

        from imgtrans.engine import ConvertOptions, make_plan

        work = Path(tempfile.mkdtemp(prefix="imgtrans-plan-"))
        try:
            for d in range(args.plan_files // 1000):
                sub = work / "in" / f"roll_{d:03d}"
                sub.mkdir(parents=True)
                for i in range(1000):
                    (sub / f"scan_{i:04d}.png").touch()
            t = time.perf_counter()
            plan = make_plan([work / "in"], ConvertOptions(output_dir=work / "out", recursive=True))
            took = time.perf_counter() - t
            print(f"planning {len(plan.jobs)} inputs in {args.plan_files // 1000} folders (every shard does it; "
                  f"local disk, cache warm): {took:.2f} s")
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
