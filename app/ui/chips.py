"""Risk chips: the core's `Risk`s (app/core/risks.py) as small coloured labels, in the Approval Queue's detail
pane (`RiskChips`, wrapped onto as many lines as they need) and in its lists (`ChipDelegate`, painted at the
right of the command cell, the command elided before them). The chip's tooltip is the core's detail."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter
from PySide6.QtWidgets import (
    QLabel,
    QLayout,
    QLayoutItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
    QWidgetItem,
)

from app.core.risks import Risk
from app.ui.widgets import plain

Index = QModelIndex | QPersistentModelIndex
RISKS_ROLE = Qt.ItemDataRole.UserRole + 7  # a model's `tuple[Risk, ...]` for a row

# (text, background, border) per kind: the gravest in red, the rest in amber.
RED = ("#9f1d16", "#fdecea", "#f5b8b1")
AMBER = ("#8a3b0c", "#fff4e5", "#f5c98b")
CHIP_COLORS = {"hidden": RED, "download-exec": RED, "root": RED, "deletes": AMBER, "writes-outside": AMBER}
# In a list cell there is little room: the same chips, in fewer words.
SHORT_LABELS = {
    "hidden": "hidden chars",
    "download-exec": "download → run",
    "deletes": "deletes",
    "writes-outside": "outside folder",
}


def short_label(risk: Risk) -> str:
    if risk.kind == "root":
        return risk.label.split(":", 1)[0]  # the program: `sudo`, `doas`
    return SHORT_LABELS.get(risk.kind, risk.label)


def chip_style(kind: str) -> str:
    fg, bg, border = CHIP_COLORS.get(kind, AMBER)
    return (
        f"QLabel {{ color: {fg}; background: {bg}; border: 1px solid {border}; border-radius: 9px;"
        " padding: 1px 8px; font-weight: 600; }"
    )


class FlowLayout(QLayout):
    """Widgets left to right, wrapping onto the next line when the width runs out."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._place(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self) -> QSize:
        return self.minimumSize()

    def minimumSize(self) -> QSize:
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        return size

    def _place(self, rect: QRect, *, move: bool) -> int:
        x, y, line = rect.x(), rect.y(), 0
        for item in self._items:
            widget = item.widget()
            if widget is not None and widget.isHidden():
                continue
            hint = item.sizeHint()
            if x + hint.width() > rect.right() + 1 and line > 0:
                x, y, line = rect.x(), y + line + self._spacing, 0
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + self._spacing
            line = max(line, hint.height())
        return y + line - rect.y()


class RiskChips(QWidget):
    """The chips of one request (hidden when it has none); `texts()` for tests and the confirmation."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("riskChips")
        self.flow = FlowLayout(self)
        self.labels: list[QLabel] = []
        self.risks: tuple[Risk, ...] = ()
        self.hide()

    def set_risks(self, risks: tuple[Risk, ...]) -> None:
        if risks == self.risks:
            self.setVisible(bool(risks))
            return
        self.risks = risks
        while self.flow.count():
            item = self.flow.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.labels = []
        for risk in risks:
            label = QLabel("⚠ " + risk.label if CHIP_COLORS.get(risk.kind) is RED else risk.label)
            label.setObjectName("riskChip")
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setStyleSheet(chip_style(risk.kind))
            label.setToolTip(plain(risk.detail))
            self.flow.addItem(QWidgetItem(label))
            label.setParent(self)
            label.show()
            self.labels.append(label)
        self.setVisible(bool(risks))
        self.updateGeometry()

    def texts(self) -> list[str]:
        return [r.label for r in self.risks]


class ChipDelegate(QStyledItemDelegate):
    """A list cell: its text (elided) with the row's risk chips at the right."""

    PAD, GAP = 6, 4

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        risks: tuple[Risk, ...] = index.data(RISKS_ROLE) or ()
        if not risks:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        fm = QFontMetrics(opt.font)
        chip_font = opt.font
        chip_font.setPointSizeF(max(6.0, opt.font.pointSizeF() * 0.85))
        chip_font.setBold(True)
        cfm = QFontMetrics(chip_font)
        labels = [short_label(r) for r in risks]
        widths = [cfm.horizontalAdvance(t) + 2 * self.PAD for t in labels]
        chips_w = min(sum(widths) + self.GAP * len(widths), opt.rect.width() // 2)
        text = opt.text
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        painter.save()
        text_rect = opt.rect.adjusted(4, 0, -chips_w - 4, 0)
        if not opt.icon.isNull():
            size = opt.decorationSize
            opt.icon.paint(painter, QRect(text_rect.x(), text_rect.center().y() - size.height() // 2, size.width(),
                                          size.height()))  # fmt: skip
            text_rect.setLeft(text_rect.left() + size.width() + 4)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        painter.setPen(opt.palette.highlightedText().color() if selected else opt.palette.text().color())
        painter.setFont(opt.font)
        painter.drawText(
            text_rect,
            int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
            fm.elidedText(text, Qt.TextElideMode.ElideRight, max(0, text_rect.width())),
        )
        painter.setFont(chip_font)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        x = opt.rect.right() - chips_w
        h = cfm.height() + 2
        y = opt.rect.center().y() - h // 2
        for risk, label, w in zip(risks, labels, widths, strict=True):
            if x + w > opt.rect.right():
                break
            fg, bg, border = CHIP_COLORS.get(risk.kind, AMBER)
            painter.setPen(QColor(border))
            painter.setBrush(QColor(bg))
            painter.drawRoundedRect(QRect(x, y, w, h), h / 2, h / 2)
            painter.setPen(QColor(fg))
            painter.drawText(QRect(x, y, w, h), int(Qt.AlignmentFlag.AlignCenter), label)
            x += w + self.GAP
        painter.restore()
