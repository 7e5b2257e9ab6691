"""Small pieces several views share: an empty-state placeholder, a monospace font, text for a person.

They live here, not in the first view that needed them, so that views import each other's helpers
from one place.
"""

from __future__ import annotations

import asyncio
import re

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.ui.resources import icon


def plain(text: str) -> str:
    """The core's messages quote code in backticks; a person reads quotation marks."""
    return re.sub(r"`([^`]*)`", "“\\1”", text)


def mono_font() -> QFont:
    font = QFont("monospace")
    font.setStyleHint(QFont.StyleHint.Monospace)
    return font


def loop_running() -> bool:
    try:
        return asyncio.get_event_loop().is_running()
    except RuntimeError:
        return False


class EmptyState(QWidget):
    """What the panel shows when there is nothing to list: a title, what to do, maybe a button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.picture = QLabel()
        self.picture.setPixmap(icon("empty").pixmap(56, 56))
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel()
        self.title.setObjectName("emptyTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text = QLabel()
        self.text.setObjectName("emptyText")
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.button = QPushButton()
        self.button.hide()
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(self.picture)
        layout.addSpacing(8)
        layout.addWidget(self.title)
        layout.addWidget(self.text)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.button)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(3)

    def show_state(self, title: str, text: str, button: str = "") -> None:
        self.title.setText(title)
        self.text.setText(text)
        self.button.setText(button)
        self.button.setVisible(bool(button))


def fill_agent_box(box: QComboBox, agents: list[str]) -> bool:
    """An "All agents" filter box listing `agents`, keeping the person's choice (quietly: no signal). False when
    the chosen agent is no longer there (the box is back on All agents)."""
    if agents == [box.itemData(i) for i in range(1, box.count())]:
        return True
    chosen = box.currentData()
    box.blockSignals(True)
    box.clear()
    box.addItem("All agents", "")
    for a in agents:
        box.addItem(a, a)
    i = box.findData(chosen)
    box.setCurrentIndex(max(i, 0))
    box.blockSignals(False)
    return i >= 0 or not chosen
