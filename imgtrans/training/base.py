"""What every task (CycleGAN, SR, denoise) provides to the training loop.

A task owns its networks, optimizers, dataset and held-out set, and knows how to run one training
iteration, evaluate, draw a sample grid and export its generator(s). The loop
(:mod:`imgtrans.training.loop`) does everything else.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from imgtrans.training.config import TrainConfig
from imgtrans.training.distributed import Env


@dataclass
class Evaluation:
    metrics: dict[str, float]
    metric: str  # the one checkpoints are ranked by
    higher_is_better: bool

    @property
    def value(self) -> float:
        return self.metrics[self.metric]


@dataclass
class ExportItem:
    """One generator to write as a model file."""

    suffix: str  # "" or "_a2b" / "_b2a": appended to the run name for the file name
    net: str  # key in ``Task.nets``
    arch: str
    hparams: dict[str, Any]
    metadata: dict[str, Any]


class Task:
    """Base class. Subclasses fill ``nets`` (everything checkpointed), ``optimizers`` and ``dataset``."""

    name = "task"

    def __init__(self, cfg: TrainConfig, env: Env):
        self.cfg, self.env, self.device = cfg, env, env.device
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.dataset: Any = None
        self.notes: list[str] = []  # lines for the start-up report (e.g. which perceptual loss)

    # name -> {"arch", "hparams"} of every network, stored in checkpoints; a resume into different
    # shapes is refused before any data is read
    @staticmethod
    def describe(cfg: TrainConfig) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    loss_names: tuple[str, ...] = ()  # every loss train_step may return (CSV columns)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """One iteration on this process's share of the batch of iteration ``step`` (0-based).
        Returns detached scalar losses."""
        raise NotImplementedError

    def evaluate(self) -> Evaluation:
        raise NotImplementedError

    def sample_grid(self) -> torch.Tensor:
        """``(3,H,W)`` float in [0,1]: a picture of what the networks do on held-out images."""
        raise NotImplementedError

    def exports(self, run_name: str) -> list[ExportItem]:
        raise NotImplementedError

    # state beyond weights and optimizers (image pools ...), weights_only-loadable
    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def on_resume(self, step: int) -> None:
        """Called after a checkpoint of iteration ``step`` was loaded."""

    def set_lr(self, factor: float) -> float:
        """Scale every optimizer's LR to ``factor`` times its initial LR; returns the G LR."""
        lr = 0.0
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * factor
                lr = lr or group["lr"]
        return lr


def set_requires_grad(nets: Iterable[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def adam(nets: Iterable[nn.Module], cfg: TrainConfig) -> torch.optim.Adam:
    params = itertools.chain.from_iterable(n.parameters() for n in nets)
    return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def linear_decay(step: int, total: int, decay_start: float) -> float:
    """LR factor for 0-based iteration ``step`` of ``total``: 1 until ``decay_start*total``, then linear
    towards 0 (the reference's ``linear`` policy, per iteration instead of per epoch)."""
    start = int(total * decay_start)
    if step < start or total <= start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / float(total - start))


def grid(rows: list[list[torch.Tensor]], pad: int = 2) -> torch.Tensor:
    """Tile ``(3,h,w)`` images in [0,1] (each row may differ in size) on a white background."""
    heights = [max(t.shape[-2] for t in row) for row in rows]
    widths = [sum(t.shape[-1] for t in row) + pad * (len(row) - 1) for row in rows]
    canvas = torch.ones(3, sum(heights) + pad * (len(rows) - 1), max(widths))
    y = 0
    for row, h in zip(rows, heights):
        x = 0
        for t in row:
            t = t.detach().float().cpu().clamp(0, 1)
            if t.shape[0] == 1:
                t = t.expand(3, -1, -1)
            canvas[:, y : y + t.shape[-2], x : x + t.shape[-1]] = t
            x += t.shape[-1] + pad
        y += h + pad
    return canvas


def chunks(t: torch.Tensor, n: int):
    for i in range(0, t.shape[0], n):
        yield t[i : i + n]


def bare(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return getattr(module, "module", module)
