"""Agent Settings dialogs: add an agent, edit one (engine, limits, trusted patterns, folders), remove one.

Dialogs are opened with `open()` and awaited as futures (never `exec()` inside an asyncio task).
Limits are saved with `Agents.set_limits` in a thread; admission control reads an agent's limits at
each request, so they apply to the next container at once. Host folders (where the agent's host
commands may run besides its workspace) are saved at once through `Application.set_host_folders`,
which refuses a folder that cannot be granted; the dialog then says why and keeps the list as it was.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.agents import validate_name
from app.core.application import Application
from app.core.display import display_text
from app.errors import BerthError
from app.model import Agent, Limits, MiB
from app.ui.dialogs import run_dialog as run_dialog  # its home was here; agents_view and wiring import it
from app.ui.folder_list import FolderList
from app.ui.patterns_editor import PatternsEditor
from app.ui.resources import icon
from app.ui.slots import async_slot

logger = logging.getLogger(__name__)

APPLY_DELAY_MS = 600  # a change is saved this long after the last one (as in Settings)


class LimitsForm(QWidget):
    """CPU quota, memory cap, container count, what happens at the limit, queue timeout, network."""

    def __init__(self, limits: Limits, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cpus = QDoubleSpinBox()
        self.cpus.setObjectName("cpus")
        self.cpus.setRange(0.05, 1024)
        self.cpus.setDecimals(2)
        self.cpus.setSingleStep(0.25)
        self.cpus.setSuffix(" CPUs")
        self.memory = QSpinBox()
        self.memory.setObjectName("memory")
        self.memory.setRange(8, 1024 * 1024)
        self.memory.setSingleStep(128)
        self.memory.setSuffix(" MiB")
        self.max_containers = QSpinBox()
        self.max_containers.setObjectName("maxContainers")
        self.max_containers.setRange(1, 1000)
        self.at_limit = QComboBox()
        self.at_limit.setObjectName("atLimit")
        self.at_limit.addItem("Queue the request (first come, first served)", "queue")
        self.at_limit.addItem("Reject the request at once", "reject")
        self.queue_timeout = QSpinBox()
        self.queue_timeout.setObjectName("queueTimeout")
        self.queue_timeout.setRange(0, 86400)
        self.queue_timeout.setSuffix(" s")
        self.network = QCheckBox("Allow network access (services may publish ports on 127.0.0.1)")
        self.network.setObjectName("network")
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow("CPU quota:", self._with_hint(self.cpus, "for all of the agent's containers together"))
        form.addRow("Memory:", self._with_hint(self.memory, "for each container"))
        form.addRow("Containers:", self._with_hint(self.max_containers, "at most, running at once"))
        form.addRow("At the limit:", self.at_limit)
        form.addRow("Queue timeout:", self._with_hint(self.queue_timeout, "a queued request gives up after this"))
        form.addRow("", self.network)
        self.at_limit.currentIndexChanged.connect(
            lambda _i: self.queue_timeout.setEnabled(self.at_limit.currentData() == "queue")
        )
        self.set_limits(limits)

    @staticmethod
    def _with_hint(field: QWidget, hint: str) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(field)
        label = QLabel(hint)
        label.setObjectName("hint")
        row.addWidget(label)
        row.addStretch(1)
        return box

    def add_top_row(self, label: str, field: QWidget, hint: str) -> None:
        """A row above the limits, aligned with them, with its hint under the field (Agent Settings' Engine)."""
        note = QLabel(hint)
        note.setObjectName("hint")
        layout = self.layout()
        assert isinstance(layout, QFormLayout)
        layout.insertRow(0, label, field)
        layout.insertRow(1, "", note)

    def set_limits(self, limits: Limits) -> None:
        self.cpus.setValue(limits.cpus)
        self.memory.setValue(max(8, limits.memory // MiB))
        self.max_containers.setValue(limits.max_containers)
        self.at_limit.setCurrentIndex(max(0, self.at_limit.findData(limits.at_limit)))
        self.queue_timeout.setValue(int(limits.queue_timeout_s))
        self.queue_timeout.setEnabled(limits.at_limit == "queue")
        self.network.setChecked(limits.network)

    def limits(self) -> Limits:
        return Limits(
            cpus=round(self.cpus.value(), 2),
            memory=self.memory.value() * MiB,
            max_containers=self.max_containers.value(),
            at_limit=self.at_limit.currentData(),
            queue_timeout_s=float(self.queue_timeout.value()),
            network=self.network.isChecked(),
        )


class AddAgentDialog(QDialog):
    """A name and limits; `Add` stays disabled until the name is valid."""

    def __init__(self, taken: set[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("addAgentDialog")
        self.setWindowTitle("Add an agent")
        self.taken = taken
        self.name = QLineEdit()
        self.name.setObjectName("agentName")
        self.name.setPlaceholderText("e.g. claude, research-bot")
        self.name_hint = QLabel("Lower-case letters, digits, - and _ (at most 32).")
        self.name_hint.setObjectName("hint")
        self.form = LimitsForm(Limits())
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.add_button = self.buttons.addButton("Add agent", QDialogButtonBox.ButtonRole.AcceptRole)
        self.add_button.setObjectName("primary")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        top = QFormLayout()
        top.addRow("Name:", self.name)
        top.addRow("", self.name_hint)
        limits = QGroupBox("Limits (you can change them later)")
        QVBoxLayout(limits).addWidget(self.form)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(limits)
        layout.addWidget(self.buttons)
        self.name.textChanged.connect(self._check)
        self._check("")

    def _check(self, text: str) -> None:
        ok = False
        if not text:
            self.name_hint.setText("Lower-case letters, digits, - and _ (at most 32).")
            self.name_hint.setStyleSheet("")
        elif text in self.taken:
            self.name_hint.setText(f"There is already an agent named {text}.")
            self.name_hint.setStyleSheet("color: #b3261e;")
        else:
            try:
                validate_name(text)
                ok = True
                self.name_hint.setText("Berth makes a token and a workspace folder for it.")
                self.name_hint.setStyleSheet("")
            except BerthError as e:
                self.name_hint.setText(e.message.removeprefix("name: "))
                self.name_hint.setStyleSheet("color: #b3261e;")
        self.add_button.setEnabled(ok)


class AgentSettingsDialog(QDialog):
    """One agent: limits, trusted patterns, workspace and host folders, each saved as it is made."""

    def __init__(self, app: Application, agent: Agent, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("agentSettings")
        self.setWindowTitle(f"Agent settings — {agent.name}")
        self.app = app
        self.agent = agent
        self.form = LimitsForm(agent.limits)
        self.error = QLabel()
        self.error.setStyleSheet("color: #b3261e;")
        self.error.setWordWrap(True)
        self.error.hide()
        limits_page = QWidget()
        lp = QVBoxLayout(limits_page)
        lp.setContentsMargins(16, 14, 16, 14)
        self._add_engine_row(app, agent)
        lp.addWidget(self.form)
        self.images = QLineEdit(", ".join(agent.images))
        self.images.setObjectName("agentImages")
        self.images.setPlaceholderText("none: only images already on this machine")
        images_label = QLabel(
            "Images it may have pulled, besides those already on this machine (patterns, comma-separated, e.g. "
            "python:*, ghcr.io/my-org/*). Images for every agent are in Settings."
        )
        images_label.setObjectName("hint")
        images_label.setWordWrap(True)
        lp.addWidget(QLabel("May pull images:"))
        lp.addWidget(self.images)
        lp.addWidget(images_label)
        note = QLabel("Changes apply to the agent's next containers; running ones keep the limits they started with.")
        note.setObjectName("hint")
        note.setWordWrap(True)
        lp.addWidget(note)
        lp.addWidget(self.error)
        self.status = QLabel()
        self.status.setObjectName("saveStatus")
        self.status.setWordWrap(True)
        lp.addWidget(self.status)
        lp.addStretch(1)

        self.workspace_path = app.workspaces.path(agent.name)
        ws_page = QWidget()
        wp = QVBoxLayout(ws_page)
        wp.setContentsMargins(16, 14, 16, 14)
        ws_box = QGroupBox("Workspace")
        wsl = QVBoxLayout(ws_box)
        ws_text = QLabel(
            "The agent's files live in this folder on your computer. It is mounted at <b>/workspace</b> in "
            "each of its containers, and its host commands run here unless they name a host folder below."
        )
        ws_text.setWordWrap(True)
        self.ws_label = QLineEdit(str(self.workspace_path))
        self.ws_label.setReadOnly(True)
        self.open_ws = QPushButton(icon("folder"), "Open in file manager")
        self.open_ws.clicked.connect(self.open_workspace)
        row = QHBoxLayout()
        row.addWidget(self.ws_label, 1)
        row.addWidget(self.open_ws)
        wsl.addWidget(ws_text)
        wsl.addLayout(row)

        hf_box = QGroupBox("Host folders")
        hfl = QVBoxLayout(hf_box)
        hf_text = QLabel(
            "Folders on your computer where this agent's host commands may also run (a project you work on "
            "with it). Sandboxed, a command can change files only in the folder it runs in. Saved at once."
        )
        hf_text.setWordWrap(True)
        self.host_folders = FolderList(
            f"Grant a host folder to {display_text(agent.name)}",
            "None yet: its host commands run only in its workspace.",
        )
        self.host_folders.setObjectName("hostFolders")
        self.host_folders.set_folders(agent.host_folders)
        self.host_folders.addRequested.connect(lambda path: self.add_host_folder(path))
        self.host_folders.removeRequested.connect(lambda path: self.remove_host_folder(path))
        self.host_folders_error = QLabel()
        self.host_folders_error.setObjectName("hostFoldersError")
        self.host_folders_error.setTextFormat(Qt.TextFormat.PlainText)
        self.host_folders_error.setStyleSheet("color: #b3261e;")
        self.host_folders_error.setWordWrap(True)
        self.host_folders_error.hide()
        hfl.addWidget(hf_text)
        hfl.addWidget(self.host_folders, 1)
        hfl.addWidget(self.host_folders_error)
        wp.addWidget(ws_box)
        wp.addWidget(hf_box, 1)

        self.patterns = PatternsEditor(app, agent.name)
        self.tabs = QTabWidget()
        self.tabs.addTab(limits_page, "Limits")
        self.tabs.addTab(self.patterns, "Trusted commands")
        self.tabs.addTab(ws_page, "Folders")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.buttons)
        # One save model with Settings: every change is saved as it is made (limits a moment after the last
        # keystroke), so there is no Save button and Close never loses anything.
        self._apply_timer = QTimer(self)
        self._apply_timer.setSingleShot(True)
        self._apply_timer.setInterval(APPLY_DELAY_MS)
        self._apply_timer.timeout.connect(lambda: self.save())
        form = self.form
        for spin in (form.cpus, form.memory, form.max_containers, form.queue_timeout):
            spin.valueChanged.connect(self._schedule)
        form.at_limit.currentIndexChanged.connect(self._schedule)
        form.network.toggled.connect(self._schedule)
        self.images.editingFinished.connect(self._schedule_if_changed)
        self.resize(700, 520)

    def _add_engine_row(self, app: Application, agent: Agent) -> None:
        """The Docker engine its containers run on (Settings -> Engines adds more); saved when chosen."""
        self.engine_box = QComboBox()
        self.engine_box.setObjectName("agentEngine")
        names = app.owner.engine_names()
        if agent.engine not in names:  # an engine Berth no longer drives: shown as it is, until changed
            names = [*names, agent.engine]
        for name in names:
            self.engine_box.addItem(name, name)
        self.engine_box.setCurrentIndex(self.engine_box.findData(agent.engine))
        self.engine_box.setMinimumWidth(160)
        hint = "Its next containers run there; running ones stay where they are."
        self.form.add_top_row("Engine:", self.engine_box, hint)
        self.engine_box.currentIndexChanged.connect(lambda _i: self.save_engine())

    @async_slot()
    async def save_engine(self) -> Agent | None:
        """Place the agent on the chosen engine at once (the core refuses an engine it does not drive)."""
        engine = self.engine_box.currentData()
        if engine == self.agent.engine:
            return self.agent
        self.engine_box.setEnabled(False)
        try:
            agent = await self.app.owner.set_engine(self.agent.name, engine)
        except BerthError as e:
            if shiboken6.isValid(self.error):
                self.error.setText(f"Not saved: {display_text(e.message)}")
                self.error.show()
                self.status.setText("")
                self.engine_box.setCurrentIndex(self.engine_box.findData(self.agent.engine))  # back to where it runs
            return None
        finally:
            if shiboken6.isValid(self.engine_box):
                self.engine_box.setEnabled(True)
        self.agent = agent
        if shiboken6.isValid(self.status):
            self.error.hide()
            self.status.setText(f"Saved ✓ — its next containers run on {display_text(agent.engine)}.")
            self.status.setStyleSheet("color: #2e7d4f;")
        return agent

    def done(self, result: int) -> None:
        """Closing saves a change still waiting for its moment (nothing typed is lost)."""
        if self._apply_timer.isActive():
            self._apply_timer.stop()
            self._apply_timer.timeout.emit()  # the same save the timer would start (a task of its own)
        super().done(result)

    def _schedule(self, *_: Any) -> None:
        self.status.setText("Saving…")
        self.status.setStyleSheet("color: #6b7280;")
        self._apply_timer.start()

    def _schedule_if_changed(self) -> None:
        if split_patterns(self.images.text()) != list(self.agent.images):
            self._schedule()

    def open_workspace(self) -> bool:
        self.workspace_path.mkdir(parents=True, exist_ok=True)
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.workspace_path)))

    @async_slot()
    async def add_host_folder(self, path: str) -> Agent | None:
        """Grant one more host folder (the core checks it: an error is shown here and nothing changes)."""
        folders = self.host_folders.folders()
        if path in folders:
            self.host_folders.select(path)
            return self.agent
        return await self._save_host_folders([*folders, path], path)

    @async_slot()
    async def remove_host_folder(self, path: str) -> Agent | None:
        """Take one host folder back; the agent's requests in it are refused from now on."""
        return await self._save_host_folders([f for f in self.host_folders.folders() if f != path])

    async def _save_host_folders(self, folders: list[str], added: str | None = None) -> Agent | None:
        self.host_folders.setEnabled(False)
        try:
            agent = await asyncio.to_thread(self.app.set_host_folders, self.agent.name, folders)
        except BerthError as e:
            self.host_folders_error.setText(f"Not saved: {display_text(e.message)}")
            self.host_folders_error.show()
            return None
        except Exception as e:
            logger.exception("could not save the host folders of %s", self.agent.name)
            self.host_folders_error.setText(f"Not saved: internal error ({e})")
            self.host_folders_error.show()
            return None
        finally:
            self.host_folders.setEnabled(True)
        self.host_folders_error.hide()
        self.agent = agent
        self.host_folders.set_folders(agent.host_folders)
        if added is not None and agent.host_folders:
            self.host_folders.select(agent.host_folders[-1])  # the real path of the one added
        return agent

    @async_slot()
    async def save(self) -> Agent | None:
        """Save the limits and image patterns now (also done by itself a moment after each change)."""
        self._apply_timer.stop()
        limits = self.form.limits()
        try:
            agent = await asyncio.to_thread(
                self.app.agents.set_limits,
                self.agent.name,
                cpus=limits.cpus,
                memory=limits.memory,
                max_containers=limits.max_containers,
                at_limit=limits.at_limit,
                queue_timeout_s=limits.queue_timeout_s,
                network=limits.network,
            )
            agent = await self.app.owner.set_images(self.agent.name, split_patterns(self.images.text()))
        except BerthError as e:
            if shiboken6.isValid(self.error):  # the dialog may have closed meanwhile
                self.error.setText(f"Not saved: {e.message}")
                self.error.show()
                self.status.setText("")
            return None
        self.agent = agent
        if shiboken6.isValid(self.status):
            self.error.hide()
            self.status.setText("Saved ✓ — limits apply to its next containers.")
            self.status.setStyleSheet("color: #2e7d4f;")
        return agent


class RemoveAgentDialog(QDialog):
    """Asks what to do with the agent's containers and its workspace folder before removing it."""

    def __init__(self, agent: str, containers: int, workspace: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("removeAgentDialog")
        self.setWindowTitle(f"Remove {agent}")
        text = QLabel(f"Remove the agent <b>{agent}</b>? Its token stops working at once and its trusted patterns go.")
        text.setWordWrap(True)
        self.remove_containers = QRadioButton(
            f"Stop and remove its {containers} container{'s' if containers != 1 else ''}"
            if containers
            else "Stop and remove its containers (it has none now)"
        )
        self.remove_containers.setObjectName("removeContainers")
        self.keep_containers = QRadioButton("Leave them (they stay in the Container Panel until you remove them)")
        self.keep_containers.setObjectName("keepContainers")
        self.remove_containers.setChecked(True)
        containers_box = QGroupBox("Its containers")
        cl = QVBoxLayout(containers_box)
        cl.addWidget(self.remove_containers)
        cl.addWidget(self.keep_containers)
        g1 = QButtonGroup(self)
        g1.addButton(self.remove_containers)
        g1.addButton(self.keep_containers)

        self.keep_workspace = QRadioButton(f"Keep the folder {workspace}")
        self.keep_workspace.setObjectName("keepWorkspace")
        self.delete_workspace = QRadioButton("Delete the folder and every file in it")
        self.delete_workspace.setObjectName("deleteWorkspace")
        self.keep_workspace.setChecked(True)
        ws_box = QGroupBox("Its workspace")
        wl = QVBoxLayout(ws_box)
        wl.addWidget(self.keep_workspace)
        wl.addWidget(self.delete_workspace)
        g2 = QButtonGroup(self)
        g2.addButton(self.keep_workspace)
        g2.addButton(self.delete_workspace)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.remove_button = buttons.addButton("Remove agent", QDialogButtonBox.ButtonRole.AcceptRole)
        self.remove_button.setObjectName("danger")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setDefault(True)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(containers_box)
        layout.addWidget(ws_box)
        layout.addWidget(buttons)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)


def split_patterns(text: str) -> list[str]:
    """`python:*, ghcr.io/org/*` -> the patterns, in order, without blanks."""
    return [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]
