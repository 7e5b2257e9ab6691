"""Part 2 of the window, wired onto `Desktop`: the Approval Queue, Agent Settings, Settings, the tray.

Kept out of desktop.py so that file stays about the life cycle. `DesktopWiring` puts the two views
in the window, the Settings entry in the sidebar and the menu bar, the pending banner under the
engine banner, and (where the desktop has a system tray) the tray icon; with a tray, closing the
window keeps Berth running; without one, the window is the channel and closing it quits.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QFrame, QMenu, QSystemTrayIcon, QVBoxLayout

from app.core.approvals import ShellRequest
from app.ui.agent_dialogs import run_dialog
from app.ui.agents_view import AgentsView
from app.ui.approval_queue import ApprovalQueue
from app.ui.main_window import NavButton
from app.ui.settings_dialog import SettingsDialog
from app.ui.tasks import WINDOW_TASKS
from app.ui.tray import BannerChannel, Channel, Notifier, PendingBanner, Tray, TrayChannel

if TYPE_CHECKING:
    from app.ui.desktop import Desktop

logger = logging.getLogger(__name__)


class DesktopWiring(QObject):
    def __init__(self, desktop: Desktop, *, tray: bool | None = None) -> None:
        super().__init__(desktop)
        self.desktop = desktop
        app, window = desktop.app, desktop.window
        self.app, self.window = app, window
        self.settings_dialog: SettingsDialog | None = None

        self.queue = ApprovalQueue(app)
        window.set_view("approvals", self.queue)
        self.agents = AgentsView(app, self._rpc_url)
        window.set_view("agents", self.agents)

        # The pending banner, under the engine banner (shown only without a tray, off the queue).
        self.banner = PendingBanner()
        right = window.banner.parentWidget()
        layout = right.layout() if right is not None else None
        first = layout.itemAt(0) if layout is not None else None
        box = first.layout() if first is not None else None
        if isinstance(box, QVBoxLayout):  # the engine banner's box: no extra space while both are hidden
            box.addWidget(self.banner)

        # Settings: a sidebar button at the bottom, and the menu bar.
        self.settings_button = NavButton("Settings", "settings")
        self.settings_button.setCheckable(False)
        self.settings_button.setToolTip("Settings (Ctrl+,)")
        self.settings_button.clicked.connect(self.open_settings)
        sidebar = window.findChild(QFrame, "sidebar")
        side = sidebar.layout() if sidebar is not None else None
        if side is not None:
            side.addWidget(self.settings_button)
            side.setAlignment(self.settings_button, Qt.AlignmentFlag.AlignHCenter)
        self.settings_action = QAction("&Settings…", window)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.triggered.connect(self.open_settings)
        window.addAction(self.settings_action)
        bar = window.menuBar()
        menu = QMenu("&Berth", bar)
        if bar.actions():
            bar.insertMenu(bar.actions()[0], menu)
        else:
            bar.addMenu(menu)
        menu.addAction(self.settings_action)
        menu.addSeparator()
        quit_action = menu.addAction("&Quit Berth")  # Ctrl+Q is the window's own action
        quit_action.triggered.connect(desktop.quit)

        # Tray (where there is one) and notifications.
        self.has_tray = QSystemTrayIcon.isSystemTrayAvailable() if tray is None else tray
        self.tray: Tray | None = None
        factories: list[Any] = [self._tray_channel, lambda: BannerChannel(self.banner)]
        self.notifier = Notifier(factories, lambda: bool(self.app.settings.notifications), self)
        if self.has_tray:
            self.tray = Tray(self, about=hasattr(window, "show_about"))
            self.tray.openRequested.connect(self.show_window)
            self.tray.reviewRequested.connect(lambda: self.show_request(None))
            self.tray.messageClicked.connect(lambda: self.show_request(self.notifier.last_request))
            self.tray.settingsRequested.connect(self.open_settings)
            self.tray.aboutRequested.connect(self._about)
            self.tray.quitRequested.connect(desktop.quit)
            self.tray.pausedChanged.connect(self._paused)
            window.close_to_tray = True
            QApplication.setQuitOnLastWindowClosed(False)

        bridge = desktop.bridge
        bridge.approvalEvent.connect(self._approval_event)
        bridge.agentsChanged.connect(self.agents.on_agents_changed)
        self.queue.pendingChanged.connect(self._pending_changed)
        self.queue.message.connect(window.show_message)
        self.agents.message.connect(window.show_message)
        self.banner.reviewRequested.connect(lambda: self.show_request(None))
        window.viewChanged.connect(lambda key: self.banner.set_on_queue(key == "approvals"))
        self.banner.set_on_queue(window.current_view() == "approvals")

    def _rpc_url(self) -> str | None:
        runtime = self.desktop.runtime
        return runtime.rpc.url if runtime is not None and self.desktop._started else None

    def _tray_channel(self) -> Channel | None:
        return TrayChannel(self.tray) if self.tray is not None else None

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> None:
        if self.tray is not None:
            self.tray.show()
        self.queue.on_event()
        self.agents.start()

    def stop(self) -> None:
        self.queue.stop()
        self.agents.stop()
        if self.settings_dialog is not None:
            self.settings_dialog.close()
        if self.tray is not None:
            self.tray.hide()

    # -- events ------------------------------------------------------------------------------------

    def _approval_event(self, topic: str, data: Any) -> None:
        self.queue.on_event(topic, data)
        if topic == "approval.pending" and isinstance(data, ShellRequest):
            self.notifier.notify(data)

    def _pending_changed(self, n: int) -> None:
        self.window.set_badge("approvals", n)
        self.banner.set_pending(n if self.tray is None else 0)  # with a tray, the tray is the channel
        if self.tray is not None:
            self.tray.set_pending(n)

    def _paused(self, on: bool) -> None:
        self.notifier.paused = on
        self.window.show_message("Notifications paused." if on else "Notifications resumed.")

    # -- showing -----------------------------------------------------------------------------------

    def show_window(self) -> None:
        w = self.window
        if w.isMinimized():
            w.showNormal()
        w.show()
        w.raise_()
        w.activateWindow()

    def show_request(self, request_id: str | None) -> None:
        """Bring the window up on the Approval Queue, at `request_id` (else the first waiting)."""
        self.show_window()
        self.window.show_view("approvals")
        if request_id:
            self.queue.select_request(request_id)
        elif self.queue.pending_model.rowCount():
            self.queue.select_request(self.queue.pending_model.requests()[0].request_id)

    def _about(self) -> None:
        self.show_window()
        show_about = getattr(self.window, "show_about", None)
        if callable(show_about):
            show_about()

    def open_settings(self) -> SettingsDialog:
        if self.settings_dialog is not None:
            self.settings_dialog.raise_()
            self.settings_dialog.activateWindow()
            return self.settings_dialog
        self.show_window()
        dialog = SettingsDialog(self.app, self.window, rpc_url=self._rpc_url())
        dialog.patterns.message.connect(self.window.show_message)
        self.settings_dialog = dialog
        self._settings_task = WINDOW_TASKS.spawn(self._run_settings(dialog))
        return dialog

    async def _run_settings(self, dialog: SettingsDialog) -> None:
        try:
            load = WINDOW_TASKS.spawn(dialog.load())
            await run_dialog(dialog)
            load.cancel()
        finally:
            self.settings_dialog = None
            dialog.deleteLater()
