"""Small shared widgets: the inline message bar, the drop overlay and the picture of the painting a
style model learnt from."""

from __future__ import annotations

from typing import ClassVar

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QBoxLayout, QFrame, QHBoxLayout, QLabel, QSizePolicy, QStyle, QToolButton, QWidget

from imgtrans.catalog import CatalogEntry, StyleThumbnail, style_thumbnail


class MessageBar(QFrame):
    """A dismissable line at the top of a page for errors and notices. Never modal, so a bad file
    or a failed batch never blocks the window (or a test)."""

    LEVELS: ClassVar[dict[str, QStyle.StandardPixmap]] = {
        "info": QStyle.StandardPixmap.SP_MessageBoxInformation,
        "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
        "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
    }

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.ToolTipBase)
        self.setForegroundRole(QPalette.ColorRole.ToolTipText)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        self.icon = QLabel()
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setForegroundRole(QPalette.ColorRole.ToolTipText)
        close = QToolButton()
        close.setAutoRaise(True)
        close.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_TitleBarCloseButton))
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout.addWidget(self.icon)
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.level = ""
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_message(self, text: str, level: str = "info", timeout_ms: int = 0) -> None:
        self.level = level
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        self.icon.setPixmap(self.style().standardIcon(self.LEVELS.get(level, self.LEVELS["info"])).pixmap(size, size))
        self.label.setText(text)
        self.show()
        if timeout_ms:
            self._timer.start(timeout_ms)
        else:
            self._timer.stop()

    def text(self) -> str:
        """The message shown (also while the page holding the bar is not the current tab), or ""."""
        return "" if self.isHidden() else self.label.text()


class DropOverlay(QWidget):
    """Covers the window while files are dragged over it: says what a drop will do."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()

    def cover(self) -> None:
        self.setGeometry(self.parentWidget().rect())
        self.raise_()
        self.show()

    def paintEvent(self, event) -> None:  # noqa: N802
        with QPainter(self) as p:  # ended on every path, also when painting raises
            self._paint(p)

    def _paint(self, p: QPainter) -> None:
        pal = self.palette()
        fill = pal.color(QPalette.ColorRole.Highlight)
        fill.setAlpha(60)
        p.fillRect(self.rect(), fill)
        pen = p.pen()
        pen.setColor(pal.color(QPalette.ColorRole.Highlight))
        pen.setWidth(3)
        pen.setStyle(Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.drawRoundedRect(self.rect().adjusted(8, 8, -9, -9), 12, 12)
        font = p.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        p.setFont(font)
        p.setPen(pal.color(QPalette.ColorRole.WindowText))
        p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Drop images or folders to add them to the queue")


def _thumbnail_image(thumb: StyleThumbnail | None) -> QImage:
    """The thumbnail's few kB of JPEG/PNG decoded by the core's decoder (as every image the app
    shows), or a null QImage when there is none or it does not decode."""
    from imgtrans.gui.imaging import display_from_pil
    from imgtrans.imageio import ImageReadError, read_preview

    if thumb is None:
        return QImage()
    try:
        preview = read_preview("style thumbnail", data=thumb.data, max_pixels=1 << 20)
    except ImageReadError:
        return QImage()
    return display_from_pil(preview.image).full.copy()  # a copy that owns its pixels


class PaintingView(QWidget):
    """The painting a style model learnt from: the thumbnail its file carries (long side ``size``
    logical pixels, sharp on HiDPI screens) and the line naming it. Hidden for a model without one,
    so other models show nothing in its place."""

    def __init__(self, size: int, parent=None) -> None:
        super().__init__(parent)
        self.size_px = size
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.image.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.image.setFrameShape(QFrame.Shape.Box)
        self.image.setForegroundRole(QPalette.ColorRole.Mid)  # a thin frame: a dark painting keeps its edge
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        layout = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.image, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.caption, 1)
        self.thumbnail: StyleThumbnail | None = None
        self.hide()

    def show_entry(self, entry: CatalogEntry | None) -> bool:
        """Show the thumbnail of ``entry`` (read from its file's header now), or hide. True if shown."""
        return self.set_thumbnail(style_thumbnail(entry) if entry is not None else None)

    def set_thumbnail(self, thumb: StyleThumbnail | None) -> bool:
        image = _thumbnail_image(thumb)
        if image.isNull():
            self.thumbnail = None
            self.image.clear()
            self.caption.clear()
            self.hide()
            return False
        self.thumbnail = thumb
        dpr = max(1.0, self.devicePixelRatioF())
        box = QSize(round(self.size_px * dpr), round(self.size_px * dpr))
        if image.width() > box.width() or image.height() > box.height():
            image = image.scaled(box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(dpr)
        self.image.setPixmap(pixmap)
        frame = 2 * self.image.frameWidth()
        self.image.setFixedSize(round(image.width() / dpr) + frame, round(image.height() / dpr) + frame)
        credit = thumb.credit or "the painting this style learnt from"
        self.caption.setText(f"Learnt from: {credit}" if thumb.credit else credit[0].upper() + credit[1:])
        self.image.setToolTip(thumb.credit)
        self.show()
        return True
