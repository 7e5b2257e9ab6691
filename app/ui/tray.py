"""The tray icon and the notifications of waiting commands.

`Tray` is a `QSystemTrayIcon` whose icon carries the number of waiting requests (a red badge); its menu
shows the count (a click opens the queue), opens the window, pauses/resumes notifications, opens the
settings and quits. `Notifier` tells the person about each new waiting request through the first
channel that works, tried in order and created lazily: Berth's own popup by the tray where windows can be
placed (X11, Windows, macOS: a warning icon, the command in monospace, its folder, the time left, how many
more wait), else the tray's own message (a desktop notification, or Qt's balloon, in plain text), else the
in-window banner. Every notification sent is recorded in `Notifier.sent` (the tests' hook). Activating a
notification brings the window to that request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import QObject, QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QFont, QFontMetrics, QGuiApplication, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSystemTrayIcon,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.approvals import ShellRequest
from app.core.display import display_command, display_text, needs_warning
from app.ui.resources import icon
from app.ui.widgets import mono_font

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


@dataclass(frozen=True)
class Note:
    """What a notification says, in parts: a channel that can show monospace shows `command` and `folder`
    in it; one that shows plain text uses the title and body."""

    title: str
    command: str = ""  # escaped, first line
    folder: str = ""  # escaped
    facts: str = ""  # "9 min 40 s left to decide · 2 more waiting"
    warning: str = ""  # "It has look-alike or hidden characters." / "downloads and runs code"
    text: str = ""  # for notes that are not about a command


def time_left_text(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min" + (f" {s % 60} s" if s < 600 and s % 60 else "")
    return f"{s // 3600} h {s % 3600 // 60} min"


def request_note(req: ShellRequest, more: int = 0, now: float | None = None) -> Note:
    """The parts of a waiting request's notification: the agent and what it asks for, the command and folder
    (every hidden character escaped, one line each), the time left, how many more wait, and a warning for
    look-alike or hidden characters and for the risks the core found."""
    suspicious = needs_warning(req.command) or needs_warning(req.cwd)
    full = req.access == "host"
    title = f"{display_text(req.agent)} asks to run a command" + (" with full access" if full else "")
    facts = []
    if req.expires_at:
        left = req.expires_at - (time.time() if now is None else now)
        facts.append(f"{time_left_text(left)} left to decide" if left > 0 else "expiring now")
    if more:
        facts.append(f"{more} more waiting")
    warnings = []
    if suspicious:
        warnings.append("It has look-alike or hidden characters.")
    risks = [r.label for r in req.risks if r.kind != "hidden"]
    if risks:
        warnings.append("Risks: " + ", ".join(risks) + ".")
    return Note(title, command_start(req.command), display_text(req.cwd), " · ".join(facts), " ".join(warnings))


def notification_text(req: ShellRequest, more: int = 0) -> tuple[str, str, bool]:
    """Title, body and whether to warn, as plain single lines for a channel without monospace: the command's
    start, its folder, the time left and how many more wait, a warning for hidden characters or risks."""
    note = request_note(req, more)
    body = note.command
    if note.folder:
        body += f"\nin {note.folder}"
    if note.facts:
        body += f"\n{note.facts}"
    if note.warning:
        body += f"\n⚠ {note.warning}"
    body += "\nClick to review it in Berth."
    return note.title, body, bool(note.warning) or req.access == "host"


def count_icon(base: QIcon, n: int, size: int = 64) -> QIcon:
    """The tray icon with the number of waiting requests in a red badge (99+ beyond)."""
    if n <= 0:
        return base
    pixmap = base.pixmap(size, size)
    if pixmap.isNull():
        pixmap = QPixmap(size, size)
        pixmap.fill(QColor("#1f5f8b"))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    text = str(n) if n < 100 else "99+"
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(size * (0.5 if len(text) == 1 else 0.42 if len(text) == 2 else 0.32)))
    fm = QFontMetrics(font)
    h = int(size * 0.62)
    w = max(h, fm.horizontalAdvance(text) + size // 6)
    badge = QRect(size - w, size - h, w, h)
    painter.setPen(QColor("white"))
    painter.setBrush(QColor("#c2410c"))
    painter.drawRoundedRect(badge.adjusted(1, 1, -1, -1), h / 2, h / 2)
    painter.setFont(font)
    painter.setPen(QColor("white"))
    painter.drawText(badge, int(Qt.AlignmentFlag.AlignCenter), text)
    painter.end()
    return QIcon(pixmap)


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
        """The look while requests wait: the count on the icon, in the tooltip and in the menu."""
        self.pending = n
        self.icon.setIcon(count_icon(icon("berth"), n))
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

    def send(self, title: str, body: str, warn: bool, note: Note | None = None) -> bool: ...


class NotificationPopup(QFrame):
    """Berth's own notification by the tray: an icon, the title, the command in monospace, its folder, the
    facts (time left, more waiting) and a warning; Review (or a click) opens it, the close button dismisses
    it. Shown without taking the focus, above other windows, for MESSAGE_MS."""

    clicked = Signal()
    WIDTH = 420

    def __init__(self) -> None:
        super().__init__(None)
        self.setObjectName("notificationPopup")
        self.setWindowFlags(Qt.WindowType.Tool | Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnTopHint)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setStyleSheet(
            "QFrame#notificationPopup { background: #ffffff; border: 1px solid #cfd5dd; border-radius: 8px; }"
            "QLabel#popupTitle { font-weight: 600; color: #111827; }"
            "QLabel#popupCommand { background: #111827; color: #f9fafb; border-radius: 4px; padding: 4px 6px; }"
            "QLabel#popupFolder, QLabel#popupFacts { color: #4b5563; }"
            "QLabel#popupWarning { color: #9f1d16; font-weight: 600; }"
        )
        self.picture = QLabel()
        self.title = self._label("popupTitle")
        self.title.setWordWrap(True)
        self.command = self._label("popupCommand")
        self.command.setFont(mono_font())
        self.folder = self._label("popupFolder")
        folder_font = mono_font()
        folder_font.setPointSizeF(max(7.0, folder_font.pointSizeF() * 0.9))
        self.folder.setFont(folder_font)
        self.facts = self._label("popupFacts")
        self.warning = self._label("popupWarning")
        self.warning.setWordWrap(True)
        self.text = self._label("popupText")
        self.text.setWordWrap(True)
        self.review = QPushButton("Review")
        self.review.setObjectName("primary")
        self.review.clicked.connect(self._clicked)
        self.close_button = QToolButton()
        self.close_button.setIcon(icon("close"))
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.hide)
        head = QHBoxLayout()
        head.addWidget(self.picture, 0, Qt.AlignmentFlag.AlignTop)
        head.addWidget(self.title, 1)
        head.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        foot = QHBoxLayout()
        foot.addWidget(self.facts, 1)
        foot.addWidget(self.review)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 10, 10)
        layout.setSpacing(6)
        layout.addLayout(head)
        for w in (self.command, self.folder, self.text, self.warning):
            layout.addWidget(w)
        layout.addLayout(foot)
        self.setFixedWidth(self.WIDTH)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.hide)

    @staticmethod
    def _label(name: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setTextFormat(Qt.TextFormat.PlainText)  # agent text: never rich text
        return label

    def _clicked(self) -> None:
        self.hide()
        self.clicked.emit()

    def mouseReleaseEvent(self, event: object) -> None:
        self._clicked()

    def show_note(self, note: Note, warn: bool, anchor: QRect | None) -> None:
        self.picture.setPixmap(icon("warning" if warn else "berth").pixmap(24, 24))
        self.title.setText(note.title)
        inner = self.WIDTH - 36
        self.command.setText(
            QFontMetrics(self.command.font()).elidedText(note.command, Qt.TextElideMode.ElideRight, inner)
        )
        self.command.setToolTip(note.command)
        self.folder.setText(
            "in " + QFontMetrics(self.folder.font()).elidedText(note.folder, Qt.TextElideMode.ElideMiddle, inner - 20)
        )
        self.folder.setToolTip(note.folder)
        self.facts.setText(note.facts)
        self.warning.setText(("⚠ " + note.warning) if note.warning else "")
        self.text.setText(note.text)
        for w, on in ((self.command, note.command), (self.folder, note.folder), (self.warning, note.warning),
                      (self.text, note.text), (self.facts, note.facts)):  # fmt: skip
            w.setVisible(bool(on))
        self.review.setText("Review" if note.command else "Open Berth")
        self.adjustSize()
        self.move(self._position(anchor))
        self.show()
        self.raise_()
        self.timer.start(MESSAGE_MS)

    def _position(self, anchor: QRect | None) -> QPoint:
        """Under (or over) the tray icon, inside its screen; the top right corner where there is no icon."""
        screen = QGuiApplication.screenAt(anchor.center()) if anchor is not None and not anchor.isEmpty() else None
        area = (screen or QGuiApplication.primaryScreen()).availableGeometry()
        size = self.sizeHint().expandedTo(self.size())
        if anchor is None or anchor.isEmpty():
            return QPoint(area.right() - size.width() - 12, area.top() + 12)
        x = min(max(area.left() + 8, anchor.center().x() - size.width() // 2), area.right() - size.width() - 8)
        below = anchor.bottom() + 8
        y = below if below + size.height() <= area.bottom() else anchor.top() - size.height() - 8
        return QPoint(x, max(area.top() + 8, y))


class PopupChannel:
    """Berth's own popup by the tray, where a window can be placed there (not on Wayland)."""

    name = "popup"
    PLATFORMS = ("xcb", "windows", "cocoa")

    def __init__(self, tray: Tray, on_click: Callable[[], None]) -> None:
        self.tray = tray
        self.popup = NotificationPopup()
        self.popup.clicked.connect(on_click)

    @classmethod
    def works_here(cls) -> bool:
        return QGuiApplication.platformName() in cls.PLATFORMS

    def send(self, title: str, body: str, warn: bool, note: Note | None = None) -> bool:
        if not self.tray.icon.isVisible():
            return False
        note = note or Note(title, text=body)
        self.popup.show_note(note, warn, self.tray.icon.geometry())
        return True


