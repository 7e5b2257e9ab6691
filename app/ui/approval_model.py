"""Table models for the Approval Queue: pending requests, and the history of decided ones.

Rows are the core's `ShellRequest`s, keyed by request id. `set_requests` replaces the list with
targeted updates (rows inserted, removed, or changed cells only), so the selection survives a
refresh. The command column shows the first line through `display_command` (hidden characters as
escapes) with a marker when there are more lines; the detail pane shows the whole command. The
folder goes through `display_text` (one line, every hidden character escaped), and so do the
tooltips, which are escaped HTML: Qt reads a tooltip that looks like markup as rich text.
"""

from __future__ import annotations

import html
import time
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont

from app.core.approvals import ShellRequest
from app.core.display import describe_suspicious, display_command, display_text, needs_warning
from app.ui import format as fmt
from app.ui.resources import icon
from app.ui.row_model import RowTableModel

Index = QModelIndex | QPersistentModelIndex

COL_AGENT, COL_COMMAND, COL_ACCESS, COL_CWD, COL_TIME, COL_STATUS, COL_EXIT = range(7)
PENDING_HEADERS = ("Agent", "Command", "Access", "Directory", "Waiting")
HISTORY_HEADERS = ("Agent", "Command", "Access", "Directory", "Decided", "Outcome", "Exit")
REQUEST_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2

STATUS_COLORS = {"denied": "#b3261e", "expired": "#92400e", "running": "#1f5f8b", "done": "#2e7d4f"}
FULL_ACCESS_COLOR = "#b3261e"


def plain_tooltip(text: str) -> str:
    """A tooltip that shows `text` as it is: escaped HTML (a tooltip that looks like markup is rendered)."""
    return f'<p style="white-space: pre-wrap;">{html.escape(text, quote=False)}</p>'


def suspicious(req: ShellRequest) -> bool:
    """Does the command or the folder hold a look-alike or hidden character?"""
    return needs_warning(req.command) or needs_warning(req.cwd)


def access_text(req: ShellRequest) -> str:
    """`sandbox` or `full access`: what it asks for while pending, what it ran with once approved (the
    tooltip and the detail say when that is less than it asked for)."""
    return "full access" if req.effective_access == "host" else "sandbox"


def workspace_relative(cwd: str, workspace: str) -> str | None:
    """`workspace` or `workspace/site` for a folder in the agent's workspace (real paths); None elsewhere."""
    if cwd == workspace:
        return "workspace"
    if cwd.startswith(workspace.rstrip("/") + "/"):
        return "workspace/" + cwd[len(workspace.rstrip("/")) + 1 :]
    return None


def first_line(command: str, limit: int = 200) -> str:
    """The first line, escaped, with `…` and the number of further lines when there are more."""
    shown = display_command(command)
    lines = shown.split("\n")
    text = lines[0] if len(lines[0]) <= limit else lines[0][: limit - 1] + "…"
    if len(lines) > 1:
        text += f"  ⏎ (+{len(lines) - 1} more line{'s' if len(lines) > 2 else ''})"
    return text


def short_path(path: str, limit: int = 28) -> str:
    """`/tmp/berth-demo.x/project` -> `…/berth-demo.x/project`: the end of a folder says the most."""
    if len(path) <= limit:
        return path
    parts = path.rstrip("/").split("/")
    tail = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + len(tail) + 2 > limit:
            break
        tail = f"{part}/{tail}"
    return "…/" + tail


def decided_by_text(req: ShellRequest) -> str:
    """Who decided, in words: `you`, `pattern #3`, or nobody (expired)."""
    by = req.decided_by or ""
    if by == "user":
        return "you"
    if by.startswith("pattern:"):
        return f"trusted pattern #{by.split(':', 1)[1]}"
    return by or "nobody"


def outcome_text(req: ShellRequest) -> str:
    """`done · by you`, `denied by you`, `expired` (nobody decided in time: the tooltip and the detail say so)."""
    if req.status == "expired":
        return "expired"
    if req.status == "denied":
        return f"denied by {decided_by_text(req)}"
    if req.status == "pending":
        return "waiting"
    state = "running" if req.status == "running" else "done"
    if req.result is not None and req.result.timed_out:
        state = "timed out"
    by = req.decided_by or ""
    who = f"pattern #{by.split(':', 1)[1]}" if by.startswith("pattern:") else decided_by_text(req)
    return f"{state} · by {who}"


