#!/usr/bin/env python3
"""Cancel and restart the batch engine many times in a row: no deadlock, no leak, nothing partial.

Loads a tiny model once, then runs :func:`imgtrans.engine.convert` over a small batch again and
again, stopping each run at a random moment in one of three ways: setting the ``cancel`` event,
closing the generator (``break`` out of the loop, as a GUI dropping a job does), or letting it
finish. Each run has a deadline (a run that does not end within it is a deadlock). After every run:

* the number of Python threads is back to the baseline (the engine joins its worker and I/O pool);
* no ``.part`` temp file is in the output folder and every output decodes completely.

RSS is sampled after a warm-up and at the end; it must stay within a bound (default 64 MiB growth),
and so must the OS thread count (torch's own pools included).

Usage::

    .venv/bin/python benchmarks/engine_cancel.py [--iterations 50] [--images 6]

``tests/test_reliability.py`` runs :func:`run` with 50 iterations.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for p in (str(REPO), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from benchmarks.fuzz import decodes, picture, tiny_model  # noqa: E402


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def os_threads() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


@dataclass
class Figures:
    iterations: int = 0
    cancelled: int = 0
    closed: int = 0
    finished: int = 0
    deadlocks: int = 0
    thread_leaks: int = 0
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    os_threads_start: int = 0
    os_threads_end: int = 0
    max_stop_latency_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def rss_growth_mb(self) -> float:
        return self.rss_end_mb - self.rss_start_mb


def run(iterations: int = 50, images: int = 6, size: int = 96, seed: int = 0, work: Path | None = None,
        deadline_s: float = 60.0, warmup: int = 5, verbose: bool = False, model_kind: str = "style") -> Figures:
    from imgtrans.engine import ConvertOptions, convert
    from imgtrans.weights import load_model

    rng = random.Random(seed)
    own = work is None
    work = Path(tempfile.mkdtemp(prefix="imgtrans-cancel-")) if own else work
    src = work / "in"
    src.mkdir(parents=True, exist_ok=True)
    for i in range(images):
        picture(rng, size, size).save(src / f"img{i}.{['png', 'jpg', 'webp'][i % 3]}")
    # style (default): the instance-norm streaming path, many steps per image; denoise: plain tiles, fast
    model = load_model(tiny_model(work / f"{model_kind}.safetensors", model_kind))
    fig = Figures()
    # one full run to learn how many events a batch yields, so stops land inside the batch
    tiles = [None, 16, 32]
    n_full = {t: sum(1 for _ in convert([src], model, ConvertOptions(output_dir=work / f"calibrate{t}", tile=t)))
              for t in tiles}
    baseline_threads = threading.active_count()
    for it in range(iterations):
        out = work / f"out{it % 3}"
        how = rng.choice(["cancel", "close", "cancel", "close", "finish"])
        tile = rng.choice(tiles)
        stop_after = rng.randint(1, max(1, n_full[tile] - 2))
        cancel = threading.Event()
        opts = ConvertOptions(output_dir=out, overwrite=rng.random() < 0.85, tile=tile)
        result: dict = {}

        # consume() reads this iteration's variables (B023): its thread is joined below, and the loop stops
        # while it is still alive, so they cannot change under it
        def consume() -> None:
            t_stop = None
            gen = convert([src], model, opts, cancel=cancel)  # noqa: B023
            for n, ev in enumerate(gen, start=1):
                result.setdefault("kinds", []).append(ev.kind)  # noqa: B023
                if how == "cancel" and n == stop_after:  # noqa: B023
                    cancel.set()  # noqa: B023
                    t_stop = time.perf_counter()
                elif how == "close" and n == stop_after:  # noqa: B023
                    t_stop = time.perf_counter()
                    gen.close()  # what `break` does once the generator is dropped
                    break
            if t_stop is not None:
                result["latency"] = time.perf_counter() - t_stop  # noqa: B023

        t = threading.Thread(target=consume, name=f"consumer-{it}", daemon=True)
        t.start()
        t.join(deadline_s)
        if t.is_alive():
            fig.deadlocks += 1
            fig.problems.append(f"iteration {it}: {how} after {stop_after} events did not end "
                                f"within {deadline_s} s (deadlock)")
            break
        kinds = result.get("kinds", [])
        if how == "cancel" and "cancelled" in kinds:
            fig.cancelled += 1
        elif how == "close" and kinds and kinds[-1] != "finished":
            fig.closed += 1
        else:
            fig.finished += 1
        if how != "close" and (not kinds or kinds[-1] != "finished"):
            fig.problems.append(f"iteration {it}: the last event was {kinds[-1:]} not 'finished'")
        fig.max_stop_latency_s = max(fig.max_stop_latency_s, result.get("latency", 0.0))
        # the engine must have joined its threads by the time the generator is done
        for _ in range(50):
            if threading.active_count() <= baseline_threads:
                break
            time.sleep(0.01)
        if threading.active_count() > baseline_threads:
            fig.thread_leaks += 1
            names = sorted(th.name for th in threading.enumerate())
            left = threading.active_count() - baseline_threads
            fig.problems.append(f"iteration {it}: {left} thread(s) left: {names}")
        if out.exists():
            for p in out.iterdir():
                if p.name.endswith(".part") or p.name.startswith("."):
                    fig.problems.append(f"iteration {it}: temp file left: {p.name}")
                elif decodes(p):
                    fig.problems.append(f"iteration {it}: incomplete output {p.name}: {decodes(p)}")
        fig.iterations += 1
        if it + 1 == warmup:
            gc.collect()
            fig.rss_start_mb = rss_bytes() / 2**20
            fig.os_threads_start = os_threads()
        if verbose:
            print(f"{it:3d} {how:<6} after {stop_after:2d} events: {kinds[-1] if kinds else '-':<9} "
                  f"threads {threading.active_count()} rss {rss_bytes() / 2**20:.0f} MiB", flush=True)
    gc.collect()
    fig.rss_end_mb = rss_bytes() / 2**20
    fig.os_threads_end = os_threads()
    if own:
        shutil.rmtree(work, ignore_errors=True)
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--rss-bound-mb", type=float, default=64.0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    fig = run(args.iterations, args.images, args.size, verbose=args.verbose)
    if fig.rss_growth_mb > args.rss_bound_mb:
        fig.problems.append(f"RSS grew {fig.rss_growth_mb:.1f} MiB (bound {args.rss_bound_mb})")
    if fig.os_threads_end > fig.os_threads_start:
        fig.problems.append(f"OS threads {fig.os_threads_start} -> {fig.os_threads_end}")
    d = dict(fig.__dict__)
    d["rss_growth_mb"] = round(fig.rss_growth_mb, 1)
    d["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(d, indent=2))
    if args.json:
        args.json.write_text(json.dumps(d, indent=2))
    return 0 if not fig.problems else 1


if __name__ == "__main__":
    sys.exit(main())
