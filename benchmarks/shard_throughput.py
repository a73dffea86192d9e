#!/usr/bin/env python3
"""Two processes with one thread each against one process with two threads (issue 28).

For each model, the same folder of ``--images`` real photos (crops of ``resources/samples``, ``--size``
pixels square, PNG) is converted by

* ``1x2``: ``imgtrans convert ... --threads 2`` (one process, two compute threads);
* ``2x1``: ``torchrun --standalone --nproc-per-node 2 -m imgtrans convert ...`` (two shards, one thread
  each: what the CLI picks for two processes on a two-CPU node);
* ``2x1-shard``: the same two shards started directly (``--shard 0/2`` and ``1/2``, ``--threads 1``),
  no torchrun: the start-up cost of torchrun and its process group, apart;

alternating ``1x2, 2x1, 2x1-shard, 1x2, ...`` for ``--rounds`` rounds, so that load from other processes on a
shared machine falls on both alike. Each run starts from an empty output folder, after one untimed
warm-up run per model (onnxruntime's exported graph is cached then). Reported per run:

* ``wall``: the whole command, Python and torch start-up, model load and (2x1) torchrun's rendezvous
  included;
* ``batch``: the engine's own time (``seconds`` in the ``--json`` summary: first decode to last
  write), the slowest shard for 2x1, so ``images / batch`` is the steady throughput;
* ``rss``: peak resident memory of the largest process (``getrusage`` of the children);
* ``load``: the 1-minute load average before the run (2 = both CPUs busy with other work).

    .venv/bin/python benchmarks/shard_throughput.py --models sr-x2,photo2vangogh-a2b --images 50 --size 128
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "resources" / "samples"


def make_inputs(folder: Path, n: int, size: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    photos = [Image.open(p).convert("RGB") for p in sorted(SAMPLES.glob("*.jpg"))]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = photos[i % len(photos)]
        x, y = rng.randint(0, im.width - size), rng.randint(0, im.height - size)
        im.crop((x, y, x + size, y + size)).save(folder / f"crop_{i:03d}.png")


def run_once(config: str, model: str, src: Path, out: Path) -> dict:
    """One timed run in a fresh child; returns wall, batch seconds, peak RSS of the largest process."""
    shutil.rmtree(out, ignore_errors=True)
    common = ["-m", "imgtrans", "convert", str(src), "-o", str(out), "-m", model, "--json", "--no-progress"]
    if config == "1x2":
        cmd = [sys.executable, *common, "--threads", "2"]
    elif config == "2x1":
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *common]
    else:  # two plain processes, one shard each; a small shell waits for both and prints both outputs
        one = " ".join(map(shlex.quote, [sys.executable, *common, "--threads", "1"]))
        cmd = ["bash", "-c", f"{one} --shard 0/2 > $0.0 & {one} --shard 1/2 > $0.1; wait; cat $0.0 $0.1",
               str(out) + ".stdout"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("IMGTRANS_THREADS", None)
    # a fresh Python runs the command, so getrusage(CHILDREN) holds only this run's processes
    probe = ("import json,resource,subprocess,sys,time\nt=time.perf_counter(); p=subprocess.run(sys.argv[1:], "
             "capture_output=True, text=True)\nw=time.perf_counter()-t\n"
             "print(json.dumps({'rc':p.returncode,'wall':w,"
             "'rss':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
             "'stdout':p.stdout,'stderr':p.stderr[-2000:]}))\n")
    load = os.getloadavg()[0]
    res = json.loads(subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, env=env,
                                    cwd=ROOT).stdout)
    if res["rc"] != 0:
        raise SystemExit(f"{config} {model} failed ({res['rc']}):\n{res['stderr']}")
    events = [json.loads(line) for line in res["stdout"].splitlines()]
    summaries = [e for e in events if e["event"] == "summary"]
    done = sum(e["event"] == "done" for e in events)
    return {"wall": res["wall"], "batch": max(s["seconds"] for s in summaries), "rss_mib": res["rss"] / 1024,
            "done": done, "load": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="sr-x2,photo2vangogh-a2b")
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imgtrans-shard-bench-"))
    try:
        src = work / "in"
        make_inputs(src, args.images, args.size)
        print(f"{args.images} images {args.size}x{args.size}; {os.cpu_count()} CPUs; load before start "
              f"{os.getloadavg()[0]:.2f}", flush=True)
        for model in args.models.split(","):
            run_once("1x2", model, src, work / "warm")  # caches (onnxruntime graph), page cache
            runs: dict[str, list[dict]] = {"1x2": [], "2x1": [], "2x1-shard": []}
            for _ in range(args.rounds):
                for config in runs:
                    r = run_once(config, model, src, work / f"out-{config}")
                    assert r["done"] == args.images, r
                    runs[config].append(r)
                    print(f"  {model:>20} {config:>9}: wall {r['wall']:6.1f} s, batch {r['batch']:6.1f} s "
                          f"({args.images / r['batch']:.2f} img/s), peak RSS {r['rss_mib']:.0f} MiB, load "
                          f"{r['load']:.2f}",
                          flush=True)
            for config, rs in runs.items():
                b = statistics.median(r["batch"] for r in rs)
                w = statistics.median(r["wall"] for r in rs)
                print(f"{model} {config:>9}: median batch {b:.1f} s = {args.images / b:.2f} img/s; "
                      f"median wall {w:.1f} s = {args.images / w:.2f} img/s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
