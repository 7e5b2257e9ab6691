"""The last minutes of CPU and memory readings per container, kept while Berth runs (the detail pane's graphs).

Every reading the owner takes (`Owner.stats`, about once a second for the running containers) is kept in
a fixed ring per container: three arrays of doubles, so 400 containers cost about 3 MiB, not a Python
object per sample. Readings older than the window are not returned; containers not read for a window
are forgotten.
"""

from __future__ import annotations

import time
from array import array

from app.model import Stats, StatsSample

WINDOW_S = 300.0
CAPACITY = 360  # 1 s samples over the window, with room for a few extra readings


class _Ring:
    __slots__ = ("at", "cpu", "head", "limit", "mem", "size")

    def __init__(self) -> None:
        self.at = array("d", bytes(8 * CAPACITY))
        self.cpu = array("d", bytes(8 * CAPACITY))
        self.mem = array("d", bytes(8 * CAPACITY))
        self.limit = array("d", bytes(8 * CAPACITY))
        self.head = 0  # where the next reading goes
        self.size = 0

    def add(self, at: float, s: Stats) -> None:
        i = self.head
        self.at[i], self.cpu[i], self.mem[i] = at, s.cpu_percent, float(s.memory_bytes)
        self.limit[i] = float(s.memory_limit_bytes or 0)
        self.head = (i + 1) % CAPACITY
        self.size = min(self.size + 1, CAPACITY)

    def last_at(self) -> float:
        return self.at[(self.head - 1) % CAPACITY] if self.size else 0.0

    def samples(self, since: float) -> list[StatsSample]:
        out = []
        for k in range(self.size):
            i = (self.head - self.size + k) % CAPACITY
            if self.at[i] >= since:
                limit = int(self.limit[i])
                out.append(StatsSample(self.at[i], self.cpu[i], int(self.mem[i]), limit or None))
        return out


class StatsHistory:
    """Readings per container id; thread-safe enough for one writer on the loop and readers on the loop."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._rings: dict[str, _Ring] = {}

    def record(self, stats: dict[str, Stats], at: float | None = None) -> None:
        at = time.time() if at is None else at
        for cid, s in stats.items():
            ring = self._rings.get(cid)
            if ring is None:
                ring = self._rings[cid] = _Ring()
            ring.add(at, s)
        if len(self._rings) > len(stats):  # some were not read this time: forget the ones gone for a window
            stale = at - self.window_s
            for cid in [c for c, r in self._rings.items() if r.last_at() < stale]:
                del self._rings[cid]

    def samples(self, cid: str, now: float | None = None) -> list[StatsSample]:
        """The readings of the last window, oldest first (empty for a container never read)."""
        ring = self._rings.get(cid)
        if ring is None:
            return []
        now = time.time() if now is None else now
        return ring.samples(now - self.window_s)

    def forget(self, cid: str) -> None:
        self._rings.pop(cid, None)

    def __len__(self) -> int:
        return len(self._rings)
