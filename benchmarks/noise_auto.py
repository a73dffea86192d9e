"""Automatic noise level: how well ``imgtrans.noise`` measures the noise of held-out photos, and
what the bundled ``denoise-color`` gives with the measured level ("auto", the default) against the
same model given the true level and against OpenCV's non-local means.

    python benchmarks/noise_auto.py DIR [--limit 24] [--crop 256] [--threads 1]
    python benchmarks/noise_auto.py DIR --per-channel [--model denoise-gray] [--limit 12]

``DIR``: a data set folder (with ``splits.json`` its test split is used, never seen in training;
e.g. ``~/.cache/imgtrans/data/space-photos``). Centre crops of each image get, with a fixed seed:

- Gaussian noise of sigma 5/15/25/50 (0-255 scale), clipped and rounded to 8 bits;
- camera-like noise: Poisson (shot) noise with a peak of 30-300 photons at white plus Gaussian read
  noise of sigma 2-6, clipped to 8 bits; the "true level" is the RMS of the noise added;
- the same camera noise, then saved as JPEG at a quality of 75-95 (true level: the noise before
  compression).

Per condition: the mean measured level (RMS of the channels) against the true level, the level
auto gives the network (with its JPEG and low-level corrections), PSNR (RGB) of the noisy input,
of NLM (``fastNlMeansDenoisingColored``, its ``h`` the true level times the best factor of a grid on
the first 4 crops), of ``denoise-color`` given the true level, given the measured level without
corrections, and on auto
(:func:`imgtrans.noise.estimate_noise` and ``level_to_use``, as
:func:`imgtrans.channels.auto_noise_level` runs them for the app). Prints a Markdown table.

``--per-channel``: colour noise that differs between channels (Gaussian sigma R/G/B 8/12/25 and
25/15/40, and 20/20/20 as the control), for a one-channel model (default ``denoise-gray``) run on each
channel of the colour crops as the app runs it: PSNR (RGB) with each channel given its own measured
level (auto, :func:`imgtrans.noise.levels_to_use`), with one level for all three (the RMS,
:func:`~imgtrans.noise.level_to_use`, what auto gave before), with the true per-channel levels and
with the true RMS level; and ``denoise-color`` on auto on the same crops, for reference.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import center_crop, clean_images, load_rgb, nlm, rgb_scores, run_model

from imgtrans.catalog import find_model
from imgtrans.noise import estimate_noise, level_to_use, levels_to_use
from imgtrans.weights import load_model

NLM_FACTORS = (0.4, 0.5, 0.6, 0.8, 1.0)


def gaussian(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    noisy = clean.astype(np.float64) + rng.normal(0.0, sigma, clean.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8), float(sigma)


def camera(clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Poisson-Gaussian noise: ``(H,W,3)`` uint8 -> noisy uint8 and the RMS of the noise added."""
    peak = float(np.exp(rng.uniform(np.log(30), np.log(300))))
    read = float(rng.uniform(2.0, 6.0))
    x = clean.astype(np.float64) / 255.0
    noisy = rng.poisson(x * peak) / peak * 255.0 + rng.normal(0.0, read, x.shape)
    true = float(np.sqrt(np.mean((noisy - clean) ** 2)))
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8), true


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def conditions(cleans: list[np.ndarray]):
    """``(name, [(noisy uint8, true level, JPEG quality or None)])`` for each noise condition, fixed
    seeds. The JPEG quality is what the app reads from the file's quantisation table."""
    for sigma in (5, 15, 25, 50):
        rng = np.random.default_rng(sigma)
        yield f"Gaussian {sigma}", [(*gaussian(c, sigma, rng), None) for c in cleans]
    rng = np.random.default_rng(1)
    cam = [camera(c, rng) for c in cleans]
    yield "camera (Poisson-Gaussian)", [(n, t, None) for n, t in cam]
    rng = np.random.default_rng(2)
    qualities = [int(q) for q in rng.integers(75, 96, len(cam))]
    yield "camera + JPEG q75-95", [(jpeg(n, q), t, q) for (n, t), q in zip(cam, qualities)]


PER_CHANNEL_SIGMAS = ((8, 12, 25), (25, 15, 40), (20, 20, 20))


def per_channel_gaussian(clean: np.ndarray, sigmas, rng: np.random.Generator) -> np.ndarray:
    noisy = clean.astype(np.float64) + rng.normal(0.0, 1.0, clean.shape) * np.asarray(sigmas, np.float64)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def run_per_channel(model, img: np.ndarray, levels) -> np.ndarray:
    """A one-channel ``model`` on each channel of ``(H,W,3)`` uint8 ``img`` with that channel's level, as
    :func:`imgtrans.channels.process_image` runs it on per-channel levels."""
    return np.concatenate([run_model(model, img[:, :, c : c + 1], lv) for c, lv in enumerate(levels)], axis=2)


