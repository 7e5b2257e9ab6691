"""The Container Panel's table: live containers, recent finished runs and waiting work, one row each.

`ContainerTableModel` keeps rows keyed by container id (`run:<id>` for finished runs, `wait:...` for
queued requests and image pulls) and emits `dataChanged` only for the cells whose text changed, so
a stats tick over 200 containers repaints a handful of cells. `ContainerFilter` sorts and filters.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor

from app.model import ContainerInfo, PortBinding, RunRecord, Stats
from app.ui import format as fmt
from app.ui.row_model import RowTableModel

COL_NAME, COL_AGENT, COL_ENGINE, COL_KIND, COL_STATUS, COL_CPU, COL_MEMORY, COL_PORTS, COL_IMAGE, COL_AGE = range(10)
HEADERS = ("Name", "Agent", "Engine", "Kind", "Status", "CPU", "Memory", "Ports", "Image", "Age")

_USER = int(Qt.ItemDataRole.UserRole.value)
ROW_ROLE = _USER + 1  # the PanelRow
SORT_ROLE = _USER + 2  # a value that sorts naturally (numbers for numbers)
PORTS_ROLE = _USER + 3  # [(label, url), ...]

CONTAINER, RUN, WAITING = "container", "run", "waiting"

RUNNING_COLOR = QColor("#2e7d4f")
FAILED_COLOR = QColor("#b3261e")
WAITING_COLOR = QColor("#9a6700")
MUTED_COLOR = QColor("#6b7280")
_BRUSHES = {
    "running": QBrush(RUNNING_COLOR),
    "waiting": QBrush(WAITING_COLOR),
    "failed": QBrush(FAILED_COLOR),
    "muted": QBrush(MUTED_COLOR),
}

Index = QModelIndex | QPersistentModelIndex

_DISPLAY = int(Qt.ItemDataRole.DisplayRole.value)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole.value)
_ALIGN = int(Qt.ItemDataRole.TextAlignmentRole.value)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole.value)
_RIGHT = int((Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter).value)


@dataclass
class PanelRow:
    """One line of the panel. `type` is CONTAINER, RUN (a finished temporary run) or WAITING."""

    key: str
    type: str
    name: str
    agent: str
    kind: str  # "service" | "temporary"
    state: str  # engine state, or "finished" / "queued" / "pulling"
    image: str = ""
    created: float = 0.0
    exit_code: int | None = None
    stopped: bool = False
    ports: dict[str, PortBinding] = field(default_factory=dict)
    cpu: float | None = None
    memory: int | None = None
    memory_limit: int | None = None
    detail: str = ""  # waiting: the queue place or pull progress; run: the command
    full_name: str = ""
    info: ContainerInfo | None = None
    run_id: int | None = None
    engine: str = "local"  # the engine it runs on (the Engine column shows once there are several)

    @property
    def running(self) -> bool:
        return self.type == CONTAINER and self.state == "running"

    @property
    def status_text(self) -> str:
        if self.type == WAITING:
            return self.detail
        if self.type == RUN:
            if self.detail == "timed out":
                return "timed out"
            if self.detail == "out of memory":
                return "out of memory"
            return f"exited ({self.exit_code})" if self.exit_code is not None else "finished"
        return fmt.status(self.state, self.exit_code, self.stopped)

    @property
    def status_group(self) -> str:
        """For the status filter: running, stopped (any ended state) or waiting."""
        if self.type == WAITING:
            return "waiting"
        if self.running or self.state in ("restarting", "paused"):
            return "running"
        return "stopped"

    @property
    def failed(self) -> bool:
        if self.type == WAITING or self.running:
            return False
        return (self.exit_code not in (None, 0) and not self.stopped and self.exit_code not in (137, 143)) or bool(
            self.type == RUN and self.detail
        )


def row_from_info(info: ContainerInfo, previous: PanelRow | None = None) -> PanelRow:
    """A container row; stats carry over from the previous row while it keeps running."""
    keep = previous is not None and info.status == "running"
    return PanelRow(
        key=info.id,
        type=CONTAINER,
        name=info.name,
        agent=info.agent,
        kind=str(info.kind),
        state=info.status,
        image=info.image,
        created=info.created or (previous.created if previous else 0.0),
        exit_code=info.exit_code,
        stopped=bool(previous and previous.stopped and info.status != "running"),
        ports=dict(info.ports),
        cpu=previous.cpu if keep and previous else None,
        memory=previous.memory if keep and previous else None,
        memory_limit=(previous.memory_limit if keep and previous else None) or info.memory_limit,
        full_name=info.full_name,
        info=info,
        engine=info.engine,
    )


def command_text(command: str) -> str:
    """A run's command in one line: the string, or the argv joined (the store keeps argv as JSON)."""
    if command.startswith("["):
        try:
            argv = json.loads(command)
            if isinstance(argv, list):
                command = " ".join(str(a) for a in argv)
        except ValueError:
            pass
    return " ".join(command.split())


