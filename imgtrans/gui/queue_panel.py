"""The queue column: add files and folders (buttons, paste; drops arrive through the window), the
list with thumbnails, size and status, and the counts under it.

Folder walks (:func:`imgtrans.engine.collect_inputs`) and thumbnails run in worker threads; rows
appear when they are back. Non-images found in folders are listed as skipped with the reason, and a
file that is broken or too large is marked "Cannot use" with the reason as soon as it is probed.
"""

from __future__ import annotations

import collections
import html
import logging
import time
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from imgtrans.engine import collect_inputs
from imgtrans.gui import tasks
from imgtrans.gui.imaging import probe
from imgtrans.gui.qtcompat import emit
from imgtrans.gui.queue_model import QueueDelegate, QueueItem, QueueModel, Status
from imgtrans.gui.settings import Settings
from imgtrans.paths import user_cache_dir

log = logging.getLogger(__name__)

THUMB = 48  # logical pixels; decoded at twice that for high-DPI screens
PROBE_CHUNK = 8  # files per background probe job
DRAIN_BUDGET = 0.008  # seconds of GUI time per tick spent applying thumbnails
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp *.gif);;All files (*)"


class QueuePanel(QWidget):
    currentChanged = Signal(object)  # noqa: N815 - the QueueItem, or None
    countsChanged = Signal(int, int)  # noqa: N815 - images that a Convert would run, and those of them not done yet
    itemProbed = Signal(str)  # noqa: N815 - key of a row whose size/thumbnail/status just arrived
    notify = Signal(str, str, int)  # text (HTML), level, timeout in ms (0: until dismissed)

    def __init__(self, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.recursive = True  # follows the "Include sub-folders" option
        self.running_key: str | None = None  # the file being converted cannot be removed
        self.locked = False  # no clearing while a batch runs
        self._roots: dict[Path, None] = {}  # what the user added, in order
        self._removed: set[str] = set()  # rows the user removed: a rescan must not bring them back

        self.model = QueueModel(self)
        self.model.thumb_size = THUMB
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setItemDelegate(QueueDelegate(THUMB, self.view))
        self.view.setUniformItemSizes(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setMinimumWidth(260)
        self.view.setAccessibleName("Queue")
        self.view.selectionModel().currentRowChanged.connect(self._current_row_changed)
        self.hint = QLabel("Drop images or folders anywhere in this window,\nor use Add images / Add folder.")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setEnabled(False)  # drawn in the palette's disabled (softer) text colour

        style = self.style()
        self.add_files_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_FileIcon), "Add images\u2026")
        self.add_folder_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_DirIcon), "Add folder\u2026")
        self.remove_button = QToolButton()
        self.remove_button.setText("Remove")
        self.remove_button.setToolTip("Remove the selected images from the queue (Delete)")
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Clear the queue (Ctrl+Shift+Delete)")
        bar = QHBoxLayout()
        bar.addWidget(self.add_files_button)
        bar.addWidget(self.add_folder_button)
        bar.addStretch(1)
        bar.addWidget(self.remove_button)
        bar.addWidget(self.clear_button)
        self.count_label = QLabel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.hint, 1)
        layout.addWidget(self.count_label)

        # probes finish in worker threads and wait here until the GUI thread has a moment
        self._probe_results: collections.deque = collections.deque()
        self._probes_pending = 0
        self._drain_timer = QTimer(self)
        self._drain_timer.setInterval(30)
        self._drain_timer.timeout.connect(self._drain_probes)
        # counting walks the whole queue: coalesce the requests of a burst of thumbnails or events
        self._counts_timer = QTimer(self)
        self._counts_timer.setSingleShot(True)
        self._counts_timer.setInterval(50)
        self._counts_timer.timeout.connect(self.update_counts)

        self.add_files_button.clicked.connect(self.choose_files)
        self.add_folder_button.clicked.connect(self.choose_folder)
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button.clicked.connect(self.clear)
        self.update_counts()

    # -- adding -------------------------------------------------------------------------------
    def choose_files(self) -> None:
        start = self.settings.get_str("input/last_dir", str(Path.home()))
        files, _ = QFileDialog.getOpenFileNames(self, "Add images", start, IMAGE_FILTER)
        if files:
            self.settings.set("input/last_dir", str(Path(files[0]).parent))
            self.add_paths([Path(f) for f in files])

    def choose_folder(self) -> None:
        start = self.settings.get_str("input/last_dir", str(Path.home()))
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of images", start)
        if folder:
            self.settings.set("input/last_dir", folder)
            self.add_paths([Path(folder)])

    def paste(self) -> None:
        """Paste file URLs, text paths (one a line) or image data (kept as a PNG in the cache)."""
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None:
            return
        if mime.hasUrls():
            paths = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
        elif mime.hasImage():
            image = QImage(mime.imageData())
            if image.isNull():
                return
            target = user_cache_dir() / "pasted" / time.strftime("pasted-%Y%m%d-%H%M%S.png")
            tasks.submit(_save_pasted, image, target, done=lambda p: self.add_paths([p]),
                         error=lambda exc: emit(self.notify,
                                                f"Could not keep the pasted image: {html.escape(str(exc))}", "error",
                                                0))
            return
        else:
            lines = [line.strip().strip('"') for line in mime.text().splitlines() if line.strip()]
            paths = [Path(line) for line in lines if Path(line).exists()]
        if paths:
            self.add_paths(paths)
        else:
            emit(self.notify, "The clipboard holds no images, files or folders.", "info", 5000)

    def add_paths(self, paths: list[Path]) -> None:
        """Queue files and folders (a folder walk runs in a worker; rows appear when it is back)."""
        roots = [Path(p).expanduser().absolute() for p in paths]
        for root in roots:
            self._roots[root] = None
            self._removed.discard(str(root))
        tasks.submit(_scan, roots, self.recursive, done=self._scanned)

    def rescan(self) -> None:
        """Walk the added folders again (after "Include sub-folders" changed)."""
        if not self.locked and self._roots:
            tasks.submit(_scan, list(self._roots), self.recursive, done=self._rescanned)

    def _scanned(self, result) -> None:
        found, skipped, empty_folders = result
        found = [(p, r) for p, r in found if str(p) not in self._removed]
        new = self.model.add(found, skipped)
        self._probes_pending += len(new)
        for k in range(0, len(new), PROBE_CHUNK):  # one job per few files: submitting costs GUI time too
            tasks.submit(_probe_into, self._probe_results, [(item.key, item.path) for item in new[k:k + PROBE_CHUNK]])
        if new and not self._drain_timer.isActive():
            self._drain_timer.start()
        notes = []
        for folder, n_other in empty_folders:
            extra = f" ({n_other} other file{'s' if n_other != 1 else ''} listed as skipped)" if n_other else ""
            notes.append(f"No images in {html.escape(str(folder))}{extra}.")
        missing = [p for p, reason in skipped if reason == "no such file or folder"]
        if notes:
            emit(self.notify, " ".join(notes), "warning", 10000)
        elif missing:
            emit(self.notify, f"Not found: {html.escape(str(missing[0]))}", "warning", 8000)
        if new and not self.view.currentIndex().isValid():
            self.select_row(self.model.row_of(new[0].key) or 0)
        self.update_counts()

    def _rescanned(self, result) -> None:
        found, skipped, _empty = result
        keep = {str(p) for p, _ in found} | {str(p) for p, _ in skipped}
        self.model.remove_rows([i for i, item in enumerate(self.model.items) if item.key not in keep])
        self._scanned((found, skipped, []))

    def _drain_probes(self) -> None:
        """Apply finished probes, a few milliseconds' worth per tick: dropping thousands of files
        fills the list progressively instead of freezing the window while every row updates."""
        deadline = time.perf_counter() + DRAIN_BUDGET
        while self._probe_results and time.perf_counter() < deadline:
            key, result = self._probe_results.popleft()
            self._probes_pending -= 1
            self._probed(key, result)
        if self._probes_pending <= 0 and not self._probe_results:
            self._probes_pending = 0
            self._drain_timer.stop()

    def _probed(self, key: str, result) -> None:
        item = self.model.item_for(key)
        if item is None:
            return
        item.probed = True
        item.width, item.height, item.file_bytes = result.width, result.height, result.file_bytes
        if result.error and item.status == Status.QUEUED:
            item.status, item.message = Status.UNREADABLE, result.error
            log.info("cannot use %s: %s", item.path, result.error)
        self.model.set_thumbnail(key, result.thumb)  # also repaints the row
        self.schedule_counts()
        emit(self.itemProbed, key)

    # -- removing -----------------------------------------------------------------------------
    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.view.selectionModel().selectedRows()})
        rows = [r for r in rows if self.model.items[r].key != self.running_key]
        for r in rows:
            self._removed.add(self.model.items[r].key)
        self.model.remove_rows(rows)
        used = {item.root for item in self.model.items} | {item.path for item in self.model.items}
        for root in [r for r in self._roots if r not in used]:
            del self._roots[root]
        self.update_counts()

    def clear(self) -> None:
        if self.locked:
            emit(self.notify, "The queue cannot be cleared while converting. Cancel first.", "info", 5000)
            return
        self.model.clear()
        self._roots.clear()
        self._removed.clear()
        self.update_counts()
        emit(self.currentChanged, None)

    # -- state --------------------------------------------------------------------------------
    def roots_of(self, items: list[QueueItem]) -> list[Path]:
        """The added files and folders that ``items`` came from (what the engine plans over)."""
        return [r for r in self._roots if any(item.root == r or item.path == r for item in items)]

    def schedule_counts(self) -> None:
        """Recount soon (at most 20 times a second, whatever the number of rows changing)."""
        if not self._counts_timer.isActive():
            self._counts_timer.start()

    def update_counts(self) -> None:
        total = len(self.model.items)
        runnable = len(self.model.runnable())
        self.view.setVisible(total > 0)
        self.hint.setVisible(total == 0)
        parts = [f"{runnable} image{'s' if runnable != 1 else ''}"]
        for status, label in ((Status.DONE, "done"), (Status.FAILED, "failed"), (Status.SKIPPED, "skipped"),
                              (Status.UNREADABLE, "unusable")):
            n = self.model.count(status)
            if n:
                parts.append(f"{n} {label}")
        self.count_label.setText(" \u00b7 ".join(parts) if total else "")
        pending = sum(self.model.count(status) for status in (Status.QUEUED, Status.FAILED, Status.CANCELLED))
        emit(self.countsChanged, runnable, pending)

    def select_row(self, row: int) -> None:
        index = self.model.index(row, 0)
        self.view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)

    def current_item(self) -> QueueItem | None:
        index = self.view.currentIndex()
        return self.model.items[index.row()] if index.isValid() and index.row() < len(self.model.items) else None

    def _current_row_changed(self, current, _previous) -> None:
        emit(self.currentChanged, self.model.items[current.row()] if current.isValid() else None)


def _probe_into(results: collections.deque, files: list[tuple[str, Path]]) -> None:
    """Worker: probe files and leave the results for the GUI thread's drain timer."""
    from imgtrans.gui.imaging import Probe

    for key, path in files:
        try:
            result = probe(path, THUMB * 2)
        except Exception as exc:  # noqa: BLE001 - a probe must always report back
            result = Probe(error=f"{type(exc).__name__}: {exc}")
        results.append((key, result))


def _scan(roots: list[Path], recursive: bool):
    """Worker: expand roots into ``(file, root)`` pairs, skipped entries and folders without images."""
    found: list[tuple[Path, Path]] = []
    skipped: list[tuple[Path, str]] = []
    empty: list[tuple[Path, int]] = []
    for root in roots:
        files, skips = collect_inputs([root], recursive)
        found.extend((path, root) for path, _rel in files)
        skipped.extend(skips)
        if root.is_dir() and not files:
            empty.append((root, len(skips)))
    return found, skipped, empty


def _save_pasted(image: QImage, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(target), "PNG"):
        raise OSError(f"cannot write {target}")
    return target
