"""The tray icon and the notifications of waiting commands.

`Tray` is a `QSystemTrayIcon` whose icon gains an orange mark while requests wait; its menu shows
the count (a click opens the queue), opens the window, pauses/resumes notifications, opens the
settings and quits. `Notifier` tells the person about each new waiting request through the first
channel that works, tried in order and created lazily: the tray's own message (a desktop
notification, or Qt's balloon), else the in-window banner. Every notification sent is recorded in
`Notifier.sent` (the tests' hook). Activating a notification brings the window to that request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMenu, QPushButton, QSystemTrayIcon, QWidget

from app.core.approvals import ShellRequest
from app.core.display import display_command, display_text, needs_warning
from app.ui.resources import icon

logger = logging.getLogger(__name__)

MESSAGE_MS = 10_000
COMMAND_CHARS = 80


def waiting_text(n: int) -> str:
    if n == 0:
        return "No commands waiting"
    return f"{n} command{'s' if n != 1 else ''} waiting for approval"


def command_start(command: str, limit: int = COMMAND_CHARS) -> str:
    """The start of a command for a notification, on one line: escaped, first line, cut with `…`."""
    lines = display_command(command).split("\n")
    text = lines[0].strip()
    if len(text) > limit or len(lines) > 1:
        text = text[: limit - 1].rstrip() + "…"
    return text


def notification_text(req: ShellRequest) -> tuple[str, str, bool]:
    """Title, body and whether to warn: the agent's name and the command's start as plain single lines
    (every hidden character escaped), what it asks for, and a warning for look-alike or hidden characters."""
    suspicious = needs_warning(req.command) or needs_warning(req.cwd)
    full = req.access == "host"
    title = f"{display_text(req.agent)} asks to run a command" + (" with full access" if full else "")
    body = command_start(req.command)
    if suspicious:
        body += "\n⚠ It has look-alike or hidden characters."
    body += "\nClick to review it in Berth."
    return title, body, suspicious or full


@dataclass(frozen=True)
class Notification:
    request_id: str
    title: str
    body: str
    channel: str
    at: float


class Tray(QObject):
    """The tray icon and its menu; signals say what the person asked for."""

    openRequested = Signal()
    reviewRequested = Signal()
    settingsRequested = Signal()
    aboutRequested = Signal()
    quitRequested = Signal()
    messageClicked = Signal()
    pausedChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None, *, about: bool = False) -> None:
        super().__init__(parent)
        self.icon = QSystemTrayIcon(icon("berth"), self)
        self.icon.setToolTip("Berth")
        self.menu = QMenu()
        self.count_action = QAction(waiting_text(0), self.menu)
        self.count_action.setEnabled(False)
        self.count_action.triggered.connect(self.reviewRequested)
        self.open_action = QAction(icon("berth"), "Open Berth", self.menu)
        self.open_action.triggered.connect(self.openRequested)
        self.pause_action = QAction(icon("bell"), "Pause notifications", self.menu)
        self.pause_action.setCheckable(True)
        self.pause_action.toggled.connect(self._paused)
        self.settings_action = QAction(icon("settings"), "Settings…", self.menu)
        self.settings_action.triggered.connect(self.settingsRequested)
        self.about_action = QAction("About Berth", self.menu)
        self.about_action.triggered.connect(self.aboutRequested)
        self.about_action.setVisible(about)
        self.quit_action = QAction("Quit Berth", self.menu)
        self.quit_action.triggered.connect(self.quitRequested)
        self.menu.addAction(self.count_action)
        self.menu.addSeparator()
        self.menu.addAction(self.open_action)
        self.menu.addAction(self.pause_action)
        self.menu.addAction(self.settings_action)
        self.menu.addAction(self.about_action)
        self.menu.addSeparator()
        self.menu.addAction(self.quit_action)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.icon.messageClicked.connect(self.messageClicked)
        self.pending = 0

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    @property
    def paused(self) -> bool:
        return self.pause_action.isChecked()

    def _paused(self, on: bool) -> None:
        self.pause_action.setText("Resume notifications" if on else "Pause notifications")
        self.pausedChanged.emit(on)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            if self.pending:
                self.reviewRequested.emit()
            else:
                self.openRequested.emit()

    def set_pending(self, n: int) -> None:
        """The look while requests wait: the marked icon, the count in the tooltip and the menu."""
        self.pending = n
        self.icon.setIcon(icon("berth-pending" if n else "berth"))
        self.icon.setToolTip(f"Berth — {waiting_text(n).lower()}" if n else "Berth")
        self.count_action.setText(f"{waiting_text(n)} — review…" if n else waiting_text(n))
        self.count_action.setEnabled(n > 0)


class PendingBanner(QFrame):
    """In-window notice of waiting commands, for desktops without a tray (the window is the channel)."""

    reviewRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pendingBanner")
        picture = QLabel()
        picture.setPixmap(icon("approvals").pixmap(22, 22))
        self.text = QLabel()
        self.text.setObjectName("bannerTitle")
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.detail = QLabel()
        self.detail.setTextFormat(Qt.TextFormat.PlainText)
        self.review = QPushButton("Review")
        self.review.setObjectName("primary")
        self.review.clicked.connect(self.reviewRequested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.addWidget(picture)
        layout.addWidget(self.text)
        layout.addWidget(self.detail, 1)
        layout.addWidget(self.review)
        self.hide()
        self.count = 0
        self.on_queue = False

    def set_latest(self, title: str, body: str) -> None:
        self.detail.setText(f"Latest: {title}: {body}".replace("\n", " · "))  # one line in the banner

    def set_pending(self, n: int) -> None:
        if n == 0 and self.count > 0:  # all decided: the latest one is old news (a stale 0 before it is not)
            self.detail.setText("")
        self.count = n
        self.text.setText(waiting_text(n) + ".")
        self._update()

    def set_on_queue(self, on: bool) -> None:
        self.on_queue = on
        self._update()

    def _update(self) -> None:
        self.setVisible(self.count > 0 and not self.on_queue)


class Channel(Protocol):
    name: str

    def send(self, title: str, body: str, warn: bool) -> bool: ...


class TrayChannel:
    """The tray's message: a desktop notification where one runs, else Qt's balloon."""

    name = "tray"

    def __init__(self, tray: Tray) -> None:
        self.tray = tray

    def send(self, title: str, body: str, warn: bool) -> bool:
        if not self.tray.icon.isVisible() or not QSystemTrayIcon.supportsMessages():
            return False
        kind = QSystemTrayIcon.MessageIcon.Warning if warn else QSystemTrayIcon.MessageIcon.Information
        self.tray.icon.showMessage(title, body, kind, MESSAGE_MS)
        return True


class BannerChannel:
    """The in-window banner (always works while the window exists)."""

    name = "window"

    def __init__(self, banner: PendingBanner) -> None:
        self.banner = banner

    def send(self, title: str, body: str, warn: bool) -> bool:
        self.banner.set_latest(title, body)
        return True


class Notifier(QObject):
    """One notification per new waiting request, unless turned off in Settings or paused from the tray."""

    def __init__(
        self,
        factories: list[Callable[[], Channel | None]],
        enabled: Callable[[], bool],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._factories = factories
        self._channels: list[Channel | None] = [None] * len(factories)
        self._made = [False] * len(factories)
        self._enabled = enabled
        self.paused = False
        self.sent: list[Notification] = []
        self.last_request: str | None = None

    def _channel(self, i: int) -> Channel | None:
        if not self._made[i]:
            self._made[i] = True
            try:
                self._channels[i] = self._factories[i]()
            except Exception:
                logger.exception("could not set up a notification channel")
        return self._channels[i]

    def notify(self, req: ShellRequest) -> Notification | None:
        if self.paused or not self._enabled():
            return None
        title, body, warn = notification_text(req)
        for i in range(len(self._factories)):
            channel = self._channel(i)
            if channel is None:
                continue
            try:
                if channel.send(title, body, warn):
                    note = Notification(req.request_id, title, body, channel.name, time.time())
                    self.sent.append(note)
                    self.last_request = req.request_id
                    return note
            except Exception:
                logger.exception("the %s notification failed", channel.name)
        return None
