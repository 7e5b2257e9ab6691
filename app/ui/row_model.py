"""The table models' common part: a list of rows under fixed column headers.

Each view's model (containers, requests, agents, patterns) subclasses `RowTableModel`, sets `headers`
and implements `data()`; row count, column count and header labels are done once, here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

Index = QModelIndex | QPersistentModelIndex


class RowTableModel(QAbstractTableModel):
    """Rows (`self._rows`, any objects) under `self.headers`."""

    def __init__(self, headers: Sequence[str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.headers: Sequence[str] = headers
        self._rows: list[Any] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.headers)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.headers[section]
        return None

    def row_at(self, i: int) -> Any:
        return self._rows[i]

    def reset_rows(self, rows: Sequence[Any]) -> None:
        """Replace every row at once (for lists the person changes rarely)."""
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()
