"""Agent Settings: every agent with its usage against its limits, and what can be done to it.

The table (`AgentTableModel`) shows, as live bars refreshed every two seconds while the view is visible,
containers running against the limit (marked at the limit), CPU in use against the quota (in % as on the
Containers page: 100 % is one CPU), the memory of its largest container against the cap, and the queue
when requests wait; then when its token was last used and its workspace folder. Add (the token shown once,
with a snippet), edit (limits, patterns, workspace and host folders), rotate the token, disable/enable,
remove (asking what to do with its containers and workspace), open the workspace folder.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
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
from app.ui.tasks import Latest, TaskSet
from app.ui.token_dialog import TokenDialog
from app.ui.widgets import EmptyState, loop_running

logger = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex
(
    COL_NAME,
    COL_STATE,
    COL_CONTAINERS,
    COL_CPU,
    COL_MEMORY,
    COL_QUEUE,
    COL_AT_LIMIT,
    COL_LAST_USED,
    COL_NETWORK,
    COL_WORKSPACE,
) = range(10)
HEADERS = (
    "Agent",
    "State",
    "Containers",
    "CPU",
    "Largest container",
    "Queue",
    "At the limit",
    "Last used",
    "Network",
    "Workspace",
)
AGENT_ROLE = Qt.ItemDataRole.UserRole + 1
BAR_ROLE = Qt.ItemDataRole.UserRole + 2  # (value, maximum, text) for a usage bar
USAGE_INTERVAL_MS = 2000
AT_LIMIT_COLOR = "#c2410c"


@dataclass
class AgentRow:
    agent: Agent
    usage: dict[str, Any] = field(default_factory=dict)
    workspace: str = ""
    last_used: float | None = None


def last_used_text(when: float | None, now: float | None = None) -> str:
    if not when:
        return "never"
    return f"{fmt.age(when, now)} ago"


class AgentTableModel(RowTableModel):
    """Agents as rows, with live usage against their limits (bars: containers, CPU, largest container)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(HEADERS, parent)
        self._rows: list[AgentRow] = []

    def bar(self, row: AgentRow, col: int) -> tuple[float, float, str] | None:
        lim, usage = row.agent.limits, row.usage
        if col == COL_CONTAINERS:
            n = usage.get("containers")
            if n is None:
                return None
            full = " · at limit" if n >= lim.max_containers else ""
            return float(n), float(lim.max_containers), f"{n} of {lim.max_containers}{full}"
        if col == COL_CPU:
            used = usage.get("cpus_in_use")
            if used is None:
                return None
            # As on the Containers page: 100 % is one CPU; the quota in the same unit.
            return used * 100, lim.cpus * 100, f"{fmt.percent(used * 100)} of {lim.cpus * 100:g} %"
        if col == COL_MEMORY:
            largest = usage.get("largest_memory")
            if largest is None:
                return None
            return float(largest), float(lim.memory), f"{fmt.size(largest) or '0 B'} of {fmt.size(lim.memory)}"
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        a, lim, col = row.agent, row.agent.limits, index.column()
        if role == AGENT_ROLE:
            return a
        if role == BAR_ROLE:
            return self.bar(row, col)
        at_limit = row.usage.get("containers", 0) >= lim.max_containers
        queued = int(row.usage.get("queued") or 0)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_NAME:
                return a.name
            if col == COL_STATE:
                return "enabled" if a.enabled else "disabled"
            if col in (COL_CONTAINERS, COL_CPU, COL_MEMORY):
                bar = self.bar(row, col)
                return bar[2] if bar is not None else "–"
            if col == COL_QUEUE:
                return f"{queued} waiting" if queued else "–"
            if col == COL_AT_LIMIT:
                return f"queue ({lim.queue_timeout_s:g} s)" if lim.at_limit == "queue" else "reject"
            if col == COL_LAST_USED:
                return last_used_text(row.last_used)
            if col == COL_NETWORK:
                if not lim.network:
                    return "off"
                services = (row.usage.get("network") or {}).get("services") or []
                return "on · " + ", ".join(services) if services else "on"
            if col == COL_WORKSPACE:
                return row.workspace
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == COL_STATE and not a.enabled:
                return QColor("#b3261e")
            if (col == COL_CONTAINERS and at_limit) or (col == COL_QUEUE and queued):
                return QColor(AT_LIMIT_COLOR)
        if role == Qt.ItemDataRole.DecorationRole and col == COL_NAME and (at_limit or queued):
            return icon("warning")
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_NAME and (at_limit or queued):
                return (
                    f"{a.name} runs as many containers as it may ({lim.max_containers})"
                    + (f"; {queued} request{'s' if queued != 1 else ''} wait for a free slot" if queued else "")
                    + ". Raise its limit with Edit agent…, or stop one of its containers."
                )
            if col == COL_CONTAINERS:
                return "Containers running (and starting) / the most it may run at once"
            if col == COL_CPU:
                return "CPU in use now by all its containers / its CPU quota (100 % is one CPU, as on Containers)"
            if col == COL_MEMORY:
                return "Memory of its largest running container / the memory cap of each container"
            if col == COL_QUEUE:
                return "Requests waiting for a free container slot (at the limit, with 'queue')"
            if col == COL_LAST_USED:
                when = row.last_used
                return (
                    time.strftime("Token last used %Y-%m-%d %H:%M:%S", time.localtime(when))
                    if when
                    else ("Its token has not been used yet")
                )
            if col == COL_WORKSPACE:
                return f"{row.workspace}\nMounted at /workspace in each of its containers"
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

    def set_agents(self, agents: list[Agent], workspaces: dict[str, str] | None = None) -> None:
        old = {r.agent.name: r for r in self._rows}
        self.reset_rows(  # changed rarely, by the person
            [
                AgentRow(
                    a,
                    old[a.name].usage if a.name in old else {},
                    (workspaces or {}).get(a.name, old[a.name].workspace if a.name in old else ""),
                    old[a.name].last_used if a.name in old else None,
                )
                for a in agents
            ]
        )

    def set_usage(self, name: str, usage: dict[str, Any], last_used: float | None = None) -> None:
        for i, r in enumerate(self._rows):
            if r.agent.name == name and (r.usage != usage or r.last_used != last_used):
                r.usage = usage
                r.last_used = last_used
                self.dataChanged.emit(self.index(i, COL_NAME), self.index(i, COL_WORKSPACE))

    def agents(self) -> list[Agent]:
        return [r.agent for r in self._rows]

    def row_of(self, name: str) -> int:
        return next((i for i, r in enumerate(self._rows) if r.agent.name == name), -1)

    def usage(self, name: str) -> dict[str, Any]:
        return next((r.usage for r in self._rows if r.agent.name == name), {})


