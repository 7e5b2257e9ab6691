"""Settings (global): default image, RPC port, engine endpoint, approval expiry, notifications,
start at login, host commands (whether a sandbox works, the folders hidden from them), the global
trusted patterns and the Docker engines (app/ui/engines_page.py).

Every change is saved as it is made (one save model with Agent Settings and the pattern lists: no Save
button, only Close), a moment after the last keystroke, through the core (`Owner.apply_settings`): what
can apply at once does (the default image for new containers, the approval expiry -- waiting requests
included --, notifications, the hidden folders: the runner reads them at every run); the RPC port and
the engine endpoint need a restart, and the dialog says so next to them and after saving. Where
`--rpc-port` or `BERTH_RPC_PORT` sets the port, the port field says so and shows the port in use; the
engine field shows the address in use.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import replace
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpacerItem,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.config import PREFERRED_IMAGES, Settings
from app.core.application import Application
from app.core.host_access import SECRET_PATHS
from app.host import SandboxStatus
from app.ui.agent_dialogs import split_patterns
from app.ui.engines_page import EnginesPage
from app.ui.folder_list import FolderList
from app.ui.patterns_editor import PatternsEditor
from app.ui.tasks import WINDOW_TASKS

logger = logging.getLogger(__name__)

AUTOMATIC_IMAGE = f"Automatic ({PREFERRED_IMAGES[0]} when present)"
RESTART_NOTE = "applies when Berth restarts"
APPLY_DELAY_MS = 600
ALWAYS_HIDDEN = (
    "Always hidden: Berth's own folders (its tokens, database and every workspace), ~/.ssh, ~/.gnupg, "
    "cloud and cluster credentials (~/.aws, ~/.config/gcloud, ~/.kube…), keyrings and password stores."
)

try:  # another part of the app; the checkbox hides itself when it is not there
    from app.ui import autostart as _autostart

    autostart: Any = _autostart
except ImportError:
    autostart = None


class SettingsDialog(QDialog):
    saved = Signal(object)  # the new Settings

    def __init__(self, app: Application, parent: QWidget | None = None, *, rpc_url: str | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Berth settings")
        self.app = app
        s = app.settings

        self.image = QComboBox()
        self.image.setObjectName("defaultImage")
        self.image.setEditable(True)
        self.image.setMinimumWidth(300)
        self.image.addItem(AUTOMATIC_IMAGE, None)
        if s.default_image:
            self.image.addItem(s.default_image, s.default_image)
            self.image.setCurrentIndex(1)
        self.images_hint = QLabel("Looking for local images…")
        self.images_hint.setObjectName("hint")

        self.port = QSpinBox()
        self.port.setObjectName("rpcPort")
        self.port.setRange(0, 65535)
        self.port.setSpecialValueText("any free port")
        self.port.setValue(s.rpc_port)
        self.port.setGroupSeparatorShown(False)
        self.port_overridden = app.rpc_port != s.rpc_port
        if self.port_overridden:  # the port in use, greyed, and why (the saved one applies without the override)
            self.port.setValue(app.rpc_port)
            self.port.setEnabled(False)
        self.endpoint = QLineEdit(s.engine_endpoint or "")
        self.endpoint.setObjectName("engineEndpoint")
        self.endpoint.setPlaceholderText("Automatic (DOCKER_HOST, else the platform's default socket)")
        self.endpoint.setMinimumWidth(300)
        self.expiry = QSpinBox()
        self.expiry.setObjectName("approvalExpiry")
        self.expiry.setRange(10, 7 * 86400)
        self.expiry.setSingleStep(60)
        self.expiry.setSuffix(" s")
        self.expiry.setValue(int(s.approval_expiry_s))
        self.notifications = QCheckBox("Show a notification when a command waits for approval")
        self.notifications.setObjectName("notifications")
        self.notifications.setChecked(s.notifications)
        self.service_exits = QCheckBox("Show a notification when a service stops unexpectedly or runs out of memory")
        self.service_exits.setObjectName("notifyServiceExits")
        self.service_exits.setChecked(s.notify_service_exits)
        self.autostart = QCheckBox("Start Berth when I log in")
        self.autostart.setObjectName("autostart")
        self._autostart_was: bool | None = None
        if autostart is None:
            self.autostart.hide()
        else:
            try:
                self._autostart_was = bool(autostart.is_enabled())
                self.autostart.setChecked(self._autostart_was)
            except Exception:
                logger.exception("could not read the autostart setting")
                self.autostart.hide()

        general = QWidget()
        form = QFormLayout(general)
        form.setContentsMargins(16, 14, 16, 14)
        form.setVerticalSpacing(8)
        form.addRow("Default image:", self.image)
        form.addRow("", self.images_hint)
        self.image_patterns = QLineEdit(", ".join(app.settings.image_patterns))
        self.image_patterns.setObjectName("imagePatterns")
        self.image_patterns.setPlaceholderText("none: only images already on this machine")
        form.addRow("Agents may pull:", self.image_patterns)
        form.addRow("", self._hint(None, "image patterns, comma-separated, e.g. python:*, ghcr.io/my-org/*"))
        form.addRow("Approval expiry:", self._hint(self.expiry, "a waiting command is refused after this"))
        form.addRow("Notifications:", self.notifications)
        form.addRow("", self.service_exits)
        form.addRow("", self.autostart)
        form.addRow("Run history:", self._history_row(s))
        form.addItem(QSpacerItem(0, 10))
        self.port_hint = QLabel(f"127.0.0.1 only · {RESTART_NOTE}")
        self.port_hint.setObjectName("hint")
        self.port_hint.setWordWrap(True)
        if self.port_overridden:
            env = os.environ.get("BERTH_RPC_PORT")
            by = f"BERTH_RPC_PORT={env}" if env else "--rpc-port"
            listening = rpc_url or ("a free port chosen at start" if app.rpc_port == 0 else f"port {app.rpc_port}")
            saved = "any free port" if s.rpc_port == 0 else str(s.rpc_port)
            self.port_hint.setText(f"In use: {listening}, set by {by}. Without it Berth uses the saved {saved}.")
        form.addRow("RPC port:", self._hint(self.port, self.port_hint))
        form.addRow("Docker engine:", self.endpoint)
        self.endpoint_hint = QLabel(f"e.g. unix:///var/run/docker.sock or tcp://127.0.0.1:2375 · {RESTART_NOTE}")
        self.endpoint_hint.setObjectName("hint")
        self.endpoint_hint.setWordWrap(True)
        # A wrapped label in a form is given the height of its narrowest layout: keep the text under the field.
        self.endpoint_hint.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        form.addRow("", self.endpoint_hint)
        self.env_note = self.port_hint  # (its old name)
        self.status = QLabel()
        self.status.setObjectName("saveStatus")
        self.status.setWordWrap(True)
        form.addRow("", self.status)
        general_page = QScrollArea()
        general_page.setWidget(general)
        general_page.setWidgetResizable(True)
        general_page.setFrameShape(QFrame.Shape.NoFrame)
        general_page.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # it fits: see resize

        host = QWidget()
        hl = QVBoxLayout(host)
        hl.setContentsMargins(16, 14, 16, 14)
        self.sandbox_status = QLabel("Checking the sandbox…")
        self.sandbox_status.setObjectName("sandboxStatus")
        self.sandbox_status.setWordWrap(True)
        self.sandbox_status.setTextFormat(Qt.TextFormat.PlainText)
        hidden_box = QGroupBox("Hidden from host commands")
        hbl = QVBoxLayout(hidden_box)
        hidden_text = QLabel(
            "A sandboxed command sees these folders empty. Add folders that hold secrets or private files."
        )
        hidden_text.setWordWrap(True)
        always = QLabel(ALWAYS_HIDDEN)
        always.setObjectName("hint")
        always.setWordWrap(True)
        always.setToolTip("Also hidden, in your home folder: " + ", ".join(f"~/{p}" for p in SECRET_PATHS))
        self.hidden_folders = FolderList("Hide a folder from host commands", "None added: only the folders above.")
        self.hidden_folders.setObjectName("hiddenFolders")
        self.hidden_folders.set_folders(s.hidden_folders)
        self.hidden_folders.addRequested.connect(self.add_hidden_folder)
        self.hidden_folders.removeRequested.connect(self.remove_hidden_folder)
        hbl.addWidget(hidden_text)
        hbl.addWidget(always)
        hbl.addWidget(self.hidden_folders, 1)
        hl.addWidget(self.sandbox_status)
        hl.addWidget(hidden_box, 1)

        self.patterns = PatternsEditor(app, None)
        self.tabs = QTabWidget()
        self.tabs.addTab(general_page, "General")
        self.tabs.addTab(host, "Host commands")
        self.tabs.addTab(self.patterns, "Trusted commands (all agents)")
        self.engines = EnginesPage(app)
        self.tabs.addTab(self.engines, "Engines")

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.buttons)
        self.save_button = None  # every change is saved as it is made (kept for callers that looked for it)
        self._restart: list[str] = []  # what changed since the dialog opened that needs a restart
        self._apply_timer = QTimer(self)
        self._apply_timer.setSingleShot(True)
        self._apply_timer.setInterval(APPLY_DELAY_MS)
        self._apply_timer.timeout.connect(lambda: self.save())
        for spin in general.findChildren(QSpinBox):
            spin.valueChanged.connect(self._schedule)
        for check in general.findChildren(QCheckBox):
            if check is not self.autostart:
                check.toggled.connect(self._schedule)
        self.autostart.toggled.connect(self._schedule)
        for line in (self.endpoint, self.image_patterns):
            line.editingFinished.connect(self._schedule_now)
        self.image.currentIndexChanged.connect(self._schedule)
        image_line = self.image.lineEdit()
        if image_line is not None:
            image_line.editingFinished.connect(self._schedule_now)
        # Wide enough for the General page's longest row without a sideways scroll bar, and for the Engines
        # list's addresses; tall enough for most.
        self.resize(max(900, general.sizeHint().width() + 60), 600)

    def _history_row(self, s: Settings) -> QWidget:
        """How long finished runs are kept: days and a count, whichever comes first (the core prunes them)."""
        self.history_days = QSpinBox()
        self.history_days.setObjectName("historyDays")
        self.history_days.setRange(1, 3650)
        self.history_days.setSuffix(" days")
        self.history_days.setValue(max(1, round(s.history_days)))
        self.history_runs = QSpinBox()
        self.history_runs.setObjectName("historyRuns")
        self.history_runs.setRange(100, 1_000_000)
        self.history_runs.setSingleStep(1000)
        self.history_runs.setGroupSeparatorShown(True)
        self.history_runs.setSuffix(" runs")
        self.history_runs.setValue(max(100, int(s.history_max_runs)))
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (QLabel("keep"), self.history_days, QLabel("or"), self.history_runs):
            layout.addWidget(w)
        hint = QLabel("whichever comes first")
        hint.setObjectName("hint")
        layout.addWidget(hint)
        layout.addStretch(1)
        return row

    @staticmethod
    def _hint(field: QWidget | None, text: str | QLabel) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        if field is not None:
            row.addWidget(field)
        label = text if isinstance(text, QLabel) else QLabel(text)
        label.setObjectName("hint")
        row.addWidget(label, 1 if isinstance(text, QLabel) else 0)
        if not isinstance(text, QLabel):
            row.addStretch(1)
        return box

    def done(self, result: int) -> None:
        """Closing saves a change still waiting for its moment (nothing typed is lost)."""
        if self._apply_timer.isActive():
            self.save()
        super().done(result)

    def _schedule(self, *_: Any) -> None:
        """A change: saved a moment after the last one (typing a number saves once)."""
        self.status.setText("Saving…")
        self.status.setStyleSheet("color: #6b7280;")
        self._apply_timer.start()

    def _schedule_now(self) -> None:
        if self.new_settings() != self.app.settings:
            self._apply_timer.start(0)

    def add_hidden_folder(self, path: str) -> asyncio.Task[Settings | None]:
        """Hide one more folder (saved at once, like every setting)."""
        folders = self.hidden_folders.folders()
        if path not in folders:
            self.hidden_folders.set_folders([*folders, path])
        self.hidden_folders.select(path)
        return self.save()

    def remove_hidden_folder(self, path: str) -> asyncio.Task[Settings | None]:
        self.hidden_folders.set_folders([f for f in self.hidden_folders.folders() if f != path])
        return self.save()

    def show_sandbox(self, status: SandboxStatus) -> None:
        if status.available:
            self.sandbox_status.setText(
                f"Host commands run in a sandbox ({status.mechanism}) unless you give one full access. In the "
                "sandbox a command reads your files, writes only the folder it runs in, and has no network."
            )
            self.sandbox_status.setStyleSheet("color: #2e7d4f;")
        else:
            self.sandbox_status.setText(
                f"No sandbox works here: {status.reason}. Every host command you approve runs with full access "
                "as you, and only patterns with full access approve any."
            )
            self.sandbox_status.setStyleSheet("color: #b3261e;")

    async def load(self) -> None:
        """Fill in the sandbox status, the global patterns, the engine in use and the local images (the Engines
        page asks the engines when it is first shown)."""
        self.show_sandbox(await asyncio.to_thread(lambda: self.app.approvals.sandbox))
        await self.patterns.reload()
        try:
            info = await self.app.owner.engine_info()
            state = f"Docker {info.version}" if info.available else "not answering"
            self.endpoint.setPlaceholderText(f"Automatic: now {info.endpoint}")
            if not self.endpoint.text():
                self.endpoint_hint.setText(
                    f"In use: {info.endpoint} ({state}; from DOCKER_HOST, else the platform's default socket). "
                    f"Type another address to change it · {RESTART_NOTE}"
                )
            else:
                self.endpoint_hint.setText(f"In use: {info.endpoint} ({state}) · {RESTART_NOTE}")
        except Exception as e:
            logger.debug("could not read the engine address: %s", e)
        try:
            images = await self.app.owner.images()
        except Exception as e:
            self.images_hint.setText(f"Could not list the local images: {e}")
            return
        current = self.image.currentData()
        for tag in images:
            if self.image.findData(tag) < 0:
                self.image.addItem(tag, tag)
        if current:
            self.image.setCurrentIndex(self.image.findData(current))
        self.images_hint.setText(
            f"{len(images)} local image{'s' if len(images) != 1 else ''}; an agent can still ask for any image."
            if images
            else "No local images found; type an image name."
        )

    def chosen_image(self) -> str | None:
        text = self.image.currentText().strip()
        if not text or text == AUTOMATIC_IMAGE:
            return None
        return text

    def new_settings(self) -> Settings:
        return replace(
            self.app.settings,
            default_image=self.chosen_image(),
            rpc_port=self.app.settings.rpc_port if self.port_overridden else self.port.value(),
            engine_endpoint=self.endpoint.text().strip() or None,
            approval_expiry_s=float(self.expiry.value()),
            notifications=self.notifications.isChecked(),
            notify_service_exits=self.service_exits.isChecked(),
            history_days=float(self.history_days.value()),
            history_max_runs=self.history_runs.value(),
            hidden_folders=self.hidden_folders.folders(),
            image_patterns=split_patterns(self.image_patterns.text()),
        )

    def save(self) -> asyncio.Task[Settings | None]:
        return WINDOW_TASKS.spawn(self._save())

    async def _save(self) -> Settings | None:
        self._apply_timer.stop()
        new = self.new_settings()
        try:
            restart = await self.app.owner.apply_settings(new)  # saved, audited, applied by the core
            if autostart is not None and self.autostart.isVisible():
                on = self.autostart.isChecked()
                if on != self._autostart_was:
                    await asyncio.to_thread(autostart.set_enabled, on)
                    self._autostart_was = on
        except Exception as e:
            logger.exception("could not save the settings")
            if shiboken6.isValid(self.status):  # the dialog may have closed meanwhile
                self.status.setText(f"Not saved: {e}")
                self.status.setStyleSheet("color: #b3261e;")
            return None
        restart = [what for what in restart if what not in self._restart] + self._restart
        self._restart = restart  # a port changed in an earlier save still needs the restart
        text = "Saved ✓ — changes apply as you make them."
        if restart:
            text = f"Saved ✓ — restart Berth for {' and '.join(restart)} to take effect; the rest applies now."
        if shiboken6.isValid(self.status):
            self.status.setText(text)
            self.status.setStyleSheet("color: #92400e;" if restart else "color: #2e7d4f;")
            self.saved.emit(new)
        return new
