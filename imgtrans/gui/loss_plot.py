"""A small live plot of training losses (smoothed), drawn with palette colours and pen styles."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

MAX_POINTS = 1500  # per series; older points are thinned by half when it fills up
_ROLES = (QPalette.ColorRole.Highlight, QPalette.ColorRole.LinkVisited, QPalette.ColorRole.WindowText,
          QPalette.ColorRole.PlaceholderText)
_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine)


class LossPlot(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.series: dict[str, list[tuple[int, float]]] = {}
        self._ema: dict[str, float] = {}
        self.smoothing = 0.9

    def clear(self) -> None:
        self.series.clear()
        self._ema.clear()
        self.update()

    def add(self, step: int, losses: dict[str, float]) -> None:
        for name, value in losses.items():
            if not math.isfinite(value):
                continue
            prev = self._ema.get(name)
            smooth = value if prev is None else self.smoothing * prev + (1 - self.smoothing) * value
            self._ema[name] = smooth
            points = self.series.setdefault(name, [])
            points.append((step, smooth))
            if len(points) > MAX_POINTS:
                del points[1::2]
        self.update()

    def pen_for(self, i: int) -> QPen:
        color = self.palette().color(_ROLES[i % len(_ROLES)])
        pen = QPen(color, 1.6)
        pen.setStyle(_STYLES[(i // len(_ROLES)) % len(_STYLES)])
        return pen

    def paintEvent(self, event) -> None:  # noqa: N802
        with QPainter(self) as p:  # ended on every path, also when painting raises
            self._paint(p)

    def _paint(self, p: QPainter) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        fm = self.fontMetrics()
        if not any(self.series.values()):
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Losses appear here while training runs")
            return
        names = list(self.series)
        # legend, wrapped over as many lines as needed
        x, y, line = 8.0, 6.0, fm.height() + 2
        for i, name in enumerate(names):
            w = fm.horizontalAdvance(name) + 30
            if x + w > self.width() - 8 and x > 8:
                x, y = 8.0, y + line
            p.setPen(self.pen_for(i))
            p.drawLine(QPointF(x, y + line / 2), QPointF(x + 18, y + line / 2))
            p.setPen(pal.color(QPalette.ColorRole.Text))
            p.drawText(QRectF(x + 22, y, w, line), Qt.AlignmentFlag.AlignVCenter, name)
            x += w + 8
        top = y + line + line // 2 + 6
        left = fm.horizontalAdvance("00.000") + 12
        area = QRectF(left, top, self.width() - left - 10, self.height() - top - fm.height() - 10)
        if area.width() < 20 or area.height() < 20:
            return
        steps = [s for pts in self.series.values() for s, _ in pts]
        values = [v for pts in self.series.values() for _, v in pts]
        s0, s1 = min(steps), max(steps)
        v0, v1 = min(values), max(values)
        if v1 - v0 < 1e-9:
            v0, v1 = v0 - 0.5, v1 + 0.5
        pad = (v1 - v0) * 0.05
        v0, v1 = v0 - pad, v1 + pad
        span = max(1, s1 - s0)
        grid = QPen(pal.color(QPalette.ColorRole.Mid), 1, Qt.PenStyle.DotLine)
        for k in range(5):
            gy = area.bottom() - area.height() * k / 4
            p.setPen(grid)
            p.drawLine(QPointF(area.left(), gy), QPointF(area.right(), gy))
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(QRectF(0, gy - line / 2, left - 6, line),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       f"{v0 + (v1 - v0) * k / 4:.3g}")
        p.drawText(QRectF(area.left(), area.bottom() + 4, area.width(), line), Qt.AlignmentFlag.AlignLeft,
                   f"iteration {s0}")
        p.drawText(QRectF(area.left(), area.bottom() + 4, area.width(), line), Qt.AlignmentFlag.AlignRight, f"{s1}")
        for i, name in enumerate(names):
            pts = self.series[name]
            if not pts:
                continue
            path = QPainterPath()
            for j, (s, v) in enumerate(pts):
                pt = QPointF(area.left() + area.width() * (s - s0) / span,
                             area.bottom() - area.height() * (v - v0) / (v1 - v0))
                path.moveTo(pt) if j == 0 else path.lineTo(pt)
            p.setPen(self.pen_for(i))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)
