"""Denoising: a DnCNN or FFDNet (``--arch``, the registry's denoise families) trained on clean patches
with noise added on the fly.

Noise: Gaussian with a level drawn per patch from ``sigma`` (0-255 scale; a single value trains a
specific-level model), optionally Poisson (shot) noise first and JPEG compression after. With
``noise_map`` the network also receives the Gaussian level as an extra input plane (FFDNet-style),
so one model can be steered at inference. Loss: MSE (DnCNN) or L1 between output and clean patch.
The family's descriptor (:mod:`imgtrans.archs`) builds the network; both take the same
hyper-parameters (channels, nf, depth, bn, noise_map).

Images are ``(B,C,H,W)`` float in [0,1] (noisy inputs may leave that range); ``C`` is 3, or 1 for a
grey model (``--gray``: trained on the patches' Rec.601 luma).
"""

from __future__ import annotations

from typing import Any

import torch

from imgtrans.archs import get_arch
from imgtrans.training.base import Evaluation, ExportItem, Task, adam, bare, grid
from imgtrans.training.config import TrainConfig
from imgtrans.training.data import FolderReport
from imgtrans.training.datasets import DenoiseDataset
from imgtrans.training.distributed import Env
from imgtrans.training.metrics import psnr, ssim
from imgtrans.training.sr import pixel_loss


class DenoiseTask(Task):
    name = "denoise"
    loss_names = ("mse", "l1")

    def __init__(self, cfg: TrainConfig, env: Env, reports: dict[str, FolderReport]):
        super().__init__(cfg, env)
        self.report = reports["data"]
        self.g_hparams = self.describe(cfg)["G"]["hparams"]
        self.spec = get_arch(cfg.arch)
        torch.manual_seed(cfg.seed)
        self.G = self.spec.build(dict(self.g_hparams)).to(self.device).train()
        self.nets = {"G": self.G}
        self.g = env.wrap(self.G)
        self.optimizers = {"G": adam([self.G], cfg)}
        self.dataset = DenoiseDataset(self.report.train, cfg.size, tuple(cfg.sigma), cfg.seed, cfg.poisson, cfg.jpeg,
                                      cfg.cache_mb, cfg.patches_per_image, cfg.channels)
        self._val: list[dict[str, torch.Tensor]] | None = None

    @staticmethod
    def describe(cfg: TrainConfig) -> dict[str, dict[str, Any]]:
        return {"G": {"arch": cfg.arch,
                      "hparams": dict(channels=cfg.channels, nf=cfg.nf, depth=cfg.depth, bn=cfg.bn,
                                      noise_map=cfg.noise_map)}}

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        amp, opt = self.env.amp, self.optimizers["G"]
        noisy = batch["noisy"].to(self.device, non_blocking=True)
        clean = batch["clean"].to(self.device, non_blocking=True)
        sigma = batch["sigma"].to(self.device) if self.cfg.noise_map else None
        opt.zero_grad(set_to_none=True)
        with amp.autocast():
            loss = pixel_loss(self.g(noisy, sigma), clean, self.cfg.pixel_loss)
        amp.backward(loss)
        amp.step(opt)
        amp.update()
        return {self.cfg.pixel_loss: loss.detach().float()}

    def val_items(self) -> list[dict[str, torch.Tensor]]:
        if self._val is None:
            multiple = max(1, int(self.spec.size_multiple(self.g_hparams)))
            self._val = self.dataset.fixed(self.report.val[: self.cfg.eval_images], multiple=multiple)
        return self._val

    @torch.no_grad()
    def denoise(self, item: dict[str, torch.Tensor]) -> torch.Tensor:
        G = bare(self.G)
        G.eval()
        try:
            sigma = item["sigma"][None].to(self.device) if self.cfg.noise_map else None
            with self.env.amp.autocast():
                return G(item["noisy"][None].to(self.device), sigma).float().clamp(0, 1).cpu()
        finally:
            G.train()

    @torch.no_grad()
    def evaluate(self) -> Evaluation:
        """PSNR/SSIM of output and of noisy input per fixed level (``psnr_s25`` ...); the headline
        ``psnr`` is their mean over levels, so checkpoints of one run compare."""
        per: dict[str, list[float]] = {}
        for item in self.val_items():
            out, clean = self.denoise(item), item["clean"][None]
            tag = f"s{round(float(item['sigma']) * 255, 1):g}"
            for key, value in ((f"psnr_{tag}", psnr(out, clean)), (f"ssim_{tag}", ssim(out, clean)),
                               (f"noisy_psnr_{tag}", psnr(item["noisy"][None], clean))):  # fmt: skip
                per.setdefault(key, []).append(float(value))
        metrics = {k: sum(v) / len(v) for k, v in per.items()}
        for name in ("psnr", "ssim", "noisy_psnr"):
            level_means = [v for k, v in metrics.items() if k.startswith(name + "_s")]
            metrics[name] = sum(level_means) / len(level_means)
        return Evaluation(metrics, "psnr", higher_is_better=True)

    @torch.no_grad()
    def sample_grid(self) -> torch.Tensor:
        items = self.val_items()
        item = items[min(1, len(items) - 1)]  # the first image at its second level (sigma 25 for 0-50)
        return grid([[item["noisy"], self.denoise(item)[0], item["clean"]]])

    def exports(self, run_name: str) -> list[ExportItem]:
        cfg = self.cfg
        lo, hi = cfg.sigma
        level = f"sigma {lo:g}" if lo == hi else f"sigma {lo:g}-{hi:g}"
        extras = [s for s, on in (("Poisson", cfg.poisson), (f"JPEG q{cfg.jpeg}", cfg.jpeg is not None)) if on]
        meta = {
            "id": run_name,
            "name": f"{run_name} (denoise, {level})",
            "description": f"{type(self.G).__name__} trained with imgtrans-train on {self.report.root.name}: "
            f"Gaussian {level}"
            + (f" + {' + '.join(extras)}" if extras else "") + (", noise-level map input" if cfg.noise_map else "")
            + (", grey (one channel)" if cfg.channels == 1 else ""),
            "training_data": {"data": str(self.report.root), "images": len(self.report.train)},
            "trainer": "imgtrans-train denoise",
            "noise": {"sigma": [lo, hi], "poisson": cfg.poisson, "jpeg": list(cfg.jpeg) if cfg.jpeg else None},
            "train_options": {k: getattr(cfg, k)
                              for k in ("preset", "arch", "size", "batch_size", "pixel_loss", "sigma", "jpeg",
                                        "poisson", "seed")},
        }
        return [ExportItem("", "G", cfg.arch, dict(self.g_hparams), meta)]
