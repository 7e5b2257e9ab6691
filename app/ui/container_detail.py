"""The Container Panel's detail pane: one container's inside, or one finished run's output, beside the table.

For a container: live CPU and memory graphs of the last five minutes (CPU against the agent's quota,
memory against the cap), the inspect in sections (secret-looking env values hidden until clicked), its
logs followed in a tab, and Open terminal (a shell in the person's terminal emulator, audited by the
core). For a finished run: the command, its whole output with stderr in red, its exit and duration.
Everything comes through the owner API; nothing here talks to the engine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QProcess, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.application import Application
from app.core.terminal import TerminalPlan
from app.errors import BerthError, NotFound
from app.model import ContainerDetail
from app.ui import format as fmt
from app.ui.container_model import CONTAINER, RUN, PanelRow
from app.ui.inspect_model import URL_ROLE, InspectModel
from app.ui.logs_viewer import LogsWindow, exit_chip
from app.ui.resources import icon
from app.ui.slots import async_slot
from app.ui.sparkline import Sparkline
from app.ui.tasks import TaskSet

logger = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex
TAB_STATS, TAB_INSPECT, TAB_LOGS = range(3)


def start_detached(argv: list[str]) -> bool:
    """Start the person's terminal emulator on its own (it outlives Berth's window)."""
    ok, _pid = QProcess.startDetached(argv[0], argv[1:])
    return bool(ok)


class DetailPane(QWidget):
    closeRequested = Signal()
    message = Signal(str)
    openUrl = Signal(str)

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("detailPane")
        self.app = app
        self.row: PanelRow | None = None
        self.detail: ContainerDetail | None = None
        self.plan: TerminalPlan | None = None
        self.start_process: Callable[[list[str]], bool] = start_detached
        self.tasks = TaskSet(self._failed)
        self._logs_for: str | None = None  # the container the Logs tab follows
        self._loading: str | None = None

        self.title = QLabel()
        self.title.setObjectName("detailTitle")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.title.setMinimumWidth(60)
        self.chip = QLabel()
        self.chip.setObjectName("exitChip")
        self.close_button = QToolButton()
        self.close_button.setIcon(icon("close"))
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Close the details (Esc)")
        self.close_button.clicked.connect(self.closeRequested)
        self.subtitle = QLabel()
        self.subtitle.setObjectName("hint")
        self.subtitle.setTextFormat(Qt.TextFormat.PlainText)
        self.subtitle.setWordWrap(True)

        self.terminal_button = QPushButton(icon("terminal"), "Open terminal")
        self.terminal_button.setObjectName("terminalButton")
        self.terminal_button.clicked.connect(self.open_terminal)
        self.port_button = QPushButton(icon("open-port"), "Open port")
        self.port_button.clicked.connect(self._open_first_port)
        self.why = QLabel()
        self.why.setObjectName("hint")
        self.why.setWordWrap(True)

        # Stats
        self.cpu = Sparkline("CPU", fmt.percent, "#1f5f8b")
        self.memory = Sparkline("Memory", lambda v: fmt.size(int(v)), "#7c3aed")
        self.stats_note = QLabel()
        self.stats_note.setObjectName("hint")
        self.stats_note.setWordWrap(True)
        stats = QWidget()
        sl = QVBoxLayout(stats)
        sl.setContentsMargins(8, 10, 8, 8)
        sl.setSpacing(10)
        sl.addWidget(self.cpu, 1)
        sl.addWidget(self.memory, 1)
        sl.addWidget(self.stats_note)

        # Inspect
        self.inspect_model = InspectModel(self)
        self.inspect = QTableView()
        self.inspect.setObjectName("inspectTable")
        self.inspect.setModel(self.inspect_model)
        self.inspect.horizontalHeader().hide()
        self.inspect.verticalHeader().hide()
        self.inspect.setShowGrid(False)
        self.inspect.setWordWrap(False)
        self.inspect.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.inspect.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.inspect.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.inspect.verticalHeader().setDefaultSectionSize(24)
        header = self.inspect.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, 150)
        header.setStretchLastSection(True)
        self.inspect.clicked.connect(self._inspect_clicked)
        copy = QShortcut(QKeySequence.StandardKey.Copy, self.inspect)
        copy.setContext(Qt.ShortcutContext.WidgetShortcut)
        copy.activated.connect(self.copy_inspect)

        # Logs (a container) or Output (a run)
        self.logs = LogsWindow(app, "Logs", embedded=True)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(stats, "Stats")
        self.tabs.addTab(self.inspect, "Inspect")
        self.tabs.addTab(self.logs, "Logs")
        self.tabs.currentChanged.connect(self._tab_changed)

        top = QHBoxLayout()
        top.setSpacing(8)
        top.addWidget(self.title, 1)
        top.addWidget(self.chip)
        top.addWidget(self.close_button)
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.terminal_button)
        buttons.addWidget(self.port_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 4, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(top)
        layout.addWidget(self.subtitle)
        layout.addLayout(buttons)
        layout.addWidget(self.why)
        layout.addWidget(self.tabs, 1)
        esc = QShortcut(QKeySequence("Esc"), self)
        esc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        esc.activated.connect(self.closeRequested)

    # -- showing -----------------------------------------------------------------------------------

    def show_row(self, row: PanelRow) -> None:
        """Show a container or a finished run (a waiting request has nothing inside yet)."""
        same = self.row is not None and self.row.key == row.key
        self.row = row
        if row.type == RUN:
            self._show_run(row)
        elif row.type == CONTAINER:
            self._show_container(row, reload=not same)
        else:
            self._show_waiting(row)

    def _set_tabs(self, names: list[str]) -> None:
        for i, name in enumerate(("Stats", "Inspect", "Logs")):
            self.tabs.setTabVisible(i, name in names or (name == "Logs" and "Output" in names))
        self.tabs.setTabText(TAB_LOGS, "Output" if "Output" in names else "Logs")

    def _show_container(self, row: PanelRow, *, reload: bool) -> None:
        self._set_tabs(["Stats", "Inspect", "Logs"])
        self.title.setText(row.name)
        self.title.setToolTip(f"{row.full_name}\n{row.key}")
        self.subtitle.setText(f"{row.kind} · {row.agent or 'no agent'} · {row.image} · {row.key[:12]}")
        self._set_chip(row)
        self.port_button.setVisible(bool(row.ports))
        if row.ports:
            b = sorted(row.ports.values(), key=lambda b: b.port)[0]
            self.port_button.setText(f"Open {b.host}:{b.port}")
            self.port_button.setToolTip(f"Open {b.url} in the browser")
        self._update_terminal(row)
        if reload:
            self.detail = None
            self.inspect_model.set_detail(None)
            self.cpu.clear()
            self.memory.clear()
            self.logs.stop_following()
            self.logs.view.clear()
            self._logs_for = None
            if self.tabs.currentIndex() == TAB_LOGS:
                self._follow_logs()
            if self.tabs.currentIndex() != TAB_LOGS and not self.tabs.isTabVisible(self.tabs.currentIndex()):
                self.tabs.setCurrentIndex(TAB_STATS)
        self.reload()
        self.refresh_stats()

    def _show_run(self, row: PanelRow) -> None:
        self._set_tabs(["Output"])
        self.tabs.setCurrentIndex(TAB_LOGS)
        self.title.setText(f"Run #{row.run_id}")
        self.title.setToolTip(row.full_name)
        self.subtitle.setText(f"temporary run · {row.agent} · {row.image} · finished {fmt.age(row.created)} ago")
        self.chip.hide()
        self.port_button.hide()
        self.terminal_button.hide()
        self.why.hide()
        self.logs.stop_following()
        self._logs_for = None
        if row.run_id is not None:
            self.logs.ended.clear()
            self.logs.show_run(row.run_id)
        self.tasks.spawn(self._run_chip(row.run_id))

    async def _run_chip(self, run_id: int | None) -> None:
        if run_id is None:
            return
        await self.logs.ended.wait()
        run = await self.app.owner.run(run_id)
        if run is None or self.row is None or self.row.run_id != run_id:
            return
        text, bad = exit_chip(run.exit_code, timed_out=run.timed_out, oom=run.oom_killed)
        self._chip(text, bad)
        self.subtitle.setText(
            f"temporary run · {run.agent} · {run.image} · took {fmt.duration_ms((run.finished - run.started) * 1000)}"
            f" · finished {fmt.age(run.finished)} ago"
        )

    def _show_waiting(self, row: PanelRow) -> None:
        self._set_tabs([])
        self.title.setText(row.name)
        self.subtitle.setText(f"{row.agent} · {row.detail}: it gets a container when one of the agent's slots is free")
        self.chip.hide()
        self.port_button.hide()
        self.terminal_button.hide()
        self.why.hide()

    def _set_chip(self, row: PanelRow) -> None:
        if row.running:
            self._chip("Running", False, good=True)
        elif row.state in ("exited", "dead"):
            self._chip(*exit_chip(row.exit_code, stopped=row.stopped or row.exit_code in (137, 143)))
        else:
            self._chip(row.status_text.capitalize(), False)

    def _chip(self, text: str, bad: bool, *, good: bool = False) -> None:
        self.chip.setText(text)
        self.chip.setProperty("bad", bad)
        self.chip.setProperty("good", good)
        self.chip.style().unpolish(self.chip)
        self.chip.style().polish(self.chip)
        self.chip.setVisible(bool(text))

    def _update_terminal(self, row: PanelRow) -> None:
        self.terminal_button.show()
        if row.kind == "pool":
            self.terminal_button.setEnabled(False)
            self.why.setText("A pre-started container waits for its run: nothing to open a terminal in yet.")
            self.why.show()
            return
        self.plan = self.app.owner.terminal_plan(row.key)
        running = row.running
        self.terminal_button.setEnabled(self.plan.possible and running)
        if not self.plan.possible:
            reason = f"Open terminal: {self.plan.reason}."
        elif not running:
            reason = "Open terminal needs the container running."
        else:
            reason = ""
        self.terminal_button.setToolTip(
            reason
            or f"A shell in this container, in {self.plan.terminal} (docker exec -it); Berth's audit log notes it"
        )
        self.why.setText(reason)
        self.why.setVisible(bool(reason))

    # -- loading -----------------------------------------------------------------------------------

    def reload(self) -> None:
        """Inspect the shown container again (its state changed)."""
        if self.row is None or self.row.type != CONTAINER:
            return
        self.tasks.spawn(self._load(self.row.key))

    async def _load(self, cid: str) -> None:
        self._loading = cid
        try:
            detail = await self.app.owner.inspect_detail(cid)
        except NotFound:
            if self.row is not None and self.row.key == cid:
                self.stats_note.setText("This container is gone.")
            return
        except BerthError as e:
            self.message.emit(f"Could not inspect the container: {e}")
            return
        if self.row is None or self.row.key != cid:
            return
        self.detail = detail
        self.inspect_model.set_detail(detail, agent_group=bool(detail.cpu_group))
        if detail.info.status in ("exited", "dead"):
            stopped = detail.exit_code in (137, 143) and not detail.oom_killed
            self._chip(*exit_chip(detail.exit_code, oom=detail.oom_killed, stopped=stopped))
        self.refresh_stats()

    def refresh_stats(self) -> None:
        """Redraw the graphs from the core's readings (called after every stats tick while shown)."""
        row = self.row
        if row is None or row.type != CONTAINER or not self.isVisible():
            return
        samples = self.app.owner.stats_history(row.key)
        now = time.time()
        times = [s.at for s in samples]
        cpus = self.detail.cpus if self.detail is not None else None
        quota = cpus * 100 if cpus else None
        cap = self.detail.memory_limit if self.detail is not None else None
        if cap is None and samples:
            cap = samples[-1].memory_limit_bytes
        quota_text = f"{cpus:g} CPU" if cpus else ""
        if cpus and self.detail is not None and self.detail.cpu_group:
            quota_text += f" for all of {row.agent}'s containers"
        self.cpu.set_series(times, [s.cpu_percent for s in samples], quota, now, quota_text)
        self.memory.set_series(times, [float(s.memory_bytes) for s in samples], float(cap) if cap else None, now)
        if not row.running:
            self.stats_note.setText("Not running: the graphs show the last readings while it ran.")
        elif not samples:
            self.stats_note.setText("The first readings arrive within a second or two.")
        else:
            span = now - samples[0].at
            note = f"One reading a second, the last {fmt.age(now - span, now) or '0 s'}; kept while Berth runs."
            if quota:
                note += " 100 % is one CPU."
            self.stats_note.setText(note)

    def _tab_changed(self, i: int) -> None:
        if i == TAB_LOGS and self.row is not None and self.row.type == CONTAINER:
            self._follow_logs()
        elif i == TAB_STATS:
            self.refresh_stats()

    def _follow_logs(self) -> None:
        row = self.row
        if row is None or row.type != CONTAINER or self._logs_for == row.key:
            return
        self._logs_for = row.key
        self.logs.view.clear()
        self.logs.follow_container(row.key, row.name)

    # -- actions -----------------------------------------------------------------------------------

    @async_slot()
    async def open_terminal(self) -> None:
        row = self.row
        if row is None or row.type != CONTAINER:
            return
        self.terminal_button.setEnabled(False)
        try:
            plan = await self.app.owner.open_terminal(row.key, self.start_process)
            self.message.emit(f"Opened a shell in {row.name} ({plan.terminal}).")
        except BerthError as e:
            self.message.emit(f"Could not open a terminal in {row.name}: {e}")
        except Exception as e:
            logger.exception("opening a terminal failed")
            self.message.emit(f"Could not open a terminal (internal error: {e}); the log file has details.")
        finally:
            if self.row is not None:
                self._update_terminal(self.row)

    def _open_first_port(self) -> None:
        if self.row is not None and self.row.ports:
            self.openUrl.emit(sorted(self.row.ports.values(), key=lambda b: b.port)[0].url)

    def _inspect_clicked(self, index: QModelIndex) -> None:
        if index.column() != 1:
            return
        if self.inspect_model.toggle(index.row()):
            return
        url = index.data(URL_ROLE)
        if url:
            self.openUrl.emit(str(url))

    def copy_inspect(self) -> None:
        rows = sorted({i.row() for i in self.inspect.selectionModel().selectedRows()})
        items = self.inspect_model.items()
        text = "\n".join(f"{items[r].name}: {items[r].shown}" if items[r].name else items[r].section for r in rows)
        if text:
            QApplication.clipboard().setText(text)
            self.message.emit("Copied (hidden values stay hidden: show them first to copy them).")

    def close_pane(self) -> None:
        self.logs.stop_following()
        self._logs_for = None
        self.row = None

    def task_sets(self) -> list[TaskSet]:
        return [self.tasks, self.logs.tasks, self.logs.view.tasks]

    def _failed(self, e: BaseException) -> None:
        logger.error("the detail pane failed", exc_info=e)
        self.message.emit(f"The details could not be shown: {e}")

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.refresh_stats()