def row_from_run(run: RunRecord) -> PanelRow:
    detail = "timed out" if run.timed_out else "out of memory" if run.oom_killed else ""
    return PanelRow(
        key=f"run:{run.id}",
        type=RUN,
        name=f"#{run.id} {command_text(run.command)}",
        agent=run.agent,
        kind="temporary",
        state="finished",
        image=run.image,
        created=run.finished,
        exit_code=run.exit_code,
        detail=detail,
        full_name=run.command,
        run_id=run.id,
    )


def waiting_row(key: str, agent: str, name: str, kind: str, detail: str, image: str = "") -> PanelRow:
    return PanelRow(
        key=f"wait:{key}",
        type=WAITING,
        name=name,
        agent=agent,
        kind=kind,
        state="waiting",
        image=image,
        created=time.time(),
        detail=detail,
    )


KIND_WORDS = {"pool": "pre-started"}


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def summary_text(rows: list[PanelRow], shown: int | None = None) -> str:
    """What the rows add up to: "5 containers (4 running) · 5 finished runs · 1 queued" (idle pre-started
    containers are counted apart, in their own checkbox); `shown` adds how many the filter lets through."""
    containers = [r for r in rows if r.type == CONTAINER and r.kind != "pool"]
    running = sum(1 for r in containers if r.running)
    runs = sum(1 for r in rows if r.type == RUN)
    queued = sum(1 for r in rows if r.type == WAITING and r.key.startswith("wait:queue:"))
    pulling = sum(1 for r in rows if r.type == WAITING and not r.key.startswith("wait:queue:"))
    parts = [f"{plural(len(containers), 'container')} ({running:,} running)", plural(runs, "finished run")]
    if queued:
        parts.append(f"{queued:,} queued")
    if pulling:
        parts.append(f"{plural(pulling, 'image')} pulling")
    if shown is not None:
        parts.append(f"{shown:,} shown")
    return " · ".join(parts)


def port_links(row: PanelRow) -> list[tuple[str, str]]:
    """[(label, url)] for the published ports: `49153→80`, `http://127.0.0.1:49153`."""
    out = []
    for container_port, b in sorted(row.ports.items(), key=lambda kv: kv[1].port):
        out.append((f"{b.port}→{container_port.removesuffix('/tcp')}", b.url))
    return out


_ROLES = frozenset({_DISPLAY, _FOREGROUND, _ALIGN, _TOOLTIP, ROW_ROLE, SORT_ROLE, PORTS_ROLE})


