"""Quick preview of one image: the model runs on a downscaled copy first (a result in about a
second), then on the full image; nothing is written to disk. Runs in its own QThread; starting a new
preview cancels the previous one within a tile.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PySide6.QtCore import QThread, Signal

from imgtrans.engine import ConvertOptions, process_image
from imgtrans.gui.imaging import DISPLAY_MAX_PIXELS, display_from_array
from imgtrans.gui.qtcompat import emit

log = logging.getLogger(__name__)

QUICK_EDGE = 512  # long edge of the input for the quick pass

_model_lock = threading.Lock()  # one preview uses the cached model at a time
_cache: dict[str, object] = {}


class _Stop(Exception):
    pass


def _cached_model(ref: str):
    """The last model used, kept while the same file is chosen (loading costs more than a small preview)."""
    from imgtrans.catalog import CatalogEntry, find_model
    from imgtrans.weights import open_model

    found = find_model(ref)
    path = found.path if isinstance(found, CatalogEntry) else Path(found)
    try:
        key = f"{path.resolve()}:{path.stat().st_mtime_ns}"
    except OSError:
        key = f"{path}:?"
    if key not in _cache:
        _cache.clear()
        _cache[key] = open_model(ref)
    return _cache[key]


def _downscale(img, edge: int):
    """A copy of a decoded Image with its long edge at most ``edge`` (box filter), or None."""
    h, w = img.pixels.shape[:2]
    if max(h, w) <= edge:
        return None
    f = edge / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    planes = [np.asarray(PILImage.fromarray(img.pixels[:, :, c]).resize(size, PILImage.Resampling.BOX))
              for c in range(img.pixels.shape[2])]
    alpha = None
    if img.alpha is not None:
        alpha = np.asarray(PILImage.fromarray(img.alpha).resize(size, PILImage.Resampling.BOX))
    return dataclasses.replace(img, pixels=np.stack(planes, axis=2).astype(np.float32), alpha=alpha)


class PreviewThread(QThread):
    """Signals carry this thread's ``token`` so the window ignores results of superseded previews."""

    status = Signal(int, str)
    before_ready = Signal(int, object)  # DisplayImage
    after_ready = Signal(int, object, str, bool)  # DisplayImage, label, final
    failed = Signal(int, str)

    def __init__(self, token: int, src: Path, model_ref: str, options: ConvertOptions, parent=None) -> None:
        super().__init__(parent)
        self.token, self.src, self.model_ref, self.options = token, src, model_ref, options
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    def _step(self, _fraction: float) -> None:
        if self.cancel_event.is_set():
            raise _Stop

    def run(self) -> None:
        from imgtrans.gui.tasks import background_priority

        background_priority(self)
        try:
            with _model_lock:
                self._run()
        except _Stop:
            pass
        except Exception as exc:  # shown in the preview pane
            from imgtrans.catalog import CatalogError
            from imgtrans.imageio import ImageReadError
            from imgtrans.weights import ModelLoadError

            log.debug("preview failed", exc_info=True)
            known = isinstance(exc, (CatalogError, ImageReadError, ModelLoadError))
            emit(self.failed, self.token, str(exc) if known else f"{type(exc).__name__}: {exc}")

    def _run(self) -> None:
        from imgtrans.engine import prepare_model
        from imgtrans.imageio import read_image

        tok = self.token
        emit(self.status, tok, "Reading the image\u2026")
        img = read_image(self.src, max_pixels=self.options.max_pixels)
        emit(self.before_ready, tok, display_from_array(img.pixels, img.alpha))
        self._step(0)
        emit(self.status, tok, "Loading the model\u2026")
        model, _label = _cached_model(self.model_ref)
        prepare_model(model, self.options)
        from imgtrans.gui.tasks import settle_gc

        settle_gc()
        out_w, out_h = img.width * model.scale, img.height * model.scale
        small = _downscale(img, QUICK_EDGE)
        quick_options = self.options
        style_size = self.options.style_size if model.task == "style" else 0
        if small is not None and style_size:
            if style_size <= QUICK_EDGE:
                small = None  # the style model paints at style_size anyway: the full pass is as quick
            else:  # same strokes relative to the picture as the full pass
                scale = max(small.width, small.height) / max(img.width, img.height)
                quick_options = dataclasses.replace(self.options, style_size=max(16, round(style_size * scale)))
        if small is not None:
            emit(self.status, tok, "Quick preview\u2026")
            out = process_image(model, small, quick_options, self._step)
            shown = display_from_array(out.pixels, out.alpha, out_w, out_h)
            emit(self.after_ready, tok, shown, "Result (quick preview)", False)
        if out_w * out_h > DISPLAY_MAX_PIXELS:
            emit(self.status, tok, "Large image: the preview is reduced; convert it to see every pixel.")
            return
        emit(self.status, tok, "Full-size preview\u2026")
        out = process_image(model, img, self.options, self._step)
        emit(self.after_ready, tok, display_from_array(out.pixels, out.alpha), "Result (preview)", True)
        emit(self.status, tok, "Preview ready (not saved; Convert writes the file).")
