"""The detail pane's Inspect tab: a container's inspect as sections of name/value rows, secrets hidden.

Environment values whose name looks secret (`*TOKEN*`, `*KEY*`, `*SECRET*`, `*PASSWORD*`, ...) show as
dots until the person clicks them (`toggle`); copying a hidden row copies the dots, not the value.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from app.model import ContainerDetail
from app.ui import format as fmt
from app.ui.row_model import RowTableModel

Index = QModelIndex | QPersistentModelIndex
_USER = int(Qt.ItemDataRole.UserRole.value)
URL_ROLE = _USER + 11
ITEM_ROLE = _USER + 12

SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE", re.IGNORECASE)
HIDDEN = "••••••••  (click to show)"


def looks_secret(name: str) -> bool:
    """An environment variable whose value should not be on screen until asked for."""
    return bool(SECRET_NAME.search(name))


@dataclass
class InspectItem:
    section: str
    name: str = ""  # empty: the section's heading
    value: str = ""
    secret: bool = False
    revealed: bool = False
    url: str = ""
    warn: bool = False

    @property
    def heading(self) -> bool:
        return not self.name

    @property
    def shown(self) -> str:
        return HIDDEN if self.secret and not self.revealed else self.value


def when(iso: str | None, now: float | None = None) -> str:
    """`2026-12-01T23:50:12.123Z` -> `2026-12-01 23:50:12 (3 min ago)`, in local time."""
    if not iso:
        return "—"
    from datetime import datetime

    try:
        t = datetime.fromisoformat(iso[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return iso
    ago = fmt.age(t, now)
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(t))} ({ago} ago)"


def status_words(d: ContainerDetail) -> tuple[str, bool]:
    """The status as the person reads it, and whether it is bad news."""
    info = d.info
    if info.status == "running":
        text = "running"
        if d.restart_count:
            text += f", restarted {d.restart_count} time{'s' if d.restart_count != 1 else ''}"
        return text, bool(d.restart_count)
    if d.oom_killed:
        return f"killed: out of memory (exit code {d.exit_code})", True
    if d.exit_code is not None:
        bad = d.exit_code not in (0, 143, 137)
        return f"{info.status}, exit code {d.exit_code}" + (f" ({d.error})" if d.error else ""), bad
    return info.status, False


def items_of(d: ContainerDetail, *, agent_group: bool) -> list[InspectItem]:
    info = d.info
    out: list[InspectItem] = []

    def section(title: str) -> None:
        out.append(InspectItem(title))

    def row(name: str, value: str, **kw: Any) -> None:
        out.append(InspectItem(out[-1].section, name, value, **kw))

    section("Container")
    row("Name", info.name)
    row("Full name", info.full_name)
    row("ID", info.id)
    row("Image", info.image)
    row("Command", shlex.join(d.command) if d.command else "—")
    row("Agent", info.agent or "—")
    row("Engine", info.engine)
    row("Kind", str(info.kind))
    status, bad = status_words(d)
    row("Status", status, warn=bad)
    if d.restart_policy:
        row("Restart policy", d.restart_policy)
    row("User", d.user or "the image's")
    row("Working folder", d.workdir or "/")

    section("Times")
    row("Created", when(d.created_at))
    row("Started", when(d.started_at))
    if info.status != "running":
        row("Finished", when(d.finished_at))

    section("Limits")
    row("Memory", fmt.size(d.memory_limit) + (" (no swap)" if d.memory_limit else "") if d.memory_limit else "none")
    if d.cpus is not None:
        cpus = f"{d.cpus:g} CPU{'s' if d.cpus != 1 else ''}"
        row("CPU", f"{cpus}, shared by all of {info.agent}'s containers" if agent_group and info.agent else cpus)
    else:
        row("CPU", "no quota")
    row("Processes", f"at most {d.pids_limit}" if d.pids_limit else "no limit")
    guards = []
    if "ALL" in d.cap_drop:
        guards.append("all capabilities dropped")
    if any(o.startswith("no-new-privileges") for o in d.security_opt):
        guards.append("no new privileges")
    if d.init:
        guards.append("init process")
    if d.read_only_root:
        guards.append("read-only root")
    row("Protection", ", ".join(guards) or "none", warn=not guards)

    section("Ports")
    if info.ports:
        for port, b in sorted(info.ports.items(), key=lambda kv: kv[1].port):
            row(port, b.url, url=b.url)
    else:
        row("Published", "none")

    section("Mounts")
    if d.mounts:
        for m in d.mounts:
            row(m.destination, f"{m.source}  ({m.type}, {'read-only' if m.read_only else 'read-write'})")
    else:
        row("Mounts", "none")

    section("Network")
    for n in d.networks:
        parts = []
        if n.aliases:
            parts.append("reachable as " + ", ".join(n.aliases))
        if n.ip:
            parts.append(n.ip)
        row(n.name, " · ".join(parts) if parts else ("no network at all" if n.name == "none" else "attached"))
    if not d.networks:
        row("Network", info.network or "none")

    section("Labels")
    for k, v in sorted(info.labels.items()):
        row(k, v)

    section("Environment")
    for k, v in d.env:
        row(k, v, secret=looks_secret(k))
    if not d.env:
        row("Environment", "empty")
    return out


HEADING_BG = QBrush(QColor("#f3f4f6"))
WARN_FG = QBrush(QColor("#b3261e"))
MUTED_FG = QBrush(QColor("#6b7280"))
LINK_FG = QBrush(QColor("#1f5f8b"))


class InspectModel(RowTableModel):
    """Two columns, name and value; a heading row per section."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(("Name", "Value"), parent)
        self._rows: list[InspectItem] = []
        bold = QFont()
        bold.setBold(True)
        self._bold = bold

    def set_detail(self, detail: ContainerDetail | None, *, agent_group: bool = False) -> None:
        revealed = {(r.section, r.name) for r in self._rows if r.revealed}
        rows = items_of(detail, agent_group=agent_group) if detail is not None else []
        for r in rows:
            r.revealed = r.secret and (r.section, r.name) in revealed  # a reload keeps what the person opened
        self.reset_rows(rows)

    def items(self) -> list[InspectItem]:
        return list(self._rows)

    def find(self, section: str, name: str) -> int:
        return next((i for i, r in enumerate(self._rows) if r.section == section and r.name == name), -1)

    def toggle(self, row: int) -> bool:
        """Show or hide a secret value; True if the row is a secret one."""
        item = self._rows[row]
        if not item.secret:
            return False
        item.revealed = not item.revealed
        self.dataChanged.emit(self.index(row, 1), self.index(row, 1))
        return True

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        item: InspectItem = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if item.heading:
                return item.section if col == 0 else ""
            return item.name if col == 0 else item.shown
        if role == Qt.ItemDataRole.FontRole and item.heading:
            return self._bold
        if role == Qt.ItemDataRole.BackgroundRole and item.heading:
            return HEADING_BG
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == 0 and not item.heading:
                return MUTED_FG
            if col == 1 and item.warn:
                return WARN_FG
            if col == 1 and item.url:
                return LINK_FG
            if col == 1 and item.secret and not item.revealed:
                return MUTED_FG
        if role == Qt.ItemDataRole.ToolTipRole and col == 1 and not item.heading:
            if item.secret:
                return (
                    "Click to hide the value again"
                    if item.revealed
                    else "Hidden because the name looks secret: click to show"
                )
            if item.url:
                return f"Open {item.url} in the browser (click)"
            return item.value if len(item.value) > 60 else None
        if role == URL_ROLE:
            return item.url
        if role == ITEM_ROLE:
            return item
        return None
