"""Part 2 of the window, wired onto `Desktop`: the Approval Queue, Agent Settings, Settings, the tray.

Kept out of desktop.py so that file stays about the life cycle. `WindowViews` makes the two views and
the pending banner before the window, which is built with them; `DesktopWiring` connects them, opens
Settings when the window asks, and (where the desktop has a system tray) shows the tray icon; with a
tray, closing the window keeps Berth running; without one, the window is the channel and closing it quits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from app.core.application import Application
from app.core.approvals import ShellRequest
from app.ui.agent_dialogs import run_dialog
from app.ui.agents_view import AgentsView
from app.ui.alert_text import alert_text
from app.ui.approval_queue import ApprovalQueue
from app.ui.bridge import CoreBridge
from app.ui.settings_dialog import SettingsDialog
from app.ui.tasks import WINDOW_TASKS
from app.ui.tray import BannerChannel, Channel, Notifier, PendingBanner, PopupChannel, Tray, TrayChannel

if TYPE_CHECKING:
    from app.ui.desktop import Desktop

logger = logging.getLogger(__name__)


class WindowViews:
    """The views of part 2, made before the window so that it is built with them."""

    def __init__(self, app: Application, rpc_url: Callable[[], str | None], bridge: CoreBridge) -> None:
        self.queue = ApprovalQueue(app)
        self.agents = AgentsView(app, rpc_url, patterns_changed=bridge.patternsChanged)
        self.banner = PendingBanner()  # under the engine banner: shown only without a tray, off the queue


class DesktopWiring(QObject):
    """The Approval Queue, Agent Settings, Settings and the tray, around a window built with them (`views`)."""

    def __init__(self, desktop: Desktop, views: WindowViews, *, tray: bool | None = None) -> None:
        super().__init__(desktop)
        self.desktop = desktop
        app, window = desktop.app, desktop.window
        self.app, self.window = app, window
        self.settings_dialog: SettingsDialog | None = None
        self.queue, self.agents, self.banner = views.queue, views.agents, views.banner
        window.settingsRequested.connect(self.open_settings)

        # Tray (where there is one) and notifications.
        self.has_tray = QSystemTrayIcon.isSystemTrayAvailable() if tray is None else tray
        self.tray: Tray | None = None
        self.popup: PopupChannel | None = None
        factories: list[Any] = [self._popup_channel, self._tray_channel, lambda: BannerChannel(self.banner)]
        self.notifier = Notifier(factories, lambda: bool(self.app.settings.notifications), self)
        if self.has_tray:
            self.tray = Tray(self, about=True)
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
        bridge.alert.connect(self._alert)
        bridge.agentsChanged.connect(self.agents.on_agents_changed)
        self.queue.pendingChanged.connect(self._pending_changed)
        self.queue.message.connect(window.show_message)
        self.agents.message.connect(window.show_message)
        self.banner.reviewRequested.connect(lambda: self.show_request(None))
        window.viewChanged.connect(lambda key: self.banner.set_on_queue(key == "approvals"))
        self.banner.set_on_queue(window.current_view() == "approvals")

    def _rpc_url(self) -> str | None:
        return self.desktop.rpc_url()

    def _tray_channel(self) -> Channel | None:
        return TrayChannel(self.tray) if self.tray is not None else None

    def _popup_channel(self) -> Channel | None:
        """Berth's own popup by the tray (monospace command, folder, time left), where windows can be placed."""
        if self.tray is None or not PopupChannel.works_here():
            return None
        self.popup = PopupChannel(self.tray, self._popup_clicked)
        return self.popup

    def _popup_clicked(self) -> None:
        """A waiting request's popup opens that request; any other (an alert) opens the window."""
        if self.notifier.last_request:
            self.show_request(self.notifier.last_request)
        else:
            self.show_window()

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
        if self.popup is not None:
            self.popup.popup.hide()
            self.popup.popup.deleteLater()
        if self.tray is not None:
            self.tray.hide()

    # -- events ------------------------------------------------------------------------------------

    def _approval_event(self, topic: str, data: Any) -> None:
        self.queue.on_event(topic, data)
        if topic == "approval.pending" and isinstance(data, ShellRequest):
            waiting = {r.request_id for r in self.queue.pending_model.requests()} - {data.request_id}
            self.notifier.notify(data, more=len(waiting))

    def _alert(self, topic: str, data: Any) -> None:
        """A service that exited by itself or was OOM-killed, an agent that started queueing (app/core/alerts.py)."""
        text = alert_text(topic, data)
        if text is None:
            return
        key, title, body, wanted = text
        self.window.show_message(f"{title}: {body.splitlines()[0]}", 15_000)
        if wanted(self.app.settings):
            self.notifier.notify_event(key, title, body)

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
        self.window.show_about()

    def open_settings(self) -> SettingsDialog:
        if self.settings_dialog is not None:
            self.settings_dialog.raise_()
            self.settings_dialog.activateWindow()
            return self.settings_dialog
        self.show_window()
        dialog = SettingsDialog(self.app, self.window, rpc_url=self._rpc_url())
        dialog.patterns.message.connect(self.window.show_message)
        changed = self.desktop.bridge.patternsChanged
        changed.connect(dialog.patterns.on_changed)  # a pattern added with the CLI shows at once
        dialog.finished.connect(lambda _r: changed.disconnect(dialog.patterns.on_changed))
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
