"""The Container Panel: every container of this Berth, recent finished runs, and waiting work.

One `QTableView` over `ContainerTableModel` through `ContainerFilter`. Actions are `QAction`s
shared by the buttons, the context menu and the keyboard; the ones that talk to the engine are
`@asyncSlot`s that disable themselves while they run and report failures in the status bar.
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
    QStackedWidget,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.application import Application
from app.errors import BerthError
from app.model import ContainerInfo
from app.ui.container_feed import ContainerFeed
from app.ui.container_model import (
    COL_AGE,
    COL_AGENT,
    COL_CPU,
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
)
from app.ui.dialogs import confirm
from app.ui.logs_viewer import LogsWindow
from app.ui.port_delegate import PortDelegate
from app.ui.resources import icon
from app.ui.slots import async_slot
from app.ui.widgets import EmptyState

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
        self.kind_box = QComboBox()
        for text, value in (("All kinds", ""), ("Services", "service"), ("Temporary", "temporary")):
            self.kind_box.addItem(text, value)
        self.status_box = QComboBox()
        for text, value in (("Any status", ""), ("Running", "running"), ("Stopped", "stopped"), ("Waiting", "waiting")):
            self.status_box.addItem(text, value)
        self.runs_box = QCheckBox("Finished runs")
        self.runs_box.setChecked(True)
        self.runs_box.setToolTip("Show the recent finished temporary runs, with their exit code and output")
        self.pool_box = QCheckBox("Warm pool")
        self.pool_box.setToolTip(
            "Containers started ahead of time so temporary runs start fast. Each serves one run and is removed "
            "afterwards; they do not count toward an agent's limits."
        )

        # Actions: one QAction each, shared by the buttons, the context menu and the keyboard.
        self.act_logs = self._action("Logs", "logs", "Ctrl+L", "Open the logs (or a finished run's output)")
        self.act_port = self._action("Open port", "open-port", "Ctrl+O", "Open the published port in the browser")
        self.act_stop = self._action("Stop", "stop", "Ctrl+.", "Stop the selected containers")
        self.act_restart = self._action("Restart", "restart", "Ctrl+R", "Restart the selected containers")
        self.act_remove = self._action("Remove…", "remove", "Delete", "Remove the selected containers (asks first)")
        self.act_copy = self._action("Copy id", "copy", "Ctrl+Shift+C", "Copy the container id")
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
        bar.addWidget(self.kind_box)
        bar.addWidget(self.status_box)
        bar.addWidget(self.runs_box)
        bar.addWidget(self.pool_box)

        actions = QHBoxLayout()
        actions.setSpacing(6)
        for i, act in enumerate(
            (self.act_logs, self.act_port, self.act_stop, self.act_restart, self.act_remove, self.act_copy)
        ):
            if i in (2, 5):
                actions.addSpacing(10)
            b = QToolButton()
            b.setObjectName("action")
            b.setDefaultAction(act)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            actions.addWidget(b)
        actions.addStretch(1)
        actions.addWidget(self.summary)

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
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
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

        self.empty = EmptyState()
        self.empty.button.clicked.connect(self.clear_filter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 10)
        layout.setSpacing(10)
        layout.addWidget(title)
        layout.addLayout(bar)
        layout.addLayout(actions)
        layout.addWidget(self.stack, 1)

        self.filter_text.textChanged.connect(lambda t: self.proxy.set_filter(text=t.strip()))
        self.agent_box.currentIndexChanged.connect(lambda _i: self.proxy.set_filter(agent=self.agent_box.currentData()))
        self.kind_box.currentIndexChanged.connect(lambda _i: self.proxy.set_filter(kind=self.kind_box.currentData()))
        self.status_box.currentIndexChanged.connect(
            lambda _i: self.proxy.set_filter(status=self.status_box.currentData())
        )
        self.runs_box.toggled.connect(lambda on: self.proxy.set_filter(show_runs=on))
        self.pool_box.toggled.connect(lambda on: self.proxy.set_filter(show_pool=on))
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_actions())
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(self._double_clicked)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset, self.proxy.layoutChanged):
            sig.connect(self._schedule_refresh_view)
        for sig in (self.model.rowsInserted, self.model.rowsRemoved):  # rows the filter hides count too
            sig.connect(self._schedule_refresh_view)
        self.feed.loaded.connect(self._schedule_refresh_view)
        self.model.dataChanged.connect(lambda *_: self._schedule_summary())

        for keys, slot, widget in (
            ("Ctrl+F", self._focus_filter, self),
            ("Return", self.open_logs, self.table),
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
        self._update_agents()
        self._update_actions()
        self._update_summary()

    def _update_summary(self) -> None:
        rows = self.model.rows()
        containers = [r for r in rows if r.type == CONTAINER and r.kind != "pool"]
        running = sum(1 for r in containers if r.running)
        pooled = self.model.pool_count()
        self.pool_box.setText(f"Warm pool ({pooled})")
        waiting = sum(1 for r in rows if r.type == "waiting")
        parts = [f"{len(containers)} container{'s' if len(containers) != 1 else ''}", f"{running} running"]
        if waiting:
            parts.append(f"{waiting} waiting")
        shown = self.proxy.rowCount()
        if self.proxy.active() and shown != len(rows):
            parts.append(f"{shown} shown")
        self.summary.setText(" · ".join(parts))

    def _update_agents(self) -> None:
        agents = sorted({r.agent for r in self.model.rows() if r.agent})
        current = [self.agent_box.itemData(i) for i in range(1, self.agent_box.count())]
        if agents == current:
            return
        chosen = self.agent_box.currentData()
        self.agent_box.blockSignals(True)
        self.agent_box.clear()
        self.agent_box.addItem("All agents", "")
        for a in agents:
            self.agent_box.addItem(a, a)
        i = self.agent_box.findData(chosen)
        self.agent_box.setCurrentIndex(max(i, 0))
        self.agent_box.blockSignals(False)
        if i < 0 and chosen:
            self.proxy.set_filter(agent="")

    def _focus_filter(self) -> None:
        self.filter_text.setFocus()
        self.filter_text.selectAll()

    def clear_filter(self) -> None:
        self.filter_text.clear()
        self.agent_box.setCurrentIndex(0)
        self.kind_box.setCurrentIndex(0)
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
        self.open_logs()

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
