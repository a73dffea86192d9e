#!/usr/bin/env python3
"""Lines along the borders of a style model's outputs, column by column (issue 27: "no edge bands").

    .venv/bin/python benchmarks/edge_lines.py MODEL [--photos DIR] [--limit 12]
    .venv/bin/python benchmarks/edge_lines.py MODEL --pads 0 16 32 48 64

Default mode: the held-out photos of DIR (its splits.json test list; default the fetched landscape photos)
resized to 512x256 and 1440x720, run as the app runs the model (imgtrans.tiling.run_model, whole image, eager:
the model's own mirrored border, ``edge_context``); for each side, how far each of the outer 3 columns (rows)
is from the mean of columns 4-8 inside it (worst channel, grey levels of 255, mean over the photos), for the
output and for the photo itself. A line drawn by the network shows as an outer column far above the photo's.
``metrics.edge_steps`` (6 px strip against the 12 px inside, what quality.py reports) is printed with it.

``--pads``: the bare network on each photo at 512x256, mirror-padded by 32 px at the top, bottom and right and
by each of PADS px on the left, then cropped: how wide a border the network needs before its left column is
like the others (the outer column's worst channel, mean over the photos).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from imgtrans.backends import prepare_backend
from imgtrans.imageio import read_image, resize_pixels
from imgtrans.paths import fetched_data_dir
from imgtrans.tiling import run_model
from imgtrans.training.data import held_out_files
from imgtrans.training.metrics import edge_steps
from imgtrans.weights import load_model


def photo_tensor(path: Path, h: int, w: int) -> torch.Tensor:
    """The photo resized to ``h`` x ``w``: ``(1,3,h,w)`` float in [0,1]."""
    px = resize_pixels(read_image(path).pixels[:, :, :3], h, w)
    return torch.from_numpy(np.ascontiguousarray(px.transpose(2, 0, 1)))[None].float()


def outer_lines(x: torch.Tensor, n: int = 3) -> dict[str, np.ndarray]:
    """Per side (L, R, T, B), how far each of the outer ``n`` columns/rows of ``x`` ``(1,3,H,W)`` in [0,1]
    is from the mean of columns/rows 4-8 inside it: ``(n,)`` worst channel, grey levels."""
    a = x[0].double() * 255
    cols, rows = a.mean(dim=1), a.mean(dim=2)  # (3,W), (3,H)
    out = {}
    for side, line, idx, ref in (("L", cols, range(n), slice(4, 9)), ("R", cols, range(-1, -1 - n, -1), slice(-9, -4)),
                                 ("T", rows, range(n), slice(4, 9)), ("B", rows, range(-1, -1 - n, -1), slice(-9, -4))):
        inner = line[:, ref].mean(dim=1)
        out[side] = np.array([float((line[:, i] - inner).abs().max()) for i in idx])
    return out


def lines(model, photos: list[Path]) -> None:
    runner = prepare_backend(model, "eager")
    for h, w in ((256, 512), (720, 1440)):
        ours = {k: np.zeros(3) for k in "LRTB"}
        theirs = {k: np.zeros(3) for k in "LRTB"}
        steps_ours, steps_photo = [], []
        for f in photos:
            x = photo_tensor(f, h, w)
            with torch.inference_mode():
                y = run_model(runner, x, tile=0).clamp(0, 1)
            for k, v in outer_lines(y).items():
                ours[k] += v / len(photos)
            for k, v in outer_lines(x).items():
                theirs[k] += v / len(photos)
            steps_ours.append(edge_steps(y)[0].tolist())
            steps_photo.append(edge_steps(x)[0].tolist())
        print(f"{w}x{h}, border {model.edge_context} px: outer 3 columns/rows, grey levels off (model | photo)")
        for k in "LRTB":
            print(f"  {k}: {np.array2string(ours[k], precision=1)} | {np.array2string(theirs[k], precision=1)}")
        print(f"  edge_steps top, bottom, left, right: {np.round(np.mean(steps_ours, 0), 1)} "
              f"| {np.round(np.mean(steps_photo, 0), 1)}")


def pads(model, photos: list[Path], widths: list[int]) -> None:
    net = model.module.eval()
    xs = [model.to_model_range(photo_tensor(f, 256, 512)) for f in photos]
    m = max(model.size_multiple, 1)
    for p in widths:
        acc = np.zeros(3)
        for x in xs:
            xp = F.pad(x, (p, 32, 32, 32), mode="reflect")
            extra = (-xp.shape[-1]) % m, (-xp.shape[-2]) % m
            xp = F.pad(xp, (0, extra[0], 0, extra[1]), mode="reflect")
            with torch.inference_mode():
                y = model.from_model_range(net(xp))[:, :, 32 : 32 + 256, p : p + 512]
            acc += outer_lines(y)["L"] / len(xs)
        print(f"left border {p:3d} px: outer 3 columns {np.array2string(acc, precision=1)} grey levels off")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a style model file")
    ap.add_argument("--photos", type=Path, default=None, help="folder with a splits.json (default: fetched landscape)")
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--pads", type=int, nargs="*", help="left border widths to try on the bare network")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    folder = args.photos or fetched_data_dir() / "domains" / "landscape"
    photos = held_out_files(folder)[: args.limit]
    if not photos:
        print(f"no held-out photos in {folder}", file=sys.stderr)
        return 2
    model = load_model(args.model)
    if args.pads:
        pads(model, photos, args.pads)
    else:
        lines(model, photos)
    return 0


if __name__ == "__main__":
    sys.exit(main())
