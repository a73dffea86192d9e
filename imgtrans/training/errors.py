"""Errors the trainer raises on bad input. ``str(e)`` is a message for a person, without a traceback."""

from __future__ import annotations


class TrainingError(Exception):
    """Training cannot start or go on; the message says why and what to do."""


class DataError(TrainingError):
    """A data folder is missing, empty, or has too few usable images."""


class CheckpointError(TrainingError):
    """A checkpoint could not be written (the previous one is intact) or does not fit this run."""
