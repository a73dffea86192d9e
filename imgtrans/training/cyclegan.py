"""CycleGAN (Zhu et al. 2017), as the reference implementation trains it.

``G_A``: A -> B and ``G_B``: B -> A are ResNet generators; ``D_A`` tells real B from ``G_A``'s fakes,
``D_B`` real A from ``G_B``'s (70x70 PatchGANs, instance norm). One iteration:

1. generators (discriminators frozen): ``L_G = GAN(D_A(G_A(A))) + GAN(D_B(G_B(B)))
   + lambda_cycle * (|G_B(G_A(A)) - A| + |G_A(G_B(B)) - B|)
   + lambda_cycle * lambda_identity * (|G_A(B) - B| + |G_B(A) - A|)``, one Adam step;
2. discriminators on fakes drawn from 50-image pools: ``(GAN(D(real), 1) + GAN(D(fake), 0)) / 2`` each
   (WGAN-GP: critic loss + 10 * gradient penalty), one Adam step.

With ``--d-augment`` every image on its way into a discriminator, real or fake, in both steps,
passes through the same family of random differentiable transforms (:mod:`imgtrans.training.augment`).
With ``--edge-context PX`` every generator call runs on the crop with a PX-pixel mirrored border and
its output loses that border, as :func:`imgtrans.tiling.run_model` runs the exported models.

Images are ``(B,3,H,W)`` in [-1,1] throughout. By default the generators have the input skip
(``ResnetGenerator(input_skip=True)``) and ``lambda_identity`` is 0; the reference's generator and
its identity weight 0.5 are options (``--no-input-skip --lambda-identity 0.5``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from imgtrans.archs import NLayerDiscriminator, ResnetGenerator
from imgtrans.tiling import run_with_edge_context
from imgtrans.training.augment import diff_augment, parse_policy
from imgtrans.training.base import (
    Evaluation,
    ExportItem,
    Task,
    adam,
    bare,
    chunks,
    grid,
    set_requires_grad,
)  # fmt: skip
from imgtrans.training.config import TrainConfig
from imgtrans.training.data import FolderReport, generator
from imgtrans.training.datasets import UnpairedDataset
from imgtrans.training.distributed import Env
from imgtrans.training.losses import ImagePool, discriminator_loss, gan_loss, grid_loss, init_weights


class GeneratorPair(nn.Module):
    """Both generators in one module, so one (DDP) forward computes everything the generator loss
    needs. ``forward(real_A, real_B)`` -> dict of ``fake_B, rec_A, fake_A, rec_B`` (+ ``idt_A = G_A(B)``,
    ``idt_B = G_B(A)`` when ``identity``). Every generator call runs through
    :func:`~imgtrans.tiling.run_with_edge_context` with ``context`` (``--edge-context``)."""

    def __init__(self, G_A: nn.Module, G_B: nn.Module, context: int = 0):
        super().__init__()
        self.G_A, self.G_B = G_A, G_B
        self.context = context

    def forward(self, real_A: torch.Tensor, real_B: torch.Tensor, identity: bool = True) -> dict[str, torch.Tensor]:
        def G_A(x: torch.Tensor) -> torch.Tensor:  # noqa: N802 - the paper's names, as self.G_A
            return run_with_edge_context(self.G_A, x, self.context)

        def G_B(x: torch.Tensor) -> torch.Tensor:  # noqa: N802
            return run_with_edge_context(self.G_B, x, self.context)

        out = {"fake_B": G_A(real_A), "fake_A": G_B(real_B)}
        out["rec_A"] = G_B(out["fake_B"])
        out["rec_B"] = G_A(out["fake_A"])
        if identity:
            out["idt_A"] = G_A(real_B)
            out["idt_B"] = G_B(real_A)
        return out


class DiscriminatorLosses(nn.Module):
    """Both discriminator losses in one module (one DDP forward per iteration).
    ``forward({"A": (real, fake, alpha), ...})`` -> ``{"A": loss, ...}`` for ``D_A``, ``D_B``."""

    def __init__(self, nets: dict[str, nn.Module], mode: str, lambda_gp: float):
        super().__init__()
        self.nets = nn.ModuleDict(nets)
        self.mode, self.lambda_gp = mode, lambda_gp

    def forward(self,
                inputs: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]) -> dict[str, torch.Tensor]:
        return {
            name: discriminator_loss(self.nets[name], real, fake, self.mode, self.lambda_gp, alpha)
            for name, (real, fake, alpha) in inputs.items()
        }


def to01(x: torch.Tensor) -> torch.Tensor:
    return (x.float() + 1.0) / 2.0


def eval_grid(report: FolderReport, eval_images: int) -> int:
    """Crops per side taken from each held-out image of a domain so that a small held-out set still
    gives about ``eval_images`` crops (FID/KID and cycle PSNR on one centre crop of a few images say
    little): 1 for a full set, up to 3x3 for a single image. A domain with no held-out images
    (evaluated on a few training images) keeps one crop each: more crops would not make them unseen."""
    n = min(len(report.val), eval_images)
    if report.val_from_train or n <= 0 or n >= eval_images:
        return 1
    return min(3, math.ceil(math.sqrt(eval_images / n)))


class CycleGANTask(Task):
    name = "cyclegan"
    loss_names = ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B")  # + grid_A/B with lambda_grid

    def __init__(self, cfg: TrainConfig, env: Env, reports: dict[str, FolderReport]):
        super().__init__(cfg, env)
        self.reports = reports
        desc = self.describe(cfg)
        self.g_hparams, self.d_hparams = desc["G_A"]["hparams"], desc["D_A"]["hparams"]
        torch.manual_seed(cfg.seed)  # same initial weights on every process and every run with this seed
        self.G_A, self.G_B = (init_weights(ResnetGenerator(**self.g_hparams)) for _ in range(2))
        self.D_A, self.D_B = (init_weights(NLayerDiscriminator(**self.d_hparams)) for _ in range(2))
        self.nets = {"G_A": self.G_A, "G_B": self.G_B, "D_A": self.D_A, "D_B": self.D_B}
        for net in self.nets.values():
            net.to(self.device).train()
        self.gens = env.wrap(GeneratorPair(self.G_A, self.G_B, cfg.edge_context))
        self.dlosses = env.wrap(DiscriminatorLosses({"A": self.D_A, "B": self.D_B}, cfg.gan_mode, cfg.lambda_gp))
        self.optimizers = {"G": adam([self.G_A, self.G_B], cfg), "D": adam([self.D_A, self.D_B], cfg)}
        self.pools = {"A": ImagePool(cfg.pool_size), "B": ImagePool(cfg.pool_size)}
        self.augment_policy = parse_policy(cfg.d_augment)
        self.dataset = UnpairedDataset(
            reports["A"].train, reports["B"].train, cfg.size, cfg.effective_load_size, cfg.seed, cfg.flip, cfg.cache_mb,
            keep_aspect=cfg.resize == "short-side",
        )
        if cfg.lambda_grid > 0:
            self.loss_names = (*type(self).loss_names, "grid_A", "grid_B")
        self._val: dict[str, torch.Tensor] | None = None
        self._inception: Any = None
        self._real_feats: dict[str, torch.Tensor] | None = None
        self._copy_scores: dict[str, float] = {}
        self._grid_real: float | None = None
        self._samples: dict[str, torch.Tensor] | None = None

    @staticmethod
    def describe(cfg: TrainConfig) -> dict[str, dict[str, Any]]:
        g = {"arch": "cyclegan_resnet", "hparams": dict(in_ch=3, out_ch=3, ngf=cfg.ngf, n_blocks=cfg.n_blocks, n_down=2,
                                                        affine=False, use_dropout=cfg.use_dropout,
                                                        upsample=cfg.upsample,
                                                        input_skip=cfg.input_skip)}  # fmt: skip
        d = {"arch": "patchgan", "hparams": dict(in_ch=3, ndf=cfg.ndf, n_layers=cfg.n_layers_d, norm="instance",
                                                 spectral=cfg.spectral)}  # fmt: skip
        return {"G_A": g, "G_B": g, "D_A": d, "D_B": d}

    # ------------------------------------------------------------------------------------ training
    def augmenter(self, step: int, phase: str):
        """What the discriminators see of an image in ``phase`` ("G" or "D") of iteration ``step``:
        :func:`~imgtrans.training.augment.diff_augment` with draws from ``(seed, phase, step, rank)``, so
        a resumed run draws the same; the identity without ``--d-augment``."""
        if not self.augment_policy:
            return lambda x: x
        g = generator(self.cfg.seed, "augment", phase, step, self.env.rank)
        return lambda x: diff_augment(x, self.augment_policy, g)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        cfg, amp, env = self.cfg, self.env.amp, self.env
        real_A = batch["A"].to(self.device, non_blocking=True)
        real_B = batch["B"].to(self.device, non_blocking=True)
        opt_G, opt_D = self.optimizers["G"], self.optimizers["D"]
        identity = cfg.lambda_identity > 0

        # 1. generators, with the discriminators frozen
        set_requires_grad([self.D_A, self.D_B], False)
        opt_G.zero_grad(set_to_none=True)
        aug = self.augmenter(step, "G")
        with amp.autocast():
            out = self.gens(real_A, real_B, identity)
            losses = {
                "G_A": gan_loss(self.D_A(aug(out["fake_B"])), True, cfg.gan_mode),
                "G_B": gan_loss(self.D_B(aug(out["fake_A"])), True, cfg.gan_mode),
                "cycle_A": F.l1_loss(out["rec_A"].float(), real_A) * cfg.lambda_cycle,
                "cycle_B": F.l1_loss(out["rec_B"].float(), real_B) * cfg.lambda_cycle,
            }
            if identity:
                w = cfg.lambda_cycle * cfg.lambda_identity
                losses["idt_A"] = F.l1_loss(out["idt_A"].float(), real_B) * w
                losses["idt_B"] = F.l1_loss(out["idt_B"].float(), real_A) * w
            if cfg.lambda_grid > 0:
                losses["grid_A"] = grid_loss(out["fake_B"], real_A) * cfg.lambda_grid
                losses["grid_B"] = grid_loss(out["fake_A"], real_B) * cfg.lambda_grid
            loss_G = sum(losses.values())
        amp.backward(loss_G)
        amp.step(opt_G)

        # 2. discriminators, on fakes from the image pools (one pool for the whole global batch)
        set_requires_grad([self.D_A, self.D_B], True)
        opt_D.zero_grad(set_to_none=True)
        g = generator(cfg.seed, "pool", step)
        fake_B = env.shard(self.pools["B"].query(env.gather(out["fake_B"].detach().float()), g))
        fake_A = env.shard(self.pools["A"].query(env.gather(out["fake_A"].detach().float()), g))
        alpha_A = alpha_B = None
        if cfg.gan_mode == "wgangp":  # interpolation weights for the gradient penalty, per global sample
            gp = generator(cfg.seed, "gp", step)
            n = real_A.shape[0] * env.world
            alpha_A = env.shard(torch.rand(n, 1, 1, 1, generator=gp)).to(self.device)
            alpha_B = env.shard(torch.rand(n, 1, 1, 1, generator=gp)).to(self.device)
        aug = self.augmenter(step, "D")
        with amp.autocast():
            d = self.dlosses({"A": (aug(real_B), aug(fake_B), alpha_A), "B": (aug(real_A), aug(fake_A), alpha_B)})
        amp.backward(d["A"] + d["B"])
        amp.step(opt_D)
        amp.update()
        losses["D_A"], losses["D_B"] = d["A"], d["B"]
        return {k: v.detach().float() for k, v in losses.items()}

    def extra_state(self) -> dict[str, Any]:
        return {"pools": {k: p.state_dict() for k, p in self.pools.items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for k, p in self.pools.items():
            if "pools" in state and k in state["pools"]:
                p.load_state_dict(state["pools"][k], self.device)

    # ------------------------------------------------------------------------------------ evaluation
    def val_images(self) -> dict[str, torch.Tensor]:
        if self._val is None:
            n = self.cfg.eval_images
            self._val = {k: self.dataset.fixed(self.reports[k].val[:n], eval_grid(self.reports[k], n))
                         for k in ("A", "B")}
        return self._val

    @torch.no_grad()
    def translate(self, images: torch.Tensor, forward: nn.Module,
                  backward: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N,3,S,S)`` in [-1,1] -> (translated, reconstructed), both on the CPU, in [-1,1]."""
        fakes, recs = [], []
        for x in chunks(images, 4):
            x = x.to(self.device)
            with self.env.amp.autocast():
                fake = run_with_edge_context(forward, x, self.cfg.edge_context)
                rec = run_with_edge_context(backward, fake, self.cfg.edge_context)
            fakes.append(fake.float().cpu())
            recs.append(rec.float().cpu())
        return torch.cat(fakes), torch.cat(recs)

    @torch.no_grad()
    def evaluate(self) -> Evaluation:
        from imgtrans.training.metrics import (
            InceptionFeatures,
            fid,
            grid_artifact_amplitude,
            inception_path,
            kid,
            psnr,
            ssim,
        )

        val = self.val_images()
        G_A, G_B = bare(self.G_A), bare(self.G_B)
        G_A.eval(), G_B.eval()
        try:
            fake_B, rec_A = self.translate(val["A"], G_A, G_B)
            fake_A, rec_B = self.translate(val["B"], G_B, G_A)
        finally:
            G_A.train(), G_B.train()
        m = {
            "cycle_psnr_A": float(psnr(to01(rec_A), to01(val["A"])).mean()),
            "cycle_psnr_B": float(psnr(to01(rec_B), to01(val["B"])).mean()),
            "cycle_ssim_A": float(ssim(to01(rec_A), to01(val["A"])).mean()),
            "cycle_ssim_B": float(ssim(to01(rec_B), to01(val["B"])).mean()),
        }
        m["cycle_psnr"] = (m["cycle_psnr_A"] + m["cycle_psnr_B"]) / 2
        m["cycle_ssim"] = (m["cycle_ssim_A"] + m["cycle_ssim_B"]) / 2
        # periodic patterns (checkerboard, hatching) in the translations, in grey levels, and the real images' own
        m["grid_A2B"] = float(grid_artifact_amplitude(to01(fake_B)).median())
        m["grid_B2A"] = float(grid_artifact_amplitude(to01(fake_A)).median())
        m["grid"] = (m["grid_A2B"] + m["grid_B2A"]) / 2
        if self._grid_real is None:  # the held-out images never change
            self._grid_real = float(grid_artifact_amplitude(to01(torch.cat([val["A"], val["B"]]))).median())
        m["grid_real"] = self._grid_real
        if inception_path() is not None and min(len(val["A"]), len(val["B"])) >= 2:  # FID/KID need 2+ images
            if self._inception is None:
                self._inception = InceptionFeatures().to(self.device)
            def pooled(t: torch.Tensor) -> torch.Tensor:
                return torch.cat([self._inception.pooled(to01(x).to(self.device)).cpu() for x in chunks(t, 8)])

            if self._real_feats is None:  # the held-out images never change: their features once per run
                self._real_feats = {"real_A": pooled(val["A"]), "real_B": pooled(val["B"])}
                # the copy baseline: what handing each image back unchanged scores (FID and KID are
                # symmetric, so one figure for both directions); a translation has to beat it
                self._copy_scores = {"fid_copy": fid(self._real_feats["real_A"], self._real_feats["real_B"]),
                                     "kid_copy": kid(self._real_feats["real_A"], self._real_feats["real_B"])}
            feats = dict(self._real_feats, fake_A=pooled(fake_A), fake_B=pooled(fake_B))
            m["fid_A2B"] = fid(feats["fake_B"], feats["real_B"])
            m["fid_B2A"] = fid(feats["fake_A"], feats["real_A"])
            m["kid_A2B"] = kid(feats["fake_B"], feats["real_B"])
            m["kid_B2A"] = kid(feats["fake_A"], feats["real_A"])
            m["fid"] = (m["fid_A2B"] + m["fid_B2A"]) / 2
            m["kid"] = (m["kid_A2B"] + m["kid_B2A"]) / 2
            m.update(self._copy_scores)
            return Evaluation(m, "kid", higher_is_better=False)
        return Evaluation(m, "cycle_psnr", higher_is_better=True)

    @torch.no_grad()
    def sample_grid(self) -> torch.Tensor:
        if self._samples is None:  # the centre of the first held-out image of each domain
            self._samples = {k: self.dataset.fixed(self.reports[k].val[:1]) for k in ("A", "B")}
        a, b = self._samples["A"], self._samples["B"]
        G_A, G_B = bare(self.G_A), bare(self.G_B)
        G_A.eval(), G_B.eval()
        try:
            fake_B, rec_A = self.translate(a, G_A, G_B)
            fake_A, rec_B = self.translate(b, G_B, G_A)
        finally:
            G_A.train(), G_B.train()
        return grid([[to01(t[0]) for t in (a, fake_B, rec_A)], [to01(t[0]) for t in (b, fake_A, rec_B)]])

    # ------------------------------------------------------------------------------------ export
    def exports(self, run_name: str) -> list[ExportItem]:
        cfg, ra, rb = self.cfg, self.reports["A"], self.reports["B"]
        data = {"domain_a": str(ra.root), "domain_b": str(rb.root), "images_a": len(ra.train),
                "images_b": len(rb.train)}
        common = {
            "training_data": data,
            "trainer": "imgtrans-train cyclegan",
            "train_options": {k: getattr(cfg, k) for k in ("preset", "size", "load_size", "batch_size", "gan_mode",
                                                           "lambda_cycle", "lambda_identity", "spectral", "d_augment",
                                                           "edge_context", "seed")},
        }
        items = []
        for suffix, net, arrow, src, dst in (("_a2b", "G_A", "A->B", ra, rb), ("_b2a", "G_B", "B->A", rb, ra)):
            items.append(ExportItem(
                suffix=suffix,
                net=net,
                arch="cyclegan_resnet",
                hparams=dict(self.g_hparams),
                metadata=dict(
                    common,
                    id=f"{run_name}{suffix.replace('_', '-')}",
                    name=f"{run_name} ({arrow})",
                    direction=arrow,
                    description=f"CycleGAN trained with imgtrans-train: {src.root.name} -> {dst.root.name}"
                                + ("" if (src.root.name, dst.root.name) == tuple(arrow.split("->")) else f" ({arrow})"),
                ),
            ))  # fmt: skip
        return items
