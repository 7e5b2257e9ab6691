"""The Approval Queue: host commands waiting for the person, and the history of decided ones.

Left, two lists (waiting, decided); right, the selected request in full: agent, folder, age, and the
exact command in a monospace block through `display_command` (hidden characters as escapes, every
line shown, long lines wrapped — never elided), with a warning when it holds hidden characters.
Approve, Deny, and Approve & trust with an editable pattern that is parsed and checked against this
very command before it is saved. Ctrl+Enter approves the selected request, Delete denies it.

The lists reload from the core (in a thread) whenever an `approval.*` event arrives.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QKeySequence, QShortcut, QTextOption
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.application import Application
from app.core.approvals import ShellRequest
from app.core.display import display_command, has_hidden_characters
from app.core.patterns import PatternError, explain_pattern, parse_pattern, pattern_matches
from app.errors import BerthError
from app.ui import format as fmt
from app.ui.approval_model import (
    COL_AGENT,
    COL_COMMAND,
    COL_CWD,
    COL_EXIT,
    COL_STATUS,
    COL_TIME,
    REQUEST_ROLE,
    RequestTableModel,
    outcome_text,
)
from app.ui.container_panel import EmptyState
from app.ui.resources import icon
from app.ui.slots import async_slot
from app.ui.tasks import TaskSet

logger = logging.getLogger(__name__)

HIDDEN_WARNING = (
    "<b>This command contains hidden or invisible characters.</b> They are shown below as escapes such as "
    "<code>\\u202e</code>; the command that runs holds the real characters, which can make text look "
    "different from what it does. Deny it unless you know why they are there."
)


def loop_running() -> bool:
    try:
        return asyncio.get_event_loop().is_running()
    except RuntimeError:
        return False


def plain(text: str) -> str:
    """The core's messages quote code in backticks; a person reads quotation marks."""
    return re.sub(r"`([^`]*)`", "“\\1”", text)


def mono_font() -> QFont:
    font = QFont("monospace")
    font.setStyleHint(QFont.StyleHint.Monospace)
    return font


def command_block(object_name: str = "commandBlock", *, line_ends: bool = False) -> QPlainTextEdit:
    """A read-only monospace block that shows every line of a command (wrapped, never elided)."""
    block = QPlainTextEdit()
    block.setObjectName(object_name)
    block.setReadOnly(True)
    block.setFont(mono_font())
    block.setWordWrapMode(QTextOption.WrapMode.WrapAnywhere)
    block.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    if line_ends:  # a mark at the end of each real line, so that a wrapped line never looks like two
        option = block.document().defaultTextOption()
        option.setFlags(option.flags() | QTextOption.Flag.ShowLineAndParagraphSeparators)
        block.document().setDefaultTextOption(option)
    block.setTextInteractionFlags(
        Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
    )
    return block


