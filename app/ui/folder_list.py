"""A list of folders with Add… and Remove: the host folders granted to an agent, the folders hidden from host
commands (Settings).

The widget only edits and shows the list; its owner decides when it is saved (Agent Settings at once,
Settings with Save). Add… opens a folder chooser with `open()` and awaits it (never a nested `exec()`
inside an asyncio task). Paths are shown through `display_text`, so a folder name with a newline or a
bidi control cannot fake what the list says.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractListModel, QDir, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.display import display_text
from app.ui.approval_model import plain_tooltip
from app.ui.dialogs import run_dialog
from app.ui.resources import icon
from app.ui.slots import async_slot

Index = QModelIndex | QPersistentModelIndex
PATH_ROLE = Qt.ItemDataRole.UserRole + 1


class FolderListModel(QAbstractListModel):
    """Folder paths as rows (a handful, changed by the person: a reset on each change is fine)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[str] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        path = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return display_text(path)
        if role == Qt.ItemDataRole.ToolTipRole:
            return plain_tooltip(display_text(path))
        if role == PATH_ROLE:
            return path
        return None

    def set_folders(self, folders: list[str] | tuple[str, ...]) -> None:
        self.beginResetModel()
        self._rows = list(folders)
        self.endResetModel()

    def folders(self) -> list[str]:
        return list(self._rows)


class FolderList(QWidget):
    """A list of folders, Add… (a folder chooser) and Remove; `addRequested(path)` / `removeRequested(path)`
    say what the person chose, the owner changes the list (`set_folders`)."""

    addRequested = Signal(str)
    removeRequested = Signal(str)

    def __init__(self, chooser_title: str, empty_text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chooser_title = chooser_title
        self.chooser: QFileDialog | None = None  # while open (tests find it here)
        self.model = FolderListModel(self)
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setMinimumHeight(90)
        self.empty = QLabel(empty_text)
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        self.empty.setTextFormat(Qt.TextFormat.PlainText)
        self.add_button = QPushButton(icon("add"), "Add…")
        self.remove_button = QPushButton(icon("remove"), "Remove")
        self.remove_button.setObjectName("danger")
        buttons = QVBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(self.view, 1)
        left.addWidget(self.empty)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(left, 1)
        layout.addLayout(buttons)
        self.add_button.clicked.connect(lambda: self.choose_and_add())
        self.remove_button.clicked.connect(self._remove_clicked)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._selection())
        self._selection()

    def set_folders(self, folders: list[str] | tuple[str, ...]) -> None:
        self.model.set_folders(folders)
        self._selection()

    def folders(self) -> list[str]:
        return self.model.folders()

    def selected(self) -> str | None:
        rows = self.view.selectionModel().selectedRows()
        return rows[0].data(PATH_ROLE) if rows else None

    def select(self, path: str) -> bool:
        if path not in self.model.folders():
            return False
        self.view.setCurrentIndex(self.model.index(self.model.folders().index(path)))
        return True

    def _selection(self) -> None:
        self.remove_button.setEnabled(self.selected() is not None)
        self.empty.setVisible(bool(self.empty.text()) and not self.model.rowCount())

    def _remove_clicked(self) -> None:
        path = self.selected()
        if path is not None:
            self.removeRequested.emit(path)

    async def choose(self) -> str | None:
        """Ask for a folder (window-modal, awaited); None if the person cancels."""
        start = self.selected() or QDir.homePath()
        chooser = QFileDialog(self.window(), self.chooser_title, start)
        chooser.setObjectName("folderChooser")
        chooser.setFileMode(QFileDialog.FileMode.Directory)
        chooser.setOption(QFileDialog.Option.ShowDirsOnly, True)
        chooser.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        self.chooser = chooser
        self.add_button.setEnabled(False)
        try:
            if await run_dialog(chooser) != QFileDialog.DialogCode.Accepted:
                return None
            files = chooser.selectedFiles()
            return files[0] if files else None
        finally:
            self.chooser = None
            self.add_button.setEnabled(True)
            chooser.deleteLater()

    @async_slot()
    async def choose_and_add(self) -> str | None:
        """Add… : ask for a folder, then tell the owner (`addRequested`)."""
        path = await self.choose()
        if path:
            self.addRequested.emit(path)
        return path
