"""Agent Settings: every agent with its usage against its limits, and what can be done to it.

The table (`AgentTableModel`) shows containers running / limit and CPU in use / quota, refreshed
every two seconds while the view is visible. Add (the token shown once, with a snippet), edit
(limits, patterns, workspace and host folders), rotate the token, disable/enable, remove (asking what to do with its
containers and workspace), open the workspace folder.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.application import Application
from app.errors import BerthError
from app.model import Agent
from app.ui import format as fmt
from app.ui.agent_dialogs import AddAgentDialog, AgentSettingsDialog, RemoveAgentDialog
from app.ui.dialogs import confirm, run_dialog
from app.ui.resources import icon
from app.ui.row_model import RowTableModel
from app.ui.slots import async_slot
from app.ui.tasks import TaskSet
from app.ui.token_dialog import TokenDialog
from app.ui.widgets import EmptyState, loop_running

logger = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex
COL_NAME, COL_STATE, COL_CONTAINERS, COL_CPU, COL_MEMORY, COL_AT_LIMIT, COL_NETWORK = range(7)
HEADERS = ("Agent", "State", "Containers", "CPU", "Memory", "At limit", "Network")
AGENT_ROLE = Qt.ItemDataRole.UserRole + 1
USAGE_INTERVAL_MS = 2000


@dataclass
class AgentRow:
    agent: Agent
    usage: dict[str, Any] = field(default_factory=dict)


class AgentTableModel(RowTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(HEADERS, parent)
        self._rows: list[AgentRow] = []

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        a, lim, col = row.agent, row.agent.limits, index.column()
        if role == AGENT_ROLE:
            return a
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_NAME:
                return a.name
            if col == COL_STATE:
                return "enabled" if a.enabled else "disabled"
            if col == COL_CONTAINERS:
                n = row.usage.get("containers")
                return f"{'–' if n is None else n} / {lim.max_containers}"
            if col == COL_CPU:
                used = row.usage.get("cpus_in_use")
                return f"{'–' if used is None else f'{used:.2f}'} / {lim.cpus:g} CPU"
            if col == COL_MEMORY:
                return f"{fmt.size(lim.memory)} each"
            if col == COL_AT_LIMIT:
                return f"queue ({lim.queue_timeout_s:g} s)" if lim.at_limit == "queue" else "reject"
            if col == COL_NETWORK:
                if not lim.network:
                    return "off"
                services = (row.usage.get("network") or {}).get("services") or []
                return "on · " + ", ".join(services) if services else "on"
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == COL_STATE and not a.enabled:
                return QColor("#b3261e")
            if col == COL_CONTAINERS and row.usage.get("containers", 0) >= lim.max_containers:
                return QColor("#c2410c")
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_CONTAINERS:
                return "containers running (and starting) / the most it may run at once"
            if col == COL_CPU:
                return "CPU in use now by all its containers / its CPU quota"
            if col == COL_NETWORK:
                net = row.usage.get("network")
                if not lim.network:
                    return "No network: its containers run with network 'none'."
                if not net:
                    return "Network allowed."
                names = ", ".join(net.get("services") or []) or "none running"
                return (
                    f"Its own network {net['name']}: internet, and its containers reach each other.\n"
                    f"Services reachable there by name: {names}. Other agents' containers never reach it."
                )
        return None

    def set_agents(self, agents: list[Agent]) -> None:
        usage = {r.agent.name: r.usage for r in self._rows}
        self.reset_rows([AgentRow(a, usage.get(a.name, {})) for a in agents])  # changed rarely, by the person

    def set_usage(self, name: str, usage: dict[str, Any]) -> None:
        for i, r in enumerate(self._rows):
            if r.agent.name == name and r.usage != usage:
                r.usage = usage
                self.dataChanged.emit(self.index(i, COL_CONTAINERS), self.index(i, COL_NETWORK))

    def agents(self) -> list[Agent]:
        return [r.agent for r in self._rows]

    def row_of(self, name: str) -> int:
        return next((i for i, r in enumerate(self._rows) if r.agent.name == name), -1)

    def usage(self, name: str) -> dict[str, Any]:
        return next((r.usage for r in self._rows if r.agent.name == name), {})


class AgentsView(QWidget):
    message = Signal(str)

    def __init__(
        self, app: Application, rpc_url: Any, parent: QWidget | None = None, *, patterns_changed: Any = None
    ) -> None:
        super().__init__(parent)
        self.app = app
        self._patterns_changed = patterns_changed  # the bridge's signal: open Agent Settings follow it
        self._rpc_url = rpc_url  # a callable: the RPC server's URL once it listens
        self.model = AgentTableModel(self)
        self.dialogs: list[Any] = []  # open dialogs (tests find them here)

        title = QLabel("Agents")
        title.setObjectName("pageTitle")
        hint = QLabel("Programs allowed to use Berth, each with its own token, limits, workspace and containers.")
        hint.setObjectName("hint")
        head = QHBoxLayout()
        head.addWidget(title)
        head.addSpacing(12)
        head.addWidget(hint, 1)

        self.add_button = self._button("", "Add agent…", "Make a new agent and its token", primary=True)
        self.edit_button = self._button("settings", "Settings…", "Limits, trusted commands, workspace and host folders")
        self.rotate_button = self._button("key", "New token…", "Replace the agent's token; the old one stops working")
        self.enable_button = self._button("disable", "Disable", "A disabled agent's calls are refused")
        self.workspace_button = self._button("folder", "Open workspace", "Open the agent's folder in the file manager")
        self.remove_button = self._button("remove", "Remove…", "Forget the agent (asks about containers and files)")
        self.remove_button.setObjectName("danger")
        bar = QHBoxLayout()
        for b in (self.add_button, self.edit_button, self.rotate_button, self.enable_button, self.workspace_button):
            bar.addWidget(b)
        bar.addStretch(1)
        bar.addWidget(self.remove_button)

        self.table = QTableView()
        self.table.setObjectName("agentsTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(28)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(True)
        for col, width in {COL_NAME: 200, COL_STATE: 90, COL_CONTAINERS: 110, COL_CPU: 130, COL_MEMORY: 120}.items():
            self.table.setColumnWidth(col, width)
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(COL_AT_LIMIT, 130)
        self.empty = EmptyState()
        self.empty.picture.setPixmap(icon("agents").pixmap(48, 48))
        self.empty.show_state(
            "No agents yet",
            "An agent is a program that uses Berth with its own token.<br>Add one to get its token and a "
            "snippet to paste into its configuration.",
            "Add agent…",
        )
        self.empty.button.clicked.connect(lambda: self.add_agent())
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.table)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 10)
        layout.addLayout(head)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)

        self.add_button.clicked.connect(lambda: self.add_agent())
        self.edit_button.clicked.connect(lambda: self.edit_selected())
        self.rotate_button.clicked.connect(lambda: self.rotate_selected())
        self.enable_button.clicked.connect(lambda: self.toggle_selected())
        self.workspace_button.clicked.connect(self.open_workspace)
        self.remove_button.clicked.connect(lambda: self.remove_selected())
        self.table.doubleClicked.connect(lambda _i: self.edit_selected())
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selection())
        self._selection()

        self._usage_timer = QTimer(self)
        self._usage_timer.setInterval(USAGE_INTERVAL_MS)
        self._usage_timer.timeout.connect(self._poll_usage)
        self.tasks = TaskSet()
        self._usage_task: asyncio.Task[None] | None = None
        self._reload_task: asyncio.Task[None] | None = None
        self._stopped = False

    def _button(self, icon_name: str, text: str, tip: str, *, primary: bool = False) -> QPushButton:
        b = QPushButton(icon(icon_name), text) if icon_name else QPushButton(text)
        b.setToolTip(tip)
        if primary:
            b.setObjectName("primary")
        return b

    def base_url(self) -> str:
        url = self._rpc_url() if callable(self._rpc_url) else None
        return str(url or f"http://127.0.0.1:{self.app.rpc_port}")

    # -- loading -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._usage_timer.start()
        self.on_agents_changed()

    def stop(self) -> None:
        self._usage_timer.stop()
        self._stopped = True
        self.tasks.cancel()
        for d in list(self.dialogs):
            d.close()

    def on_agents_changed(self) -> None:
        if self._stopped or not loop_running():
            return  # stopped, or a late queued signal after the loop stopped (shutdown)
        self._reload_task = self.tasks.spawn(self.reload())

    async def reload(self) -> None:
        try:
            agents = await asyncio.to_thread(self.app.agents.list)
        except Exception as e:
            logger.exception("could not list agents")
            self.message.emit(f"Could not list the agents: {e}")
            return
        if self._stopped:
            return
        selected = self.selected()
        self.model.set_agents(agents)
        self.stack.setCurrentWidget(self.table if agents else self.empty)
        if selected is not None:
            self.select(selected.name)
        elif agents:
            self.select(agents[0].name)
        self._selection()
        self._poll_usage(force=True)

    def _poll_usage(self, force: bool = False) -> None:
        if not (force or self.isVisible()) or not self.app.engine_available:
            return
        if self._usage_task is not None and not self._usage_task.done():
            return
        self._usage_task = self.tasks.spawn(self.refresh_usage())

    async def refresh_usage(self) -> None:
        agents = self.model.agents()
        results = await asyncio.gather(*(self.app.containers.usage(a) for a in agents), return_exceptions=True)
        if self._stopped:
            return
        for a, usage in zip(agents, results, strict=True):
            if isinstance(usage, dict):
                self.model.set_usage(a.name, usage)
            else:
                logger.debug("usage of %s: %s", a.name, usage)

    # -- selection ---------------------------------------------------------------------------------

    def selected(self) -> Agent | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].data(AGENT_ROLE) if rows else None

    def select(self, name: str) -> bool:
        row = self.model.row_of(name)
        if row < 0:
            return False
        self.table.selectRow(row)
        return True

    def _selection(self) -> None:
        a = self.selected()
        for b in (self.edit_button, self.rotate_button, self.enable_button, self.workspace_button, self.remove_button):
            b.setEnabled(a is not None)
        self.enable_button.setText("Enable" if a is not None and not a.enabled else "Disable")

    # -- actions -----------------------------------------------------------------------------------

    def _show_token(self, name: str, token: str, *, rotated: bool = False) -> TokenDialog:
        dialog = TokenDialog(name, token, self.base_url(), rotated=rotated, parent=self.window())
        self.dialogs.append(dialog)
        dialog.finished.connect(lambda _r: self.dialogs.remove(dialog) if dialog in self.dialogs else None)
        dialog.open()
        return dialog

    @async_slot()
    async def add_agent(self) -> str | None:
        """Ask for a name and limits, make the agent, show its token once."""
        dialog = AddAgentDialog({a.name for a in self.model.agents()}, self.window())
        self.dialogs.append(dialog)
        try:
            if await run_dialog(dialog) != AddAgentDialog.DialogCode.Accepted:
                return None
            name, limits = dialog.name.text(), dialog.form.limits()
        finally:
            self.dialogs.remove(dialog)
            dialog.deleteLater()
        try:
            _agent, token = await asyncio.to_thread(self.app.agents.add, name, limits)
        except BerthError as e:
            self.message.emit(f"Could not add {name}: {e.message}")
            return None
        await self.reload()
        self.select(name)
        self._show_token(name, token)
        self.message.emit(f"Added the agent {name}.")
        return token

    @async_slot()
    async def edit_selected(self) -> None:
        a = self.selected()
        if a is None:
            return
        dialog = AgentSettingsDialog(self.app, a, self.window())
        dialog.patterns.message.connect(self.message)
        if self._patterns_changed is not None:
            self._patterns_changed.connect(dialog.patterns.on_changed)
        self.dialogs.append(dialog)
        await dialog.patterns.reload()
        try:
            await run_dialog(dialog)
        finally:
            if self._patterns_changed is not None:
                self._patterns_changed.disconnect(dialog.patterns.on_changed)
            self.dialogs.remove(dialog)
            dialog.deleteLater()
        await self.reload()

    @async_slot()
    async def rotate_selected(self) -> str | None:
        a = self.selected()
        if a is None:
            return None
        if not await confirm(
            self,
            "New token",
            f"Make a new token for {a.name}?",
            "Make new token",
            detail="The old token stops working at once; the agent needs the new one.",
        ):
            return None
        try:
            token = await asyncio.to_thread(self.app.agents.rotate_token, a.name)
        except BerthError as e:
            self.message.emit(f"Could not make a new token: {e.message}")
            return None
        self._show_token(a.name, token, rotated=True)
        return token

    @async_slot()
    async def toggle_selected(self) -> Agent | None:
        a = self.selected()
        if a is None:
            return None
        try:
            agent = await asyncio.to_thread(self.app.agents.set_enabled, a.name, not a.enabled)
        except BerthError as e:
            self.message.emit(f"Could not change {a.name}: {e.message}")
            return None
        self.message.emit(f"{a.name} is enabled." if agent.enabled else f"{a.name} is disabled: its calls are refused.")
        await self.reload()
        return agent

    def open_workspace(self) -> bool:
        a = self.selected()
        if a is None:
            return False
        path = self.app.workspaces.path(a.name)
        ok = QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
        if not ok:
            self.message.emit(f"Could not open a file manager; the folder is {path}")
        return ok

    @async_slot()
    async def remove_selected(self) -> bool:
        """Ask about containers and workspace, then remove the agent through the core (as `berth agents remove`)."""
        a = self.selected()
        if a is None:
            return False
        try:
            containers = await self.app.owner.agents_containers(a.name)
        except BerthError:
            containers = []
        dialog = RemoveAgentDialog(a.name, len(containers), self.app.workspaces.path(a.name), self.window())
        self.dialogs.append(dialog)
        try:
            if await run_dialog(dialog) != RemoveAgentDialog.DialogCode.Accepted:
                return False
            remove_containers = dialog.remove_containers.isChecked()
            delete_workspace = dialog.delete_workspace.isChecked()
        finally:
            self.dialogs.remove(dialog)
            dialog.deleteLater()
        try:
            failed = await self.app.owner.remove_agent(a.name, containers=remove_containers, workspace=delete_workspace)
        except BerthError as e:
            self.message.emit(f"Could not remove {a.name}: {e.message}")
            return False
        note = f" ({failed} container{'s' if failed != 1 else ''} could not be removed)" if failed else ""
        self.message.emit(f"Removed the agent {a.name}{note}.")
        await self.reload()
        return True
