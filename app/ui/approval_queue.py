"""The Approval Queue: host commands waiting for the person, and the history of decided ones.

Left, two lists (waiting, decided); right, the selected request in full (approval_detail.py: the access
it asks for in words, its folder, every warning, the exact command — agent text always as plain text).

Approve runs it in the sandbox (on a full-access request it lowers it: "Approve in sandbox"); Approve
with full access (offered on a full-access request, and where no sandbox works, when it is the only
way) asks to confirm first; Deny; Approve & trust with an editable pattern, proposed as the exact
command, parsed and checked against it before it is saved. Ctrl+Enter approves the safe way, Delete
denies.

The lists reload from the core (in a thread) whenever an `approval.*` event arrives.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontMetrics, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.application import Application
from app.core.approvals import ShellRequest
from app.core.patterns import parse_pattern
from app.errors import BerthError
from app.host import Access
from app.ui.approval_detail import RequestDetail
from app.ui.approval_model import (
    COL_ACCESS,
    COL_AGENT,
    COL_COMMAND,
    COL_CWD,
    COL_EXIT,
    COL_STATUS,
    COL_TIME,
    REQUEST_ROLE,
    RequestTableModel,
)
from app.ui.chips import ChipDelegate
from app.ui.dialogs import confirm
from app.ui.resources import icon
from app.ui.slots import async_slot
from app.ui.tasks import TaskSet
from app.ui.widgets import EmptyState, loop_running, plain

logger = logging.getLogger(__name__)

FULL_ACCESS_CONFIRM = (
    "It can read, change and delete any of your files, use the network, and reach what you are logged in to "
    "(SSH keys, the keyring, Docker). Approve only if you know what every part of it does."
)


def risk_sentence(words: list[str]) -> str:
    """`has hidden characters, and sudo: runs as root` -> for "This command ..."."""
    quoted = [f"“{w}”" for w in words]
    joined = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
    return f"has {'a risk' if len(words) == 1 else 'risks'}: {joined}"


def _bold(font: QFont) -> QFont:
    bold = QFont(font)
    bold.setBold(True)
    return bold


class ApprovalQueue(QWidget):
    """The Approvals view; `pendingChanged(n)` drives the badge and the tray."""

    pendingChanged = Signal(int)
    message = Signal(str)

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        workspaces = os.path.realpath(app.workspaces.root)  # requests carry real paths
        self.pending_model = RequestTableModel(workspaces=workspaces, parent=self)
        self.history_model = RequestTableModel(history=True, workspaces=workspaces, parent=self)
        self.tasks = TaskSet()
        self._reload_task: asyncio.Task[None] | None = None
        self._reload_again = False
        self._want: str | None = None  # a request to select once it is loaded (from a notification)
        self.loaded_once = False
        self._stopped = False

        title = QLabel("Approvals")
        title.setObjectName("pageTitle")
        self.summary = QLabel("Commands agents ask to run on this computer, outside any container.")
        self.summary.setObjectName("hint")
        head = QHBoxLayout()
        head.addWidget(title)
        head.addSpacing(12)
        head.addWidget(self.summary, 1)

        self.pending_table = self._table(self.pending_model)
        self.pending_table.setObjectName("pendingTable")
        self.history_table = self._table(self.history_model)
        self.history_table.setObjectName("historyTable")
        self.empty = EmptyState()
        self.empty.picture.setPixmap(icon("approvals").pixmap(48, 48))
        self.empty.show_state(
            "No commands waiting for you",
            "When an agent asks to run a command on this computer (<b>shell.request</b>),<br>"
            "it waits here until you approve or deny it.",
        )
        self.pending_stack = QStackedWidget()
        self.pending_stack.addWidget(self.empty)
        self.pending_stack.addWidget(self.pending_table)

        self.pending_label = QLabel("Waiting for you")
        self.pending_label.setObjectName("sectionTitle")
        self.history_label = QLabel("Decided")
        self.history_label.setObjectName("sectionTitle")
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.pending_label)
        top_layout.addWidget(self.pending_stack, 1)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 6, 0, 0)
        bottom_layout.addWidget(self.history_label)
        bottom_layout.addWidget(self.history_table, 1)
        lists = QSplitter(Qt.Orientation.Vertical)
        lists.addWidget(top)
        lists.addWidget(bottom)
        lists.setSizes([300, 300])
        lists.setChildrenCollapsible(False)

        self.detail = RequestDetail()
        self.detail.setMinimumWidth(360)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(lists)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([600, 460])
        split.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 10)
        layout.addLayout(head)
        layout.addWidget(split, 1)

        self.pending_table.selectionModel().currentRowChanged.connect(self._pending_selected)
        self.history_table.selectionModel().currentRowChanged.connect(self._history_selected)
        self.detail.approve_button.clicked.connect(lambda: self.approve_selected())
        self.detail.full_button.clicked.connect(lambda: self.approve_full_selected())
        self.detail.deny_button.clicked.connect(lambda: self.deny_selected())
        self.detail.trust_button.clicked.connect(lambda: self.open_trust())
        self.detail.trust.cancel.clicked.connect(self.detail.trust.hide)
        self.detail.trust.confirm.clicked.connect(lambda: self.trust_selected())
        self.detail.trust.pattern.returnPressed.connect(lambda: self.trust_selected())
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            sc = QShortcut(QKeySequence(keys), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(lambda: self.approve_selected())
        deny = QShortcut(QKeySequence(Qt.Key.Key_Delete), self.pending_table)
        deny.setContext(Qt.ShortcutContext.WidgetShortcut)
        deny.activated.connect(lambda: self.deny_selected())

        self._ages = QTimer(self)
        self._ages.setInterval(1000)
        self._ages.timeout.connect(self._tick)
        self._ages.start()

    @staticmethod
    def _table(model: RequestTableModel) -> QTableView:
        table = QTableView()
        table.setModel(model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setAlternatingRowColors(True)
        table.setShowGrid(False)
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideRight)
        table.setItemDelegateForColumn(COL_COMMAND, ChipDelegate(table))  # the command, then its risk chips
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(26)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionResizeMode(COL_COMMAND, QHeaderView.ResizeMode.Stretch)
        # Widths from the font (a header is never clipped, at any scale): the wider of the header and a sample.
        if model.history:
            # Outcome and folder as their common short forms (longer ones elide, whole in the tooltip): the
            # command keeps room to be read beside six columns.
            samples = {COL_AGENT: "research-bot", COL_ACCESS: "full access", COL_CWD: "workspace",
                       COL_TIME: "12 Dec 23:45", COL_STATUS: "denied by you", COL_EXIT: "255"}  # fmt: skip
        else:
            samples = {COL_AGENT: "research-bot", COL_ACCESS: "full access", COL_CWD: "workspace/site/x",
                       COL_TIME: "Waiting"}  # fmt: skip
        header.setMinimumSectionSize(40)
        body, head = table.fontMetrics(), QFontMetrics(_bold(table.font()))
        for col, sample in samples.items():
            title = str(model.headerData(col, Qt.Orientation.Horizontal))
            table.setColumnWidth(col, max(body.horizontalAdvance(sample), head.horizontalAdvance(title) + 8) + 18)
        return table

    # -- loading -----------------------------------------------------------------------------------

    def on_event(self, _topic: str = "", _data: Any = None) -> None:
        """An approval event: reload both lists (coalesced: one reload runs at a time)."""
        if self._stopped or not loop_running():
            return  # stopped, or a late queued signal after the loop stopped (shutdown)
        if self._reload_task is not None and not self._reload_task.done():
            self._reload_again = True
            return
        self._reload_task = self.tasks.spawn(self.reload())

    def stop(self) -> None:
        """No more reloads (the window is going away)."""
        self._stopped = True
        self._ages.stop()
        self.tasks.cancel()

    async def reload(self) -> None:
        while not self._stopped:
            self._reload_again = False
            try:
                pending = await asyncio.to_thread(self.app.approvals.list, "pending")
                everything = await asyncio.to_thread(self.app.approvals.list, None)
                sandbox = await asyncio.to_thread(lambda: self.app.approvals.sandbox)  # checked once, then kept
                patterns = {p.id: p.pattern for p in await asyncio.to_thread(self.app.approvals.list_patterns)}
            except Exception as e:
                logger.exception("could not load the approval queue")
                self.message.emit(f"Could not load the approval queue: {e}")
                return
            if self._stopped:
                return
            self.detail.sandbox = sandbox
            self.detail.patterns = patterns
            self.history_model.set_patterns(patterns)
            self._apply(list(reversed(pending)), [r for r in everything if r.status != "pending"])
            if not self._reload_again:
                return

    def _apply(self, pending: list[ShellRequest], history: list[ShellRequest]) -> None:
        current = self.detail.request
        self.pending_model.set_requests(pending)  # oldest first: the queue reads top to bottom
        self.history_model.set_requests(history)  # newest first
        self.loaded_once = True
        n = len(pending)
        self.pending_stack.setCurrentWidget(self.pending_table if n else self.empty)
        self.pending_label.setText(f"Waiting for you ({n})" if n else "Waiting for you")
        self.history_label.setText(f"Decided ({len(history)})" if history else "Decided")
        self.pendingChanged.emit(n)
        if self._want and self.select_request(self._want):
            self._want = None
        elif current is not None:
            # The shown request moved on (decided elsewhere, expired, finished): follow it.
            fresh = self.pending_model.get(current.request_id) or self.history_model.get(current.request_id)
            if fresh is None:
                self._select_first()
            elif fresh.status != "pending" and current.status == "pending" and n:
                self._select_first()  # the next one waiting; the decided one is in the history
            else:
                self.detail.show_request(fresh)
        else:
            self._select_first()

    def _select_first(self) -> None:
        if self.pending_model.rowCount():
            self._select(self.pending_table, 0)
        elif self.history_model.rowCount():
            self._select(self.history_table, 0)
        else:
            self.detail.show_request(None)

    def _select(self, table: QTableView, row: int) -> None:
        other = self.history_table if table is self.pending_table else self.pending_table
        other.selectionModel().clearSelection()
        other.selectionModel().setCurrentIndex(QModelIndex(), QItemSelectionModel.SelectionFlag.Clear)
        index = table.model().index(row, 0)
        table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )
        table.scrollTo(index)
        self.detail.show_request(index.data(REQUEST_ROLE))

    def select_request(self, request_id: str) -> bool:
        """Show one request (from a notification); remembered until it is loaded if not yet."""
        for table, model in ((self.pending_table, self.pending_model), (self.history_table, self.history_model)):
            row = model.row_of(request_id)
            if row >= 0:
                self._select(table, row)
                if table is self.pending_table:
                    self.pending_table.setFocus()
                return True
        self._want = request_id
        return False

    def _pending_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.history_table.selectionModel().clearSelection()
            self.detail.show_request(current.data(REQUEST_ROLE))

    def _history_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.pending_table.selectionModel().clearSelection()
            self.detail.show_request(current.data(REQUEST_ROLE))

    def _tick(self) -> None:
        if self.isVisible():
            self.pending_model.tick()
            self.detail.update_meta()

    # -- decisions ---------------------------------------------------------------------------------

    def selected_pending(self) -> ShellRequest | None:
        req = self.detail.request
        return req if req is not None and req.status == "pending" else None

    def _buttons(self, enabled: bool) -> None:
        d = self.detail
        for b in (d.approve_button, d.full_button, d.deny_button, d.trust_button):
            b.setEnabled(enabled)
        if enabled:
            d.trust.check()  # the confirm button follows the pattern's verdict
        else:
            d.trust.confirm.setEnabled(False)

    async def _decide(
        self, req: ShellRequest, decision: str, trust: str | None = None, access: Access | None = None
    ) -> ShellRequest | None:
        self._buttons(False)
        try:
            done = await self.app.approvals.decide(
                req.request_id,
                decision,  # type: ignore[arg-type]
                trust=trust,
                actor="user",
                access=access if decision == "approve" else None,
            )
        except BerthError as e:
            self.message.emit(f"Could not {decision} the request: {e.message}")
            self.on_event()
            return None
        except Exception as e:
            logger.exception("deciding %s failed", req.request_id)
            self.message.emit(f"Could not {decision} the request: internal error ({e})")
            return None
        finally:
            self._buttons(True)
        if decision == "approve":
            how = " with full access" if done.effective_access == "host" else " in the sandbox"
            extra = f" and trusted “{trust}” for {req.agent}" if trust else ""
            self.message.emit(f"Approved {req.agent}'s command{how}{extra}.")
        else:
            self.message.emit(f"Denied {req.agent}'s command.")
        self.detail.trust.hide()
        self.on_event()
        return done

    async def _confirm_full_access(self, title: str, text: str, ok_text: str) -> bool:
        """The person says yes to full access, in a window-modal box awaited on the loop (no nested exec)."""
        return await confirm(self, title, text, ok_text, detail=FULL_ACCESS_CONFIRM)

    @async_slot()
    async def approve_selected(self) -> ShellRequest | None:
        """Approve the safe way: in the sandbox (lowering a full-access request). Where no sandbox works there
        is no safe way: it goes through the full-access confirmation instead."""
        req = self.selected_pending()
        if req is None:
            return None
        if not self.app.approvals.sandbox.available:
            return await self._approve_full(req)
        if self.detail.risky(req) and not await self._confirm_risky(req):
            return None
        return await self._decide(req, "approve", access="sandbox")

    async def _confirm_risky(self, req: ShellRequest) -> bool:
        """Approve asks once more for a command with a risk chip or hidden characters (Cancel is the default)."""
        self._buttons(False)
        try:
            return await confirm(
                self,
                "Approve a risky command",
                f"This command {risk_sentence(self.detail.risk_words(req))}. Run it anyway?",
                "Approve anyway",
                detail="Read every part of the command first. Nothing runs until you approve it; Deny is safe.",
            )
        finally:
            self._buttons(True)

    @async_slot()
    async def approve_full_selected(self) -> ShellRequest | None:
        """Approve with full access, after the person confirms it (a full-access request, or no sandbox here)."""
        req = self.selected_pending()
        return await self._approve_full(req) if req is not None else None

    async def _approve_full(self, req: ShellRequest) -> ShellRequest | None:
        if req.access != "host" and self.app.approvals.sandbox.available:
            return None  # never more than the agent asked for
        self._buttons(False)
        try:
            risks = self.detail.risk_words(req) if self.detail.risky(req) else []
            yes = await self._confirm_full_access(
                "Approve with full access",
                "Run this command with full access, as you, outside any sandbox?"
                + (f" It {risk_sentence(risks)}." if risks else ""),
                "Run with full access",
            )
        finally:
            self._buttons(True)
        if not yes:
            return None
        return await self._decide(req, "approve", access="host")

    @async_slot()
    async def deny_selected(self) -> ShellRequest | None:
        req = self.selected_pending()
        return await self._decide(req, "deny") if req is not None else None

    @async_slot()
    async def open_trust(self) -> None:
        """Show the pattern editor pre-filled with the core's proposal (or why no pattern can trust it)."""
        req = self.selected_pending()
        if req is None:
            return
        proposal: str | None = None
        why_not: str | None = None
        try:
            proposal = await asyncio.to_thread(self.app.approvals.propose, req.command)
        except BerthError as e:
            why_not = plain(e.message.removeprefix("command: ").removeprefix("cannot propose a pattern: "))
        if self.selected_pending() is req:
            self.detail.trust.open_for(req, proposal, why_not, self.app.approvals.sandbox.available)

    @async_slot()
    async def trust_selected(self) -> ShellRequest | None:
        """Approve the selected request and trust the edited pattern (checked here, and again by the core);
        with full access only when ticked, and confirmed."""
        req = self.selected_pending()
        box = self.detail.trust
        if req is None or not box.isVisible() or req.command != box.command or not box.check():
            return None
        pattern = parse_pattern(box.pattern.text()).text
        access = box.access()
        if access == "host":
            self._buttons(False)
            try:
                yes = await self._confirm_full_access(
                    "Trust with full access",
                    "Approve this command and trust the pattern with full access? Every command it allows will "
                    "run as you, outside any sandbox, without asking.",
                    "Trust with full access",
                )
            finally:
                self._buttons(True)
            if not yes:
                return None
        return await self._decide(req, "approve", trust=pattern, access=access)
