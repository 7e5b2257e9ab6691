"""Settings (global): default image, RPC port, engine endpoint, approval expiry, notifications,
start at login, host commands (whether a sandbox works, the folders hidden from them) and the global
trusted patterns.

Saved and applied by the core (`Owner.apply_settings`): what can apply at once does (the default
image for new containers, the approval expiry -- waiting requests included --, notifications, the
hidden folders: the runner reads them at every run); the RPC port and the engine endpoint need a
restart, and the dialog says so next to them and after saving.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
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
from app.ui.folder_list import FolderList
from app.ui.patterns_editor import PatternsEditor
from app.ui.tasks import WINDOW_TASKS

logger = logging.getLogger(__name__)

AUTOMATIC_IMAGE = f"Automatic ({PREFERRED_IMAGES[0]} when present)"
RESTART_NOTE = "applies when Berth restarts"
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
        self.port.setRange(1024, 65535)
        self.port.setValue(s.rpc_port)
        self.port.setGroupSeparatorShown(False)
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
        form.addRow("Default image:", self.image)
        form.addRow("", self.images_hint)
        self.image_patterns = QLineEdit(", ".join(app.settings.image_patterns))
        self.image_patterns.setObjectName("imagePatterns")
        self.image_patterns.setPlaceholderText("none: only images already on this machine")
        form.addRow("Agents may pull:", self.image_patterns)
        form.addRow("", self._hint(None, "image patterns, comma-separated, e.g. python:*, ghcr.io/my-org/*"))
        form.addRow("Approval expiry:", self._hint(self.expiry, "a waiting command is refused after this"))
        form.addRow("", self.notifications)
        form.addRow("", self.autostart)
        form.addRow(QLabel(""))
        form.addRow("RPC port:", self._hint(self.port, f"127.0.0.1 only · {RESTART_NOTE}"))
        form.addRow("Docker engine:", self.endpoint)
        form.addRow("", self._hint(None, f"e.g. unix:///var/run/docker.sock or tcp://127.0.0.1:2375 · {RESTART_NOTE}"))
        self.env_note = QLabel()
        self.env_note.setObjectName("hint")
        self.env_note.setWordWrap(True)
        form.addRow("", self.env_note)
        if app.rpc_port != s.rpc_port:
            where = rpc_url or ("a free port chosen at start" if app.rpc_port == 0 else f"port {app.rpc_port}")
            self.env_note.setText(f"This Berth listens on {where} (set by --rpc-port or BERTH_RPC_PORT).")

        host = QWidget()
        hl = QVBoxLayout(host)
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
        self.tabs.addTab(general, "General")
        self.tabs.addTab(host, "Host commands")
        self.tabs.addTab(self.patterns, "Trusted commands (all agents)")

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Close)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setObjectName("primary")
        self.save_button.clicked.connect(lambda: self.save())
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.resize(680, 500)

    @staticmethod
    def _hint(field: QWidget | None, text: str) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        if field is not None:
            row.addWidget(field)
        label = QLabel(text)
        label.setObjectName("hint")
        row.addWidget(label)
        row.addStretch(1)
        return box

    def add_hidden_folder(self, path: str) -> None:
        """Hide one more folder (saved with Save)."""
        folders = self.hidden_folders.folders()
        if path not in folders:
            self.hidden_folders.set_folders([*folders, path])
        self.hidden_folders.select(path)
        self._unsaved()

    def remove_hidden_folder(self, path: str) -> None:
        self.hidden_folders.set_folders([f for f in self.hidden_folders.folders() if f != path])
        self._unsaved()

    def _unsaved(self) -> None:
        self.status.setText("Hidden folders change when you save.")
        self.status.setStyleSheet("color: #92400e;")

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
        """Fill in the sandbox status, the global patterns and the local images (from the engine)."""
        self.show_sandbox(await asyncio.to_thread(lambda: self.app.approvals.sandbox))
        await self.patterns.reload()
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
            rpc_port=self.port.value(),
            engine_endpoint=self.endpoint.text().strip() or None,
            approval_expiry_s=float(self.expiry.value()),
            notifications=self.notifications.isChecked(),
            hidden_folders=self.hidden_folders.folders(),
            image_patterns=split_patterns(self.image_patterns.text()),
        )

    def save(self) -> asyncio.Task[Settings | None]:
        return WINDOW_TASKS.spawn(self._save())

    async def _save(self) -> Settings | None:
        new = self.new_settings()
        self.save_button.setEnabled(False)
        try:
            restart = await self.app.owner.apply_settings(new)  # saved, audited, applied by the core
            if autostart is not None and self.autostart.isVisible():
                on = self.autostart.isChecked()
                if on != self._autostart_was:
                    await asyncio.to_thread(autostart.set_enabled, on)
                    self._autostart_was = on
        except Exception as e:
            logger.exception("could not save the settings")
            self.status.setText(f"Not saved: {e}")
            self.status.setStyleSheet("color: #b3261e;")
            return None
        finally:
            self.save_button.setEnabled(True)
        text = f"Saved to {self.app.paths.settings_file}."
        if restart:
            text += f" Restart Berth for {' and '.join(restart)} to take effect; the rest applies now."
        self.status.setText(text)
        self.status.setStyleSheet("color: #92400e;" if restart else "color: #2e7d4f;")
        self.saved.emit(new)
        return new
