"""Training: CycleGAN style pairs, SRResNet/SRGAN super-resolution and DnCNN and FFDNet denoising.

No Qt here. The one training loop is :func:`imgtrans.training.loop.train`, a generator of events
(:mod:`imgtrans.training.events`) that stops cleanly when its ``cancel`` flag (a
``threading.Event``) is set; the ``imgtrans-train`` command (:mod:`imgtrans.training.cli`) and the
GUI both just consume it::

    from imgtrans.training import TrainConfig, train
    cfg = TrainConfig.for_task("cyclegan", name="photo2painting", domain_a="photos/", domain_b="paintings/",
                               preset="cpu-tiny", steps=1000)
    for event in train(cfg, cancel=threading.Event()):
        print(event)

Modules: ``config`` (options and presets), ``data`` (folder checks, splits), ``datasets`` (deterministic datasets),
``losses`` (GAN losses, image pool), ``cyclegan``/``sr``/``denoise`` (one task each: networks and one
training step), ``checkpoint`` (atomic, resumable checkpoints), ``metrics`` (PSNR/SSIM, FID/KID),
``distributed`` (torchrun), ``export`` (checkpoint -> model files), ``loop`` and ``cli``.
"""

from __future__ import annotations

from imgtrans.training.config import PRESETS, TrainConfig
from imgtrans.training.errors import CheckpointError, DataError, TrainingError
from imgtrans.training.events import Event


def train(cfg: TrainConfig, cancel=None):
    """See :func:`imgtrans.training.loop.train` (imported lazily: it pulls in torch)."""
    from imgtrans.training.loop import train as _train

    return _train(cfg, cancel)


__all__ = ["PRESETS", "CheckpointError", "DataError", "Event", "TrainConfig", "TrainingError", "train"]
