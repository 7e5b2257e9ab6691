"""Settings -> Engines: the Docker engines Berth drives (issue #18), with Add engine… and Remove.

The list comes from the core (`Owner.engines`: whether each answers, its version, this Berth's containers
there, the agents placed on it, how the workspace reaches it); adding and removing go through the core
too, which checks, stores and audits. Like every setting, a change applies at once: there is no Save.
The local engine is always there and cannot be removed.
"""

from __future__ import annotations

import logging
from typing import Any

import shiboken6
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.application import Application
from app.errors import BerthError
from app.model import FILES_LOCAL, LOCAL_ENGINE
from app.ui.add_engine_dialog import AddEngineDialog, error_text
from app.ui.approval_model import plain_tooltip
from app.ui.dialogs import confirm, run_dialog
from app.ui.resources import icon
from app.ui.row_model import RowTableModel
from app.ui.slots import async_slot
from app.ui.status_delegate import StatusDelegate

logger = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex
COL_NAME, COL_ENDPOINT, COL_STATE, COL_CONTAINERS, COL_AGENTS, COL_FILES = range(6)
ENGINE_ROLE = Qt.ItemDataRole.UserRole + 1
UP_COLOR, DOWN_COLOR = "#2e7d4f", "#b3261e"
FILES_TEXT = {FILES_LOCAL: "mounted", "sync": "copied"}
FILES_TIP = {
    FILES_LOCAL: "It sees this machine's folders: the workspace is mounted into its containers as it is.",
    "sync": "A remote machine: Berth copies the workspace there before each run and service, and back after.",
}
LOCAL_TIP = "The local engine is always there: it cannot be removed (its address is on the General tab)."


class EngineTableModel(RowTableModel):
    """One row per engine (`Owner.engines` dicts): name, address, state, containers, agents, workspace."""

    HEADERS = ("Engine", "Address", "State", "Containers", "Agents on it", "Workspace")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(self.HEADERS, parent)
        self._rows: list[dict[str, Any]] = []

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        e = self._rows[index.row()]
        col = index.column()
        if role == ENGINE_ROLE:
            return e
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(e, col)
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_STATE:  # the dot's colour (StatusDelegate)
            return QBrush(QColor(UP_COLOR if e["available"] else DOWN_COLOR))
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_STATE:
                if e["available"]:
                    return plain_tooltip(f"Answers at {e['endpoint']} (Docker {e.get('version') or '?'})")
                return plain_tooltip(e.get("hint") or f"Nothing answers at {e['endpoint']}")
            if col == COL_FILES:
                return FILES_TIP.get(e.get("files") or FILES_LOCAL, "")
            if col == COL_CONTAINERS and e.get("containers") is None:
                return "Unknown while it does not answer"
            return plain_tooltip(self._text(e, col))
        return None

    @staticmethod
    def _text(e: dict[str, Any], col: int) -> str:
        if col == COL_NAME:
            return str(e["name"])
        if col == COL_ENDPOINT:
            return str(e["endpoint"])
        if col == COL_STATE:
            version = str(e.get("version") or "?").split("+")[0]  # a distribution's suffix is in the tooltip
            return f"answering · Docker {version}" if e["available"] else "not answering"
        if col == COL_CONTAINERS:
            return "—" if e.get("containers") is None else str(e["containers"])
        if col == COL_AGENTS:
            return ", ".join(e.get("agents") or []) or "none"
        if col == COL_FILES:
            files = e.get("files") or FILES_LOCAL
            return FILES_TEXT.get(files, files)
        return ""

    def set_engines(self, engines: list[dict[str, Any]]) -> None:
        self.reset_rows(engines)  # a handful of rows, asked for again on demand: a reset is fine

    def row_of(self, name: str) -> int:
        return next((i for i, e in enumerate(self._rows) if e["name"] == name), -1)


