"""Temporary and pooled containers: which ones this process is making or running, their removal
whatever happens, and the removal of those that another (crashed, killed) Berth left behind."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from app.engine.connection import Connection
from app.engine.containers import Containers
from app.engine.cpugroups import CpuGroups
from app.engine.pool import WarmPool
from app.errors import BerthError, NotFound
from app.model import LABEL_KIND, Kind

logger = logging.getLogger(__name__)


class Leftovers:
    def __init__(self, conn: Connection, containers: Containers, cpu_groups: CpuGroups) -> None:
        self.conn = conn
        self.containers = containers
        self.cpu_groups = cpu_groups
        self.in_use: set[str] = set()  # names/ids of temporary containers this process is running now
        self._cleanups: set[asyncio.Task[None]] = set()

    def in_flight(self, cid: str, full_name: str) -> bool:
        """Whether a run of this process (or a pooled container it is making) is using this container."""
        return cid in self.in_use or full_name in self.in_use

    # -- removal ---------------------------------------------------------------------------------

    async def remove(self, cid: str) -> None:
        """Remove a temporary or pooled container that exists (quietly: see `remove_after`)."""
        await self.remove_after(_done(cid), cid)

    async def remove_after(self, create: asyncio.Future[str], full_name: str) -> None:
        """Remove a temporary container once its creation has finished, whatever happened."""
        try:
            ref = await create
        except BaseException:
            ref = full_name
        try:
            await self.conn.call(lambda: self.conn.api.remove_container(ref, force=True))
        except NotFound:
            pass
        except BerthError as e:
            if "already in progress" not in str(e):
                logger.warning("could not remove temporary container %s: %s (reconcile removes it later)", ref, e)
        except Exception:
            logger.exception("could not remove temporary container %s", ref)

    def spawn_cleanup(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def drain(self) -> None:
        """Wait for pending removals (at shutdown, and in tests)."""
        while self._cleanups:
            await asyncio.gather(*list(self._cleanups), return_exceptions=True)

    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._cleanups)

    # -- after a crash ---------------------------------------------------------------------------

    async def reconcile(self, pool: WarmPool) -> list[str]:
        """At start (and when the engine comes back): remove leftover temporary and pool containers that a
        crash left behind; keep services, and the temporary runs this process is running right now."""
        pool.forget()
        removed: list[str] = []
        for kind in (Kind.TEMPORARY, Kind.POOL):
            for c in await self.containers.find({LABEL_KIND: str(kind)}):
                if self.in_flight(c.id, c.full_name):
                    continue
                try:
                    await self.conn.call(lambda cid=c.id: self.conn.api.remove_container(cid, force=True))
                    removed.append(c.id)
                except NotFound:
                    pass
        await self.containers.detect()
        await self.conn.call(self.cpu_groups.remove_empty)
        if removed:
            logger.info("reconcile removed %d leftover container(s)", len(removed))
        return removed


def _done(value: str) -> asyncio.Future[str]:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future
