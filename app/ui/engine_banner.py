"""The banner shown while the Docker engine cannot be reached: what is wrong, what to do, Retry, Start Docker.

Start Docker runs what the core planned for this machine (`app.core.engine_start`); where nothing can be
run from here the button is disabled and its tooltip says why and what to do. A failed start is shown
in the banner, with the tail of what the command said and what to do, until the next try.
"""

from __future__ import annotations

import html
import logging
import re
import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core.application import RECONNECT_MAX_S
from app.core.engine_start import StartPlan, StartResult
from app.model import EngineInfo
from app.ui.resources import icon

logger = logging.getLogger(__name__)


class EngineBanner(QFrame):
    retryRequested = Signal()
    settingsRequested = Signal()  # "Change engine…": the Settings, where the engine's address is
    startRequested = Signal()  # "Start Docker": the core starts the engine as this machine allows

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
        self.start_button = QPushButton("Start Docker")
        self.start_button.setObjectName("primary")
        self.start_button.clicked.connect(self.startRequested)
        self._plan = StartPlan((), "Checking how Docker could be started here…")
        self._starting = False
        self.set_start_plan(self._plan)
        self.failure = QLabel("")  # a failed Start Docker: what the command said, what to do
        self.failure.setObjectName("bannerFailure")
        self.failure.setWordWrap(True)
        self.failure.setTextFormat(Qt.TextFormat.RichText)
        self.failure.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.failure.hide()
        texts = QVBoxLayout()
        texts.setSpacing(2)
        texts.addWidget(self.title)
        texts.addWidget(self.hint)
        texts.addWidget(self.note)
        texts.addWidget(self.failure)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(12)
        layout.addWidget(picture)
        layout.addLayout(texts, 1)
        layout.addWidget(self.change_button, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.start_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.hide()

    def show_engine(self, info: EngineInfo) -> None:
        """Show the banner for an unavailable engine, hide it for an available one."""
        if info.available:
            self.hide()
            self.failure.hide()
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

    # -- Start Docker ------------------------------------------------------------------------------

    def set_start_plan(self, plan: StartPlan) -> None:
        """Enable Start Docker where the core can start the engine; the tooltip says what it runs, or why not."""
        self._plan = plan
        self.start_button.setEnabled(plan.possible and not self._starting)
        self.start_button.setToolTip(plan.reason)

    def set_starting(self, starting: bool) -> None:
        self._starting = starting
        self.start_button.setText("Starting…" if starting else "Start Docker")
        self.start_button.setEnabled(self._plan.possible and not starting)
        if starting:
            self.failure.hide()

    def show_start_result(self, result: StartResult) -> None:
        """A failed start stays in the banner (what the command said, what to do); a good one clears it."""
        if result.ok:
            self.failure.hide()
        else:
            self.show_start_failure(result.message, result.output, result.hint)

    def show_start_failure(self, message: str, output: str = "", hint: str = "") -> None:
        text = f"<b>Could not start Docker:</b> {_rich(message)}"
        if output:  # the command's own words, as it printed them
            lines = html.escape(output).replace("\n", "<br>")
            text += f"<div style='font-family: monospace; margin: 4px 0 4px 12px;'>{lines}</div>"
        elif hint:
            text += "<br>"
        if hint:
            text += f"What to do: {_rich(hint)}"
        self.failure.setText(text)
        self.failure.show()


def _rich(text: str) -> str:
    """Plain text for a rich-text label: escaped, with `commands` in a fixed-width font."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))