class EnginesPage(QWidget):
    """The engines, whether each answers, and the buttons that add and remove one."""

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("enginesPage")
        self.app = app
        self.model = EngineTableModel(self)
        self.dialog: AddEngineDialog | None = None  # while open (tests find it here)

        intro = QLabel(
            "Berth can run agents' containers on more than one Docker engine: this machine's, and others you add "
            "(over SSH, or TCP with TLS). Each agent runs on one engine, chosen in its Agent Settings."
        )
        intro.setWordWrap(True)
        self.table = QTableView()
        self.table.setObjectName("enginesTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setItemDelegateForColumn(COL_STATE, StatusDelegate(self.table))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_ENDPOINT, QHeaderView.ResizeMode.Stretch)
        widths = {COL_NAME: 90, COL_STATE: 225, COL_CONTAINERS: 90, COL_AGENTS: 165, COL_FILES: 90}
        for col, width in widths.items():
            self.table.setColumnWidth(col, width)

        self.add_button = QPushButton(icon("add"), "Add engine…")
        self.add_button.setObjectName("addEngine")
        self.remove_button = QPushButton(icon("remove"), "Remove")
        self.remove_button.setObjectName("danger")
        self.refresh_button = QPushButton(icon("retry"), "Check again")
        self.refresh_button.setObjectName("refreshEngines")
        self.refresh_button.setToolTip("Ask every engine again whether it answers")
        self.status = QLabel()
        self.status.setObjectName("enginesStatus")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        buttons.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 14)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

        self.add_button.clicked.connect(lambda: self.add_engine())
        self.remove_button.clicked.connect(lambda: self.remove_selected())
        self.refresh_button.clicked.connect(lambda: self.reload())
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selection())
        self._selection()
        self._asked = False

    def showEvent(self, event: QShowEvent) -> None:
        """The engines are asked when the page is first shown, not with the rest of Settings: one that does not
        answer takes the connection's timeout, and a person who never opens this page need not wait for it."""
        super().showEvent(event)
        if not self._asked:
            self._asked = True
            self._first_reload = self.reload()  # a task of its own (an async slot)

    # -- the list ----------------------------------------------------------------------------------

    def selected(self) -> dict[str, Any] | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].data(ENGINE_ROLE) if rows else None

    def select(self, name: str) -> bool:
        row = self.model.row_of(name)
        if row >= 0:
            self.table.selectRow(row)
        return row >= 0

    def _selection(self) -> None:
        engine = self.selected()
        local = engine is not None and engine["name"] == LOCAL_ENGINE
        self.remove_button.setEnabled(engine is not None and not local)
        self.remove_button.setToolTip(
            LOCAL_TIP if local else "Choose an engine in the list first" if engine is None else "Forget this engine"
        )

    def _say(self, text: str, color: str | None = None) -> None:
        if shiboken6.isValid(self.status):  # the dialog may have closed meanwhile
            self.status.setText(text)
            self.status.setStyleSheet(f"color: {color};" if color else "")

    @async_slot()
    async def reload(self) -> list[dict[str, Any]] | None:
        """Ask the core for every engine (one that does not answer takes up to its timeout: the rest waits)."""
        self.refresh_button.setEnabled(False)
        self._say("Asking each engine…", "#6b7280")
        try:
            engines = await self.app.owner.engines()
        except Exception as e:
            logger.exception("could not list the engines")
            self._say(f"Could not list the engines: {e}", DOWN_COLOR)
            return None
        finally:
            if shiboken6.isValid(self.refresh_button):
                self.refresh_button.setEnabled(True)
        if not shiboken6.isValid(self.table):
            return engines
        chosen = self.selected()
        self.model.set_engines(engines)
        if chosen is not None:
            self.select(chosen["name"])
        self._selection()
        self._say("")
        return engines

    # -- add, remove -------------------------------------------------------------------------------

    @async_slot()
    async def add_engine(self) -> dict[str, Any] | None:
        """Add engine…: the dialog checks and adds it itself (errors stay in the dialog); then the list."""
        dialog = AddEngineDialog(self.app.owner, self.window())
        self.dialog = dialog
        self.add_button.setEnabled(False)
        try:
            result = await run_dialog(dialog)
        finally:
            self.dialog = None
            dialog.deleteLater()
            if shiboken6.isValid(self.add_button):
                self.add_button.setEnabled(True)
        added = dialog.added
        if result != QDialog.DialogCode.Accepted or added is None:
            return None
        await self.reload()
        self.select(added["name"])
        copied = added.get("images_copied") or []
        note = f"; copied {', '.join(copied)} there" if copied else ""
        self._say(f"Added {added['name']} (Docker {added.get('version') or '?'}){note}.", UP_COLOR)
        return added

    @async_slot()
    async def remove_selected(self) -> bool:
        """Remove the chosen engine; the core refuses while an agent is placed on it, and the page says why."""
        engine = self.selected()
        if engine is None or engine["name"] == LOCAL_ENGINE:
            return False
        name = engine["name"]
        if not engine.get("agents"):  # with agents on it the core refuses: say so without asking first
            sure = await confirm(
                self,
                "Remove engine",
                f"Remove the engine {name}?",
                "Remove engine",
                detail="Berth stops using it. Its containers there are left as they are.",
            )
            if not sure:
                return False
        self.remove_button.setEnabled(False)
        try:
            await self.app.owner.remove_engine(name)
        except BerthError as e:
            self._say(f"Not removed: {error_text(e)}", DOWN_COLOR)
            return False
        except Exception as e:
            logger.exception("could not remove engine %s", name)
            self._say(f"Not removed: internal error ({e})", DOWN_COLOR)
            return False
        finally:
            if shiboken6.isValid(self.remove_button):
                self._selection()
        await self.reload()
        self._say(f"Removed {name}. Its containers there are left as they are.", UP_COLOR)
        return True
