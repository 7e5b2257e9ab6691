"""The Container Panel: every container of this Berth, recent finished runs, and waiting work.

One `QTableView` over `ContainerTableModel` through `ContainerFilter`, and beside it (Enter or a double
click) the detail pane: graphs, inspect, logs and a terminal for a container, the output of a run.
Actions are `QAction`s shared by the buttons, the context menu and the keyboard; the ones that talk to
the core are `@asyncSlot`s that disable themselves while they run and report failures in the status bar.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QDesktopServices,
    QKeySequence,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QSplitter,
    QStackedWidget,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.application import Application
from app.errors import BerthError
from app.model import ContainerInfo
from app.ui.container_detail import DetailPane
from app.ui.container_feed import ContainerFeed
from app.ui.container_model import (
    COL_AGE,
    COL_AGENT,
    COL_CPU,
    COL_ENGINE,
    COL_IMAGE,
    COL_KIND,
    COL_MEMORY,
    COL_NAME,
    COL_PORTS,
    COL_STATUS,
    CONTAINER,
    PORTS_ROLE,
    ROW_ROLE,
    RUN,
    ContainerFilter,
    PanelRow,
    summary_text,
)
from app.ui.dialogs import confirm
from app.ui.logs_viewer import LogsWindow
from app.ui.port_delegate import PortDelegate
from app.ui.resources import icon
from app.ui.slots import async_slot
from app.ui.status_delegate import StatusDelegate
from app.ui.tasks import TaskSet
from app.ui.widgets import EmptyState, fill_agent_box

logger = logging.getLogger(__name__)

COLUMN_WIDTHS = {
    COL_NAME: 220,
    COL_AGENT: 110,
    COL_KIND: 90,
    COL_STATUS: 130,
    COL_CPU: 70,
    COL_MEMORY: 160,
    COL_PORTS: 130,
    COL_IMAGE: 160,
    COL_AGE: 70,
}

Index = QModelIndex | QPersistentModelIndex
HIDDEN_WITH_DETAILS = (COL_KIND, COL_PORTS, COL_IMAGE, COL_AGE)  # the pane shows them; the table keeps its width


class ContainerPanel(QWidget):
    message = Signal(str)  # for the status bar

    def __init__(self, app: Application, feed: ContainerFeed, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.feed = feed
        self.model = feed.model
        self.proxy = ContainerFilter(self)
        self.proxy.setSourceModel(self.model)
        self.open_url: Callable[[str], Any] = lambda url: QDesktopServices.openUrl(QUrl(url))
        self.logs_windows: list[LogsWindow] = []
        self._busy = False

        title = QLabel("Containers")
        title.setObjectName("pageTitle")
        self.summary = QLabel("")
        self.summary.setObjectName("hint")

        # Filters
        self.filter_text = QLineEdit()
        self.filter_text.setPlaceholderText("Filter by name, image, id or port  (Ctrl+F)")
        self.filter_text.setClearButtonEnabled(True)
        self.filter_text.addAction(icon("filter"), QLineEdit.ActionPosition.LeadingPosition)
        self.agent_box = QComboBox()
        self.agent_box.addItem("All agents", "")
        self.agent_box.setMinimumWidth(130)
        self.engine_box = QComboBox()  # shown once the person added an engine (Settings > Engines)
        self.engine_box.setToolTip("Show the containers of one engine")
        self.engine_box.addItem("All engines", "")
        self.engine_box.setVisible(False)
        self._engines: list[str] = ["local"]
        self.kind_box = QComboBox()
        for text, value in (("All kinds", ""), ("Services", "service"), ("Temporary", "temporary")):
            self.kind_box.addItem(text, value)
        self.status_box = QComboBox()
        for text, value in (("Any status", ""), ("Running", "running"), ("Stopped", "stopped"), ("Waiting", "waiting")):
            self.status_box.addItem(text, value)
        self.runs_box = QCheckBox("Finished runs")
        self.runs_box.setChecked(True)
        self.runs_box.setToolTip("Show the recent finished temporary runs, with their exit code and output")
        self.pool_box = QCheckBox("Pre-started")
        self.pool_box.setToolTip(
            "The warm pool: containers Berth starts ahead of time so an agent's next temporary run starts at "
            "once.\nEach serves one run and is removed afterwards; they do not count toward an agent's limits.\n"
            "Tick to list the idle ones."
        )

        # Actions: one QAction each, shared by the buttons, the context menu and the keyboard.
        self.act_details = self._action(
            "Details", "details", "Ctrl+I", "Show graphs, inspect, logs and terminal beside the list (Enter)"
        )
        self.act_logs = self._action("Logs", "logs", "Ctrl+L", "Open the logs (or a finished run's output) in a window")
        self.act_port = self._action("Open port", "open-port", "Ctrl+O", "Open the published port in the browser")
        self.act_stop = self._action("Stop", "stop", "Ctrl+.", "Stop the selected containers")
        self.act_restart = self._action("Restart", "restart", "Ctrl+R", "Restart the selected containers")
        self.act_remove = self._action("Remove…", "remove", "Delete", "Remove the selected containers (asks first)")
        self.act_copy = self._action("Copy id", "copy", "Ctrl+Shift+C", "Copy the container id")
        self.act_clear_runs = self._action(
            "Clear finished runs",
            "clear",
            "Ctrl+Shift+Del",
            "Take the finished runs off this list (History keeps them)",
        )
        self.act_details.triggered.connect(self.show_details)
        self.act_clear_runs.triggered.connect(self.clear_finished_runs)
        self.act_logs.triggered.connect(self.open_logs)
        self.act_port.triggered.connect(self.open_port)
        self.act_stop.triggered.connect(self.stop_selected)
        self.act_restart.triggered.connect(self.restart_selected)
        self.act_remove.triggered.connect(self.remove_selected)
        self.act_copy.triggered.connect(self.copy_id)

        bar = QHBoxLayout()
        bar.setSpacing(6)
        bar.addWidget(self.filter_text, 1)
        bar.addWidget(self.agent_box)
        bar.addWidget(self.engine_box)
        bar.addWidget(self.kind_box)
        bar.addWidget(self.status_box)
        bar.addWidget(self.runs_box)
        bar.addWidget(self.pool_box)

        actions = QHBoxLayout()
        actions.setSpacing(6)
        self.action_buttons: dict[str, QToolButton] = {}
        for i, act in enumerate(
            (
                self.act_details,
                self.act_logs,
                self.act_port,
                self.act_stop,
                self.act_restart,
                self.act_remove,
                self.act_copy,
                self.act_clear_runs,
            )
        ):
            if i in (3, 6, 7):
                actions.addSpacing(10)
            b = QToolButton()
            b.setObjectName("action")
            b.setDefaultAction(act)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            actions.addWidget(b)
            self.action_buttons[act.text()] = b
        actions.addStretch(1)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        title_row = QHBoxLayout()
        title_row.addWidget(title)
        title_row.addStretch(1)
        title_row.addWidget(self.summary)

        # Table
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COL_AGE, Qt.SortOrder.AscendingOrder)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # both ends of a long name or command matter
        self.table.setMouseTracking(True)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(30)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        for col, width in COLUMN_WIDTHS.items():
            header.resizeSection(col, width)
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        self.port_delegate = PortDelegate(self.table)
        self.port_delegate.linkActivated.connect(self._open_url)
        self.table.setItemDelegateForColumn(COL_PORTS, self.port_delegate)
        self.status_delegate = StatusDelegate(self.table)
        self.table.setItemDelegateForColumn(COL_STATUS, self.status_delegate)

        self.empty = EmptyState()
        self.empty.button.clicked.connect(self.clear_filter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty)

        self.details = DetailPane(app)
        self.details.hide()
        self.details.closeRequested.connect(self.hide_details)
        self.details.message.connect(self.message)
        self.details.openUrl.connect(self._open_url)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.stack)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 10)
        layout.setSpacing(10)
        layout.addLayout(title_row)
        layout.addLayout(bar)
        layout.addLayout(actions)
        layout.addWidget(self.splitter, 1)

        self.filter_text.textChanged.connect(lambda t: self.proxy.set_filter(text=t.strip()))
        self.agent_box.currentIndexChanged.connect(lambda _i: self.proxy.set_filter(agent=self.agent_box.currentData()))
        self.kind_box.currentIndexChanged.connect(lambda _i: self.proxy.set_filter(kind=self.kind_box.currentData()))
        self.engine_box.currentIndexChanged.connect(
            lambda _i: self.proxy.set_filter(engine=self.engine_box.currentData() or "")
        )
        self.status_box.currentIndexChanged.connect(
            lambda _i: self.proxy.set_filter(status=self.status_box.currentData())
        )
        self.runs_box.toggled.connect(lambda on: self.proxy.set_filter(show_runs=on))
        self.pool_box.toggled.connect(lambda on: self.proxy.set_filter(show_pool=on))
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(self._double_clicked)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset, self.proxy.layoutChanged):
            sig.connect(self._schedule_refresh_view)
        for sig in (self.model.rowsInserted, self.model.rowsRemoved):  # rows the filter hides count too
            sig.connect(self._schedule_refresh_view)
        self.feed.loaded.connect(self._schedule_refresh_view)
        self.model.dataChanged.connect(self._model_changed)
        self.feed.statsUpdated.connect(self.details.refresh_stats)

        for keys, slot, widget in (
            ("Ctrl+F", self._focus_filter, self),
            ("Return", self.show_details, self.table),
            ("Enter", self.show_details, self.table),
            ("Ctrl+C", self.copy_id, self.table),
            ("F5", self.refresh, self),
        ):
            sc = QShortcut(QKeySequence(keys), widget)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)

        self._view_timer = QTimer(self)
        self._view_timer.setSingleShot(True)
        self._view_timer.setInterval(100)
        self._view_timer.timeout.connect(self._refresh_view)
        self._summary_timer = QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.setInterval(500)
        self._summary_timer.timeout.connect(self._update_summary)
        self._engine_up = True
        self.tasks = TaskSet()
        self._refresh_view()

    def _action(self, text: str, icon_name: str, keys: str, tip: str) -> QAction:
        act = QAction(icon(icon_name), text, self)
        act.setShortcut(QKeySequence(keys))
        act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        act.setToolTip(f"{tip} ({QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText)})")
        self.addAction(act)
        return act

    # -- view state --------------------------------------------------------------------------------

    def set_engine_available(self, available: bool) -> None:
        self._engine_up = available
        self._refresh_view()

    def _schedule_refresh_view(self, *_: Any) -> None:
        if self.proxy.rowCount() > 0 and self.stack.currentWidget() is not self.table:
            self.stack.setCurrentWidget(self.table)  # the first row shows at once; the rest can wait a moment
        if not self._view_timer.isActive():
            self._view_timer.start()

    def _schedule_summary(self) -> None:
        if not self._summary_timer.isActive():
            self._summary_timer.start()

    def _refresh_view(self) -> None:
        if self.proxy.rowCount() > 0:
            self.stack.setCurrentWidget(self.table)
        else:
            if self.model.rowCount() > 0 and self.proxy.active():
                self.empty.show_state(
                    "Nothing matches the filter", "Change the filter, or clear it to see everything.", "Clear filter"
                )
            elif not self._engine_up:
                self.empty.show_state(
                    "Waiting for the Docker engine",
                    "Containers appear here once the engine answers; Berth keeps trying by itself.",
                )
            elif not self.feed.loaded_once:
                self.empty.show_state("Looking for containers…", "")
            else:
                self.empty.show_state(
                    "No containers yet",
                    "An agent starts one with <b>containers.run</b> (a temporary run) or "
                    "<b>services.start</b> (a service).<br>Running, stopped and recently finished ones show up here.",
                )
            self.stack.setCurrentWidget(self.empty)
        # Filters over nothing are noise: off while the engine is away and nothing is listed.
        usable = self._engine_up or self.model.rowCount() > 0
        for w in (
            self.filter_text,
            self.agent_box,
            self.engine_box,
            self.kind_box,
            self.status_box,
            self.runs_box,
            self.pool_box,
        ):
            w.setEnabled(usable)
        self._update_agents()
        self.update_engines()
        self._update_actions()
        self._update_summary()

    def _update_summary(self) -> None:
        rows = self.model.rows()
        self.pool_box.setText(f"Pre-started ({self.model.pool_count()})")
        shown = self.proxy.rowCount()
        listed = sum(
            1 for r in rows if (r.kind != "pool" or self.proxy.show_pool) and (r.type != RUN or self.proxy.show_runs)
        )
        self.summary.setText(summary_text(rows, shown if shown != listed or self.proxy.active() else None))
        self.act_clear_runs.setEnabled(any(r.type == RUN for r in rows))

    def update_engines(self) -> None:
        """The Engine column and filter: there once Berth drives more than the local engine."""
        names = self.app.owner.engine_names()
        if names == self._engines and self.table.isColumnHidden(COL_ENGINE) == (len(names) < 2):
            return
        self._engines = names
        several = len(names) > 1
        self.table.setColumnHidden(COL_ENGINE, not several)
        self.engine_box.setVisible(several)
        current = self.engine_box.currentData()
        self.engine_box.blockSignals(True)
        self.engine_box.clear()
        self.engine_box.addItem("All engines", "")
        for name in names:
            self.engine_box.addItem(name, name)
        index = self.engine_box.findData(current) if current in names else 0
        self.engine_box.setCurrentIndex(max(0, index))
        self.engine_box.blockSignals(False)
        if current and current not in names:
            self.proxy.set_filter(engine="")  # the engine filtered on is gone

    def _update_agents(self) -> None:
        if not fill_agent_box(self.agent_box, sorted({r.agent for r in self.model.rows() if r.agent})):
            self.proxy.set_filter(agent="")  # the agent filtered on is gone

    def _focus_filter(self) -> None:
        self.filter_text.setFocus()
        self.filter_text.selectAll()

    def clear_filter(self) -> None:
        self.filter_text.clear()
        self.agent_box.setCurrentIndex(0)
        self.kind_box.setCurrentIndex(0)
        self.engine_box.setCurrentIndex(0)
        self.status_box.setCurrentIndex(0)

    # -- selection ---------------------------------------------------------------------------------

    def selected_rows(self) -> list[PanelRow]:
        rows = []
        for idx in self.table.selectionModel().selectedRows():
            row = idx.data(ROW_ROLE)
            if isinstance(row, PanelRow):
                rows.append(row)
        return rows

    def select_key(self, key: str) -> bool:
        for r in range(self.proxy.rowCount()):
            idx = self.proxy.index(r, 0)
            row = idx.data(ROW_ROLE)
            if row is not None and row.key == key:
                self.table.selectRow(r)
                return True
        return False

    def _containers(self) -> list[PanelRow]:
        return [r for r in self.selected_rows() if r.type == CONTAINER]

    def _update_actions(self) -> None:
        rows = self.selected_rows()
        containers = [r for r in rows if r.type == CONTAINER]
        idle = not self._busy
        self.act_logs.setEnabled(any(r.type in (CONTAINER, RUN) for r in rows))
        self.act_details.setEnabled(len(rows) == 1)
        self.act_port.setEnabled(any(r.ports for r in rows))
        self.act_stop.setEnabled(idle and any(r.running for r in containers))
        self.act_restart.setEnabled(idle and bool(containers))
        self.act_remove.setEnabled(idle and bool(containers))
        self.act_copy.setEnabled(bool(containers))

    def _context_menu(self, pos: QPoint) -> None:
        if not self.table.indexAt(pos).isValid():
            return
        menu = QMenu(self)
        for act in (self.act_logs, self.act_port, None, self.act_stop, self.act_restart, self.act_remove, None):
            if act is None:
                menu.addSeparator()
            else:
                menu.addAction(act)
        menu.addAction(self.act_copy)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _double_clicked(self, index: QModelIndex) -> None:
        if index.column() == COL_PORTS and index.data(PORTS_ROLE):
            return  # the delegate opened the link
        self.show_details()

    # -- the detail pane ---------------------------------------------------------------------------

    def show_details(self) -> DetailPane | None:
        """Open the pane beside the list for the selected row (it follows the selection while open)."""
        rows = self.selected_rows()
        if len(rows) != 1:
            return None
        if not self.details.isVisible():
            for col in HIDDEN_WITH_DETAILS:
                self.table.setColumnHidden(col, True)
            self.details.show()
            width = self.splitter.width()
            self.splitter.setSizes([int(width * 0.55), width - int(width * 0.55)])
        self.details.show_row(rows[0])
        self.table.scrollTo(self.table.selectionModel().selectedRows()[0])
        return self.details

    def hide_details(self) -> None:
        if not self.details.isVisible():
            return
        self.details.close_pane()
        self.details.hide()
        for col in HIDDEN_WITH_DETAILS:
            self.table.setColumnHidden(col, False)
        self.table.setFocus()

    def header_state(self) -> Any:
        """The table's header as the person arranged it (the columns the pane hides count as shown)."""
        hidden = [c for c in HIDDEN_WITH_DETAILS if self.table.isColumnHidden(c)]
        for c in hidden:
            self.table.setColumnHidden(c, False)
        state = self.table.horizontalHeader().saveState()
        for c in hidden:
            self.table.setColumnHidden(c, True)
        return state

    def _selection_changed(self) -> None:
        self._update_actions()
        if self.details.isVisible():
            rows = self.selected_rows()
            if len(rows) == 1 and (self.details.row is None or rows[0].key != self.details.row.key):
                self.details.show_row(rows[0])

    def _model_changed(self, top: QModelIndex, bottom: QModelIndex, _roles: Any = None) -> None:
        self._schedule_summary()
        shown = self.details.row if self.details.isVisible() else None
        if shown is None or shown.type != CONTAINER:
            return
        i = self.model.index_of(shown.key)
        if i is None or not top.row() <= i <= bottom.row():
            return
        row = self.model.row_at(i)
        if top.column() <= COL_STATUS <= bottom.column() or top.column() <= COL_NAME <= bottom.column():
            self.details.show_row(row)  # its state changed: inspect it again
        else:
            self.details.row = row  # new stats only: the graphs redraw on the stats tick

    def task_sets(self) -> list[TaskSet]:
        """Every task set of the panel's own parts (the desktop awaits them at shutdown)."""
        sets = [self.tasks, *self.details.task_sets()]
        for w in self.logs_windows:
            sets += [w.tasks, w.view.tasks]
        return sets

    @async_slot()
    async def clear_finished_runs(self) -> int:
        """Take the finished runs off the panel (the History view keeps every one)."""
        self.act_clear_runs.setEnabled(False)
        try:
            await self.app.owner.clear_finished_runs()
        except Exception as e:
            logger.exception("could not clear the finished runs")
            self.message.emit(f"Could not clear the finished runs: {e}")
            self._update_summary()
            return 0
        keys = [r.key for r in self.model.rows() if r.type == RUN]
        if self.details.row is not None and self.details.row.key in keys:
            self.hide_details()
        for key in keys:
            self.model.remove(key)
        self.message.emit(
            f"Cleared {len(keys)} finished run{'s' if len(keys) != 1 else ''} from the list; History keeps them."
        )
        self._update_summary()
        return len(keys)

    # -- actions -----------------------------------------------------------------------------------

    def open_logs(self) -> list[LogsWindow]:
        opened = []
        for row in self.selected_rows()[:6]:
            if row.type == CONTAINER:
                w = LogsWindow(
                    self.app,
                    f"Logs of {row.name}",
                    subtitle=f"{row.kind} · {row.agent} · {row.image} · {row.key[:12]}",
                    parent=self.window(),
                )
                w.follow_container(row.key, row.name)
            elif row.type == RUN and row.run_id is not None:
                w = LogsWindow(
                    self.app,
                    f"Output of run #{row.run_id}",
                    subtitle=f"temporary run · {row.agent} · {row.image}",
                    live=False,
                    parent=self.window(),
                )
                w.show_run(row.run_id)
            else:
                continue
            w.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            w.destroyed.connect(lambda _obj=None, w=w: self.logs_windows.remove(w) if w in self.logs_windows else None)
            self.logs_windows.append(w)
            w.show()
            opened.append(w)
        return opened

    def open_port(self) -> None:
        for row in self.selected_rows():
            for b in sorted(row.ports.values(), key=lambda b: b.port)[:1]:
                self._open_url(b.url)

    def _open_url(self, url: str) -> None:
        self.message.emit(f"Opening {url}")
        if not self.open_url(url):
            self.message.emit(f"Could not open {url}: no browser answered. Paste the address into one.")

    def copy_id(self) -> None:
        ids = [r.key for r in self._containers()]
        if ids:
            QApplication.clipboard().setText("\n".join(ids))
            self.message.emit(f"Copied {'the id' if len(ids) == 1 else f'{len(ids)} ids'} to the clipboard.")

    def refresh(self) -> None:
        self.feed.spawn(self.feed.refresh())

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._update_actions()

    async def _each(self, verb: str, rows: list[PanelRow], call: Callable[[PanelRow], Any]) -> int:
        """Run `call` on every row concurrently; report failures. Returns how many succeeded."""
        self._set_busy(True)
        try:
            self.message.emit(f"{verb.capitalize()} {self._names(rows)}…")
            results = await asyncio.gather(*(call(r) for r in rows), return_exceptions=True)
        finally:
            self._set_busy(False)
        failures = []
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BerthError):
                failures.append(f"{row.name}: {result}")
            elif isinstance(result, BaseException):
                logger.error("%s %s failed", verb, row.name, exc_info=result)
                failures.append(f"{row.name}: internal error (see the log)")
            elif isinstance(result, ContainerInfo):
                self.model.update_container(result)
        if failures:
            self.message.emit(f"Could not finish {verb}: " + "; ".join(failures))
        else:
            self.message.emit(f"Done {verb} {self._names(rows)}.")
        return len(rows) - len(failures)

    @staticmethod
    def _names(rows: list[PanelRow]) -> str:
        if len(rows) == 1:
            return rows[0].name
        return f"{len(rows)} containers"

    @async_slot()
    async def stop_selected(self) -> int:
        rows = [r for r in self._containers() if r.running]
        if not rows:
            return 0
        return await self._each("stopping", rows, lambda r: self.app.owner.stop(r.key))

    @async_slot()
    async def restart_selected(self) -> int:
        rows = self._containers()
        if not rows:
            return 0
        return await self._each("restarting", rows, lambda r: self.app.owner.restart(r.key))

    @async_slot()
    async def remove_selected(self) -> int:
        rows = self._containers()
        if not rows:
            return 0
        running = sum(1 for r in rows if r.running)
        what = f"“{rows[0].name}”" if len(rows) == 1 else f"{len(rows)} containers"
        detail = "Their logs go with them; files in the agents' workspaces stay."
        if running:
            detail = (
                f"{'It is' if len(rows) == 1 else f'{running} of them are'} running and will be stopped first. "
                + detail
            )
        if not await confirm(self, "Remove containers", f"Remove {what}?", "Remove", detail=detail):
            return 0
        removed = await self._each("removing", rows, lambda r: self.app.owner.remove(r.key, force=True))
        for r in rows:
            self.feed.inspect_soon(r.key)  # gone: the inspect answers NotFound and drops the row
        return removed