class UsageBarDelegate(QStyledItemDelegate):
    """A cell as a bar (value against its maximum) with its words beside it; orange at the limit."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        bar = index.data(BAR_ROLE)
        if bar is None:
            super().paint(painter, option, index)
            return
        value, maximum, text = bar
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        share = 0.0 if maximum <= 0 else max(0.0, min(1.0, value / maximum))
        full = share >= 0.999
        rect = opt.rect.adjusted(6, 0, -6, 0)
        fm = opt.fontMetrics
        track_w = max(24, min(70, rect.width() - fm.horizontalAdvance(text) - 10))
        h = max(6, fm.height() // 2)
        track = QRect(rect.x(), rect.center().y() - h // 2, track_w, h)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#e5e7eb"))
        painter.drawRoundedRect(track, h / 2, h / 2)
        if share > 0:
            filled = QRect(track.x(), track.y(), max(h, int(track_w * share)), h)
            painter.setBrush(QColor(AT_LIMIT_COLOR if full or share >= 0.9 else "#1f5f8b"))
            painter.drawRoundedRect(filled, h / 2, h / 2)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        color = index.data(Qt.ItemDataRole.ForegroundRole)
        pen = color if isinstance(color, QColor) else opt.palette.text().color()
        painter.setPen(opt.palette.highlightedText().color() if selected and color is None else pen)
        text_rect = rect.adjusted(track_w + 8, 0, 0, 0)
        painter.drawText(
            text_rect,
            int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
            fm.elidedText(text, Qt.TextElideMode.ElideRight, text_rect.width()),
        )
        painter.restore()


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
        self.edit_button = self._button("edit", "Edit agent…", "Limits, trusted commands, workspace and host folders")
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
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)  # over their values
        bars = UsageBarDelegate(self.table)
        for col in (COL_CONTAINERS, COL_CPU, COL_MEMORY):
            self.table.setItemDelegateForColumn(col, bars)
        fm = self.table.fontMetrics()
        samples = {
            COL_NAME: "research-bot-xx",
            COL_STATE: "disabled",
            COL_CONTAINERS: "█████ 10 of 10 · at limit",
            COL_CPU: "█████ 100.0 % of 100 %",
            COL_MEMORY: "█████ 512 MiB of 512 MiB",
            COL_QUEUE: "3 waiting",
            COL_AT_LIMIT: "queue (120 s)",
            COL_LAST_USED: "59 min ago",
            COL_NETWORK: "on · docs-site, ingest",
        }
        for col, sample in samples.items():
            heading = HEADERS[col]
            self.table.setColumnWidth(col, max(fm.horizontalAdvance(sample), fm.horizontalAdvance(heading) + 12) + 16)
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Interactive)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a workspace path keeps its end
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
        self._latest = Latest()  # only the reload started last shows

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
        mine = self._latest.begin()  # reloads overlap (an agents.changed signal, the view opening)
        try:
            agents = await asyncio.to_thread(self.app.agents.list)
            workspaces = {a.name: str(self.app.workspaces.path(a.name)) for a in agents}
        except Exception as e:
            logger.exception("could not list agents")
            self.message.emit(f"Could not list the agents: {e}")
            return
        if self._stopped or not self._latest.current(mine):
            return
        selected = self.selected()
        self.model.set_agents(agents, workspaces)
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
        results = await asyncio.gather(
            *(self.app.containers.usage(a, largest_memory=True) for a in agents), return_exceptions=True
        )
        used = await asyncio.to_thread(lambda: {a.name: self.app.agents.last_used(a.name) for a in agents})
        if self._stopped:
            return
        for a, usage in zip(agents, results, strict=True):
            if isinstance(usage, dict):
                self.model.set_usage(a.name, usage, used.get(a.name))
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
