"""The strip under the queue: current file, per-file and overall progress, ETA and the run buttons."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStyle,
    QVBoxLayout,
    QWidget,
)


def eta_text(seconds: float) -> str:
    if seconds < 1:
        return "almost done"
    if seconds < 60:
        return f"about {seconds:.0f} s left"
    if seconds < 3600:
        return f"about {seconds / 60:.0f} min left"
    return f"about {seconds / 3600:.1f} h left"


class ElidedLabel(QLabel):
    """A one-line label that elides in the middle (file names) instead of widening the window."""

    def __init__(self, text: str = "", parent=None) -> None:
        super().__init__(parent)
        self._full = text
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:  # noqa: N802
        self._elide()
        super().resizeEvent(event)

    def _elide(self) -> None:
        shown = QFontMetrics(self.font()).elidedText(self._full, Qt.TextElideMode.ElideMiddle, max(20, self.width()))
        super().setText(shown)


class ProgressPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 4, 0, 0)
        self.status_label = ElidedLabel("Add images to the queue, choose a model, then Convert.")
        self.eta_label = QLabel()
        self.eta_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.file_bar = QProgressBar()
        self.file_bar.setRange(0, 1000)
        self.file_bar.setTextVisible(True)
        self.file_bar.setFormat("%p%")
        self.file_bar.setAccessibleName("Progress of the current image")
        self.overall_bar = QProgressBar()
        self.overall_bar.setRange(0, 1000)
        self.overall_bar.setFormat("%p%")
        self.overall_bar.setAccessibleName("Progress of the whole queue")
        grid.addWidget(self.status_label, 0, 0, 1, 2)
        grid.addWidget(self.eta_label, 0, 2)
        grid.addWidget(QLabel("This image:"), 1, 0)
        grid.addWidget(self.file_bar, 1, 1, 1, 2)
        grid.addWidget(QLabel("All images:"), 2, 0)
        grid.addWidget(self.overall_bar, 2, 1, 1, 2)
        grid.setColumnStretch(1, 1)

        style = self.style()
        self.start_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "&Convert")
        self.start_button.setDefault(True)
        self.start_button.setToolTip("Convert every image in the queue (Ctrl+Return)")
        self.start_button.setMinimumHeight(self.start_button.sizeHint().height() * 4 // 3)
        self.cancel_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop), "Cancel")
        self.cancel_button.setToolTip("Stop after the current tile; finished files are kept, no partial file is "
                                      "written (Esc)")
        self.cancel_button.setEnabled(False)
        self.open_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon), "Open output folder")
        buttons = QVBoxLayout()
        buttons.addWidget(self.start_button)
        row = QHBoxLayout()
        row.addWidget(self.cancel_button)
        row.addWidget(self.open_button)
        buttons.addLayout(row)
        grid.addLayout(buttons, 0, 3, 3, 1)
        grid.setColumnMinimumWidth(3, 260)

        self._t0 = 0.0
        self._total = 0

    # -- run state ----------------------------------------------------------------------------
    def set_queue_size(self, n: int, pending: int | None = None) -> None:
        """``n`` images a Convert would run, ``pending`` of them not converted yet (default: all)."""
        pending = n if pending is None else pending
        if pending:
            self.start_button.setText(f"&Convert {pending} image{'s' if pending != 1 else ''}")
        else:  # everything in the queue is done: a new run keeps or replaces the outputs (If it exists)
            self.start_button.setText("&Convert again" if n else "&Convert")

    def begin(self) -> None:
        self._t0 = 0.0
        self._total = 0
        self.file_bar.setValue(0)
        self.overall_bar.setValue(0)
        self.eta_label.clear()
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def set_total(self, total: int) -> None:
        self._total = total

    def update_progress(self, processed: int, fraction: float) -> None:
        """``processed`` files finished (any outcome) plus ``fraction`` of the current one."""
        if not self._total:
            return
        if not self._t0:  # the clock starts with the first file, not with model loading
            self._t0 = time.monotonic()
        self.file_bar.setValue(int(fraction * 1000))
        done = min(1.0, (processed + fraction) / self._total)
        self.overall_bar.setValue(int(done * 1000))
        elapsed = time.monotonic() - self._t0 if self._t0 else 0.0
        if done > 0.02 and elapsed > 0.5:
            self.eta_label.setText(eta_text(elapsed / done * (1 - done)))

    def cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling\u2026")

    def end(self, text: str, complete: bool) -> None:
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        self.eta_label.clear()
        if complete:
            self.overall_bar.setValue(1000)
            self.file_bar.setValue(1000)
        self.status_label.setText(text)
