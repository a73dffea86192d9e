"""The file queue: one row per input file with thumbnail, size and status.

Rows are keyed by the file's path exactly as :func:`imgtrans.engine.collect_inputs` reports it (the
window passes absolute roots), so engine events map straight back to rows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QFont, QFontMetrics, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from imgtrans.gui.qtcompat import emit


class Status(enum.Enum):
    QUEUED = "Queued"
    SKIPPED = "Skipped"  # not an image (listed so nothing is dropped silently); never sent to the engine
    UNREADABLE = "Cannot use"  # found broken or too large when probed; never sent to the engine
    RUNNING = "Converting"
    DONE = "Done"
    EXISTS = "Kept existing"  # output existed and the policy is skip
    FAILED = "Failed"
    CANCELLED = "Cancelled"


RUNNABLE = {Status.QUEUED, Status.RUNNING, Status.DONE, Status.EXISTS, Status.FAILED, Status.CANCELLED}


@dataclass
class QueueItem:
    path: Path
    root: Path
    status: Status = Status.QUEUED
    message: str = ""
    detail: str = ""  # what the run measured, e.g. a denoiser's "noise level 12.3 (estimated)"
    width: int = 0
    height: int = 0
    file_bytes: int = 0
    thumb: QIcon | None = None
    dst: Path | None = None
    fraction: float = 0.0
    seconds: float = 0.0
    probed: bool = False

    @property
    def key(self) -> str:
        return str(self.path)

    @property
    def runnable(self) -> bool:
        return self.status in RUNNABLE


def file_size_text(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class QueueModel(QAbstractTableModel):
    COLUMNS = ("File", "Size", "Status")
    NAME, SIZE, STATUS = range(3)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.items: list[QueueItem] = []
        self._rows: dict[str, int] = {}
        self.thumb_size = 48

    # -- Qt model API -------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.items)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.items):
            return None
        item = self.items[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == self.NAME:
                return item.path.name
            if col == self.SIZE:
                return self._size_text(item)
            return self.status_text(item)
        if role == Qt.ItemDataRole.DecorationRole:
            if col == self.NAME:
                return item.thumb or _placeholder_icon(item)
            if col == self.STATUS:
                return _status_icon(item.status)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(item)
        if role == Qt.ItemDataRole.UserRole:
            return item
        return None

    # -- text ---------------------------------------------------------------------------------
    @staticmethod
    def _size_text(item: QueueItem) -> str:
        parts = []
        if item.width:
            parts.append(f"{item.width}\u00d7{item.height}")
        if item.file_bytes:
            parts.append(file_size_text(item.file_bytes))
        return "  ".join(parts)

    @staticmethod
    def status_text(item: QueueItem) -> str:
        s = item.status
        detail = f"; {item.detail}" if item.detail else ""
        if s == Status.RUNNING:
            return f"Converting {item.fraction * 100:.0f}%{detail}"
        if s == Status.DONE:
            done = (f"Done ({item.seconds:.1f} s)" if item.seconds else "Done") + detail
            return f"{done}; note: {item.message}" if item.message else done
        if s in (Status.FAILED, Status.SKIPPED, Status.UNREADABLE, Status.EXISTS, Status.CANCELLED) and item.message:
            return f"{s.value}: {item.message}"
        return s.value

    @staticmethod
    def tooltip(item: QueueItem) -> str:
        lines = [str(item.path), QueueModel.status_text(item)]
        if item.dst is not None and item.status in (Status.DONE, Status.EXISTS):
            lines.append(f"Output: {item.dst}")
        return "\n".join(lines)

    # -- editing ------------------------------------------------------------------------------
    def row_of(self, key: str) -> int | None:
        return self._rows.get(key)

    def item_for(self, key: str) -> QueueItem | None:
        row = self._rows.get(key)
        return self.items[row] if row is not None else None

    def add(self, files: list[tuple[Path, Path]], skipped: list[tuple[Path, str]]) -> list[QueueItem]:
        """Append new files (``(path, root)``) and skipped entries; returns the new image items."""
        new: list[QueueItem] = []
        rows: list[QueueItem] = []
        for path, root in files:
            if str(path) not in self._rows:
                item = QueueItem(path, root)
                new.append(item)
                rows.append(item)
                self._rows[item.key] = -1
        for path, reason in skipped:
            if str(path) not in self._rows:
                item = QueueItem(path, path.parent, Status.SKIPPED, reason, probed=True)
                rows.append(item)
                self._rows[item.key] = -1
        if rows:
            first = len(self.items)
            self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
            self.items.extend(rows)
            self._reindex()
            self.endInsertRows()
        return new

    def remove_rows(self, rows: list[int]) -> None:
        for row in sorted(set(rows), reverse=True):
            if 0 <= row < len(self.items):
                self.beginRemoveRows(QModelIndex(), row, row)
                del self.items[row]
                self.endRemoveRows()
        self._reindex()

    def clear(self) -> None:
        self.beginResetModel()
        self.items.clear()
        self._rows.clear()
        self.endResetModel()

    def _reindex(self) -> None:
        self._rows = {item.key: i for i, item in enumerate(self.items)}

    def changed(self, key: str) -> None:
        """Repaint one row (the list shows column 0; the other columns are for tables and tests)."""
        row = self._rows.get(key)
        if row is not None:
            index = self.index(row, 0)
            emit(self.dataChanged, index, index)

    def update(self, key: str, **fields) -> QueueItem | None:
        item = self.item_for(key)
        if item is None:
            return None
        for name, value in fields.items():
            setattr(item, name, value)
        self.changed(key)
        return item

    def set_thumbnail(self, key: str, image: QImage | None) -> None:
        """``image`` was decoded at up to twice ``thumb_size`` so it stays sharp on high-DPI screens."""
        item = self.item_for(key)
        if item is None:
            return
        if image is None or image.isNull():
            self.changed(key)
            return
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(max(1.0, max(image.width(), image.height()) / self.thumb_size))
        item.thumb = QIcon(pixmap)
        self.changed(key)

    # -- views on the queue -------------------------------------------------------------------
    def runnable(self) -> list[QueueItem]:
        return [item for item in self.items if item.runnable]

    def count(self, status: Status) -> int:
        return sum(1 for item in self.items if item.status == status)

    def persistent(self, key: str) -> QPersistentModelIndex | None:
        row = self._rows.get(key)
        return QPersistentModelIndex(self.index(row, 0)) if row is not None else None


_ICONS: dict[Status, QIcon] = {}


def _status_icon(status: Status) -> QIcon | None:
    pixmaps = {
        Status.DONE: QStyle.StandardPixmap.SP_DialogApplyButton,
        Status.FAILED: QStyle.StandardPixmap.SP_MessageBoxCritical,
        Status.UNREADABLE: QStyle.StandardPixmap.SP_MessageBoxCritical,
        Status.SKIPPED: QStyle.StandardPixmap.SP_MessageBoxWarning,
        Status.EXISTS: QStyle.StandardPixmap.SP_MessageBoxInformation,
        Status.CANCELLED: QStyle.StandardPixmap.SP_MediaPause,  # not an error: converting it again goes on
        Status.RUNNING: QStyle.StandardPixmap.SP_MediaPlay,
    }
    if status not in pixmaps:
        return None
    if status not in _ICONS:
        _ICONS[status] = QApplication.style().standardIcon(pixmaps[status])
    return _ICONS[status]


def _placeholder_icon(item: QueueItem) -> QIcon | None:
    if item.status in (Status.SKIPPED, Status.UNREADABLE):
        if "file" not in _PLACEHOLDER:
            _PLACEHOLDER["file"] = QApplication.style().standardIcon(QStyle.StandardPixmap.SP_FileIcon)
        return _PLACEHOLDER["file"]
    return None


_PLACEHOLDER: dict[str, QIcon] = {}


class QueueDelegate(QStyledItemDelegate):
    """Thumbnail on the left; file name, size and status (with a slim progress bar while converting)
    on three lines. Colours are palette roles, so light and dark themes both work."""

    PAD = 5

    def __init__(self, thumb_size: int, parent=None) -> None:
        super().__init__(parent)
        self.thumb = thumb_size

    @staticmethod
    def _second_line(item: QueueItem) -> str:
        if item.status == Status.SKIPPED:
            return f"in {item.path.parent}"
        return QueueModel._size_text(item) or ("\u2026" if not item.probed else "")

    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        line = option.fontMetrics.lineSpacing()
        return QSize(200, max(self.thumb, 3 * line) + 2 * self.PAD + 2)

    def paint(self, painter: QPainter, option, index) -> None:
        item: QueueItem | None = index.data(Qt.ItemDataRole.UserRole)
        if item is None:
            return super().paint(painter, option, index)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        opt.icon = QIcon()
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)

        painter.save()
        rect = opt.rect.adjusted(self.PAD, self.PAD, -self.PAD, -self.PAD)
        thumb_rect = QRect(rect.left(), rect.top() + (rect.height() - self.thumb) // 2, self.thumb, self.thumb)
        icon = item.thumb or _placeholder_icon(item)
        if icon is not None:
            icon.paint(painter, thumb_rect, Qt.AlignmentFlag.AlignCenter)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        pal = opt.palette
        main = pal.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        soft = main if selected else pal.color(QPalette.ColorRole.PlaceholderText)
        fm = opt.fontMetrics
        line = fm.lineSpacing()
        x = thumb_rect.right() + 10
        width = max(10, rect.right() - x)
        top = rect.top() + max(0, (rect.height() - 3 * line) // 2)

        bold = QFont(opt.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(main)
        painter.drawText(QRect(x, top, width, line), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         QFontMetrics(bold).elidedText(item.path.name, Qt.TextElideMode.ElideMiddle, width))
        painter.setFont(opt.font)
        painter.setPen(soft)
        painter.drawText(QRect(x, top + line, width, line), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(self._second_line(item), Qt.TextElideMode.ElideRight, width))
        status_rect = QRect(x, top + 2 * line, width, line)
        status_icon = _status_icon(item.status)
        if status_icon is not None:
            s = min(16, line - 1)
            status_icon.paint(painter, QRect(x, status_rect.top() + (line - s) // 2, s, s))
            status_rect.setLeft(x + s + 4)
        if item.status == Status.RUNNING:
            bar = QRect(status_rect.left(), status_rect.center().y() - 2, min(120, status_rect.width() // 2), 5)
            painter.fillRect(bar, pal.color(QPalette.ColorRole.Mid))
            painter.fillRect(QRect(bar.left(), bar.top(), int(bar.width() * item.fraction), bar.height()),
                             pal.color(QPalette.ColorRole.Highlight))
            status_rect.setLeft(bar.right() + 8)
        painter.setPen(main if item.status in (Status.FAILED, Status.UNREADABLE) else soft)
        painter.drawText(status_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(QueueModel.status_text(item), Qt.TextElideMode.ElideRight, status_rect.width()))
        painter.restore()
