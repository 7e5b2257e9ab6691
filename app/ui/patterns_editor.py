"""Trusted patterns of one agent (or the global ones): list, add, edit, remove, and try a command.

Every pattern is parsed by the core's parser as it is typed (with a plain explanation of what it
allows, and `pattern_warnings`: what it really allows beyond its words), and saved to the store at
once through `Approvals.add_pattern` / `remove_pattern` (in a thread). Each pattern has its access: in
the sandbox (the default), or full access as the person, ticked on purpose under a warning. Editing is
remove-then-add, so the audit log shows both. The "try a command" field says whether a command would
run without asking, in the sandbox and when it asks for full access, and why not.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.application import Application
from app.core.approvals import TrustedPattern
from app.core.host_access import pattern_warnings
from app.core.patterns import PatternError, Verdict, check_command, explain_pattern, parse_pattern
from app.errors import BerthError
from app.host import Access
from app.ui.approval_detail import WarningList
from app.ui.approval_model import FULL_ACCESS_COLOR, plain_tooltip
from app.ui.resources import icon
from app.ui.row_model import RowTableModel
from app.ui.slots import async_slot
from app.ui.tasks import WINDOW_TASKS, Latest
from app.ui.widgets import mono_font, plain

logger = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex
COL_PATTERN, COL_ACCESS, COL_ALLOWS, COL_SCOPE = range(4)
PATTERN_ROLE = Qt.ItemDataRole.UserRole + 1
ACCESS_LABELS = {"sandbox": "sandbox", "host": "full access"}


class PatternTableModel(RowTableModel):
    """Trusted patterns as rows: the pattern, its access, what it allows in words, and whose it is."""

    HEADERS = ("Pattern", "Access", "Allows", "For")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(self.HEADERS, parent)
        self._rows: list[TrustedPattern] = []
        self._font = mono_font()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        p = self._rows[index.row()]
        col = index.column()
        if role == PATTERN_ROLE:
            return p
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_PATTERN:
                return p.pattern
            if col == COL_ACCESS:
                return ACCESS_LABELS.get(p.access, p.access)
            if col == COL_ALLOWS:
                text = explain_text(p.pattern).removeprefix("Allows ")
                return text[:1].upper() + text[1:]
            if col == COL_SCOPE:
                return p.agent or "every agent"
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_ACCESS:
                return (
                    "Full access: matching commands run as you, outside any sandbox, without asking"
                    if p.access == "host"
                    else "Matching commands run in a sandbox without asking: they read your files, write only "
                    "their folder and have no network (a command that asks for full access still asks you)"
                )
            return plain_tooltip(self.data(index, Qt.ItemDataRole.DisplayRole) or "")
        if role == Qt.ItemDataRole.FontRole and col == COL_PATTERN:
            return self._font
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_ACCESS and p.access == "host":
            return QColor(FULL_ACCESS_COLOR)
        return None

    def set_patterns(self, patterns: list[TrustedPattern]) -> None:
        self.reset_rows(patterns)  # a handful of rows, changed by the person: a reset is fine here

    def patterns(self) -> list[TrustedPattern]:
        return list(self._rows)


def explain_text(text: str) -> str:
    try:
        return plain(explain_pattern(parse_pattern(text)))
    except PatternError as e:
        return f"(ignored: {e})"


class PatternsEditor(QWidget):
    """Trusted patterns for `agent` (None: the global ones, which apply to every agent)."""

    changed = Signal()
    message = Signal(str)

    def __init__(self, app: Application, agent: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.agent = agent
        self.model = PatternTableModel(self)
        self.editing: TrustedPattern | None = None
        self._global: list[TrustedPattern] = []  # for an agent: the global patterns, which apply too
        self.sandbox_available = True  # read from the core on reload
        self._latest = Latest()  # only the reload started last shows

        self.table = QTableView()
        self.table.setObjectName("patternsTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setMinimumHeight(110)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_ALLOWS, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(COL_PATTERN, 170)
        self.table.setColumnWidth(COL_ACCESS, 90)
        self.table.setColumnHidden(COL_SCOPE, True)  # one scope per editor; the intro says which

        self.pattern = QLineEdit()
        self.pattern.setObjectName("patternEdit")
        self.pattern.setFont(mono_font())
        self.pattern.setPlaceholderText("a pattern, e.g.  git status   or   pytest *")
        self.full_access = QCheckBox("Full access")
        self.full_access.setObjectName("patternFullAccess")
        self.full_access.setToolTip(
            "Matching commands that ask for full access run as you, outside any sandbox, without asking. "
            "Unticked, the pattern approves commands in the sandbox only."
        )
        self.add_button = QPushButton(icon("add"), "Add")
        self.add_button.setObjectName("addPattern")
        self.save_button = QPushButton("Save change")
        self.save_button.hide()
        self.edit_button = QPushButton(icon("edit"), "Edit")
        self.remove_button = QPushButton(icon("remove"), "Remove")
        self.remove_button.setObjectName("danger")
        self.explain = QLabel(" ")
        self.explain.setObjectName("hint")
        self.explain.setWordWrap(True)
        self.explain.setTextFormat(Qt.TextFormat.PlainText)
        self.warnings = WarningList("patternWarning")
        self.sandbox_note = QLabel()
        self.sandbox_note.setWordWrap(True)
        self.sandbox_note.setTextFormat(Qt.TextFormat.PlainText)
        self.sandbox_note.setStyleSheet("color: #92400e;")
        self.sandbox_note.hide()
        self.try_command = QLineEdit()
        self.try_command.setObjectName("tryCommand")
        self.try_command.setFont(mono_font())
        self.try_command.setPlaceholderText("try a command, e.g.  git status --short")
        self.try_result = QLabel(" ")
        self.try_result.setWordWrap(True)
        self.try_result.setTextFormat(Qt.TextFormat.PlainText)
        self.try_full = QLabel()
        self.try_full.setWordWrap(True)
        self.try_full.setTextFormat(Qt.TextFormat.PlainText)
        self.try_full.hide()

        edit_row = QHBoxLayout()
        edit_row.addWidget(self.pattern, 1)
        edit_row.addWidget(self.full_access)
        edit_row.addWidget(self.add_button)
        edit_row.addWidget(self.save_button)
        list_buttons = QHBoxLayout()
        list_buttons.addWidget(self.edit_button)
        list_buttons.addWidget(self.remove_button)
        list_buttons.addStretch(1)
        scope = (
            f"Commands of <b>{agent}</b> that match one of these run without asking (global patterns apply too)."
            if agent
            else "Commands of <b>every agent</b> that match one of these run without asking."
        )
        intro = QLabel(scope + " They run in the sandbox unless a pattern has full access. Changes are saved at once.")
        intro.setWordWrap(True)
        try_label = QLabel("Try a command:")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(intro)
        layout.addWidget(self.sandbox_note)
        layout.addWidget(self.table, 1)
        layout.addLayout(list_buttons)
        layout.addLayout(edit_row)
        layout.addWidget(self.explain)
        layout.addWidget(self.warnings)
        layout.addSpacing(6)
        layout.addWidget(try_label)
        layout.addWidget(self.try_command)
        layout.addWidget(self.try_result)
        layout.addWidget(self.try_full)

        self.pattern.textChanged.connect(self._pattern_changed)
        self.full_access.toggled.connect(lambda _on: self._pattern_changed(self.pattern.text()))
        self.pattern.returnPressed.connect(lambda: self.save_pattern())
        self.add_button.clicked.connect(lambda: self.save_pattern())
        self.save_button.clicked.connect(lambda: self.save_pattern())
        self.edit_button.clicked.connect(self.edit_selected)
        self.remove_button.clicked.connect(lambda: self.remove_selected())
        self.table.doubleClicked.connect(lambda _i: self.edit_selected())
        self.try_command.textChanged.connect(self._try)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selection())
        self._pattern_changed("")
        self._selection()

    # -- loading -----------------------------------------------------------------------------------

    def on_changed(self, _pattern: object = None) -> None:
        """Patterns changed elsewhere (the command line, another dialog): show them as they are now."""
        WINDOW_TASKS.spawn(self.reload())

    async def reload(self) -> None:
        mine = self._latest.begin()  # the dialog opening and a pattern added from elsewhere reload at once
        try:
            patterns = await asyncio.to_thread(self.app.approvals.list_patterns, self.agent, False)
            sandbox = await asyncio.to_thread(lambda: self.app.approvals.sandbox)  # checked once, then kept
        except Exception as e:
            logger.exception("could not load trusted patterns")
            self.message.emit(f"Could not load the trusted patterns: {e}")
            return
        if self.agent is None:
            patterns = [p for p in patterns if p.agent is None]
            self._global = []
        else:
            everything = await asyncio.to_thread(self.app.approvals.list_patterns, None)
            self._global = [p for p in everything if p.agent is None]
        if not self._latest.current(mine):
            return  # a reload started after this one shows the newer list
        self.model.set_patterns(patterns)
        self.sandbox_available = sandbox.available
        self.sandbox_note.setText(
            f"No sandbox works here ({plain(sandbox.reason or 'unknown reason')}): only patterns with full access "
            "approve anything, and only commands that ask for full access."
        )
        self.sandbox_note.setVisible(not sandbox.available)
        self._selection()
        self._try()

    def selected(self) -> TrustedPattern | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].data(PATTERN_ROLE) if rows else None

    def _selection(self) -> None:
        has = self.selected() is not None
        self.edit_button.setEnabled(has)
        self.remove_button.setEnabled(has)

    # -- editing -----------------------------------------------------------------------------------

    def access(self) -> Access:
        return "host" if self.full_access.isChecked() else "sandbox"

    def _pattern_changed(self, text: str) -> None:
        ok = False
        warnings: list[str] = []
        if not text.strip():
            self.explain.setText("Words are matched exactly; a lone * matches any one word, or any rest when last.")
            self.explain.setStyleSheet("")
        else:
            try:
                parsed = parse_pattern(text)
                self.explain.setText(plain(explain_pattern(parsed)))
                self.explain.setStyleSheet("color: #2e7d4f;")
                warnings = [plain(w) for w in pattern_warnings(parsed, self.access())]
                ok = True
            except PatternError as e:
                self.explain.setText(f"Not a valid pattern: {e}.")
                self.explain.setStyleSheet("color: #b3261e;")
        if not ok and self.full_access.isChecked():
            warnings = ["Full access: matching commands run as you, outside any sandbox, with no question asked."]
        self.warnings.set_warnings(warnings)
        self.add_button.setEnabled(ok)
        self.save_button.setEnabled(ok)

    def edit_selected(self) -> None:
        p = self.selected()
        if p is None:
            return
        self.editing = p
        self.full_access.setChecked(p.access == "host")
        self.pattern.setText(p.pattern)
        self.add_button.hide()
        self.save_button.show()
        self.pattern.setFocus()

    def _stop_editing(self) -> None:
        self.editing = None
        self.pattern.clear()
        self.full_access.setChecked(False)
        self.save_button.hide()
        self.add_button.show()

    @async_slot()
    async def save_pattern(self) -> TrustedPattern | None:
        """Add the typed pattern (or replace the one being edited); the parser checks it first."""
        text = self.pattern.text()
        try:
            parsed = parse_pattern(text)
        except PatternError as e:
            self.explain.setText(f"Not a valid pattern: {e}.")
            return None
        old = self.editing
        access = self.access()
        self.add_button.setEnabled(False)
        self.save_button.setEnabled(False)
        try:
            added = await asyncio.to_thread(
                lambda: self.app.approvals.add_pattern(parsed.text, self.agent, access=access)
            )
            if old is not None and old.id != added.id:
                await asyncio.to_thread(self.app.approvals.remove_pattern, old.id)
        except BerthError as e:
            self.message.emit(f"Could not save the pattern: {e.message}")
            return None
        finally:
            self._pattern_changed(self.pattern.text())
        self._stop_editing()
        await self.reload()
        self.changed.emit()
        return added

    @async_slot()
    async def remove_selected(self) -> bool:
        p = self.selected()
        if p is None:
            return False
        try:
            await asyncio.to_thread(self.app.approvals.remove_pattern, p.id)
        except BerthError as e:
            self.message.emit(f"Could not remove the pattern: {e.message}")
            return False
        if self.editing is not None and self.editing.id == p.id:
            self._stop_editing()
        await self.reload()
        self.changed.emit()
        return True

    # -- trying ------------------------------------------------------------------------------------

    def verdict(self, command: str, access: Access = "sandbox") -> Verdict:
        """Would `command`, asking for `access`, run without asking? For an agent: its patterns, then the global
        ones; a full-access request only by full-access patterns, a sandboxed one never where no sandbox works
        (as the core decides)."""
        if access == "sandbox" and not self.sandbox_available:
            return Verdict(False, None, "no sandbox works here, so no pattern approves a sandboxed command")
        parsed = []
        for p in [*self.model.patterns(), *self._global]:
            if access == "host" and p.access != "host":
                continue
            try:
                parsed.append(parse_pattern(p.pattern))
            except PatternError:
                continue
        if access == "host" and not parsed:
            return Verdict(False, None, "no pattern here has full access")
        return check_command(command, parsed)

    def _try(self, *_: Any) -> None:
        command = self.try_command.text()
        if not command.strip():
            self.try_result.setText(" ")
            self.try_result.setStyleSheet("")
            self.try_full.hide()
            return
        v = self.verdict(command)
        if v.allowed:
            self.try_result.setText(f"✔ In the sandbox, runs without asking: {plain(v.reason)}.")
            self.try_result.setStyleSheet("color: #2e7d4f;")
        else:
            self.try_result.setText(f"✘ In the sandbox, would ask you first: {plain(v.reason)}.")
            self.try_result.setStyleSheet("color: #92400e;")
        full = self.verdict(command, "host")
        if full.allowed:
            self.try_full.setText(f"⚠ Asking for full access, runs as you without asking: {plain(full.reason)}.")
            self.try_full.setStyleSheet("color: #b3261e;")
        else:
            self.try_full.setText(f"✘ Asking for full access, would ask you first: {plain(full.reason)}.")
            self.try_full.setStyleSheet("color: #92400e;")
        self.try_full.show()
