"""What the training loop reports, as plain dataclasses (no torch, no Qt).

The loop yields these in order: ``Info``/``DataChecked`` lines, one ``Started``, then per iteration a
``Step`` and, when due, ``SampleSaved``, ``Evaluated``, ``CheckpointSaved``; ``Warning`` whenever
something went wrong but training goes on; finally ``Exported`` (finished runs) and one ``Done``.
Errors that stop training are raised as :class:`imgtrans.training.errors.TrainingError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Event:
    """Base class of all events."""


@dataclass
class Info(Event):
    message: str


@dataclass
class Warning(Event):  # the name reads well at the call sites (events.Warning)
    message: str


@dataclass
class DataChecked(Event):
    """The data report printed before the first step (one line per entry)."""

    lines: list[str]


@dataclass
class Started(Event):
    run_dir: Path
    start_step: int  # iterations already done (0 for a new run)
    total_steps: int
    steps_per_epoch: int
    resumed_from: Path | None = None


@dataclass
class Step(Event):
    step: int  # iterations done, including this one (1 for the first)
    epoch: int  # 0-based epoch this iteration belongs to
    losses: dict[str, float]
    lr: float
    seconds: float  # wall time of this iteration


@dataclass
class SampleSaved(Event):
    step: int
    path: Path


@dataclass
class Evaluated(Event):
    step: int
    metrics: dict[str, float]
    metric: str  # the one that ranks checkpoints
    value: float
    higher_is_better: bool


@dataclass
class CheckpointSaved(Event):
    step: int
    path: Path
    reason: str  # "interval", "end", "interrupt", "every-steps"


@dataclass
class Exported(Event):
    paths: list[Path] = field(default_factory=list)


@dataclass
class Done(Event):
    step: int
    reason: str  # "finished" or "cancelled"
    checkpoint: Path | None = None
