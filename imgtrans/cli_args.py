"""Argument types and terminal-safe text shared by the command lines (``imgtrans`` and the
onnxruntime-only ``imgtrans-lite``). Standard library only."""

from __future__ import annotations

import argparse


def printable(text: object) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``), so a file name can never move
    the cursor, recolour the terminal or fake an output line."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text))


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    value = _whole_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def pixels_or_zero(text: str) -> int:
    """argparse type: 0 (meaning "the whole image" / "full resolution") or a size of at least 16
    pixels."""
    value = _whole_number(text)
    if value < 0 or 0 < value < 16:
        raise argparse.ArgumentTypeError(f"must be 0 or at least 16 pixels, got {value}")
    return value


def strength_arg(text: str) -> float:
    """argparse type for ``--strength``: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {value:g}")
    return value


def noise_level_arg(text: str) -> float | None:
    """argparse type for ``--noise-level``: ``auto`` (None: measured on each image) or a number."""
    if text.strip().lower() == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be auto or a number 0-100, got {text!r}") from None


def noise_level_problem(value: float | None) -> str | None:
    """Why ``--noise-level value`` is unusable (outside 0-100 or NaN), or ``None`` when it is fine."""
    if value is not None and not 0 <= value <= 100:  # NaN fails both comparisons
        return f"--noise-level must be between 0 and 100 (noise sigma on the 0-255 scale), got {value:g}"
    return None
