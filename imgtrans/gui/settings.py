"""Remembered choices, stored with QSettings in an INI file in the user data folder.

One file (``<user data>/gui-settings.ini``) rather than the platform registry: it sits next to the
logs and user models, ``IMGTRANS_HOME`` isolates it (tests), and a user can read or delete it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

from imgtrans.paths import user_data_dir

ORGANIZATION = "imgtrans"
APPLICATION = "imgtrans"

FORMATS = ("same", "png", "jpg", "webp", "tiff")
DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "eager", "compile", "onnx")  # imgtrans.backends.BACKENDS, without importing torch
TILE_MODES = ("auto", "off", "manual")


def settings_path() -> Path:
    return user_data_dir() / "gui-settings.ini"


def default_output_dir() -> Path:
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    base = Path(pictures) if pictures and Path(pictures).is_dir() else Path.home()
    return base / "imgtrans-output"


class Settings:
    """Typed access to the stored options. Every getter has a default and survives junk values."""

    def __init__(self, path: Path | None = None) -> None:
        path = path or settings_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.qs = QSettings(str(path), QSettings.Format.IniFormat)

    # -- primitives ----------------------------------------------------------------------------
    def get_str(self, key: str, default: str = "", choices: tuple[str, ...] | None = None) -> str:
        value = self.qs.value(key, default)
        value = value if isinstance(value, str) else default
        return value if choices is None or value in choices else default

    def get_int(self, key: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        try:
            value = int(self.qs.value(key, default))
        except (TypeError, ValueError):
            return default
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return default
        return value

    def get_bool(self, key: str, default: bool) -> bool:
        value = self.qs.value(key, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return default

    def get_bytes(self, key: str):
        return self.qs.value(key)

    def set(self, key: str, value) -> None:
        self.qs.setValue(key, value)

    def sync(self) -> None:
        self.qs.sync()

    # -- the options ---------------------------------------------------------------------------
    @property
    def output_dir(self) -> Path:
        text = self.get_str("output/dir")
        return Path(text) if text else default_output_dir()

    def model_for(self, task: str) -> str:
        return self.get_str(f"model/{task}")
