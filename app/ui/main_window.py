"""The main window: Containers, Approvals and Agents one click apart, the engine banner, a status bar.

The window is built with its views, and with the notices shown under the engine banner (the
pending-approval banner where there is no tray). The sidebar's views are pages; under them is a
"Settings…" button, drawn as a button rather than a page tab because it opens the Settings window
(as the tray and Ctrl+, do), which the window asks for through `settingsRequested`. The Approvals
button carries a badge (`set_badge`). Geometry and the selected view are kept in a small ini file in
the state folder, so every data dir (and every test) has its own.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.model import EngineInfo
from app.ui.about import AboutDialog
from app.ui.container_panel import ContainerPanel
from app.ui.engine_banner import EngineBanner
from app.ui.resources import icon

logger = logging.getLogger(__name__)

VIEWS = (
    ("containers", "Containers", "containers"),
    ("approvals", "Approvals", "approvals"),
    ("agents", "Agents", "agents"),
    ("history", "History", "history"),
)
STATUS_MESSAGE_MS = 8000
NAV_WIDTH = 104  # the sidebar's width: its page buttons, and "Settings…" written out in full


class NavButton(QToolButton):
    """A sidebar button with an optional count badge in its corner."""

    def __init__(self, text: str, icon_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("navButton")
        self.setText(text)
        self.setIcon(icon(icon_name))
        self.setIconSize(self.iconSize() * 1.4)
        self.setCheckable(True)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        self.setFixedSize(NAV_WIDTH, 64)
        self.badge = QLabel(self)
        self.badge.setObjectName("badge")
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.badge.setFixedHeight(16)
        self.badge.setMinimumWidth(16)
        self.badge.hide()

    def set_count(self, n: int) -> None:
        self.badge.setText(str(n) if n < 100 else "99+")
        self.badge.setVisible(n > 0)
        self.badge.adjustSize()
        self.badge.move(self.width() - self.badge.width() - 12, 6)


class MainWindow(QMainWindow):
    quitRequested = Signal()
    settingsRequested = Signal()
    viewChanged = Signal(str)
    close_to_tray = False  # set by app.ui.wiring when the desktop has a system tray

    def __init__(
        self,
        panel: ContainerPanel,
        approvals: QWidget,
        agents: QWidget,
        settings_path: str,
        *,
        history: QWidget | None = None,
        notices: list[QWidget] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Berth")
        self.setWindowIcon(icon("berth"))
        self.settings = QSettings(settings_path, QSettings.Format.IniFormat)
        self.panel = panel

        # Sidebar
        sidebar = QFrame()
        sidebar.setObjectName("sidebar")
        side = QVBoxLayout(sidebar)
        side.setContentsMargins(0, 10, 0, 10)
        side.setSpacing(4)
        self.nav: dict[str, NavButton] = {}
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        for i, (key, text, icon_name) in enumerate(VIEWS):
            b = NavButton(text, icon_name)
            b.setToolTip(f"{text} (Ctrl+{i + 1})")
            self.group.addButton(b, i)
            self.nav[key] = b
            side.addWidget(b, 0, Qt.AlignmentFlag.AlignHCenter)
        side.addStretch(1)
        # Not a page: a button that opens the Settings window, so it looks like one (bordered, text beside
        # its icon, "…") and never takes the selection from the views above.
        self.settings_button = QToolButton()
        self.settings_button.setObjectName("sidebarAction")
        self.settings_button.setText("Settings…")
        self.settings_button.setIcon(icon("settings"))
        self.settings_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.settings_button.setFixedWidth(NAV_WIDTH - 10)
        self.settings_button.setToolTip("Open the Settings window (Ctrl+,)")
        self.settings_button.clicked.connect(self.settingsRequested)
        side.addWidget(self.settings_button, 0, Qt.AlignmentFlag.AlignHCenter)

        # Views
        self.stack = QStackedWidget()
        self.views: dict[str, QWidget] = {
            "containers": panel,
            "approvals": approvals,
            "agents": agents,
            "history": history or QWidget(),
        }
        for key, _text, _icon in VIEWS:
            self.stack.addWidget(self.views[key])

        self.banner = EngineBanner()
        self.banner.settingsRequested.connect(self.settingsRequested)
        right = QWidget()
        right.setObjectName("page")
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.setSpacing(0)
        banner_box = QVBoxLayout()
        banner_box.setContentsMargins(16, 12, 16, 0)
        banner_box.addWidget(self.banner)
        for notice in notices or []:  # no extra space while they are hidden
            banner_box.addWidget(notice)
        right_layout.addLayout(banner_box)
        right_layout.addWidget(self.stack, 1)

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(sidebar)
        layout.addWidget(right, 1)
        self.setCentralWidget(central)

        # Status bar: engine, RPC, running count (permanent), messages (transient)
        self.engine_label = QLabel("Engine: connecting…")
        self.other_engines_label = QLabel("")  # engines the person added that do not answer (none: hidden)
        self.other_engines_label.setStyleSheet("color: #b3261e;")
        self.other_engines_label.setVisible(False)
        self._other_engines_down: dict[str, EngineInfo] = {}
        self.rpc_label = QLabel("RPC: starting…")
        self.rpc_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.running_label = QLabel("0 running")
        for w in (self.engine_label, self.other_engines_label, self.rpc_label, self.running_label):
            self.statusBar().addPermanentWidget(w)
        self.statusBar().setSizeGripEnabled(True)

        self.group.idClicked.connect(self._on_nav)
        for i, (key, _text, _icon) in enumerate(VIEWS):
            act = QAction(self)
            act.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            act.triggered.connect(lambda _c=False, k=key: self.show_view(k))
            self.addAction(act)
        self.settings_action = QAction("&Settings…", self)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.triggered.connect(self.settingsRequested)
        self.addAction(self.settings_action)
        quit_action = QAction("&Quit Berth", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.quitRequested)
        self.addAction(quit_action)
        menu = self.menuBar().addMenu("&Berth")
        menu.addAction(self.settings_action)
        menu.addSeparator()
        menu.addAction(quit_action)
        self.about_action = self.menuBar().addMenu("&Help").addAction("&About Berth")
        self.about_action.triggered.connect(self.show_about)
        panel.message.connect(self.show_message)

        self._restore()

    # -- views -------------------------------------------------------------------------------------

    def current_view(self) -> str:
        return VIEWS[self.stack.currentIndex()][0]

    def show_view(self, key: str) -> None:
        keys = [k for k, _t, _i in VIEWS]
        i = keys.index(key)
        self.stack.setCurrentIndex(i)
        self.nav[key].setChecked(True)
        self.settings.setValue("view", key)
        self.viewChanged.emit(key)

    def _on_nav(self, i: int) -> None:
        self.show_view(VIEWS[i][0])

    def set_badge(self, key: str, count: int) -> None:
        self.nav[key].set_count(count)

    def show_about(self) -> AboutDialog:
        dialog = AboutDialog(self.panel.app, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    # -- status ------------------------------------------------------------------------------------

    def show_message(self, text: str, timeout_ms: int = STATUS_MESSAGE_MS) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def set_engine(self, info: EngineInfo) -> None:
        self.banner.show_engine(info)
        self.panel.set_engine_available(info.available)
        if info.available:
            self.engine_label.setText(f"● Docker {info.version} at {info.endpoint} · connected")
            self.engine_label.setStyleSheet("color: #2e7d4f;")
            self.engine_label.setToolTip(f"Docker engine {info.version} at {info.endpoint}")
        else:
            self.engine_label.setText(f"● Docker at {info.endpoint} · disconnected")
            self.engine_label.setStyleSheet("color: #b3261e;")
            self.engine_label.setToolTip(f"No engine answers at {info.endpoint}\n{info.hint or ''}".strip())

    def set_other_engine(self, info: EngineInfo) -> None:
        """An engine the person added answers again, or does not: only its agents wait; the rest go on."""
        if info.available:
            self._other_engines_down.pop(info.name, None)
        else:
            self._other_engines_down[info.name] = info
        down = sorted(self._other_engines_down)
        self.other_engines_label.setVisible(bool(down))
        if down:
            names = ", ".join(down)
            self.other_engines_label.setText(
                f"● engine {names} not answering" if len(down) == 1 else f"● engines {names} not answering"
            )
            self.other_engines_label.setToolTip(
                "\n".join(
                    f"{n} ({i.endpoint}): {i.hint or 'no answer'}" for n, i in sorted(self._other_engines_down.items())
                )
                + "\nOnly the agents placed there wait; Berth tries again by itself."
            )
        self.panel.update_engines()

    def set_rpc(self, url: str | None, error: str | None = None) -> None:
        if url:
            self.rpc_label.setText(f"RPC {url}")
            self.rpc_label.setToolTip("Agents reach Berth here (POST /rpc with their token)")
        else:
            self.rpc_label.setText("RPC: not listening — agents cannot connect")
            self.rpc_label.setToolTip(
                (error + "\n" if error else "") + "Agents reach Berth through this port; see Settings > RPC port."
            )

    def set_running(self, n: int) -> None:
        self.running_label.setText(f"{n} running")

    # -- geometry ----------------------------------------------------------------------------------

    def _restore(self) -> None:
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray | bytes) and self.restoreGeometry(QByteArray(geometry)):
            pass
        else:
            self.resize(1180, 720)
        header = self.settings.value("panel/header")
        if isinstance(header, QByteArray | bytes):
            self.panel.table.horizontalHeader().restoreState(QByteArray(header))
        view = self.settings.value("view", "containers")
        self.show_view(view if view in self.views else "containers")

    def save_state(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("panel/header", self.panel.header_state())
        self.settings.setValue("view", self.current_view())
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_state()
        event.accept()
        if not self.close_to_tray:  # with a tray icon (part 2), closing keeps Berth running there
            QTimer.singleShot(0, self.quitRequested.emit)

    def keep(self, obj: Any) -> None:
        """Hold a reference for the window's lifetime (helper objects owned by nobody else)."""
        self.__dict__.setdefault("_kept", []).append(obj)
