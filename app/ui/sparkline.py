"""A small live graph for the detail pane: the last minutes of one value against its limit, drawn with QPainter.

Why not a plotting library: pyqtgraph works with this PySide6, but it brings numpy (about 85 MB
installed with it, more in the packaged app) and 0.3 s of import for two lines of 300 points. This
draws the same in a few hundred microseconds: a filled line, a dashed line at the limit (the agent's
CPU quota, the memory cap), the current value in the corner, and the value under the mouse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

WINDOW_S = 300.0


class Sparkline(QWidget):
    """`set_series(times, values, limit, now)`; times in seconds (any clock), values in the graph's unit."""

    def __init__(
        self,
        title: str,
        fmt: Callable[[float], str],
        color: str = "#1f5f8b",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.title = title
        self.fmt = fmt
        self.color = QColor(color)
        self.times: list[float] = []
        self.values: list[float] = []
        self.limit: float | None = None
        self.limit_text = ""
        self.now = 0.0
        self.window_s = WINDOW_S
        self._hover: float | None = None  # x in widget coordinates
        self.setMouseTracking(True)
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:
        return QSize(360, 130)

    # -- data ---------------------------------------------------------------------------------------

    def set_series(
        self, times: Sequence[float], values: Sequence[float], limit: float | None, now: float, limit_text: str = ""
    ) -> None:
        self.times, self.values = list(times), list(values)
        self.limit, self.limit_text, self.now = limit, limit_text, now
        self.update()

    def clear(self) -> None:
        self.set_series([], [], None, 0.0)

    @property
    def last_value(self) -> float | None:
        return self.values[-1] if self.values else None

    def summary(self) -> str:
        """The current value in words (also the accessible description)."""
        if not self.values:
            return f"{self.title}: no readings yet"
        text = f"{self.title}: {self.fmt(self.values[-1])}"
        if self.limit:
            text += f" of {self.limit_text or self.fmt(self.limit)}"
        return text

    # -- painting -----------------------------------------------------------------------------------

    def _top(self) -> float:
        peak = max(self.values, default=0.0)
        top = max(self.limit or 0.0, peak * 1.15, 1e-9)
        return top

    def _plot_rect(self) -> QRectF:
        fm = QFontMetrics(self.font())
        return QRectF(8, fm.height() + 10, self.width() - 16, self.height() - fm.height() * 2 - 16)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = QFontMetrics(self.font())
        p.fillRect(self.rect(), QColor("#ffffff"))
        p.setPen(QPen(QColor("#d8dde4"), 1))
        p.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)

        # Title and the value now.
        bold = QFont(self.font())
        bold.setBold(True)
        p.setFont(bold)
        p.setPen(QColor("#374151"))
        p.drawText(QRectF(10, 4, self.width() - 20, fm.height() + 4), Qt.AlignmentFlag.AlignVCenter, self.title)
        now_text = self.summary().split(": ", 1)[1] if self.values else "waiting for readings…"
        p.setFont(self.font())
        p.setPen(QColor("#111827") if self.values else QColor("#6b7280"))
        p.drawText(
            QRectF(10, 4, self.width() - 20, fm.height() + 4),
            int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight),
            now_text,
        )

        plot = self._plot_rect()
        # Grid: quarter lines.
        p.setPen(QPen(QColor("#eef0f3"), 1))
        for k in range(1, 4):
            y = plot.top() + plot.height() * k / 4
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        top = self._top()

        def point(t: float, v: float) -> QPointF:
            x = plot.right() - (self.now - t) / self.window_s * plot.width()
            y = plot.bottom() - min(v, top) / top * plot.height()
            return QPointF(max(plot.left(), x), y)

        if self.limit:
            y = point(self.now, self.limit).y()
            pen = QPen(QColor("#b3261e"), 1, Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            small = QFont(self.font())
            small.setPointSizeF(max(6.0, self.font().pointSizeF() * 0.85))
            p.setFont(small)
            label = f"limit {self.limit_text or self.fmt(self.limit)}"
            # Above the line, unless that would run into the title: then just under it.
            above = y - fm.height() - 1 >= plot.top()
            box = QRectF(plot.left() + 2, y - fm.height() - 1 if above else y + 2, plot.width() - 4, fm.height())
            p.drawText(box, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), label)
            p.setFont(self.font())

        visible = [(t, v) for t, v in zip(self.times, self.values, strict=False) if self.now - t <= self.window_s]
        if visible:
            line = QPainterPath(point(*visible[0]))
            for t, v in visible[1:]:
                line.lineTo(point(t, v))
            area = QPainterPath(line)
            area.lineTo(QPointF(point(*visible[-1]).x(), plot.bottom()))
            area.lineTo(QPointF(point(*visible[0]).x(), plot.bottom()))
            area.closeSubpath()
            fill = QColor(self.color)
            fill.setAlpha(40)
            p.fillPath(area, fill)
            p.setPen(QPen(self.color, 1.6))
            p.drawPath(line)
            if len(visible) == 1:
                p.drawEllipse(point(*visible[0]), 2, 2)

        # Time axis.
        p.setPen(QColor("#6b7280"))
        axis = QRectF(plot.left(), plot.bottom() + 2, plot.width(), fm.height() + 2)
        p.drawText(
            axis, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop), f"{self.window_s / 60:.0f} min ago"
        )
        p.drawText(axis, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop), "now")

        # The reading under the mouse.
        if self._hover is not None and visible:
            t_at = self.now - (plot.right() - self._hover) / plot.width() * self.window_s
            t, v = min(visible, key=lambda tv: abs(tv[0] - t_at))
            pt = point(t, v)
            p.setPen(QPen(QColor("#9ca3af"), 1, Qt.PenStyle.DotLine))
            p.drawLine(QPointF(pt.x(), plot.top()), QPointF(pt.x(), plot.bottom()))
            p.setBrush(self.color)
            p.setPen(Qt.PenStyle.NoPen)
            p.drawEllipse(pt, 3, 3)
            ago = self.now - t
            tip = f"{self.fmt(v)} · {ago:.0f} s ago" if ago >= 1 else f"{self.fmt(v)} · now"
            w = fm.horizontalAdvance(tip) + 12
            box = QRectF(min(max(plot.left(), pt.x() - w / 2), plot.right() - w), plot.top() + 2, w, fm.height() + 4)
            p.setBrush(QColor("#111827"))
            p.drawRoundedRect(box, 4, 4)
            p.setPen(QColor("#f9fafb"))
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, tip)
        p.end()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._hover = event.position().x()
        self.update()

    def leaveEvent(self, event: object) -> None:
        self._hover = None
        self.update()