class TrayChannel:
    """The tray's message: a desktop notification where one runs, else Qt's balloon."""

    name = "tray"

    def __init__(self, tray: Tray) -> None:
        self.tray = tray

    def send(self, title: str, body: str, warn: bool, note: Note | None = None) -> bool:
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

    def send(self, title: str, body: str, warn: bool, note: Note | None = None) -> bool:
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

    def notify(self, req: ShellRequest, more: int = 0) -> Notification | None:
        """Tell the person `req` waits (`more`: how many others wait besides it)."""
        if self.paused or not self._enabled():
            return None
        title, body, warn = notification_text(req, more)
        note = request_note(req, more)
        for i in range(len(self._factories)):
            channel = self._channel(i)
            if channel is None:
                continue
            try:
                if channel.send(title, body, warn, note):
                    sent = Notification(req.request_id, title, body, channel.name, time.time())
                    self.sent.append(sent)
                    self.last_request = req.request_id
                    return sent
            except Exception:
                logger.exception("the %s notification failed", channel.name)
        return None

    def notify_event(self, key: str, title: str, body: str, warn: bool = True) -> Notification | None:
        """A notification that is not about a waiting request (a service exited, an agent queues): the same
        channels, paused with the others; whether this kind is wanted at all is the caller's Setting."""
        if self.paused:
            return None
        for i in range(len(self._factories)):
            channel = self._channel(i)
            try:
                if channel is not None and channel.send(title, body, warn):
                    note = Notification(key, title, body, channel.name, time.time())
                    self.sent.append(note)
                    self.last_request = None  # a click opens the window, not a request
                    return note
            except Exception:
                logger.exception("the %s notification failed", channel.name if channel else "?")
        return None
