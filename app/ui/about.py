"""Help > About: which Berth this is, the engine it talks to, where it keeps its data and logs.

What needs the engine or the keyring (which may block on D-Bus) is fetched in the background after
the dialog is shown; until then those rows say "checking…". The folders open in the file manager.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import sys
from pathlib import Path

import PySide6
from PySide6.QtCore import Qt, QUrl, Signal, qVersion
from PySide6.QtGui import QCloseEvent, QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app.core.application import Application
from app.instance import running_url
from app.model import EngineInfo, PoolStatus
from app.ui.resources import icon
from app.ui.tasks import WINDOW_TASKS

logger = logging.getLogger(__name__)

CHECKING = "checking…"


def _selectable(text: str = "", *, wrap: bool = False) -> QLabel:
    label = QLabel(text)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(wrap)
    if wrap:  # a wrapped label's own size hint is narrow; let it take the column's width
        label.setMinimumWidth(440)
    return label


class AboutDialog(QDialog):
    """Version, engine (endpoint, version, connected or not), RPC address, folders, token storage."""

    refreshed = Signal()  # the background checks are done (tests wait on it)

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.setWindowTitle("About Berth")
        self.setObjectName("aboutDialog")

        picture = QLabel()
        picture.setPixmap(icon("berth").pixmap(64, 64))
        title = QLabel(f"<b style='font-size: 16pt'>Berth {__version__}</b>")
        self.version_label = title
        tagline = QLabel("A safe place for AI agents to run code on this computer.")
        tagline.setWordWrap(True)
        header_text = QVBoxLayout()
        header_text.addWidget(title)
        header_text.addWidget(tagline)
        header = QHBoxLayout()
        header.addWidget(picture, 0, Qt.AlignmentFlag.AlignTop)
        header.addLayout(header_text, 1)

        self.engine_label = _selectable(CHECKING)
        self.engine_hint = _selectable(wrap=True)
        self.engine_hint.setObjectName("hint")
        self.engine_hint.hide()
        self.rpc_label = _selectable(CHECKING)
        self.data_label = _selectable(str(app.paths.data_dir))
        self.log_label = _selectable(str(app.paths.log_dir))
        self.open_data = QPushButton("Open")
        self.open_data.setToolTip("Open the data folder in the file manager")
        self.open_data.clicked.connect(self._open_data)
        self.open_logs = QPushButton("Open")
        self.open_logs.setToolTip("Open the log folder in the file manager")
        self.open_logs.clicked.connect(self._open_logs)
        self.keyring_label = _selectable(CHECKING)
        self.pool_label = _selectable(pool_text(app.pool_status()))
        self.keyring_warning = _selectable(wrap=True)
        self.keyring_warning.setStyleSheet("color: #b3261e;")
        self.keyring_warning.hide()
        frozen = " (bundle)" if getattr(sys, "frozen", False) else ""
        self.build_label = _selectable(
            f"Python {platform.python_version()}, Qt {qVersion()}, PySide6 {PySide6.__version__}{frozen}"
        )

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        engine_box = QVBoxLayout()
        engine_box.addWidget(self.engine_label)
        engine_box.addWidget(self.engine_hint)
        form.addRow("Docker engine:", engine_box)
        form.addRow("Agents connect to:", self.rpc_label)
        form.addRow("Data folder:", self._with_button(self.data_label, self.open_data))
        form.addRow("Log folder:", self._with_button(self.log_label, self.open_logs))
        tokens_box = QVBoxLayout()
        tokens_box.addWidget(self.keyring_label)
        tokens_box.addWidget(self.keyring_warning)
        form.addRow("Agent tokens:", tokens_box)
        form.addRow("Warm pool:", self.pool_label)
        form.addRow("Built with:", self.build_label)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addSpacing(8)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.setMinimumWidth(620)

        self.checks: asyncio.Task[None] | None = None
        try:
            asyncio.get_running_loop()
            self.checks = WINDOW_TASKS.spawn(self.refresh())
        except RuntimeError:  # no running loop (a plain QApplication): call refresh() yourself
            self.checks = None

    @staticmethod
    def _with_button(label: QLabel, button: QPushButton) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(label, 1)
        row.addWidget(button, 0)
        return row

    # -- background checks -----------------------------------------------------------------------

    async def refresh(self) -> None:
        """Ask the engine, read endpoint.json and the keyring's state, off the GUI thread."""
        try:
            url = await asyncio.to_thread(running_url, self.app.paths)
            self.rpc_label.setText(f"{url}/rpc and {url}/mcp" if url else "not listening (no RPC server runs)")
            backend, warning = await asyncio.to_thread(self._keyring_state)
            self.set_keyring(backend, warning)
            self.set_engine(await self.app.owner.engine_info())
            self.pool_label.setText(pool_text(self.app.pool_status()))
        except Exception as e:
            logger.exception("the About dialog could not check everything")
            self.engine_label.setText(f"could not check: {e}")
        finally:
            self._fit()
            self.refreshed.emit()

    def _fit(self) -> None:
        """Grow to the answers, which are longer than "checking…" (wrapped labels need height-for-width)."""
        self.adjustSize()
        layout = self.layout()
        if layout is not None and layout.hasHeightForWidth():
            self.resize(self.width(), max(self.height(), layout.heightForWidth(self.width())))

    def _keyring_state(self) -> tuple[str, str | None]:
        vault = self.app.vault
        return vault.backend, vault.warning

    def set_engine(self, info: EngineInfo) -> None:
        if info.available:
            self.engine_label.setText(f"Docker {info.version} at {info.endpoint} · connected")
            self.engine_label.setStyleSheet("color: #2e7d4f;")
            self.engine_hint.hide()
        else:
            self.engine_label.setText(f"{info.endpoint} · not connected")
            self.engine_label.setStyleSheet("color: #b3261e;")
            self.engine_hint.setText(info.hint or "")
            self.engine_hint.setVisible(bool(info.hint))

    def set_keyring(self, backend: str, warning: str | None) -> None:
        self.keyring_label.setText(
            "a 0600 file in the data folder (no OS keyring)" if backend == "file" else f"OS keyring: {backend}"
        )
        self.keyring_warning.setText(warning or "")
        self.keyring_warning.setVisible(bool(warning))

    # -- actions ---------------------------------------------------------------------------------

    def _open_data(self) -> None:
        self.open_folder(self.app.paths.data_dir)

    def _open_logs(self) -> None:
        self.open_folder(self.app.paths.log_dir)

    def open_folder(self, path: Path) -> bool:
        path.mkdir(parents=True, exist_ok=True)
        ok = QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
        if not ok:
            logger.warning("no file manager opened %s", path)
        return bool(ok)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._cancel()
        super().closeEvent(event)

    def done(self, result: int) -> None:
        self._cancel()
        super().done(result)

    def _cancel(self) -> None:
        if self.checks is not None and not self.checks.done():
            self.checks.cancel()


def pool_text(status: PoolStatus) -> str:
    """The warm pool in a line: what is ready, and how often a run found one (its hit rate)."""
    if not status.enabled:
        return "off (every temporary run makes its container)"
    runs = status.hits + status.misses
    rate = f"{status.hits / runs:.0%} of {runs} runs found a container ready" if runs else "no run yet"
    return f"{status.idle} ready, {status.filling} being made · {rate}"
