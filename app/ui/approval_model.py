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
from app.ui.chips import RISKS_ROLE
from app.ui.resources import icon
from app.ui.row_model import RowTableModel
from app.ui.widgets import plain

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


def when_text(ts: float, now: float | None = None, *, seconds: bool = True) -> str:
    """A moment for a person: `23:45:25` today, `2 Dec 23:45` this year, `2 Dec 2025 23:45` before."""
    now = time.time() if now is None else now
    moment, today = time.localtime(ts), time.localtime(now)
    if moment[:3] == today[:3]:
        return time.strftime("%H:%M:%S" if seconds else "%H:%M", moment)
    day = f"{moment.tm_mday} {time.strftime('%b', moment)}"
    if moment.tm_year != today.tm_year:
        day += f" {moment.tm_year}"
    return f"{day} {time.strftime('%H:%M', moment)}"


def at_text(ts: float, now: float | None = None) -> str:
    """`at 23:45:25` today, `on 2 Dec at 23:45` another day (for a sentence)."""
    shown = when_text(ts, now)
    if ":" in shown and " " not in shown:
        return f"at {shown}"
    day, clock = shown.rsplit(" ", 1)
    return f"on {day} at {clock}"


def pattern_id(req: ShellRequest) -> int | None:
    by = req.decided_by or ""
    if by.startswith("pattern:"):
        try:
            return int(by.split(":", 1)[1])
        except ValueError:
            return None
    return None


def decided_by_text(req: ShellRequest, patterns: dict[int, str] | None = None) -> str:
    """Who decided, in words: `you`, the trusted pattern itself (`“ls *”`), or nobody (expired)."""
    by = req.decided_by or ""
    if by == "user":
        return "you"
    if by.startswith("pattern:"):
        pid = pattern_id(req)
        text = (patterns or {}).get(pid) if pid is not None else None
        return f"“{text}”" if text else f"trusted pattern #{by.split(':', 1)[1]} (since removed)"
    return by or "nobody"


def outcome_text(req: ShellRequest, patterns: dict[int, str] | None = None) -> str:
    """The Outcome column: `done · by you`, `done · by “ls *”`, `denied by you`, `expired`, `timed out · by you`."""
    if req.status == "expired":
        return "expired"
    if req.status == "denied":
        return f"denied by {decided_by_text(req, patterns)}"
    if req.status == "pending":
        return "waiting"
    state = "running" if req.status == "running" else "done"
    if req.result is not None and req.result.timed_out:
        state = "timed out"
    return f"{state} · by {decided_by_text(req, patterns)}"


def outcome_sentence(req: ShellRequest, patterns: dict[int, str] | None = None, now: float | None = None) -> str:
    """The detail pane's one clear outcome: who decided, when, and how it ended."""
    when = f" {at_text(req.decided_at, now)}" if req.decided_at else ""
    if req.status == "expired":
        return f"Expired{when}: nobody approved or denied it in time, so it never ran."
    who = decided_by_text(req, patterns)
    if req.status == "denied":
        return f"Denied by {who}{when}. It never ran."
    by = f"the trusted pattern {who}" if req.decided_by and req.decided_by.startswith("pattern:") else who
    text = f"Approved by {by}{when}"
    result = req.result
    if req.status == "running" or result is None:
        return text + " — running now." if req.status == "running" else text + "."
    if result.timed_out:
        text += f" — killed at its timeout after {fmt.duration_ms(result.duration_ms)}."
    elif result.exit_code is None:
        text += " — " + (result.stderr.rstrip(".") if result.stderr else "outcome unknown") + "."
    else:
        ok = "finished" if result.exit_code == 0 else "failed"
        text += f" — {ok} with exit code {result.exit_code} after {fmt.duration_ms(result.duration_ms)}."
    if result.truncated:
        text += " Output truncated."
    return text


class RequestTableModel(RowTableModel):
    """Shell requests as rows; `history=True` adds the outcome and exit code columns."""

    def __init__(self, *, history: bool = False, workspaces: str | None = None, parent: Any = None) -> None:
        super().__init__(HISTORY_HEADERS if history else PENDING_HEADERS, parent)
        self.history = history
        self.workspaces = workspaces  # the real path of the workspaces folder: a folder in one reads `workspace/…`
        self._rows: list[ShellRequest] = []
        self.patterns: dict[int, str] = {}  # trusted pattern id -> its text, for "done · by “ls *”"
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
        if role == RISKS_ROLE:
            return req.risks if col == COL_COMMAND else None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(req, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_COMMAND:
                found = describe_suspicious(req.command)
                risks = "".join(f"\n⚠ {r.label}: {plain(r.detail)}" for r in req.risks if r.kind != "hidden")
                return plain_tooltip(
                    display_command(req.command) + (f"\n\n⚠ {found}" if found else "") + (f"\n{risks}" if risks else "")
                )
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
                return outcome_sentence(req, self.patterns)
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
                return when_text(req.decided_at or req.created)
            return fmt.age(req.created)
        if col == COL_STATUS:
            return outcome_text(req, self.patterns)
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

    def set_patterns(self, patterns: dict[int, str]) -> None:
        """The trusted patterns' texts (a decision by a pattern shows the pattern itself)."""
        if patterns != self.patterns:
            self.patterns = dict(patterns)
            if self._rows:
                self.dataChanged.emit(self.index(0, COL_STATUS), self.index(len(self._rows) - 1, COL_STATUS))

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