class RequestTableModel(RowTableModel):
    """Shell requests as rows; `history=True` adds the outcome and exit code columns."""

    def __init__(self, *, history: bool = False, workspaces: str | None = None, parent: Any = None) -> None:
        super().__init__(HISTORY_HEADERS if history else PENDING_HEADERS, parent)
        self.history = history
        self.workspaces = workspaces  # the real path of the workspaces folder: a folder in one reads `workspace/…`
        self._rows: list[ShellRequest] = []
        self._mono = QFont("monospace")
        self._mono.setStyleHint(QFont.StyleHint.Monospace)

    # -- data --------------------------------------------------------------------------------------

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        req = self._rows[index.row()]
        col = index.column()
        if role == REQUEST_ROLE:
            return req
        if role == ID_ROLE:
            return req.request_id
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(req, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_COMMAND:
                found = describe_suspicious(req.command)
                return plain_tooltip(display_command(req.command) + (f"\n\n⚠ {found}" if found else ""))
            if col == COL_CWD:
                found = describe_suspicious(req.cwd)
                return plain_tooltip(display_text(req.cwd) + (f"\n\n⚠ {found}" if found else ""))
            if col == COL_ACCESS:
                if req.effective_access == "host":
                    lowered = " (it asked for the sandbox; no sandbox works here)" if req.access != "host" else ""
                    return f"Full access: as you, outside any sandbox{lowered}"
                asked = " (it asked for full access)" if req.access == "host" else ""
                return f"In a sandbox: reads your files, writes only its folder, no network{asked}"
            if col == COL_STATUS:
                if req.status == "expired":
                    return "Expired: nobody approved or denied it in time; it never ran"
                return outcome_text(req).replace(" · by ", " · approved by ").replace("pattern #", "trusted pattern #")
            if col == COL_TIME:
                when = req.decided_at if self.history and req.decided_at else req.created
                return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
            return None
        if role == Qt.ItemDataRole.FontRole and col == COL_COMMAND:
            return self._mono
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_STATUS:
            color = STATUS_COLORS.get(req.status)
            return QColor(color) if color else None
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_ACCESS and req.effective_access == "host":
            return QColor(FULL_ACCESS_COLOR)
        if role == Qt.ItemDataRole.DecorationRole and col == COL_COMMAND and suspicious(req):
            return icon("warning")
        return None

    def _text(self, req: ShellRequest, col: int) -> str:
        if col == COL_AGENT:
            return req.agent
        if col == COL_COMMAND:
            return first_line(req.command)
        if col == COL_ACCESS:
            return access_text(req)
        if col == COL_CWD:
            inside = workspace_relative(req.cwd, f"{self.workspaces}/{req.agent}") if self.workspaces else None
            return short_path(display_text(inside or req.cwd))
        if col == COL_TIME:
            if self.history:
                when = req.decided_at or req.created
                return (
                    time.strftime("%H:%M:%S", time.localtime(when))
                    if time.time() - when < 86400
                    else (time.strftime("%Y-%m-%d %H:%M", time.localtime(when)))
                )
            return fmt.age(req.created)
        if col == COL_STATUS:
            return outcome_text(req)
        if col == COL_EXIT:
            if req.result is None:
                return ""
            if req.result.timed_out:
                return "timed out"
            return "" if req.result.exit_code is None else str(req.result.exit_code)
        return ""

    # -- updates -----------------------------------------------------------------------------------

    def requests(self) -> list[ShellRequest]:
        return list(self._rows)

    def get(self, request_id: str) -> ShellRequest | None:
        return next((r for r in self._rows if r.request_id == request_id), None)

    def row_of(self, request_id: str) -> int:
        return next((i for i, r in enumerate(self._rows) if r.request_id == request_id), -1)

    def set_requests(self, requests: list[ShellRequest]) -> None:
        """Make the rows equal to `requests` (in that order) with targeted inserts, removals and cell updates."""
        wanted = {r.request_id for r in requests}
        for i in range(len(self._rows) - 1, -1, -1):
            if self._rows[i].request_id not in wanted:
                self.beginRemoveRows(QModelIndex(), i, i)
                del self._rows[i]
                self.endRemoveRows()
        for pos, req in enumerate(requests):
            current = self.row_of(req.request_id)
            if current == -1:
                self.beginInsertRows(QModelIndex(), pos, pos)
                self._rows.insert(pos, req)
                self.endInsertRows()
                continue
            if current != pos:
                self.beginMoveRows(QModelIndex(), current, current, QModelIndex(), pos if pos < current else pos + 1)
                self._rows.insert(pos, self._rows.pop(current))
                self.endMoveRows()
            if self._rows[pos] != req:
                self._rows[pos] = req
                self.dataChanged.emit(self.index(pos, 0), self.index(pos, self.columnCount() - 1))

    def tick(self) -> None:
        """Ages move on: refresh the time column only."""
        if self._rows and not self.history:
            self.dataChanged.emit(self.index(0, COL_TIME), self.index(len(self._rows) - 1, COL_TIME))