class TrustBox(QFrame):
    """The pattern editor of "Approve & trust": pre-filled, parsed and checked against the command as it changes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trustBox")
        self.command = ""
        self.agent = ""
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.pattern = QLineEdit()
        self.pattern.setObjectName("trustPattern")
        self.pattern.setFont(mono_font())
        self.pattern.setPlaceholderText("e.g.  git diff *")
        self.verdict = QLabel()
        self.verdict.setObjectName("verdict")
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.PlainText)
        self.confirm = QPushButton(icon("trust"), "Approve and trust")
        self.confirm.setObjectName("primary")
        self.cancel = QPushButton("Cancel")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel)
        buttons.addWidget(self.confirm)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.addWidget(self.title)
        layout.addWidget(self.pattern)
        layout.addWidget(self.verdict)
        layout.addLayout(buttons)
        self.pattern.textChanged.connect(self.check)
        self.hide()

    def open_for(self, req: ShellRequest, proposal: str | None, why_not: str | None) -> None:
        self.command, self.agent = req.command, req.agent
        self.title.setText(
            f"Approve this command and from now on let <b>{req.agent}</b> run every command the pattern allows "
            "without asking. Edit the pattern to allow less (or more):"
        )
        self.pattern.setText(proposal or "")
        if why_not:
            self.pattern.setEnabled(False)
            self.set_verdict(False, f"No pattern can trust this command: {why_not}.")
        else:
            self.pattern.setEnabled(True)
            self.check()
        self.show()
        self.pattern.setFocus()

    def set_verdict(self, ok: bool, text: str) -> None:
        self.verdict.setText(text)
        self.verdict.setProperty("ok", ok)
        self.verdict.setStyleSheet("color: #2e7d4f;" if ok else "color: #b3261e;")
        self.confirm.setEnabled(ok)

    def check(self) -> bool:
        """Parse the pattern and check it allows this command; say in words what it will allow."""
        text = self.pattern.text()
        try:
            pattern = parse_pattern(text)
        except PatternError as e:
            self.set_verdict(False, f"Not a valid pattern: {e}.")
            return False
        if not pattern_matches(pattern, self.command):
            self.set_verdict(False, "This pattern does not allow the command above, so it cannot be trusted for it.")
            return False
        self.set_verdict(True, plain(explain_pattern(pattern)))
        return True


class RequestDetail(QWidget):
    """One request in full; the decision buttons while it is pending, its outcome and output after."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request: ShellRequest | None = None
        self.heading = QLabel()
        self.heading.setObjectName("detailTitle")
        self.heading.setWordWrap(True)
        self.meta = QLabel()
        self.meta.setObjectName("hint")
        self.meta.setWordWrap(True)
        self.meta.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warning = QLabel(HIDDEN_WARNING)
        self.warning.setObjectName("hiddenWarning")
        self.warning.setWordWrap(True)
        self.warning.setTextFormat(Qt.TextFormat.RichText)
        self.command = command_block(line_ends=True)
        self.command.setMinimumHeight(70)

        self.approve_button = QPushButton(icon("approve"), "Approve")
        self.approve_button.setObjectName("approve")
        self.approve_button.setToolTip("Run this command now (Ctrl+Enter)")
        self.deny_button = QPushButton(icon("deny"), "Deny")
        self.deny_button.setObjectName("deny")
        self.deny_button.setToolTip("Refuse; the command never runs (Delete)")
        self.trust_button = QPushButton(icon("trust"), "Approve && trust…")
        self.trust_button.setToolTip("Approve, and trust a pattern so that matching commands run without asking")
        self.decision = QWidget()
        row = QHBoxLayout(self.decision)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.approve_button)
        row.addWidget(self.deny_button)
        row.addStretch(1)
        row.addWidget(self.trust_button)
        self.trust = TrustBox()

        self.outcome = QLabel()
        self.outcome.setObjectName("outcome")
        self.outcome.setWordWrap(True)
        self.output_label = QLabel("Output")
        self.output_label.setObjectName("sectionTitle")
        self.output = command_block("outputBlock")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 4, 4, 4)
        layout.addWidget(self.heading)
        layout.addWidget(self.meta)
        layout.addWidget(self.warning)
        layout.addWidget(self.command)
        layout.addWidget(self.decision)
        layout.addWidget(self.trust)
        layout.addWidget(self.outcome)
        layout.addWidget(self.output_label)
        layout.addWidget(self.output, 1)
        layout.addStretch(0)
        self.spacer = layout.itemAt(layout.count() - 1)
        self.show_request(None)

    def fit_command(self) -> None:
        """As tall as the command (wrapped), up to half the pane; it scrolls beyond that."""
        fm = self.command.fontMetrics()
        width = self.command.viewport().width()
        columns = max(20, (width if width > 100 else 480) // max(1, fm.horizontalAdvance("m")) - 1)
        text = self.command.toPlainText()
        lines = sum(max(1, -(-len(line) // columns)) for line in text.split("\n"))
        line_h = fm.lineSpacing()
        want = lines * line_h + 26
        self.command.setFixedHeight(max(64, min(want, max(120, self.height() // 2))))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self.request is not None:
            self.fit_command()

    def show_request(self, req: ShellRequest | None) -> None:
        same = req is not None and self.request is not None and req.request_id == self.request.request_id
        self.request = req
        if req is None:
            for w in (self.heading, self.meta, self.warning, self.command, self.decision, self.trust):
                w.hide()
            for w in (self.outcome, self.output_label, self.output):
                w.hide()
            return
        pending = req.status == "pending"
        self.heading.setText(
            f"<b>{req.agent}</b> asks to run this command on your computer"
            if pending
            else f"<b>{req.agent}</b> asked to run this command"
        )
        self.heading.show()
        self.update_meta()
        self.warning.setVisible(has_hidden_characters(req.command))
        shown = display_command(req.command)
        if self.command.toPlainText() != shown:
            self.command.setPlainText(shown)
        self.command.show()
        self.fit_command()
        self.decision.setVisible(pending)
        if not pending or not same:
            self.trust.hide()
        self.outcome.setVisible(not pending)
        has_output = not pending and req.result is not None
        self.output_label.setVisible(has_output)
        self.output.setVisible(has_output)
        spacer = self.spacer.spacerItem() if self.spacer is not None else None
        if spacer is not None:  # without output below, the free space goes under the buttons
            spacer.changeSize(
                0,
                0 if has_output else 1,
                QSizePolicy.Policy.Minimum,
                QSizePolicy.Policy.Minimum if has_output else QSizePolicy.Policy.Expanding,
            )
            self.updateGeometry()
        if not pending:
            self.outcome.setText(self._outcome(req))
            if req.result is not None:
                text = req.result.stdout
                if req.result.stderr:
                    text += ("" if not text or text.endswith("\n") else "\n") + req.result.stderr
                self.output.setPlainText(display_command(text) if text else "(no output)")

    def update_meta(self) -> None:
        req = self.request
        if req is None:
            return
        parts = [f"in {req.cwd}", f"asked {fmt.age(req.created)} ago"]
        if req.status == "pending" and req.expires_at:
            left = req.expires_at - time.time()
            parts.append(f"expires in {fmt.age(time.time() - max(left, 0))}" if left > 0 else "expiring now")
        parts.append(f"timeout {fmt.duration_ms(req.timeout_s * 1000)}")
        self.meta.setText(" · ".join(parts))

    @staticmethod
    def _outcome(req: ShellRequest) -> str:
        text = outcome_text(req).replace(" by ", " · approved by ").capitalize()
        if req.decided_at:
            text += " at " + time.strftime("%H:%M:%S", time.localtime(req.decided_at))
        if req.status == "expired":
            text = (
                "Expired: nobody approved or denied it in time, so it never ran"
                + (" (at " + time.strftime("%H:%M:%S", time.localtime(req.decided_at)) + ")" if req.decided_at else "")
                + "."
            )
        elif req.status == "denied":
            text += ". It never ran."
        result = req.result
        if result is not None:
            if result.timed_out:
                text += f" — killed at its timeout after {fmt.duration_ms(result.duration_ms)}."
            elif result.exit_code is None:
                text += " — outcome unknown."
            else:
                text += f" — exit code {result.exit_code} after {fmt.duration_ms(result.duration_ms)}."
            if result.truncated:
                text += " Output truncated."
        return text


class ApprovalQueue(QWidget):
    """The Approvals view; `pendingChanged(n)` drives the badge and the tray."""

    pendingChanged = Signal(int)
    message = Signal(str)

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.pending_model = RequestTableModel(parent=self)
        self.history_model = RequestTableModel(history=True, parent=self)
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
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(26)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionResizeMode(COL_COMMAND, QHeaderView.ResizeMode.Stretch)
        if model.history:
            widths = {COL_AGENT: 100, COL_CWD: 110, COL_TIME: 66, COL_STATUS: 170, COL_EXIT: 44}
        else:
            widths = {COL_AGENT: 100, COL_CWD: 150, COL_TIME: 70}
        header.setMinimumSectionSize(40)
        for col, width in widths.items():
            if col < model.columnCount():
                table.setColumnWidth(col, width)
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
            except Exception as e:
                logger.exception("could not load the approval queue")
                self.message.emit(f"Could not load the approval queue: {e}")
                return
            if self._stopped:
                return
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
        for b in (self.detail.approve_button, self.detail.deny_button, self.detail.trust_button):
            b.setEnabled(enabled)
        self.detail.trust.confirm.setEnabled(enabled and bool(self.detail.trust.verdict.property("ok")))

    async def _decide(self, req: ShellRequest, decision: str, trust: str | None = None) -> ShellRequest | None:
        self._buttons(False)
        try:
            done = await self.app.approvals.decide(req.request_id, decision, trust=trust, actor="user")  # type: ignore[arg-type]
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
        verb = {"approve": "Approved", "deny": "Denied"}[decision]
        extra = f" and trusted `{trust}` for {req.agent}" if trust else ""
        self.message.emit(f"{verb} {req.agent}'s command{extra}.")
        self.detail.trust.hide()
        self.on_event()
        return done

    @async_slot()
    async def approve_selected(self) -> ShellRequest | None:
        req = self.selected_pending()
        return await self._decide(req, "approve") if req is not None else None

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
            why_not = e.message.removeprefix("command: ").removeprefix("cannot propose a pattern: ")
        if self.selected_pending() is req:
            self.detail.trust.open_for(req, proposal, why_not)

    @async_slot()
    async def trust_selected(self) -> ShellRequest | None:
        """Approve the selected request and trust the edited pattern (checked here, and again by the core)."""
        req = self.selected_pending()
        box = self.detail.trust
        if req is None or not box.isVisible() or req.command != box.command or not box.check():
            return None
        return await self._decide(req, "approve", trust=parse_pattern(box.pattern.text()).text)
