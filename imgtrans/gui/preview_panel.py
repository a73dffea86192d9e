"""The preview column: the before/after view with its zoom buttons, the Preview button and a status
line. Showing a queue item decodes the original (and the output, when it exists) in worker threads;
Preview runs the model on the item without saving (:class:`~imgtrans.gui.preview.PreviewThread`).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QStyle, QToolButton, QVBoxLayout, QWidget

from imgtrans.engine import ConvertOptions
from imgtrans.gui import tasks
from imgtrans.gui.compare_view import CompareView
from imgtrans.gui.imaging import load_display
from imgtrans.gui.preview import PreviewThread
from imgtrans.gui.qtcompat import emit
from imgtrans.gui.queue_model import QueueItem, Status

log = logging.getLogger(__name__)

EMPTY = "Select an image in the queue to see it here"


def _tool(text: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    return button


class PreviewPanel(QWidget):
    shown = Signal(str)  # "before" (the original alone) or "after" (a result next to it)
    previewRequested = Signal()  # noqa: N815 - the Preview button
    failed = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.compare = CompareView()
        self.fit_button = _tool("Fit", "Show the whole image (Ctrl+0)")
        self.actual_button = _tool("100%", "One image pixel per screen pixel (Ctrl+1)")
        self.zoom_out_button = _tool("\u2212", "Zoom out (Ctrl+-)")
        self.zoom_in_button = _tool("+", "Zoom in (Ctrl++)")
        self.zoom_label = QLabel()
        self.zoom_label.setMinimumWidth(self.zoom_label.fontMetrics().horizontalAdvance("00000%"))
        self.preview_button = QPushButton(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Preview")
        self.preview_button.setToolTip("Try the model on the selected image without saving (Ctrl+P)")
        bar = QHBoxLayout()
        for w in (self.fit_button, self.actual_button, self.zoom_out_button, self.zoom_in_button, self.zoom_label):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.preview_button)
        self.status = QLabel("Drag the divider to compare; wheel to zoom, drag to pan, double-click for 100%.")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.compare, 1)
        layout.addWidget(self.status)

        self.fit_button.clicked.connect(self.compare.fit)
        self.actual_button.clicked.connect(self.compare.actual_size)
        self.zoom_in_button.clicked.connect(lambda: self.compare.zoom_by(1.25))
        self.zoom_out_button.clicked.connect(lambda: self.compare.zoom_by(0.8))
        self.compare.zoomChanged.connect(lambda pct: self.zoom_label.setText(f"{pct:.0f}%"))
        self.preview_button.clicked.connect(self.previewRequested)

        self.preview: PreviewThread | None = None
        self._old: list[PreviewThread] = []
        self._preview_token = 0
        self._show_token = 0

    # -- showing queue items ------------------------------------------------------------------
    def clear(self) -> None:
        self.cancel_preview()
        self._show_token += 1
        self.compare.show_message(EMPTY)
        self.status.clear()

    def show_item(self, item: QueueItem, max_pixels: int) -> None:
        """The original, plus the output next to it when the item was converted."""
        self.cancel_preview()
        self._show_token += 1
        token = self._show_token
        if item.status in (Status.SKIPPED, Status.UNREADABLE):
            self.compare.show_message(f"{item.path.name}\n\n{item.status.value}: {item.message}")
            self.status.clear()
            return
        converted = item.status in (Status.DONE, Status.EXISTS) and item.dst is not None
        paths = [item.path] + ([item.dst] if converted else [])
        results: dict[int, object] = {}
        self.status.setText("Loading\u2026")

        def arrived(i: int, value) -> None:
            if token != self._show_token:
                return  # another item was selected meanwhile
            results[i] = value
            if len(results) < len(paths):
                return
            if isinstance(results[0], Exception):
                self.compare.show_message(f"{item.path.name}\n\nCannot show it: {results[0]}")
                self.status.clear()
                return
            after = results.get(1)
            after = None if isinstance(after, Exception) else after
            self.compare.set_images(results[0], after, ("Original", "Result"),
                                    keep_view=self.compare.has_after() and after is not None)
            if after is not None:
                self.status.setText(f"Output: {item.dst}")
                emit(self.shown, "after")
            else:
                self.status.setText("Press Preview (Ctrl+P) to try the model on this image without saving.")
                emit(self.shown, "before")

        for i, path in enumerate(paths):
            tasks.submit(load_display, path, max_pixels, done=lambda v, i=i: arrived(i, v),
                         error=lambda e, i=i: arrived(i, e))

    # -- quick preview ------------------------------------------------------------------------
    def run_preview(self, item: QueueItem, model_ref: str, options: ConvertOptions) -> None:
        self.cancel_preview()
        self._show_token += 1  # a display decode still on its way must not replace the preview
        self._preview_token += 1
        thread = PreviewThread(self._preview_token, item.path, model_ref, options, self)
        thread.status.connect(self._on_status)
        thread.before_ready.connect(self._on_before)
        thread.after_ready.connect(self._on_after)
        thread.failed.connect(self._on_failed)
        thread.finished.connect(lambda t=thread: self._thread_done(t))
        self.preview = thread
        log.info("preview %s with %s", item.path, model_ref)
        thread.start()

    def cancel_preview(self) -> None:
        if self.preview is not None:
            self.preview.cancel()
            self._old.append(self.preview)
            self.preview = None

    def shutdown(self) -> None:
        """Window closing: stop previews (within a tile) and wait for their threads."""
        self.cancel_preview()
        for thread in list(self._old):
            thread.wait(10_000)

    def _thread_done(self, thread: PreviewThread) -> None:
        if thread in self._old:
            self._old.remove(thread)
        if self.preview is thread:
            self.preview = None
        thread.deleteLater()

    def _on_status(self, token: int, text: str) -> None:
        if token == self._preview_token:
            self.status.setText(text)

    def _on_before(self, token: int, image) -> None:
        if token == self._preview_token:
            self.compare.set_images(image, None, ("Original", "Result"))

    def _on_after(self, token: int, image, label: str, _final: bool) -> None:
        if token == self._preview_token:
            self.compare.set_after(image, label)
            emit(self.shown, "after")

    def _on_failed(self, token: int, text: str) -> None:
        if token == self._preview_token:
            self.status.setText(f"Preview failed: {text}")
            emit(self.failed, text)
