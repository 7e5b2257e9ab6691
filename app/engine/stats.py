"""CPU and memory of running containers, cheap enough to poll every second for hundreds of them.

`container.stats(stream=False)` costs 1-2 s per call; reading the container's cgroup files costs
about 0.1 ms. Where the files are not visible (a remote engine, Docker Desktop) the reader falls
back to the engine's streaming stats API, one connection per container giving a sample a second.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from app.engine.connection import Connection
from app.model import Stats

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
UNLIMITED = 1 << 60
STALE_S = 120.0


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


class _Sample:
    __slots__ = ("at", "cpu_ns")

    def __init__(self, cpu_ns: int, at: float) -> None:
        self.cpu_ns, self.at = cpu_ns, at


class StatsReader:
    """Samples stats for a set of containers; CPU % is computed between two calls."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._prev: dict[str, _Sample] = {}
        self._local = conn.endpoint.startswith("unix://") and CGROUP_ROOT.exists()
        self._streams: dict[str, _StatsStream] = {}

    def _v1(self, cid: str, parent: str) -> tuple[int, int, int | None] | None:
        cpu = _read_int(CGROUP_ROOT / "cpuacct" / parent / cid / "cpuacct.usage")
        if cpu is None:
            return None
        mem = _read_int(CGROUP_ROOT / "memory" / parent / cid / "memory.usage_in_bytes") or 0
        limit = _read_int(CGROUP_ROOT / "memory" / parent / cid / "memory.limit_in_bytes")
        return cpu, mem, limit

    def _v2(self, cid: str, parent: str) -> tuple[int, int, int | None] | None:
        for d in (CGROUP_ROOT / "system.slice" / f"docker-{cid}.scope", CGROUP_ROOT / parent / cid):
            try:
                stat = (d / "cpu.stat").read_text()
            except OSError:
                continue
            usage_us = next((int(line.split()[1]) for line in stat.splitlines() if line.startswith("usage_usec")), 0)
            return usage_us * 1000, _read_int(d / "memory.current") or 0, _read_int(d / "memory.max")
        return None

    def sample(self, containers: dict[str, str | None]) -> dict[str, Stats]:
        """Blocking (run in a thread). `containers` maps id -> cgroup parent (None for Docker's default)."""
        now = time.monotonic()
        out: dict[str, Stats] = {}
        for cid, parent in containers.items():
            raw = None
            if self._local:
                p = (parent or "docker").strip("/")
                raw = self._v1(cid, p) or self._v2(cid, p)
            if raw is None:
                stats = self._stream(cid).latest()
                if stats is not None:
                    out[cid] = stats
                continue
            cpu_ns, mem, limit = raw
            prev = self._prev.get(cid)
            pct = 0.0
            if prev is not None and now > prev.at:
                pct = max(0.0, (cpu_ns - prev.cpu_ns) / ((now - prev.at) * 1e9) * 100.0)
            self._prev[cid] = _Sample(cpu_ns, now)
            out[cid] = Stats(pct, mem, None if limit is None or limit >= UNLIMITED else limit)
        # Callers may sample different subsets (the panel, system.info): forget only readings gone stale.
        for gone in [cid for cid, prev in self._prev.items() if now - prev.at > STALE_S]:
            del self._prev[gone]
        for gone in set(self._streams) - set(containers):
            self._streams.pop(gone).stop()
        return out

    def _stream(self, cid: str) -> _StatsStream:
        s = self._streams.get(cid)
        if s is None:
            s = self._streams[cid] = _StatsStream(self._conn, cid)
        return s

    def close(self) -> None:
        for s in self._streams.values():
            s.stop()
        self._streams.clear()


class _StatsStream:
    """The engine's streaming stats for one container, read in a thread of the connection."""

    def __init__(self, conn: Connection, cid: str) -> None:
        self._latest: Stats | None = None
        self._stop = threading.Event()
        self._client: Any = None
        self._lock = threading.Lock()
        self._thread = conn.start_thread(lambda: self._run(conn, cid), f"stats-{cid[:12]}")

    def latest(self) -> Stats | None:
        return self._latest

    def stop(self) -> None:
        """End the stream now (closing its client wakes the thread); `Connection.aclose` joins the thread."""
        with self._lock:
            self._stop.set()
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                logger.debug("closing the stats client failed", exc_info=True)

    def _run(self, conn: Connection, cid: str) -> None:
        client = conn.new_client(timeout=None, pool_size=1)
        with self._lock:
            if self._stop.is_set():
                client.close()
                return
            self._client = client
        try:
            for s in client.api.stats(cid, stream=True, decode=True):
                if self._stop.is_set():
                    break
                self._latest = stats_from_api(s)
        except Exception:
            logger.debug("stats stream for %s ended", cid, exc_info=True)
        finally:
            self.stop()


def stats_from_api(s: dict[str, Any]) -> Stats:
    """Compute CPU % like `docker stats` from one streaming sample."""
    cpu, pre = s.get("cpu_stats", {}), s.get("precpu_stats", {})
    cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get("total_usage", 0)
    sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    ncpu = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or [1])
    pct = cpu_delta / sys_delta * ncpu * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
    mem = s.get("memory_stats", {})
    limit = mem.get("limit")
    return Stats(pct, int(mem.get("usage", 0)), int(limit) if limit and limit < UNLIMITED else None)