class ContainerTableModel(RowTableModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(HEADERS, parent)
        self._rows: list[PanelRow] = []
        self._index: dict[str, int] = {}
        self._now = time.time()

    # -- Qt model interface ------------------------------------------------------------------------

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Called for every role of every visible cell on each repaint: leave early for the roles not served,
        # and compare plain ints (comparing against Qt enum members is slow in Python).
        role = int(role)
        if role not in _ROLES or not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        col = index.column()
        if role == _DISPLAY:
            return self.text(row, col)
        if role == _FOREGROUND:
            return self._foreground(row, col)
        if role == _ALIGN:
            return _RIGHT if col in (COL_CPU, COL_MEMORY, COL_AGE) else None
        if role == _TOOLTIP:
            return self._tooltip(row, col)
        if role == ROW_ROLE:
            return row
        if role == SORT_ROLE:
            return self._sort_key(row, col)
        if role == PORTS_ROLE:
            return port_links(row)
        return None

    def text(self, row: PanelRow, col: int) -> str:
        if col == COL_NAME:
            return row.name
        if col == COL_AGENT:
            return row.agent
        if col == COL_ENGINE:
            return row.engine if row.type == CONTAINER else ""
        if col == COL_KIND:
            return KIND_WORDS.get(row.kind, row.kind)
        if col == COL_STATUS:
            return row.status_text
        if col == COL_CPU:
            return fmt.percent(row.cpu) if row.running else ""
        if col == COL_MEMORY:
            return fmt.memory(row.memory, row.memory_limit) if row.running else ""
        if col == COL_PORTS:
            return "  ".join(label for label, _ in port_links(row))
        if col == COL_IMAGE:
            return row.image
        if col == COL_AGE:
            return fmt.age(row.created, self._now)
        return ""

    def _sort_key(self, row: PanelRow, col: int) -> Any:
        if col == COL_CPU:
            return row.cpu if row.running and row.cpu is not None else -1.0
        if col == COL_MEMORY:
            return row.memory if row.running and row.memory is not None else -1
        if col == COL_AGE:
            return -row.created
        if col == COL_STATUS:
            order = {"running": 0, "waiting": 1, "stopped": 2}[row.status_group]
            return f"{order}{row.status_text}"
        if col == COL_PORTS:
            return min((b.port for b in row.ports.values()), default=1 << 20)
        return self.text(row, col).lower()

    def _tooltip(self, row: PanelRow, col: int) -> str | None:
        if col == COL_NAME:
            if row.type == RUN:
                return f"Run #{row.run_id}\n$ {command_text(row.full_name)}\nEnter or double-click to see its output."
            if row.type == WAITING:
                return f"{row.name} ({row.agent}): {row.detail}"
            lines = [row.name if row.name == row.full_name else f"{row.name}  ({row.full_name})"]
            if row.info is not None and row.info.command:
                lines.append(f"$ {row.info.command}")
            lines.append(f"id {row.key[:12]} · Enter or double-click for details")
            info = row.info
            if info is not None and info.on_agent_network:
                where = f"as {info.name!r} " if info.kind == "service" else ""
                lines.append(f"On {info.agent}'s network {info.network}: reachable {where}by its other containers")
            return "\n".join(lines)
        if col == COL_PORTS and row.ports:
            return "\n".join(f"{url} (container port {label.split('→')[1]})" for label, url in port_links(row))
        if col == COL_STATUS and row.type == WAITING:
            return row.detail
        if col in (COL_IMAGE, COL_AGENT, COL_STATUS):
            return self.text(row, col) or None
        return None

    def _foreground(self, row: PanelRow, col: int) -> QBrush | None:
        if col == COL_STATUS:
            if row.running:
                return _BRUSHES["running"]
            if row.type == WAITING:
                return _BRUSHES["waiting"]
            if row.failed:
                return _BRUSHES["failed"]
            return _BRUSHES["muted"]
        if row.type == RUN and col != COL_NAME:
            return _BRUSHES["muted"]
        return None

    # -- reading -----------------------------------------------------------------------------------

    def rows(self) -> list[PanelRow]:
        return list(self._rows)

    def get(self, key: str) -> PanelRow | None:
        i = self._index.get(key)
        return self._rows[i] if i is not None else None

    def row_at(self, i: int) -> PanelRow:
        return self._rows[i]

    def index_of(self, key: str) -> int | None:
        return self._index.get(key)

    def keys(self, type_: str | None = None) -> set[str]:
        return {r.key for r in self._rows if type_ is None or r.type == type_}

    def running(self) -> list[ContainerInfo]:
        return [r.info for r in self._rows if r.running and r.info is not None]

    def pool_count(self) -> int:
        """Idle warm-pool containers (started ahead of time for the next temporary runs)."""
        return sum(1 for r in self._rows if r.kind == "pool")

    def running_count(self) -> int:
        return sum(1 for r in self._rows if r.running and r.kind != "pool")

    # -- changes -----------------------------------------------------------------------------------

    def upsert(self, row: PanelRow) -> None:
        """Insert a new row, or replace one and signal only the cells whose text changed."""
        i = self._index.get(row.key)
        if i is None:
            n = len(self._rows)
            self.beginInsertRows(QModelIndex(), n, n)
            self._rows.append(row)
            self._index[row.key] = n
            self.endInsertRows()
            return
        old = self._rows[i]
        self._rows[i] = row
        self._changed(i, [c for c in range(len(HEADERS)) if self._cell_differs(old, row, c)])

    def _cell_differs(self, old: PanelRow, new: PanelRow, col: int) -> bool:
        if self.text(old, col) != self.text(new, col):
            return True
        # Colours and sort keys that the text does not show.
        return (col == COL_STATUS and (old.failed, old.type) != (new.failed, new.type)) or (
            col == COL_CPU and old.cpu != new.cpu
        )

    def update_container(self, info: ContainerInfo) -> None:
        self.upsert(row_from_info(info, self.get(info.id)))

    def mark_stopped(self, key: str) -> None:
        """The engine reported a stop (not a crash): show `stopped` rather than `exited (143)`."""
        row = self.get(key)
        if row is not None and not row.stopped:
            self.upsert(replace(row, stopped=True))

    def remove(self, key: str) -> bool:
        i = self._index.get(key)
        if i is None:
            return False
        self.beginRemoveRows(QModelIndex(), i, i)
        del self._rows[i]
        del self._index[key]
        self.endRemoveRows()
        self._reindex(i)
        return True

    def _reindex(self, start: int = 0) -> None:
        for j in range(start, len(self._rows)):
            self._index[self._rows[j].key] = j
        if len(self._index) > len(self._rows):
            self._index = {r.key: j for j, r in enumerate(self._rows)}

    def sync(self, type_: str, rows: list[PanelRow], *, prefix: str = "") -> None:
        """Make the rows of `type_` (and key `prefix`) exactly `rows`: remove the missing, upsert the rest."""
        wanted = {r.key for r in rows}
        for key in [r.key for r in self._rows if r.type == type_ and r.key.startswith(prefix) and r.key not in wanted]:
            self.remove(key)
        for r in rows:
            if type_ == CONTAINER and r.info is not None:
                self.update_container(r.info)
            else:
                self.upsert(r)

    def set_stats(self, stats: dict[str, Stats]) -> int:
        """Apply a stats sample to the running rows; returns how many rows changed.

        Changed rows are signalled as contiguous row ranges over the CPU and memory columns only: with
        200 busy containers that is a handful of signals a second, not 400.
        """
        changed: list[int] = []
        for cid, s in stats.items():
            i = self._index.get(cid)
            if i is None:
                continue
            old = self._rows[i]
            if not old.running:
                continue
            new = replace(old, cpu=s.cpu_percent, memory=s.memory_bytes, memory_limit=s.memory_limit_bytes)
            self._rows[i] = new
            if any(self._cell_differs(old, new, c) for c in (COL_CPU, COL_MEMORY)):
                changed.append(i)
        changed.sort()
        start = prev = None
        for i in [*changed, None]:
            if i is not None and prev is not None and i == prev + 1:
                prev = i
                continue
            if start is not None and prev is not None:
                self.dataChanged.emit(self.index(start, COL_CPU), self.index(prev, COL_MEMORY))
            start = prev = i
        return len(changed)

    def tick(self, now: float | None = None) -> None:
        """Ages move on: one signal for the whole column."""
        self._now = now if now is not None else time.time()
        if self._rows:
            self.dataChanged.emit(self.index(0, COL_AGE), self.index(len(self._rows) - 1, COL_AGE))

    def _changed(self, i: int, cols: list[int]) -> None:
        """One dataChanged per contiguous run of changed columns."""
        spans: list[list[int]] = []
        for c in cols:
            if spans and c == spans[-1][1] + 1:
                spans[-1][1] = c
            else:
                spans.append([c, c])
        for first, last in spans:
            self.dataChanged.emit(self.index(i, first), self.index(i, last))


class ContainerFilter(QSortFilterProxyModel):
    """Filter by agent, engine, kind, status group and free text; sort by SORT_ROLE."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)
        self.agent = ""
        self.engine = ""
        self.kind = ""
        self.status = ""
        self.text = ""
        self.show_runs = True
        self.show_pool = False  # idle warm-pool containers: a group the person opens when curious

    def set_filter(self, **changes: Any) -> None:
        self.beginFilterChange()
        for k, v in changes.items():
            if not hasattr(self, k):
                raise AttributeError(k)
            setattr(self, k, v)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def active(self) -> bool:
        return bool(self.agent or self.engine or self.kind or self.status or self.text)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        if not isinstance(model, ContainerTableModel):
            return True
        row = model.row_at(source_row)
        if row.type == RUN and not self.show_runs:
            return False
        if row.kind == "pool" and not self.show_pool:
            return False
        if self.agent and row.agent != self.agent:
            return False
        if self.engine and (row.type != CONTAINER or row.engine != self.engine):
            return False
        if self.kind and row.kind != self.kind:
            return False
        if self.status and row.status_group != self.status:
            return False
        if self.text:
            needle = self.text.lower()
            hay = " ".join(
                (row.name, row.agent, row.image, row.key, row.full_name, row.status_text, model.text(row, COL_PORTS))
            ).lower()
            if needle not in hay:
                return False
        return True
