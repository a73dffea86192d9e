#!/usr/bin/env python3
"""Seconds per training iteration of each preset: ``imgtrans-train`` vs a reference-style loop.

For every preset, in the same process and on the same synthetic image folders, alternating one iteration of each,
this times

* **imgtrans**: the real training loop (:func:`imgtrans.training.loop.train`: data checks are done
  beforehand, then data loading, augmentation, the step, logging to CSV), per-iteration wall time
  from its ``Step`` events;
* **reference**: a straightforward loop written the way the reference implementations are
  (CycleGAN's ``optimize_parameters`` with ``set_requires_grad``, two discriminator backwards,
  Python-random image pool; SRResNet/DnCNN: forward, loss, backward, step), fed by a plain dataset that
  decodes, resizes and crops with PIL every time, as torchvision transforms do;

with the same networks (``imgtrans.archs``), batch size and crop size, and prints the fastest and the
median s/it of both and the ratio of the fastest (reference / imgtrans: above 1 means imgtrans is
faster). The fastest iteration is the robust number on a shared machine: other processes only ever
add time (the load average is printed before and after).

    python benchmarks/train_speed.py                          # CycleGAN cpu-tiny and cpu-small
    python benchmarks/train_speed.py --tasks cyclegan,sr,denoise --presets cpu-tiny,cpu-small,paper --iters 5
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imgtrans.archs import DnCNN, NLayerDiscriminator, ResnetGenerator, SRResNet
from imgtrans.training.config import PRESETS, resolve


def make_images(folder: Path, n: int, size: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        yy, xx = np.mgrid[0:size, 0 : size * 4 // 3]
        img = np.stack([xx % 255, yy % 255, (xx * yy) % 255], -1) + rng.normal(0, 20, (size, size * 4 // 3, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i:03d}.jpg", quality=92)
    return folder


# ------------------------------------------------------------------------------------ reference style


def pil_crop(path: Path, load: int, size: int, flip: bool = True) -> torch.Tensor:
    """Decode, resize to ``load`` square (bicubic), random crop ``size``, flip; -> (3,size,size) [0,1]."""
    im = Image.open(path).convert("RGB").resize((load, load), Image.BICUBIC)
    x, y = random.randint(0, load - size), random.randint(0, load - size)
    im = im.crop((x, y, x + size, y + size))
    if flip and random.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)


class RefPool:
    def __init__(self, size: int = 50):
        self.size, self.images = size, []

    def query(self, images):
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                i = random.randint(0, self.size - 1)
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out, 0)


def reference_cyclegan(cfg, folder_a: Path, folder_b: Path, iters: int):
    """Yields the wall time of each iteration."""
    files_a, files_b = sorted(folder_a.iterdir()), sorted(folder_b.iterdir())
    G_A, G_B = (ResnetGenerator(3, 3, cfg.ngf, cfg.n_blocks, upsample=cfg.upsample) for _ in range(2))
    D_A, D_B = NLayerDiscriminator(3, cfg.ndf, 3), NLayerDiscriminator(3, cfg.ndf, 3)
    opt_G = torch.optim.Adam(list(G_A.parameters()) + list(G_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(list(D_A.parameters()) + list(D_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
    pool_A, pool_B = RefPool(), RefPool()
    mse, l1 = torch.nn.MSELoss(), torch.nn.L1Loss()

    def gan(pred, real):
        return mse(pred, torch.ones_like(pred) if real else torch.zeros_like(pred))

    def set_requires_grad(nets, flag):
        for n in nets:
            for p in n.parameters():
                p.requires_grad = flag

    load = cfg.effective_load_size
    for _ in range(iters):
        t0 = time.perf_counter()
        real_A = torch.stack([pil_crop(random.choice(files_a), load, cfg.size) * 2 - 1 for _ in range(cfg.batch_size)])
        real_B = torch.stack([pil_crop(random.choice(files_b), load, cfg.size) * 2 - 1 for _ in range(cfg.batch_size)])
        fake_B = G_A(real_A)
        rec_A = G_B(fake_B)
        fake_A = G_B(real_B)
        rec_B = G_A(fake_A)
        set_requires_grad([D_A, D_B], False)
        opt_G.zero_grad()
        idt_A, idt_B = G_A(real_B), G_B(real_A)
        loss_G = (gan(D_A(fake_B), True) + gan(D_B(fake_A), True) + l1(rec_A, real_A) * 10 + l1(rec_B, real_B) * 10
                  + l1(idt_A, real_B) * 5 + l1(idt_B, real_A) * 5)  # fmt: skip
        loss_G.backward()
        opt_G.step()
        set_requires_grad([D_A, D_B], True)
        opt_D.zero_grad()
        fb = pool_B.query(fake_B.detach())
        ((gan(D_A(real_B), True) + gan(D_A(fb.detach()), False)) * 0.5).backward()
        fa = pool_A.query(fake_A.detach())
        ((gan(D_B(real_A), True) + gan(D_B(fa.detach()), False)) * 0.5).backward()
        opt_D.step()
        yield time.perf_counter() - t0


def reference_restoration(cfg, folder: Path, iters: int):
    """Yields the wall time of each iteration."""
    files = sorted(folder.iterdir())
    if cfg.task == "sr":
        net = SRResNet(3, 3, cfg.nf, cfg.n_blocks, cfg.scale)
    else:
        net = DnCNN(3, cfg.nf, cfg.depth, cfg.bn, cfg.noise_map)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    for _ in range(iters):
        t0 = time.perf_counter()
        hrs, lrs = [], []
        for _ in range(cfg.batch_size):
            im = Image.open(random.choice(files)).convert("RGB")
            x, y = random.randint(0, im.width - cfg.size), random.randint(0, im.height - cfg.size)
            hr = im.crop((x, y, x + cfg.size, y + cfg.size))
            if cfg.task == "sr":
                lr = hr.resize((cfg.size // cfg.scale,) * 2, Image.BICUBIC)
            else:
                lr = hr
            hrs.append(torch.from_numpy(np.asarray(hr, dtype=np.float32) / 255).permute(2, 0, 1))
            lrs.append(torch.from_numpy(np.asarray(lr, dtype=np.float32) / 255).permute(2, 0, 1))
        hr, lr = torch.stack(hrs), torch.stack(lrs)
        opt.zero_grad()
        if cfg.task == "sr":
            loss = F.l1_loss(net(lr), hr)
        else:
            sigma = torch.rand(hr.shape[0]) * 45 / 255 + 5 / 255
            noisy = hr + torch.randn_like(hr) * sigma.view(-1, 1, 1, 1)
            loss = F.mse_loss(net(noisy, sigma if cfg.noise_map else None), hr)
        loss.backward()
        opt.step()
        yield time.perf_counter() - t0


# ------------------------------------------------------------------------------------ imgtrans


def imgtrans_times(cfg):
    """Yields the wall time of each iteration (data + step) of the real training loop."""
    from imgtrans.training import events as ev
    from imgtrans.training.loop import train

    for e in train(cfg, resume=None):
        if isinstance(e, ev.Step):
            yield e.seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="cyclegan", help="comma-separated: cyclegan,sr,denoise")
    ap.add_argument("--presets", default="cpu-tiny,cpu-small", help="comma-separated preset names")
    ap.add_argument("--iters", type=int, default=8, help="timed iterations per loop (after 2 warm-up iterations)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warm = 2
    tmp = Path(tempfile.mkdtemp(prefix="imgtrans-bench-"))
    os.environ["IMGTRANS_HOME"] = str(tmp / "home")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f} at start")  # fmt: skip
    print(f"{'task':<9} {'preset':<10} {'batch':>5} {'size':>5} {'imgtrans s/it (median)':>23} "
          f"{'reference s/it (median)':>24} {'ratio':>6}")  # fmt: skip
    for task in args.tasks.split(","):
        for preset in args.presets.split(","):
            if preset not in PRESETS[task]:
                continue
            cfg0 = resolve(task, {"preset": preset})
            side = max(cfg0.size * 2, 300)
            a = make_images(tmp / f"{task}-{preset}-a", 12, side, 1)
            b = make_images(tmp / f"{task}-{preset}-b", 12, side, 2)
            opts = dict(preset=preset, name=f"{task}-{preset}", steps=warm + args.iters, tensorboard=False,
                        export=False,
                        sample_every=0, eval_every=0, save_every_min=1e9, device="cpu")  # fmt: skip
            opts.update(domain_a=str(a), domain_b=str(b)) if task == "cyclegan" else opts.update(data=str(a))
            cfg = resolve(task, opts)
            random.seed(0)
            if task == "cyclegan":
                reference = reference_cyclegan(cfg, a, b, warm + args.iters)
            else:
                reference = reference_restoration(cfg, a, warm + args.iters)
            # alternate one iteration of each, so a change in machine load hits both alike
            pairs = list(zip(imgtrans_times(cfg), reference))[warm:]
            ours, ref = [p[0] for p in pairs], [p[1] for p in pairs]
            ours_s = f"{min(ours):.3f} ({statistics.median(ours):.3f})"
            ref_s = f"{min(ref):.3f} ({statistics.median(ref):.3f})"
            print(f"{task:<9} {preset:<10} {cfg.batch_size:>5} {cfg.size:>5} {ours_s:>23} {ref_s:>24} "
                  f"{min(ref) / min(ours):>6.2f}", flush=True)  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} at the end (other processes distort timings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
