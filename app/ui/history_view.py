"""The run history: every finished temporary run kept, searched by a word of its command or output, filtered
by agent and exit code; one run's whole output below, to read, copy or save.

Searching happens in a worker thread (the core's full-text index) as the person types, a moment after
the last key; an answer that arrives after a newer question is dropped. How long the history is kept
is a Setting (7 days or 10 000 runs by default); the core prunes it in the background.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.application import Application
from app.core.history import ExitFilter, RunSummary
from app.ui import format as fmt
from app.ui.container_model import command_text, plural
from app.ui.logs_viewer import LogsWindow, exit_chip
from app.ui.resources import icon
from app.ui.row_model import RowTableModel
from app.ui.tasks import TaskSet
from app.ui.widgets import EmptyState, fill_agent_box

logger = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex
COL_ID, COL_COMMAND, COL_AGENT, COL_EXIT, COL_TOOK, COL_FINISHED, COL_OUTPUT = range(7)
HEADERS = ("#", "Command", "Agent", "Exit", "Took", "Finished", "Output")
RUN_ROLE = int(Qt.ItemDataRole.UserRole.value) + 21
SEARCH_DELAY_MS = 200
FAILED = QBrush(QColor("#b3261e"))
MUTED = QBrush(QColor("#6b7280"))


def finished_text(t: float, now: float | None = None) -> str:
    """Today's runs by the time, older ones by the date too."""
    now = time.time() if now is None else now
    if time.strftime("%Y-%m-%d", time.localtime(t)) == time.strftime("%Y-%m-%d", time.localtime(now)):
        return time.strftime("%H:%M:%S", time.localtime(t))
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def command_line(command: str) -> str:
    return command_text(command)


class RunHistoryModel(RowTableModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(HEADERS, parent)
        self._rows: list[RunSummary] = []

    def set_runs(self, runs: list[RunSummary]) -> None:
        self.reset_rows(runs)

    def runs(self) -> list[RunSummary]:
        return list(self._rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        run: RunSummary = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_ID:
                return str(run.id)
            if col == COL_COMMAND:
                return command_line(run.command)
            if col == COL_AGENT:
                return run.agent
            if col == COL_EXIT:
                text, _bad = exit_chip(run.exit_code, timed_out=run.timed_out, oom=run.oom_killed)
                return str(run.exit_code) if text.startswith("Exited") else text.lower()
            if col == COL_TOOK:
                return fmt.duration_ms(run.duration_s * 1000)
            if col == COL_FINISHED:
                return finished_text(run.finished)
            if col == COL_OUTPUT:
                return run.snippet or ("(no output)" if not run.output_bytes else "")
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == COL_EXIT and run.failed:
                return FAILED
            if col in (COL_ID, COL_TOOK, COL_FINISHED, COL_OUTPUT):
                return MUTED
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (COL_ID, COL_EXIT, COL_TOOK):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_COMMAND:
                return f"$ {command_line(run.command)}"
            if col == COL_FINISHED:
                return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.finished))
            if col == COL_OUTPUT and run.snippet:
                return run.snippet
        if role == RUN_ROLE:
            return run
        return None


