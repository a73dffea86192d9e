"""Where things live: bundled resources and per-user folders. One function per place, so a
desktop bundle (PyInstaller) and a source checkout find their files the same way."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "imgtrans"


def resources_dir() -> Path:
    """The bundled ``resources/`` folder (weights, catalog, icons, samples).

    Order: ``IMGTRANS_RESOURCES`` if set; in a frozen (PyInstaller) bundle, ``resources/`` in the
    bundle's data folder (``sys._MEIPASS``, i.e. ``dist/imgtrans/_internal``; the executable's own
    folder if a freezer sets no ``_MEIPASS``); else the source checkout's ``resources/`` next to the
    package. Never relative to the current directory, so the app runs from anywhere."""
    env = os.environ.get("IMGTRANS_RESOURCES")
    if env:
        return Path(env)
    if getattr(sys, "frozen", False) or getattr(sys, "_MEIPASS", None):
        base = getattr(sys, "_MEIPASS", None) or os.path.dirname(os.path.abspath(sys.executable))
        return Path(base).resolve() / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def user_data_dir() -> Path:
    """Per-user data folder (``IMGTRANS_HOME`` overrides; tests use it)."""
    env = os.environ.get("IMGTRANS_HOME")
    if env:
        return Path(env)
    from platformdirs import user_data_dir as _udd

    return Path(_udd(APP, appauthor=False))


def user_models_dir() -> Path:
    """Where user-trained and imported models go; they join the catalog."""
    return user_data_dir() / "models"


def user_cache_dir() -> Path:
    env = os.environ.get("IMGTRANS_HOME")
    if env:
        return Path(env) / "cache"
    from platformdirs import user_cache_dir as _ucd

    return Path(_ucd(APP, appauthor=False))


def runs_dir() -> Path:
    """Training runs (checkpoints, logs, samples), one sub-folder per ``--name``."""
    return user_data_dir() / "runs"
