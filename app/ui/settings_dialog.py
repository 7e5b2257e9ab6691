"""Settings (global): default image, RPC port, engine endpoint, approval expiry, notifications,
start at login, and the global trusted patterns.

Saved to settings.json (`Settings.save`, in a thread). What can apply at once does (the default
image for new containers, the approval expiry for new requests, notifications); the RPC port and
the engine endpoint need a restart, and the dialog says so next to them and after saving.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
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
from app.ui.patterns_editor import PatternsEditor
from app.ui.tasks import WINDOW_TASKS

logger = logging.getLogger(__name__)

AUTOMATIC_IMAGE = f"Automatic ({PREFERRED_IMAGES[0]} when present)"
RESTART_NOTE = "applies when Berth restarts"

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

        self.patterns = PatternsEditor(app, None)
        self.tabs = QTabWidget()
        self.tabs.addTab(general, "General")
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

    async def load(self) -> None:
        """Fill in the local images (from the engine) and the global patterns."""
        await self.patterns.reload()
        try:
            images = await self.app.engine.images()
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
        )

    def save(self) -> asyncio.Task[Settings | None]:
        return WINDOW_TASKS.spawn(self._save())

    async def _save(self) -> Settings | None:
        old, new = self.app.settings, self.new_settings()
        self.save_button.setEnabled(False)
        try:
            await asyncio.to_thread(new.save, self.app.paths.settings_file)
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
        self.apply(new)
        restart = [
            what
            for what, changed in (
                ("the RPC port", new.rpc_port != old.rpc_port),
                ("the engine endpoint", new.engine_endpoint != old.engine_endpoint),
            )
            if changed
        ]
        text = f"Saved to {self.app.paths.settings_file}."
        if restart:
            text += f" Restart Berth for {' and '.join(restart)} to take effect; the rest applies now."
        self.status.setText(text)
        self.status.setStyleSheet("color: #92400e;" if restart else "color: #2e7d4f;")
        self.saved.emit(new)
        return new

    def apply(self, new: Settings) -> None:
        """What applies without a restart: the default image, the approval expiry, notifications."""
        app = self.app
        app.settings = new
        app.approvals.expiry_s = new.approval_expiry_s  # new requests; waiting ones keep their expiry
        if new.default_image:
            app.containers.default_image = new.default_image
        elif app.engine_available:
            self._image_task = WINDOW_TASKS.spawn(self._automatic_image())

    async def _automatic_image(self) -> None:
        for image in PREFERRED_IMAGES:
            try:
                if await self.app.engine.has_image(image):
                    self.app.containers.default_image = image
                    return
            except Exception:
                return