class HistoryView(QWidget):
    message = Signal(str)
    searched = Signal()  # a search's results are shown (tests wait on it)

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page")
        self.app = app
        self.tasks = TaskSet(self._failed)
        self._asked = 0  # the number of the newest search asked for
        self.last_took_ms = 0.0
        self.total = 0
        self._stale = True

        title = QLabel("Run history")
        title.setObjectName("pageTitle")
        self.kept = QLabel()
        self.kept.setObjectName("hint")
        self.search = QLineEdit()
        self.search.setObjectName("historySearch")
        self.search.setPlaceholderText("Search commands and output, e.g. a word of an error  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.addAction(icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.agent_box = QComboBox()
        self.agent_box.addItem("All agents", "")
        self.agent_box.setMinimumWidth(130)
        self.exit_box = QComboBox()
        self.exit_box.setMinimumWidth(150)
        self._fill_exits([])
        self.result = QLabel()
        self.result.setObjectName("hint")

        self.model = RunHistoryModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(28)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        for col, width in ((COL_ID, 56), (COL_COMMAND, 300), (COL_AGENT, 110), (COL_EXIT, 80), (COL_TOOK, 70),
                           (COL_FINISHED, 130)):  # fmt: skip
            header.resizeSection(col, width)
        header.setSectionResizeMode(COL_OUTPUT, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)

        self.output = LogsWindow(app, "Output", live=False, embedded=True)
        self.output.view.save_button.setToolTip("Save this run's output to a file (Ctrl+S)")
        self.output.view.copy_button.setToolTip("Copy the selection, or this run's whole output")
        self.heading = QLabel("Select a run to read its output.")
        self.heading.setObjectName("sectionTitle")
        self.heading.setTextFormat(Qt.TextFormat.PlainText)
        self.heading.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chip = QLabel()
        self.chip.setObjectName("exitChip")
        self.chip.hide()
        self.copy_button = QPushButton(icon("copy"), "Copy output")
        self.copy_button.setToolTip("Copy this run's whole output (the command, stdout, then stderr)")
        self.copy_button.clicked.connect(self.copy_output)
        self.save_button = QPushButton(icon("save"), "Save output…")
        self.save_button.setToolTip("Save this run's whole output to a file")
        self.save_button.clicked.connect(self.output.view.save)
        for b in (self.copy_button, self.save_button):
            b.setEnabled(False)
        lower = QWidget()
        ll = QVBoxLayout(lower)
        ll.setContentsMargins(0, 8, 0, 0)
        head = QHBoxLayout()
        head.addWidget(self.heading, 1)
        head.addWidget(self.chip)
        head.addSpacing(8)
        head.addWidget(self.copy_button)
        head.addWidget(self.save_button)
        ll.addLayout(head)
        ll.addWidget(self.output, 1)

        self.empty = EmptyState()
        self.empty.button.clicked.connect(self.clear_filter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.stack)
        splitter.addWidget(lower)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)

        top = QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.kept)
        bar = QHBoxLayout()
        bar.setSpacing(6)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.agent_box)
        bar.addWidget(self.exit_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 10)
        layout.setSpacing(10)
        layout.addLayout(top)
        layout.addLayout(bar)
        layout.addWidget(self.result)
        layout.addWidget(splitter, 1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SEARCH_DELAY_MS)
        self._timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._timer.start())
        self.search.returnPressed.connect(self.refresh)
        self.agent_box.currentIndexChanged.connect(lambda _i: self.refresh())
        self.exit_box.currentIndexChanged.connect(lambda _i: self.refresh())
        find = QShortcut(QKeySequence("Ctrl+F"), self)
        find.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        find.activated.connect(self._focus_search)

    def _focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    # -- filters -----------------------------------------------------------------------------------

    def _fill_exits(self, codes: list[int]) -> None:
        chosen = self.exit_box.currentData()
        self.exit_box.blockSignals(True)
        self.exit_box.clear()
        for text, value in (("Any exit code", "any"), ("Succeeded (0)", "ok"), ("Failed (not 0)", "failed")):
            self.exit_box.addItem(text, value)
        for code in codes:
            if code != 0:
                self.exit_box.addItem(f"Exit code {code}", code)
        i = self.exit_box.findData(chosen)
        self.exit_box.setCurrentIndex(max(i, 0))
        self.exit_box.blockSignals(False)

    def _fill_agents(self, agents: list[str]) -> None:
        fill_agent_box(self.agent_box, agents)

    def set_filter(self, text: str = "", *, agent: str = "", exit: ExitFilter = "any") -> None:
        """Set every filter at once and search (for the screenshots and tests)."""
        for box, value in ((self.agent_box, agent), (self.exit_box, exit)):
            box.blockSignals(True)
            i = box.findData(value)
            if i < 0:
                box.addItem(str(value), value)
                i = box.count() - 1
            box.setCurrentIndex(i)
            box.blockSignals(False)
        self.search.blockSignals(True)
        self.search.setText(text)
        self.search.blockSignals(False)
        self.refresh()

    def clear_filter(self) -> None:
        self.set_filter()

    # -- searching ---------------------------------------------------------------------------------

    def on_shown(self) -> None:
        """The view came up: bring the list up to date."""
        if self._stale:
            self.refresh()

    def on_run_finished(self) -> None:
        """A new run is in the history: show it if the view is up, else on the next showing."""
        self._stale = True
        if self.isVisible() and not self._timer.isActive():
            self._timer.start()

    def refresh(self) -> None:
        self._timer.stop()
        self._asked += 1
        self.tasks.spawn(self._search(self._asked))

    async def _search(self, asked: int) -> None:
        text = self.search.text()
        agent = str(self.agent_box.currentData() or "") or None
        exit_value = self.exit_box.currentData()
        exit: ExitFilter = exit_value if exit_value is not None else "any"
        owner = self.app.owner
        result = await owner.search_history(text, agent=agent, exit=exit)
        if asked != self._asked:
            return  # a newer search was asked for meanwhile
        self._stale = False
        self.last_took_ms = result.took_ms
        codes = await self._facets()
        self._fill_exits(codes[0])
        self._fill_agents(codes[1])
        self.total = codes[2]
        selected = self.selected_run()
        self.model.set_runs(result.runs)
        filtered = bool(text.strip() or agent or exit != "any")
        if filtered:
            shown = f"{plural(result.total, 'run')} of {self.total:,} match"
            if result.total > len(result.runs):
                shown += f" (the newest {len(result.runs):,} listed)"
            self.result.setText(f"{shown} · {result.took_ms:.0f} ms")
        else:
            self.result.setText(
                f"{plural(self.total, 'finished run')} kept"
                + (f" (the newest {len(result.runs):,} listed)" if self.total > len(result.runs) else "")
            )
        s = self.app.settings
        self.kept.setText(
            f"Kept {s.history_days:g} days or {s.history_max_runs:,} runs, whichever comes first (Settings)"
        )
        if result.runs:
            self.stack.setCurrentWidget(self.table)
            again = next((i for i, r in enumerate(result.runs) if selected is not None and r.id == selected.id), 0)
            self.table.selectRow(again)
            self.output.view.find_text(text.strip())  # the same run may stay selected: mark the new words
        else:
            if filtered:
                self.empty.show_state(
                    "No run matches", "Search looks for whole words and word beginnings.", "Clear the search"
                )
            else:
                self.empty.show_state("No finished runs yet", "Temporary runs appear here with their output.")
            self.stack.setCurrentWidget(self.empty)
            self.output.view.clear()
            self.heading.setText("")
            self.chip.hide()
            for b in (self.copy_button, self.save_button):
                b.setEnabled(False)
        self.searched.emit()

    async def _facets(self) -> tuple[list[int], list[str], int]:
        return await self.app.owner.history_facets()

    # -- the selected run --------------------------------------------------------------------------

    def selected_run(self) -> RunSummary | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].data(RUN_ROLE) if rows else None

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        run = current.data(RUN_ROLE) if current.isValid() else None
        if not isinstance(run, RunSummary):
            return
        self.heading.setText(
            f"Run #{run.id} · {run.agent} · {run.image} · took {fmt.duration_ms(run.duration_s * 1000)}"
        )
        text, bad = exit_chip(run.exit_code, timed_out=run.timed_out, oom=run.oom_killed)
        self.chip.setText(text)
        self.chip.setProperty("bad", bad)
        self.chip.style().unpolish(self.chip)
        self.chip.style().polish(self.chip)
        self.chip.show()
        for b in (self.copy_button, self.save_button):
            b.setEnabled(True)
        self.output.tasks.cancel()
        self.output.show_run(run.id)
        self.output.view.find_text(self.search.text().strip())  # the match is marked in the output too

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.on_shown()

    def copy_output(self) -> None:
        run = self.selected_run()
        QApplication.clipboard().setText(self.output.view.plain_text() + "\n")
        self.message.emit(f"Copied the output of run #{run.id}." if run else "Copied the output.")

    def _failed(self, e: BaseException) -> None:
        logger.error("the run history failed", exc_info=e)
        self.message.emit(f"Could not search the run history: {e}")

    def task_sets(self) -> list[TaskSet]:
        return [self.tasks, self.output.tasks, self.output.view.tasks]

    def stop(self) -> None:
        self._timer.stop()
        for t in self.task_sets():
            t.cancel()
