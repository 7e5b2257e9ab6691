"""Add engine…: a name, and either the engine's address (with TLS files for tcp://) or a Docker context;
how the workspace reaches it; Test connection (asks it, adds nothing) and Add (the core checks it answers,
stores it and copies Berth's base images there).

Errors are shown in the dialog, under the buttons, and the form keeps everything typed: the person fixes
one field and tries again. The dialog closes only once the engine is added (`added` holds the result).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import shiboken6
from PySide6.QtCore import QDir, Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.core.owner import Owner
from app.errors import BerthError
from app.model import FILES_LOCAL, FILES_SYNC, EngineConfig, EngineInfo
from app.ui.dialogs import run_dialog
from app.ui.slots import async_slot
from app.ui.widgets import mono_font

logger = logging.getLogger(__name__)

OK_COLOR, ERROR_COLOR, BUSY_COLOR = "#2e7d4f", "#b3261e", "#6b7280"
FILES_LOCAL_TEXT = "This machine's folders are visible to it (bind mounts)"
FILES_SYNC_TEXT = "Copy the workspace there and back (remote machine)"


def error_text(e: BerthError) -> str:
    """An error as the window says it: the message, then what to do (the hint) as a sentence of its own."""
    if not e.hint:
        return e.message
    hint = e.hint[:1].upper() + e.hint[1:]
    return f"{e.message}\n{hint}{'' if hint.endswith(('.', ')')) else '.'}"


def not_answering(info: EngineInfo) -> str:
    """An engine that did not answer the test, told once (the engine's hint names the address itself)."""
    hint = (info.hint or "").removesuffix("; agents on other engines go on")  # none are on it yet
    hint = hint[:1].upper() + hint[1:]
    if info.endpoint in hint:
        return hint + "."
    return f"Nothing answers at {info.endpoint}." + (f"\n{hint}." if hint else "")


class AddEngineDialog(QDialog):
    """The form for one engine; `test_connection()` and `add()` are what its buttons run."""

    def __init__(self, owner: Owner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("addEngineDialog")
        self.setWindowTitle("Add an engine")
        self.owner = owner
        self.added: dict[str, Any] | None = None
        self.chooser: QFileDialog | None = None  # while open (tests find it here)
        self._files_chosen = False  # once the person picks, the address no longer picks for them
        self._tls_rows: list[QWidget] = []

        self.name = QLineEdit()
        self.name.setObjectName("engineName")
        self.name.setPlaceholderText("e.g. gpu-box")
        name_hint = QLabel("Lower-case letters, digits, - and _ (at most 32). Agents and the panel show it.")
        name_hint.setObjectName("hint")

        self.by_address = QRadioButton("Its address")
        self.by_address.setObjectName("byAddress")
        self.by_context = QRadioButton("A Docker context on this machine")
        self.by_context.setObjectName("byContext")
        self.by_address.setChecked(True)
        reach = QButtonGroup(self)
        reach.addButton(self.by_address)
        reach.addButton(self.by_context)
        self.address = QLineEdit()
        self.address.setObjectName("engineAddress")
        self.address.setFont(mono_font())
        self.address.setPlaceholderText("ssh://user@host   or   tcp://host:2376")
        self.tls_ca, ca_row = self._file_row("tlsCa", "ca.pem", "Choose the CA certificate")
        self.tls_cert, cert_row = self._file_row("tlsCert", "cert.pem", "Choose your client certificate")
        self.tls_key, key_row = self._file_row("tlsKey", "key.pem", "Choose your client key")
        self.tls_hint = QLabel("For tcp:// (TLS is required): the engine's CA, your certificate and key.")
        self.tls_hint.setObjectName("hint")
        self.context = QLineEdit()
        self.context.setObjectName("engineContext")
        self.context.setPlaceholderText("a name that `docker context ls` lists")

        reach_box = QGroupBox("How Berth reaches it")
        rf = QFormLayout(reach_box)
        rf.addRow(self.by_address)
        rf.addRow("Address:", self.address)
        rf.addRow("TLS CA:", ca_row)
        rf.addRow("Certificate:", cert_row)
        rf.addRow("Key:", key_row)
        rf.addRow("", self.tls_hint)
        rf.addRow(self.by_context)
        rf.addRow("Context:", self.context)

        self.files_local = QRadioButton(FILES_LOCAL_TEXT)
        self.files_local.setObjectName("filesLocal")
        self.files_sync = QRadioButton(FILES_SYNC_TEXT)
        self.files_sync.setObjectName("filesSync")
        self.files_sync.setChecked(True)
        files = QButtonGroup(self)
        files.addButton(self.files_local)
        files.addButton(self.files_sync)
        files_box = QGroupBox("The agents' workspace on it")
        fl = QVBoxLayout(files_box)
        fl.addWidget(self.files_sync)
        fl.addWidget(self.files_local)

        self.test_button = QPushButton("Test connection")
        self.test_button.setObjectName("testEngine")
        self.test_button.setToolTip("Ask the engine whether it answers, without adding it")
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy
        self.progress.setMaximumWidth(120)
        self.progress.setMaximumHeight(12)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.outcome = QLabel()
        self.outcome.setObjectName("engineResult")
        self.outcome.setWordWrap(True)
        self.outcome.setTextFormat(Qt.TextFormat.PlainText)
        self.outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.progress)
        test_row.addStretch(1)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.add_button = self.buttons.addButton(
            "Add engine", QDialogButtonBox.ButtonRole.AcceptRole
        )  # the platform puts it last (Linux: right of Cancel)
        self.add_button.setObjectName("primary")
        self.add_button.setDefault(True)
        self.buttons.rejected.connect(self.reject)

        top = QFormLayout()
        top.addRow("Name:", self.name)
        top.addRow("", name_hint)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(reach_box)
        layout.addWidget(files_box)
        layout.addLayout(test_row)
        layout.addWidget(self.outcome)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

        self.by_address.toggled.connect(lambda _on: self._reach_changed())
        self.address.textChanged.connect(lambda _t: self._reach_changed())
        self.files_local.clicked.connect(self._files_picked)
        self.files_sync.clicked.connect(self._files_picked)
        self.test_button.clicked.connect(lambda: self.test_connection())
        self.add_button.clicked.connect(lambda: self.add())
        self._reach_changed()
        self.resize(620, self.sizeHint().height())

    def _file_row(self, name: str, example: str, title: str) -> tuple[QLineEdit, QWidget]:
        line = QLineEdit()
        line.setObjectName(name)
        line.setPlaceholderText(f"path to {example}")
        choose = QPushButton("Choose…")
        choose.setObjectName(f"{name}Choose")
        choose.clicked.connect(lambda: self.choose_file(line, title))
        row = QWidget()
        self._tls_rows.append(row)
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(line, 1)
        box.addWidget(choose)
        return line, row

    @async_slot()
    async def choose_file(self, line: QLineEdit, title: str) -> str | None:
        """A file chooser (window-modal, awaited); the chosen path goes into `line`."""
        chooser = QFileDialog(self, title, line.text() or QDir.homePath())
        chooser.setObjectName("tlsChooser")
        chooser.setFileMode(QFileDialog.FileMode.ExistingFile)
        self.chooser = chooser
        try:
            if await run_dialog(chooser) != QDialog.DialogCode.Accepted or not chooser.selectedFiles():
                return None
            path = chooser.selectedFiles()[0]
        finally:
            self.chooser = None
            chooser.deleteLater()
        if shiboken6.isValid(line):
            line.setText(path)
        return path

    def _reach_changed(self) -> None:
        by_address = self.by_address.isChecked()
        self.address.setEnabled(by_address)
        tcp = by_address and self.address.text().strip().startswith("tcp://")
        for row in self._tls_rows:
            row.setEnabled(tcp)
        self.context.setEnabled(not by_address)
        if not self._files_chosen:  # a unix:// socket is on this machine; anything else is taken as remote
            local = by_address and self.address.text().strip().startswith("unix://")
            (self.files_local if local else self.files_sync).setChecked(True)

    def _files_picked(self) -> None:
        self._files_chosen = True

    def config(self) -> EngineConfig:
        """The engine the form describes (the core checks it: this only gathers the fields)."""
        by_address = self.by_address.isChecked()
        host = self.address.text().strip() if by_address else ""
        tcp = host.startswith("tcp://")

        def path(line: QLineEdit) -> str | None:
            return (line.text().strip() or None) if tcp else None

        return EngineConfig(
            name=self.name.text().strip(),
            host=host or None,
            context=None if by_address else (self.context.text().strip() or None),
            tls_ca=path(self.tls_ca),
            tls_cert=path(self.tls_cert),
            tls_key=path(self.tls_key),
            files=FILES_LOCAL if self.files_local.isChecked() else FILES_SYNC,
        )

    def _busy(self, text: str | None) -> None:
        """While the engine is asked: the buttons wait, a busy bar shows, the form stays as typed."""
        if not shiboken6.isValid(self.outcome):  # closed meanwhile
            return
        for w in (self.test_button, self.add_button, self.buttons.button(QDialogButtonBox.StandardButton.Cancel)):
            w.setEnabled(text is None)
        self.progress.setVisible(text is not None)
        if text is not None:
            self._show(text, BUSY_COLOR)

    def _show(self, text: str, color: str) -> None:
        if shiboken6.isValid(self.outcome):
            self.outcome.setText(text)
            self.outcome.setStyleSheet(f"color: {color};")

    @async_slot()
    async def test_connection(self) -> EngineInfo | None:
        """Ask the engine whether it answers, with a connection of its own; nothing is added."""
        config = self.config()
        if not (config.host or config.context):
            self._show("Give the engine's address, or the name of a Docker context.", ERROR_COLOR)
            return None
        self._busy(f"Asking {config.host or 'context ' + (config.context or '')}…")
        try:
            info = await self.owner.test_engine(replace(config, name=config.name or "new"))
        except BerthError as e:
            self._show(error_text(e), ERROR_COLOR)
            return None
        except Exception as e:
            logger.exception("could not test the engine")
            self._show(f"Internal error: {e}", ERROR_COLOR)
            return None
        finally:
            self._busy(None)
        if info.available:
            self._show(f"It answers: Docker {info.version} at {info.endpoint}.", OK_COLOR)
        else:
            self._show(not_answering(info), ERROR_COLOR)
        return info

    @async_slot()
    async def add(self) -> dict[str, Any] | None:
        """Add it through the core (it must answer); on success the dialog closes, else it says why."""
        self._busy("Checking that it answers, then copying Berth's base images there (this can take a minute)…")
        try:
            added = await self.owner.add_engine(self.config())
        except BerthError as e:
            self._show(f"Not added: {error_text(e)}", ERROR_COLOR)
            return None
        except Exception as e:
            logger.exception("could not add the engine")
            self._show(f"Not added: internal error ({e})", ERROR_COLOR)
            return None
        finally:
            self._busy(None)
        self.added = added
        if shiboken6.isValid(self):
            self.accept()
        return added
