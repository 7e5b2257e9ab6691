"""The banner shown while the Docker engine cannot be reached: what is wrong, what to do, Retry."""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core.application import RECONNECT_MAX_S
from app.model import EngineInfo
from app.ui.resources import icon

logger = logging.getLogger(__name__)


class EngineBanner(QFrame):
    retryRequested = Signal()
    settingsRequested = Signal()  # "Change engine…": the Settings, where the engine's address is

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("engineBanner")
        picture = QLabel()
        picture.setPixmap(icon("warning").pixmap(28, 28))
        picture.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.title = QLabel("The Docker engine is not reachable")
        self.title.setObjectName("bannerTitle")
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self.hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note = QLabel("Berth keeps running and reconnects by itself when the engine answers.")
        self.retry_button = QPushButton(icon("retry"), "Retry now")
        self.retry_button.setToolTip("Check the engine again now")
        self.retry_button.clicked.connect(self.retryRequested)
        self.change_button = QPushButton(icon("settings"), "Change engine…")
        self.change_button.setToolTip("Use another Docker engine: its address in Settings")
        self.change_button.clicked.connect(self.settingsRequested)
        texts = QVBoxLayout()
        texts.setSpacing(2)
        texts.addWidget(self.title)
        texts.addWidget(self.hint)
        texts.addWidget(self.note)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(12)
        layout.addWidget(picture)
        layout.addLayout(texts, 1)
        layout.addWidget(self.change_button, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.hide()

    def show_engine(self, info: EngineInfo) -> None:
        """Show the banner for an unavailable engine, hide it for an available one."""
        if info.available:
            self.hide()
            return
        self.title.setText(f"The Docker engine is not reachable at {info.endpoint}")
        hint = info.hint or "start the Docker engine"
        self.hint.setText(hint[:1].upper() + hint[1:])
        # Each failed check (the core's own, or Retry now) comes here: say when the last one was.
        self.note.setText(
            f"Berth keeps running and checks again by itself every {RECONNECT_MAX_S:g} s at most"
            f" · last check {time.strftime('%H:%M:%S')}"
        )
        self.show()

    def set_checking(self, checking: bool) -> None:
        self.retry_button.setEnabled(not checking)
        self.retry_button.setText("Checking…" if checking else "Retry now")