def per_channel_table(cleans: list[np.ndarray], model_id: str) -> None:
    model = load_model(find_model(model_id).path)
    colour = load_model(find_model("denoise-color").path)
    print("| noise sigma R/G/B | measured R/G/B (mean) | levels used on auto R/G/B (mean) | one level (RMS) on "
          "auto (mean) | noisy | true per-channel levels | true RMS level | auto, one level (before) "
          "| auto, per channel | per channel - one level (mean, worst, best image) | per channel - true "
          "| per-channel PSNR R/G/B: one level -> per channel | denoise-color, auto |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for sigmas in PER_CHANNEL_SIGMAS:
        rng = np.random.default_rng(sum(sigmas))
        noisy = [per_channel_gaussian(c, sigmas, rng) for c in cleans]
        true_rms = float(np.sqrt(np.mean(np.square(sigmas))))
        measured, per, one = [], [], []
        for n in noisy:
            est = estimate_noise(n.astype(np.float32) / 255.0)
            measured.append(est)
            per.append(levels_to_use(est))
            one.append(level_to_use(est))
        scores = {k: [] for k in ("noisy", "true", "true_rms", "one", "per", "colour")}
        chan = {k: [] for k in ("one", "per")}
        with torch.inference_mode():
            for c, n, lv, lone in zip(cleans, noisy, per, one):
                outs = {"true": run_per_channel(model, n, sigmas), "true_rms": run_model(model, n, true_rms),
                        "one": run_model(model, n, lone), "per": run_per_channel(model, n, lv),
                        "colour": run_model(colour, n, level_to_use(estimate_noise(n.astype(np.float32) / 255)))}
                scores["noisy"].append(rgb_scores(n, c)["psnr"])
                for k, o in outs.items():
                    scores[k].append(rgb_scores(o, c)["psnr"])
                for k in chan:
                    err = (outs[k].astype(np.float64) - c) ** 2
                    chan[k].append(10 * np.log10(255.0**2 / err.reshape(-1, 3).mean(axis=0)))
        m = {k: float(np.mean(v)) for k, v in scores.items()}
        gain = np.array(scores["per"]) - np.array(scores["one"])
        mean3 = lambda rows: "/".join(f"{v:.1f}" for v in np.mean(rows, axis=0))  # noqa: E731
        ch = " ".join(f"{a:.2f}->{b:.2f}" for a, b in zip(np.mean(chan["one"], axis=0), np.mean(chan["per"], axis=0)))
        print(f"| {'/'.join(map(str, sigmas))} | {mean3(measured)} | {mean3(per)} | {np.mean(one):.1f} "
              f"| {m['noisy']:.2f} | {m['true']:.2f} | {m['true_rms']:.2f} | {m['one']:.2f} | {m['per']:.2f} "
              f"| {gain.mean():+.2f} ({gain.min():+.2f}, {gain.max():+.2f}) | {m['per'] - m['true']:+.2f} "
              f"| {ch} | {m['colour']:.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--limit", type=int, default=24, help="first N test images (default 24)")
    ap.add_argument("--crop", type=int, default=256, help="centre crop side (default 256)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default=None, help="default denoise-color (denoise-gray with --per-channel)")
    ap.add_argument("--per-channel", action="store_true",
                    help="noise that differs between R, G and B, a one-channel model given a level per channel")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import cv2

    cv2.setNumThreads(args.threads)
    files, what = clean_images(args.data.expanduser())
    files = files[: args.limit]
    cleans = [center_crop(load_rgb(p), args.crop) for p in files]
    if args.per_channel:
        args.model = args.model or "denoise-gray"
        print(f"{len(cleans)} of {what}, {args.crop} px centre crops; model {args.model}, per-channel noise\n")
        per_channel_table(cleans, args.model)
        return
    args.model = args.model or "denoise-color"
    model = load_model(find_model(args.model).path)
    print(f"{len(cleans)} of {what}, {args.crop} px centre crops; model {args.model}\n")
    print("| noise | true level | measured (mean, min-max) | level used on auto (mean) | noisy | NLM (true level) "
          "| ours, true level | ours, measured level uncorrected | ours, auto | auto - true | auto - NLM "
          "| worst image auto - true |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    t_est = []
    for name, items in conditions(cleans):
        trues = np.array([t for _, t, _ in items])
        raws, ests = [], []
        for n, _, q in items:
            t0 = time.perf_counter()
            per_channel = estimate_noise(n.astype(np.float32) / 255.0)
            ests.append(level_to_use(per_channel, q))  # what imgtrans.channels.auto_noise_level does
            t_est.append((time.perf_counter() - t0) / (n.shape[0] * n.shape[1] / 1e6))
            raws.append(round(float(np.sqrt(np.mean(per_channel**2))), 1))
        factor = max(NLM_FACTORS, key=lambda f: np.mean([rgb_scores(nlm(n, f * t), c)["psnr"]
                                                         for c, (n, t, _) in list(zip(cleans, items))[:4]]))
        scores = {k: [] for k in ("noisy", "nlm", "true", "raw", "auto")}
        with torch.inference_mode():
            for c, (n, t, _), r, e in zip(cleans, items, raws, ests):
                scores["noisy"].append(rgb_scores(n, c)["psnr"])
                scores["nlm"].append(rgb_scores(nlm(n, factor * t), c)["psnr"])
                scores["true"].append(rgb_scores(run_model(model, n, t), c)["psnr"])
                scores["raw"].append(rgb_scores(run_model(model, n, r), c)["psnr"])
                scores["auto"].append(rgb_scores(run_model(model, n, e), c)["psnr"])
        m = {k: float(np.mean(v)) for k, v in scores.items()}
        worst = float(np.min(np.array(scores["auto"]) - np.array(scores["true"])))
        print(f"| {name} | {trues.mean():.1f} | {np.mean(raws):.1f} ({min(raws):.1f}-{max(raws):.1f}) "
              f"| {np.mean(ests):.1f} | {m['noisy']:.2f} | {m['nlm']:.2f} (h={factor:g}x) | {m['true']:.2f} "
              f"| {m['raw']:.2f} | {m['auto']:.2f} "
              f"| {m['auto'] - m['true']:+.2f} | {m['auto'] - m['nlm']:+.2f} | {worst:+.2f} |", flush=True)
    print(f"\nestimator: {np.median(t_est):.2f} s/MP (median, {args.threads} thread(s))")


if __name__ == "__main__":
    main()
