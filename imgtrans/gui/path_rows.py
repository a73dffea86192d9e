"""Form rows for a path: a line edit with a "\u2026" button that opens the file or folder dialog.

A path picked in the dialog is set in the edit and reported as ``editingFinished``, as if typed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QToolButton, QWidget

from imgtrans.gui.qtcompat import emit
from imgtrans.gui.queue_panel import IMAGE_FILTER


def file_row(edit: QLineEdit, title: str, parent: QWidget) -> QHBoxLayout:
    """A line edit for an image file with a button that opens the file dialog."""

    def ask() -> str:
        start = edit.text().strip() or str(Path.home())
        return QFileDialog.getOpenFileName(parent, title, start, IMAGE_FILTER)[0]

    return _row(edit, title, ask)


def folder_row(edit: QLineEdit, title: str, parent: QWidget) -> QHBoxLayout:
    """A line edit for a folder with a button that opens the folder dialog."""
    return _row(edit, title, lambda: QFileDialog.getExistingDirectory(parent, title, edit.text() or str(Path.home())))


def _row(edit: QLineEdit, title: str, ask: Callable[[], str]) -> QHBoxLayout:
    button = QToolButton()
    button.setText("\u2026")
    button.setToolTip(f"Choose the {title.lower()}")

    def pick() -> None:
        path = ask()
        if path:
            edit.setText(path)
            emit(edit.editingFinished)

    button.clicked.connect(pick)
    edit.setAcceptDrops(False)
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(edit, 1)
    row.addWidget(button)
    return row
