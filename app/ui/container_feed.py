"""Keeps the Container Panel's model in step with the engine, the run history and the admission queues.

The engine's event stream drives it: each event about a container leads to one `inspect` of that
container (coalesced while one is in flight), `destroy` removes the row. A full list is taken only
at start and whenever the engine comes back. Stats are sampled about once a second for running
containers only. Nothing here blocks the GUI thread: engine calls run in the engine's threads,
store reads in `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.application import Application
from app.errors import BerthError, NotFound
from app.model import ContainerEvent, ContainerInfo, EngineInfo, Kind
from app.ui.bridge import CoreBridge
from app.ui.container_model import CONTAINER, RUN, WAITING, ContainerTableModel, row_from_run, waiting_row
from app.ui.slots import async_slot
from app.ui.tasks import TaskSet

logger = logging.getLogger(__name__)

RUNS_SHOWN = 50  # recent finished runs kept in the panel
POOL_IDLE_NAME = "pre-started, waiting for a run"
STATS_INTERVAL_MS = 1000
AGE_INTERVAL_MS = 5000
PULL_STALE_S = 120.0
# Events after which a container's state may have changed; exec_*, attach, resize, top... do not matter.
INSPECT_ACTIONS = frozenset(
    {
        "create",
        "start",
        "restart",
        "die",
        "stop",
        "kill",
        "pause",
        "unpause",
        "rename",
        "update",
        "oom",
        "health_status",
    }
)


def _ordinal(n: int) -> str:
    return {1: "next", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def _queue_kind(what: str) -> str:
    return "temporary" if what.startswith("run") else "service"


class ContainerFeed(QObject):
    error = Signal(str)  # something the person should read in the status bar
    runningCountChanged = Signal(int)
    loaded = Signal()  # the first full list is in
    statsUpdated = Signal()  # a stats sample went into the model (and the core's history for the graphs)

    def __init__(self, app: Application, bridge: CoreBridge, model: ContainerTableModel, parent: QObject | None = None):
        super().__init__(parent)
        self.app = app
        self.model = model
        self._inflight: dict[str, bool] = {}  # container id -> another inspect is wanted after this one
        self._gone: collections.deque[str] = collections.deque(maxlen=2000)
        self._gone_set: set[str] = set()
        self._touched: set[str] | None = None  # ids updated by events while a full list is in flight
        self._stats_busy = False
        self._refreshing = False
        self._refresh_again = False
        self._pulls: dict[str, float] = {}
        self._serving: dict[str, dict[str, Any]] = {}  # warm-pool container id -> the run it serves
        self._running = -1
        self.tasks = TaskSet(self._failed)
        self.loaded_once = False
        self.stats_ticks = 0

        bridge.containerEvent.connect(self._on_container_event)
        bridge.engineChanged.connect(self._on_engine_changed)
        bridge.otherEngineChanged.connect(self._on_engine_changed)
        bridge.runFinished.connect(self._on_run_finished)
        bridge.runContainer.connect(self._on_run_container)
        bridge.imageProgress.connect(self._on_image_progress)
        bridge.admissionQueued.connect(self._on_queued)

        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(STATS_INTERVAL_MS)
        self._stats_timer.timeout.connect(self._stats_tick)
        self._age_timer = QTimer(self)
        self._age_timer.setInterval(AGE_INTERVAL_MS)
        self._age_timer.timeout.connect(self._tick)

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin following (call once the core has started)."""
        self._stats_timer.start()
        self._age_timer.start()
        self.spawn(self.load_runs())
        if self.app.engine_available:
            self.spawn(self.refresh())

    def stop(self) -> None:
        self._stats_timer.stop()
        self._age_timer.stop()
        self.tasks.cancel()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        return self.tasks.spawn(coro)

    def _failed(self, e: BaseException) -> None:
        logger.error("container panel update failed", exc_info=e)
        self.error.emit(f"Could not update the container list: {e}")

    # -- full list ---------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Take a full list from the engine and make the model match it (one at a time; a second call
        while one runs makes that one go round again)."""
        if self._refreshing:
            self._refresh_again = True
            return
        self._refreshing = True
        try:
            while True:
                self._refresh_again = False
                await self._refresh_once()
                if not self._refresh_again:
                    break
        finally:
            self._refreshing = False
        self.loaded_once = True
        self._count()
        self.loaded.emit()

    async def _refresh_once(self) -> None:
        touched: set[str] = set()
        self._touched = touched
        try:
            found = await self.app.owner.containers(all=True)
        except BerthError as e:
            self.error.emit(f"Could not list containers: {e}")
            return
        finally:
            self._touched = None
        wanted = {c.id: self._shown(c) for c in found if c.id not in self._gone_set}
        for key in self.model.keys(CONTAINER) - set(wanted) - touched:
            self.model.remove(key)
        for info in wanted.values():
            if info.id not in touched:
                self.model.update_container(self._merge(info))

    def _shown(self, info: ContainerInfo) -> ContainerInfo:
        """A warm-pool container as the panel shows it: idle under its agent, or as the run it serves."""
        if info.kind != Kind.POOL:
            return info
        run = self._serving.get(info.id)
        if run is not None:
            return replace(info, kind=Kind.TEMPORARY, agent=run["agent"], name=run["command"])
        return replace(info, agent=info.pool_agent, name=POOL_IDLE_NAME)

    def _on_run_container(self, run: dict[str, Any]) -> None:
        """A run was given a container: a pooled one carries no agent label, so say whose run it is."""
        cid = str(run.get("id", ""))
        if not cid:
            return
        self._serving[cid] = run
        if len(self._serving) > 500:
            self._serving.pop(next(iter(self._serving)))
        self.inspect_soon(cid)

    def _merge(self, listed: ContainerInfo) -> ContainerInfo:
        """The list call gives no memory limit or start time: keep what an earlier inspect found."""
        row = self.model.get(listed.id)
        if row is None or row.info is None:
            return listed
        return replace(listed, memory_limit=row.info.memory_limit, started_at=row.info.started_at)

    async def load_runs(self) -> None:
        try:
            runs = await self.app.owner.recent_runs(RUNS_SHOWN)
        except Exception as e:
            logger.exception("could not read the run history")
            self.error.emit(f"Could not read the history of finished runs: {e}")
            return
        self.model.sync(RUN, [row_from_run(r) for r in reversed(runs)])

    # -- events ------------------------------------------------------------------------------------

    def _on_container_event(self, ev: ContainerEvent) -> None:
        if not ev.id:
            return
        if self._touched is not None:
            self._touched.add(ev.id)
        if ev.action == "destroy":
            self._forget(ev.id)
            self._serving.pop(ev.id, None)
            if self.model.remove(ev.id):
                self._count()
            return
        if ev.action == "stop":
            self.model.mark_stopped(ev.id)
        if ev.action in INSPECT_ACTIONS:
            self.inspect_soon(ev.id)

    def _forget(self, cid: str) -> None:
        if len(self._gone) == self._gone.maxlen:
            self._gone_set.discard(self._gone[0])
        self._gone.append(cid)
        self._gone_set.add(cid)

    def inspect_soon(self, cid: str) -> None:
        """Inspect one container; events that arrive meanwhile lead to one more inspect, not one each."""
        if cid in self._inflight:
            self._inflight[cid] = True
            return
        self._inflight[cid] = False
        self.spawn(self._inspect(cid))

    async def _inspect(self, cid: str) -> None:
        try:
            while True:
                self._inflight[cid] = False
                try:
                    info = await self.app.owner.inspect(cid)
                except NotFound:
                    self.model.remove(cid)
                except BerthError as e:
                    logger.debug("inspect of %s failed: %s", cid[:12], e)
                else:
                    if cid not in self._gone_set:
                        self.model.update_container(self._shown(info))
                if not self._inflight.get(cid):
                    break
        finally:
            self._inflight.pop(cid, None)
            self._count()

    @async_slot(object)
    async def _on_engine_changed(self, info: EngineInfo) -> None:
        if info.available:
            await self.refresh()

    @async_slot(object)
    async def _on_run_finished(self, run_id: Any) -> None:
        try:
            run = await self.app.owner.run(int(run_id))
        except Exception as e:
            logger.exception("could not read run %s", run_id)
            self.error.emit(f"Could not read a finished run from the history: {e}")
            return
        if run is None:
            return
        self.model.upsert(row_from_run(run))
        runs = sorted((r for r in self.model.rows() if r.type == RUN), key=lambda r: r.run_id or 0)
        for old in runs[:-RUNS_SHOWN]:
            self.model.remove(old.key)

    def _on_image_progress(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        agent, image, message = str(data.get("agent", "")), str(data.get("image", "")), str(data.get("message", ""))
        key = f"pull:{agent}:{image}"
        if message.startswith("pulled"):
            self._pulls.pop(key, None)
            self.model.remove(f"wait:{key}")
            return
        self._pulls[key] = time.monotonic()
        self.model.upsert(waiting_row(key, agent, image, "temporary", f"pulling image · {message}", image))

    def _on_queued(self, agent: str) -> None:
        queued = self.app.admission.queued(agent)
        rows = [
            waiting_row(
                f"queue:{agent}:{q.position}", agent, q.what, _queue_kind(q.what), f"queued · {_ordinal(q.position)}"
            )
            for q in queued
        ]
        self.model.sync(WAITING, rows, prefix=f"wait:queue:{agent}:")

    # -- timers ------------------------------------------------------------------------------------

    def _stats_tick(self) -> None:
        if not self._stats_busy:
            self.spawn(self.poll_stats())  # tracked, so stop() cancels one in flight

    async def poll_stats(self) -> None:
        if self._stats_busy or not self.app.engine_available:
            return
        running = self.model.running()
        if not running:
            return
        self._stats_busy = True
        try:
            stats = await self.app.owner.stats(running)
            self.model.set_stats(stats)
            self.stats_ticks += 1
            self.statsUpdated.emit()
        except BerthError as e:
            logger.debug("stats failed: %s", e)
        finally:
            self._stats_busy = False

    def _tick(self) -> None:
        self.model.tick()
        now = time.monotonic()
        for key, at in list(self._pulls.items()):
            if now - at > PULL_STALE_S:
                del self._pulls[key]
                self.model.remove(f"wait:{key}")

    def _count(self) -> None:
        n = self.model.running_count()
        if n != self._running:
            self._running = n
            self.runningCountChanged.emit(n)
