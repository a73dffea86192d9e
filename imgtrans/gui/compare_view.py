"""Before/after split view: drag the divider, wheel to zoom, drag to pan, double-click for 100%.

Both images are drawn through one transform onto the same "scene" (the output's pixel grid; an SR
input is stretched onto it), so zoom and pan are always synchronised and the divider compares the
same spot. Zoom is in scene pixels per *device* pixel: 100% shows every output pixel on one screen
pixel, also on high-DPI screens. Colours come from the palette, except the divider (white with a
dark edge), which must stay visible on any photo.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from imgtrans.gui.imaging import DisplayImage
from imgtrans.gui.qtcompat import emit

HANDLE_GRAB = 10  # logical pixels either side of the divider that grab it
MIN_ZOOM, MAX_ZOOM = 0.01, 32.0


class CompareView(QWidget):
    splitChanged = Signal(float)  # noqa: N815 - Qt naming
    zoomChanged = Signal(float)  # noqa: N815 - percent of device pixels

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 180)
        self.setAccessibleName("Before and after comparison")
        self._before: DisplayImage | None = None
        self._after: DisplayImage | None = None
        self._labels = ("Original", "Result")
        self._message = "Select an image in the queue to see it here"
        self._split = 0.5
        self._zoom = 1.0
        self._center = QPointF()
        self._fit = True
        self._drag: str | None = None
        self._last = QPointF()
        self._cache: QPixmap | None = None
        self._cache_key: tuple = ()

    # -- content ------------------------------------------------------------------------------
    def set_images(self, before: DisplayImage | None, after: DisplayImage | None = None,
                   labels: tuple[str, str] = ("Original", "Result"), keep_view: bool = False) -> None:
        same_scene = keep_view and self._scene_size() == self._scene_for(before, after)
        self._before, self._after, self._labels = before, after, labels
        if not same_scene:
            self._fit = True
        if self._fit:
            self._apply_fit()
        self.update()

    def set_after(self, after: DisplayImage | None, label: str = "Result") -> None:
        """Replace the right-hand image (e.g. the quick preview by the full one), keeping the view."""
        self.set_images(self._before, after, (self._labels[0], label), keep_view=True)

    def show_message(self, text: str) -> None:
        """Clear the images and show ``text`` (an empty state or an error)."""
        self._before = self._after = None
        self._message = text
        self.update()

    def has_images(self) -> bool:
        return self._before is not None or self._after is not None

    def has_after(self) -> bool:
        return self._after is not None

    def message(self) -> str:
        return self._message

    # -- view state ---------------------------------------------------------------------------
    def split(self) -> float:
        return self._split

    def set_split(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, fraction))
        if fraction != self._split:
            self._split = fraction
            emit(self.splitChanged, fraction)
            self.update()

    def divider_x(self) -> float:
        return self._split * self.width()

    def zoom_percent(self) -> float:
        return self._zoom * self.devicePixelRatioF() * 100.0

    def is_fit(self) -> bool:
        return self._fit

    def fit(self) -> None:
        self._fit = True
        self._apply_fit()
        self.update()

    def actual_size(self) -> None:
        """100%: one output pixel per screen pixel."""
        self._set_zoom(1.0 / self.devicePixelRatioF(), None)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self._set_zoom(self._zoom * factor, anchor)

    def center_on(self, scene_x: float, scene_y: float) -> None:
        self._fit = False
        self._center = QPointF(scene_x, scene_y)
        self._clamp_center()
        self.update()

    def _set_zoom(self, zoom: float, anchor: QPointF | None) -> None:
        if not self.has_images():
            return
        zoom = min(MAX_ZOOM, max(min(MIN_ZOOM, self._fit_zoom()), zoom))
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        scene_at_anchor = self._to_scene(anchor)
        self._zoom = zoom
        self._fit = False
        # keep the scene point under the anchor where it was
        widget_center = QPointF(self.width() / 2, self.height() / 2)
        self._center = scene_at_anchor - (anchor - widget_center) / zoom
        self._clamp_center()
        emit(self.zoomChanged, self.zoom_percent())
        self.update()

    @staticmethod
    def _scene_for(before: DisplayImage | None, after: DisplayImage | None) -> QSizeF:
        ref = after or before
        return QSizeF(ref.width, ref.height) if ref else QSizeF()

    def _scene_size(self) -> QSizeF:
        return self._scene_for(self._before, self._after)

    def _fit_zoom(self) -> float:
        scene = self._scene_size()
        if scene.isEmpty():
            return 1.0
        margin = 8
        return max(1e-4, min((self.width() - margin) / scene.width(), (self.height() - margin) / scene.height()))

    def _apply_fit(self) -> None:
        scene = self._scene_size()
        self._zoom = min(self._fit_zoom(), 1.0 / self.devicePixelRatioF() * 4)
        self._center = QPointF(scene.width() / 2, scene.height() / 2)
        emit(self.zoomChanged, self.zoom_percent())

    def _clamp_center(self) -> None:
        scene = self._scene_size()
        self._center = QPointF(min(max(self._center.x(), 0.0), scene.width()),
                               min(max(self._center.y(), 0.0), scene.height()))

    def _to_scene(self, p: QPointF) -> QPointF:
        return self._center + (p - QPointF(self.width() / 2, self.height() / 2)) / self._zoom

    def scene_rect_in_widget(self) -> QRectF:
        scene = self._scene_size()
        top_left = QPointF(self.width() / 2, self.height() / 2) - self._center * self._zoom
        return QRectF(top_left, scene * self._zoom)

    # -- painting -----------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802
        # The composed frame is cached: the window repaints this widget whenever a label elsewhere
        # changes size (progress text during a batch), and re-scaling the images each time would
        # cost tens of milliseconds of GUI time on a busy CPU. A blit costs about one.
        dpr = self.devicePixelRatioF()
        key = (id(self._before), id(self._after), self._labels, self._message, self._split, self._zoom,
               self._center.x(), self._center.y(), self.width(), self.height(), dpr)
        if self._cache is None or key != self._cache_key:
            frame = QPixmap(max(1, round(self.width() * dpr)), max(1, round(self.height() * dpr)))
            frame.setDevicePixelRatio(dpr)
            with QPainter(frame) as p:  # ended on every path, also when painting raises
                self._paint(p)
            self._cache, self._cache_key = frame, key
        with QPainter(self) as p:
            p.drawPixmap(0, 0, self._cache)

    def changeEvent(self, event) -> None:  # noqa: N802
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._cache = None
            self.update()
        super().changeEvent(event)

    def _paint(self, p: QPainter) -> None:
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Window).darker(110))
        if not self.has_images():
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect().adjusted(20, 20, -20, -20), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self._message)
            return
        target = self.scene_rect_in_widget()
        device_scale = self._zoom * self.devicePixelRatioF()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, device_scale < 2.0)
        divider = self.divider_x()
        if self._after is None:
            self._draw(p, self._before, target, QRectF(self.rect()))
        else:
            left = QRectF(0, 0, divider, self.height())
            right = QRectF(divider, 0, self.width() - divider, self.height())
            if self._before is not None:
                self._draw(p, self._before, target, left)
            self._draw(p, self._after, target, right)
            self._draw_divider(p, divider)
        self._draw_labels(p, divider)

    def _draw(self, p: QPainter, img: DisplayImage, target: QRectF, clip: QRectF) -> None:
        visible = target.intersected(clip)
        if visible.isEmpty():
            return
        shown_px = target.width() * self.devicePixelRatioF()
        source = img.small if shown_px <= img.small.width() * 1.01 else img.full
        sx = source.width() / target.width()
        sy = source.height() / target.height()
        src = QRectF((visible.x() - target.x()) * sx, (visible.y() - target.y()) * sy, visible.width() * sx,
                     visible.height() * sy)
        p.drawImage(visible, source, src)

    def _draw_divider(self, p: QPainter, x: float) -> None:
        h = self.height()
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(QPen(QColor(0, 0, 0, 140), 4))
        p.drawLine(QPointF(x, 0), QPointF(x, h))
        p.setPen(QPen(QColor(255, 255, 255), 2))
        p.drawLine(QPointF(x, 0), QPointF(x, h))
        # round handle with two arrows
        c = QPointF(x, h / 2)
        r = 14
        p.setPen(QPen(QColor(0, 0, 0, 140), 1.5))
        p.setBrush(QColor(255, 255, 255))
        p.drawEllipse(c, r, r)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(40, 40, 40))
        for sign in (-1, 1):
            tri = QPainterPath()
            tri.moveTo(c + QPointF(sign * 10, 0))
            tri.lineTo(c + QPointF(sign * 4, -5))
            tri.lineTo(c + QPointF(sign * 4, 5))
            tri.closeSubpath()
            p.drawPath(tri)
        p.restore()

    def _draw_labels(self, p: QPainter, divider: float) -> None:
        pal = self.palette()
        fm = QFontMetrics(self.font())
        pad, margin = 6, 10

        def tag(text: str, x: float, align_right: bool) -> None:
            w = fm.horizontalAdvance(text) + 2 * pad
            h = fm.height() + pad
            rect = QRectF(x - w if align_right else x, margin, w, h)
            bg = pal.color(QPalette.ColorRole.ToolTipBase)
            bg.setAlpha(215)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(bg)
            p.drawRoundedRect(rect, 4, 4)
            p.setPen(pal.color(QPalette.ColorRole.ToolTipText))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

        if self._after is None:
            tag(self._labels[0], margin, False)
            return
        if divider > 120:
            tag(self._labels[0], margin, False)
        if self.width() - divider > 120:
            tag(self._labels[1], self.width() - margin, True)

    # -- input --------------------------------------------------------------------------------
    def _near_divider(self, x: float) -> bool:
        return self._after is not None and abs(x - self.divider_x()) <= HANDLE_GRAB

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton or not self.has_images():
            return super().mousePressEvent(event)
        pos = event.position()
        self._drag = "split" if self._near_divider(pos.x()) else "pan"
        self._last = pos
        self.setCursor(Qt.CursorShape.SplitHCursor if self._drag == "split" else Qt.CursorShape.ClosedHandCursor)
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        if self._drag == "split":
            self.set_split(pos.x() / max(1, self.width()))
        elif self._drag == "pan":
            delta = pos - self._last
            self._fit = False
            self._center -= delta / self._zoom
            self._clamp_center()
            self.update()
        elif self.has_images():
            self.setCursor(Qt.CursorShape.SplitHCursor if self._near_divider(pos.x())
                           else Qt.CursorShape.OpenHandCursor)
        self._last = pos

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._drag is not None:
            self._drag = None
            self.setCursor(Qt.CursorShape.SplitHCursor if self._near_divider(event.position().x())
                           else Qt.CursorShape.OpenHandCursor)
            event.accept()

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        if not self.has_images() or self._near_divider(event.position().x()):
            return
        if self._fit:
            self._set_zoom(1.0 / self.devicePixelRatioF(), event.position())
        else:
            self.fit()

    def wheelEvent(self, event) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120.0
        if steps and self.has_images():
            self.zoom_by(1.25 ** steps, event.position())
            event.accept()

    def keyPressEvent(self, event) -> None:  # noqa: N802
        key = event.key()
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right) and self._after is not None:
            self.set_split(self._split + (0.05 if key == Qt.Key.Key_Right else -0.05))
        else:
            super().keyPressEvent(event)

    def resizeEvent(self, event) -> None:  # noqa: N802
        if self._fit:
            self._apply_fit()
        super().resizeEvent(event)
