#!/usr/bin/env python3
"""Quick x2 SRResNet for the demo: a few minutes of CPU on real photos, L1 loss.

This is the stop-gap demo model of the core issue; the bundled models proper are trained with
``imgtrans-train`` (see training/README.md). Usage::

    python training/quick_sr/train.py --data ~/.cache/imgtrans/data/space-photos \
        --out resources/models/sr_x2_quick.safetensors --minutes 12

LR inputs are made on the fly by antialiased bicubic downscaling of random HR crops of the
*train* split (``splits.json`` from training/data/split.py); PSNR-Y against bicubic is reported on
the *val* split at the end and stored in the weight metadata.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from imgtrans.archs import SRResNet
from imgtrans.imageio import read_image
from imgtrans.weights import save_model


def bicubic_down(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """``(B,3,H,W)`` in [0,1] -> ``(B,3,H/scale,W/scale)``, antialiased bicubic, clamped."""
    return F.interpolate(hr, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def psnr_y(a: torch.Tensor, b: torch.Tensor, border: int) -> float:
    """PSNR on the BT.601 luma of ``(1,3,H,W)`` images in [0,1], ignoring ``border`` pixels."""
    w = torch.tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1) / 255.0
    ya, yb = (a * w).sum(1) + 16 / 255, (b * w).sum(1) + 16 / 255
    ya, yb = ya[..., border:-border, border:-border], yb[..., border:-border, border:-border]
    return float(10 * torch.log10(1.0 / F.mse_loss(ya, yb)))


def load_split(folder: Path, name: str) -> list[Path]:
    splits = json.loads((folder / "splits.json").read_text())
    return [folder / f for f in splits[name]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--nf", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--patch", type=int, default=48, help="LR patch size")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train = [read_image(p).pixels for p in load_split(args.data, "train")]
    val = [read_image(p).pixels for p in load_split(args.data, "val")][:8]
    print(f"{len(train)} training images, {len(val)} validation images")

    model = SRResNet(nf=args.nf, n_blocks=args.blocks, scale=args.scale)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    hr_patch = args.patch * args.scale
    deadline = time.time() + args.minutes * 60
    step = 0
    while time.time() < deadline:
        batch = []
        for _ in range(args.batch):
            img = train[rng.integers(len(train))]
            y, x = rng.integers(img.shape[0] - hr_patch), rng.integers(img.shape[1] - hr_patch)
            crop = img[y : y + hr_patch, x : x + hr_patch]
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            batch.append(np.ascontiguousarray(crop.transpose(2, 0, 1)))
        hr = torch.from_numpy(np.stack(batch))
        lr = bicubic_down(hr, args.scale)
        loss = F.l1_loss(model(lr), hr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 100 == 0:
            print(f"step {step} L1 {loss.item():.4f}", flush=True)
    model.eval()
    ours, bicubic = [], []
    with torch.no_grad():
        for img in val:
            h, w = img.shape[0] // args.scale * args.scale, img.shape[1] // args.scale * args.scale
            hr = torch.from_numpy(np.ascontiguousarray(img[:h, :w].transpose(2, 0, 1)))[None]
            lr = bicubic_down(hr, args.scale)
            ours.append(psnr_y(model(lr).clamp(0, 1), hr, args.scale))
            up = F.interpolate(lr, scale_factor=args.scale, mode="bicubic", align_corners=False).clamp(0, 1)
            bicubic.append(psnr_y(up, hr, args.scale))
    gain = float(np.mean(ours) - np.mean(bicubic))
    print(f"val PSNR-Y: ours {np.mean(ours):.2f} dB, bicubic {np.mean(bicubic):.2f} dB, gain {gain:+.2f} dB")
    save_model(
        args.out,
        model,
        "srresnet",
        {"nf": args.nf, "n_blocks": args.blocks, "scale": args.scale},
        {
            "id": f"sr-x{args.scale}-quick",
            "name": f"Super-resolution x{args.scale} (quick demo model)",
            "description": "Small SRResNet trained for a few CPU minutes with L1 loss on bicubic-downscaled photos.",
            "training_data": f"{args.data.name}: Endless Sky landing photos (endless-sky-high-dpi), train split",
            "licence": "model: MIT; data: public domain + CC-BY-SA (see resources/LICENSES)",
            "steps": str(step),
            "recipe": "training/quick_sr/train.py",
            "metric": json.dumps({"val_psnr_y": round(float(np.mean(ours)), 3),
                                  "bicubic_psnr_y": round(float(np.mean(bicubic)), 3)}),
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
