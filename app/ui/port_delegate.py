"""The Ports column's delegate: each published port painted as a link that opens it in the browser."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.ui.container_model import PORTS_ROLE

Index = QModelIndex | QPersistentModelIndex
LINK_COLOR = "#1f5f8b"
PORT_GAP = 10


class PortDelegate(QStyledItemDelegate):
    """Paints each published port as a link; a click opens `http://127.0.0.1:PORT`."""

    linkActivated = Signal(str)

    def _spans(self, option: QStyleOptionViewItem, index: Index) -> list[tuple[QRect, str, str]]:
        links: list[tuple[str, str]] = index.data(PORTS_ROLE) or []
        fm = QFontMetrics(option.font)
        rect: QRect = option.rect
        x = rect.left() + 6
        out = []
        for label, url in links:
            w = fm.horizontalAdvance(label)
            out.append((QRect(x, rect.top(), w, rect.height()), label, url))
            x += w + PORT_GAP
        return out

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        spans = self._spans(option, index)
        if not spans:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        painter.save()
        font = QFont(option.font)
        font.setUnderline(True)
        painter.setFont(font)
        painter.setPen(QColor(LINK_COLOR))
        clip: QRect = option.rect
        painter.setClipRect(clip)
        for rect, label, _url in spans:
            painter.drawText(rect, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), label)
        painter.restore()

    def url_at(self, option: QStyleOptionViewItem, index: Index, pos: QPoint) -> str | None:
        for rect, _label, url in self._spans(option, index):
            if rect.adjusted(-3, 0, 3, 0).contains(pos):
                return url
        return None

    def editorEvent(self, event: QEvent, model: Any, option: QStyleOptionViewItem, index: Index) -> bool:
        if isinstance(event, QMouseEvent):
            url = self.url_at(option, index, event.position().toPoint())
            if event.type() == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton and url:
                self.linkActivated.emit(url)
                return True
            widget: Any = option.widget
            if event.type() == QEvent.Type.MouseMove and widget is not None:
                shape = Qt.CursorShape.PointingHandCursor if url else Qt.CursorShape.ArrowCursor
                widget.viewport().setCursor(shape)
        return super().editorEvent(event, model, option, index)
