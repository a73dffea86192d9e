"""Where things live: bundled resources and per-user folders. One function per place, so a
desktop bundle (PyInstaller) and a source checkout find their files the same way."""

from __future__ import annotations

import os
import sys
from importlib.resources import files
from pathlib import Path

APP = "imgtrans"


def resources_dir() -> Path:
    """The bundled ``resources/`` folder (weights, catalog, icons, samples, licences).

    Order: ``IMGTRANS_RESOURCES`` if set; in a frozen (PyInstaller) bundle, ``resources/`` in the
    bundle's data folder (``sys._MEIPASS``, i.e. ``dist/imgtrans/_internal``; the executable's own
    folder if a freezer sets no ``_MEIPASS``); in an installed wheel, the package's data folder
    ``imgtrans/resources`` (pyproject.toml maps the top-level ``resources/`` there at build time);
    else the source checkout's ``resources/`` beside the package (editable install, PYTHONPATH).
    Both of the last are found through :func:`importlib.resources.files` of the imported package,
    never relative to the current directory, so the app runs from anywhere. The folder may hold no
    models (a wheel built without them): :mod:`imgtrans.catalog` then lists none."""
    env = os.environ.get("IMGTRANS_RESOURCES")
    if env:
        return Path(env)
    if getattr(sys, "frozen", False) or getattr(sys, "_MEIPASS", None):
        base = getattr(sys, "_MEIPASS", None) or os.path.dirname(os.path.abspath(sys.executable))
        return Path(base).resolve() / "resources"
    package = Path(str(files(__package__ or APP))).resolve()  # a real folder: never imported from a zip
    installed = package / "resources"
    return installed if installed.is_dir() else package.parent / "resources"


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


def fetched_data_dir() -> Path:
    """Where ``training/data/fetch.py`` puts the training sets it fetches (``IMGTRANS_DATA``, else
    ``~/.cache/imgtrans/data``; the script is stdlib-only, so it keeps its own copy of this rule), and
    ``training/make_domain.py`` the recipes' domain folders (``domains/<name>``)."""
    env = os.environ.get("IMGTRANS_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / APP / "data"
