"""What a running batch reports (:class:`Event`, ending with a :class:`Summary`), and the two
exceptions that stop its worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class Cancelled(Exception):
    """Raised inside the worker when the user cancels."""


class DiskFull(Exception):
    """Raised inside the worker when an output could not be written for lack of space."""



@dataclass
class Event:
    """Progress report. ``kind``: ``plan`` (total known), ``start`` (a file begins), ``progress``
    (``fraction`` of the current file done), ``noise`` (``message``: the noise level measured on the
    current file for a denoiser left on auto, e.g. "noise level 12.3 (estimated)"), ``note`` (``message``: something the
    output format cannot keep, before its ``done``), ``done``, ``skipped`` and ``failed`` (with ``message``),
    ``cancelled``, ``stopped`` (the batch could not go on, e.g. disk full; ``message`` says why),
    ``finished`` (``summary`` filled)."""

    kind: str
    index: int = 0
    total: int = 0
    src: Path | None = None
    dst: Path | None = None
    fraction: float = 0.0
    message: str = ""
    seconds: float = 0.0
    summary: Summary | None = None
    # ``noise``: the level auto uses (sigma on 0-255), a tuple of one per channel for a one-channel model
    noise_level: float | tuple[float, ...] | None = None


@dataclass
class Summary:
    converted: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    cancelled: bool = False
    stopped: str = ""  # why the batch stopped early (disk full), else empty
    notes: list[tuple[Path, str]] = field(default_factory=list)  # converted, with something the format could not keep
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled and not self.stopped
