#!/usr/bin/env python3
"""How much faster than a plain loop can any pipeline be on this CPU? (issue 7)

Issue 7 asks the batch pipeline for >= 2x the throughput of a straightforward per-image eager loop
on the same weights. Overlapping decode and encode with inference, picking a backend and reusing
buffers can only remove time that is not arithmetic: the network's floating-point work stays. This
script measures both sides of that bound:

* the machine's fp32 peak: the best GFLOP/s of large ``torch.mm`` calls on all threads, the
  densest arithmetic the CPU does (convolution kernels reach it at best);
* each model's arithmetic per image (``torch.utils.flop_counter``: 2 FLOPs per multiply-add of the
  convolutions and matmuls; the element-wise work is left out, which favours the pipeline);
* the plain loop's eager forward time on one image of the same size (median of ``--repeats``).

``floor = FLOPs / peak`` is the least time any implementation of that network needs per image at
fp32, and ``plain forward / floor`` the most any pipeline could gain over the plain loop's
inference alone; the loop's decode and encode (a few % of its time here, ``speed.py``) add little.
Where that bound is below 2, the target cannot be met on this machine without changing the
arithmetic (lower precision, fewer operations), which would break "results equal to eager".

    .venv/bin/python benchmarks/roofline.py            # wrap in benchmarks/quiet.sh on a busy machine
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from speed import KINDS, sample_tensor


def peak_gflops(repeats: int = 5) -> tuple[float, str]:
    """The best fp32 GFLOP/s seen on torch's threads: large matmuls and dense 3x3 convolutions
    (NCHW and channels_last), whichever is fastest; and what reached it."""
    import torch.nn.functional as F

    def best(fn, flops: float) -> float:
        fn()
        top = 0.0
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            top = max(top, flops / (time.perf_counter() - t0) / 1e9)
        return top

    found = {}
    for n in (2048, 4096):
        a, b = torch.randn(n, n), torch.randn(n, n)
        found[f"matmul {n}"] = best(lambda: torch.mm(a, b), 2 * n**3)  # noqa: B023 - timed and dropped at once
    with torch.no_grad():
        for c, edge in ((64, 256), (128, 64), (256, 64)):
            w = torch.randn(c, c, 3, 3)
            for fmt in (torch.contiguous_format, torch.channels_last):
                x = torch.randn(1, c, edge, edge).contiguous(memory_format=fmt)
                wf = w.contiguous(memory_format=fmt)
                name = f"conv3x3 {c}ch {edge}px {'channels_last' if fmt is torch.channels_last else 'NCHW'}"
                # the lambda is timed and dropped in this iteration
                found[name] = best(lambda: F.conv2d(x, wf, padding=1), 2 * c * c * 9 * edge * edge)  # noqa: B023
    name = max(found, key=found.get)
    return found[name], name


def flops_of(net: torch.nn.Module, x: torch.Tensor, *extra) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x, *extra)
    return counter.get_total_flops()


def plain_loop_ms(net: torch.nn.Module, x: torch.Tensor, extra: tuple, repeats: int, value_range) -> float:
    """ms per image of the loop a user writes (speed.py's naive loop): PIL open, to tensor, the
    network in eager fp32, clamp, to uint8, PIL save as PNG; median over ``repeats`` images."""
    import tempfile

    import numpy as np
    from PIL import Image

    lo, hi = value_range
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.png"
        Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(src)
        times = []
        for i in range(repeats + 1):  # the first pass warms the kernels up
            t0 = time.perf_counter()
            im = Image.open(src).convert("RGB")
            t = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
            with torch.no_grad():
                y = ((net(t * (hi - lo) + lo, *extra) - lo) / (hi - lo)).clamp(0, 1)
            arr = (y[0].permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
            Image.fromarray(arr).save(Path(tmp) / f"out{i}.png")
            if i:
                times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def networks():
    """(label, module, input, extra args): the speed.py networks, and the bundled models."""
    from imgtrans.archs import get_arch
    from imgtrans.catalog import list_models
    from imgtrans.weights import open_model

    for _task, _scale, edge, (arch, hp) in KINDS.values():
        net = get_arch(arch).build(hp).eval()
        extra = (torch.tensor(25 / 255.0),) if getattr(net, "noise_map", False) else ()
        value_range = get_arch(arch).value_range
        label = f"random-init {arch} " + ", ".join(f"{k} {v}" for k, v in hp.items())
        yield label, net, sample_tensor(edge), extra, value_range
    for entry in list_models():
        if entry.source != "bundled":
            continue
        model, _ = open_model(entry.id)
        edge = KINDS["sr-x4"][2] if model.scale == 4 else 256
        extra = (torch.tensor(25 / 255.0),) if model.takes_noise_level else ()
        yield f"{entry.id} (bundled)", model.module.eval(), sample_tensor(edge), extra, model.value_range


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="images timed per network (median)")
    args = ap.parse_args(argv)
    peak, what = peak_gflops()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32 peak {peak:.0f} GFLOP/s ({what})\n")
    print("| network | input | GFLOP / image | plain loop ms / image | its GFLOP/s | floor ms at peak | most any "
          "pipeline can gain |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, net, x, extra, value_range in networks():
        flops = flops_of(net, x, *extra)
        ms = plain_loop_ms(net, x, extra, args.repeats, value_range)
        floor = flops / (peak * 1e9) * 1000
        print(f"| {label} | {x.shape[-1]}x{x.shape[-2]} | {flops / 1e9:.1f} | {ms:.0f} | "
              f"{flops / 1e9 / (ms / 1000):.0f} | {floor:.0f} | {ms / floor:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
