"""The Qt-free core, assembled: config -> store -> engine -> core services.

`app.main` puts the RPC server (and, for the desktop app, the window) on top; `berth serve` runs
it on a plain asyncio loop, the desktop app on a qasync loop. Starting never fails because the engine is down: Berth
comes up, says so, and reconnects by itself when the engine answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from app.config import PREFERRED_IMAGES, Paths, Settings, env_rpc_port, pool_config
from app.core.admission import Admission
from app.core.agents import Agents
from app.core.alerts import Alerts
from app.core.approvals import Approvals
from app.core.background import BackgroundRuns
from app.core.containers import Containers
from app.core.events import Event, EventBus
from app.core.history import History
from app.core.host_access import FolderPolicy, check_grant, hidden_paths
from app.core.images import ImagePolicy
from app.core.owner import Owner
from app.core.stats_history import StatsHistory
from app.core.store import Store
from app.core.tokens import TokenVault
from app.core.workspace import Workspaces
from app.engine.registry import Engines
from app.errors import BerthError, EngineUnavailable
from app.host import HostRunner
from app.model import LOCAL_ENGINE, Agent, ContainerEvent, EngineConfig, EngineInfo, Kind, PoolStatus

logger = logging.getLogger(__name__)

RECONNECT_MAX_S = 5.0
HISTORY_PRUNE_S = 600.0  # the run history is brought within the retention setting this often (and at start)


class Application:
    def __init__(self, paths: Paths, *, rpc_port: int | None = None, engine_endpoint: str | None = None) -> None:
        self.paths = paths
        paths.ensure()
        self.settings = Settings.load(paths.settings_file)
        self.instance = paths.instance_id()
        self.events = EventBus()
        self.store = Store(paths.db_path)
        self.vault = TokenVault(paths.tokens_file, self.instance)
        self.workspaces = Workspaces(paths.workspaces_dir)
        self.agents = Agents(self.store, self.vault, self.workspaces, self.events)
        self._placement = {a.name: a.engine for a in self.store.list_agents()}
        self.engine = Engines(
            self.instance,
            engine_endpoint or self.settings.engine_endpoint,
            pool=pool_config(self.settings),
            placement=lambda agent: self._placement.get(agent, LOCAL_ENGINE),
            on_unreachable=self._engine_unreachable,
            workspace_of=lambda agent: str(self.workspaces.path(agent)),
        )
        for config in self.store.list_engines():
            self.engine.add_engine(config)
        self.admission = Admission(self.events)
        self.containers = Containers(
            self.engine,
            self.store,
            self.admission,
            self.workspaces,
            self.events,
            PREFERRED_IMAGES[-1],
            ImagePolicy(self.engine.has_image, lambda: self.settings.image_patterns),  # on the agent's engine
        )
        self.background = BackgroundRuns(self.containers, self.events)
        self.host = HostRunner(hidden=self.hidden_paths)
        self.folders = FolderPolicy(paths, self.workspaces.path, lambda name: self.agents.get(name).host_folders)
        self.approvals = Approvals(
            self.store, self.host, self.events, expiry_s=self.settings.approval_expiry_s, folders=self.folders
        )
        self.rpc_port = rpc_port if rpc_port is not None else env_rpc_port(self.settings.rpc_port)
        self.history = History(self.store)
        self.stats_history = StatsHistory()
        self.alerts = Alerts(self.events, lambda agent: len(self.admission.queued(agent)))
        self.owner = Owner(self)
        self.engine_available = False  # the local engine's; every engine's in `engine_states`
        self.engine_states: dict[str, bool] = {}
        self._events_since: dict[str, float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watchers: dict[str, asyncio.Task[Any]] = {}
        self.events.subscribe(self._on_agents_changed, "agents.changed")

    def pool_status(self) -> PoolStatus:
        """The warm pool now: ready and filling containers, hits and misses since start."""
        return self.engine.pool.status()

    def hidden_paths(self) -> list[str]:
        """What sandboxed host commands never see: Berth's folders, the person's secrets, Settings' list."""
        return hidden_paths(self.paths, self.settings.hidden_folders)

    def set_host_folders(self, agent: str, folders: list[str]) -> Agent:
        """Grant host folders to an agent's host commands (blocking: call from a thread)."""
        return self.agents.set_host_folders(agent, folders, lambda f: check_grant(f, self.paths, self.hidden_paths()))

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self.events.bind_loop(asyncio.get_running_loop())
        await asyncio.to_thread(self.agents.ensure_owner_token)  # the vault warns once if it has no keyring
        await self.approvals.start()
        await asyncio.gather(*(self._engine_up(name) for name in self.engine.names()))
        for name in self.engine.names():
            self._watch(name)
        self._spawn(self._keep_history())

    def _watch(self, name: str) -> None:
        task = asyncio.ensure_future(self._watch_engine(name))
        task.set_name(f"watch engine {name}")
        self._tasks.add(task)
        self._watchers[name] = task
        task.add_done_callback(self._tasks.discard)

    def _set_state(self, name: str, info: EngineInfo) -> None:
        self.engine_states[name] = info.available
        self.engine.set_available(name, info.available)
        if name == LOCAL_ENGINE:
            self.engine_available = info.available
        self.events.emit("engine.changed", info)

    def _engine_unreachable(self, name: str) -> None:
        """A call found an added engine gone before its watch did: say so now, and watch it come back."""
        if not self.engine_states.get(name, False):
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._spawn(self._engine_lost(name))

    async def _engine_lost(self, name: str) -> None:
        task = self._watchers.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        try:
            self._set_state(name, await self.engine.get(name).info())
        except BerthError:
            return  # removed meanwhile
        self._watch(name)

    async def _engine_up(self, name: str = LOCAL_ENGINE) -> bool:
        """On start and on reconnect: reconcile leftovers, pick the default image, recount services."""
        try:
            engine = self.engine.get(name)
        except BerthError:
            return False  # removed meanwhile
        # The event stream replays from here: what happens during the reconcile is not missed.
        self._events_since[name] = time.time() - 1
        info = await engine.info()
        if not info.available:
            if self.engine_states.get(name, True):
                logger.warning("engine %s is not available: %s", name, info.hint)
            self._set_state(name, info)
            return False
        try:
            await engine.reconcile()
            await self._prune_networks()
            if name == LOCAL_ENGINE:
                self.containers.default_image = await self._default_image()
            self.engine.set_available(name, True)
            await self.containers.sync_all()
        except EngineUnavailable:
            self.engine.set_available(name, self.engine_states.get(name, False))
            return False
        except BerthError as e:  # an engine still starting may refuse a call (a removal in progress, a 500)
            logger.warning("taking up engine %s again failed (%s); trying again", name, e)
            return False
        logger.info("engine %s: %s at %s (CPU quota: %s)", name, info.version, info.endpoint, info.cpu_group_mechanism)
        self._set_state(name, info)
        return True

    async def reconnect(self) -> bool:
        """Check the engines now rather than at the next retry; True if the local one answers (and is taken up
        again)."""
        down = [n for n in self.engine.names() if not self.engine_states.get(n, False)]
        results = dict(zip(down, await asyncio.gather(*(self._engine_up(n) for n in down)), strict=True))
        return self.engine_available or results.get(LOCAL_ENGINE, False)

    async def _default_image(self) -> str:
        if self.settings.default_image:
            return self.settings.default_image
        for image in PREFERRED_IMAGES:
            if await self.engine.has_image(image):
                return image
        return PREFERRED_IMAGES[0]

    async def _watch_engine(self, name: str = LOCAL_ENGINE) -> None:
        """Follow an engine's events (recounting an agent's services when one stops); reconnect when it goes."""
        delay = 0.5
        while True:
            if self.engine_states.get(name, False):
                engine = self.engine.get(name)
                try:
                    # aclosing: a cancel while an event is handled still closes the stream and joins its thread
                    async with contextlib.aclosing(engine.events(since=self._events_since.get(name))) as events:
                        async for ev in events:
                            delay = 0.5
                            await self._on_container_event(name, ev)
                except (EngineUnavailable, BerthError) as e:
                    logger.warning("lost the event stream of engine %s: %s", name, e)
                except Exception:
                    logger.exception("the event stream of engine %s failed", name)
                self._set_state(name, await engine.info())
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)
            try:
                await self._engine_up(name)
            except Exception as e:  # whatever it was, this loop is what brings the engine back: it goes on
                logger.error("taking up engine %s again failed: %r; trying again", name, e)

    async def _on_container_event(self, name: str, ev: ContainerEvent) -> None:
        engine = self.engine.get(name)
        if (
            ev.action == "create"
            and ev.kind in (str(Kind.TEMPORARY), str(Kind.POOL))
            and not engine.made_here(ev.id, ev.name)
        ):
            # A create this process did not ask for: a Berth killed mid-run whose request the engine finished
            # after this one's reconcile. Nobody will ever wait for it: remove it now.
            logger.info("removing temporary container %s left by an earlier Berth", ev.name or ev.id[:12])
            self._spawn(engine.remove_leftover(ev.id))
            return
        self.events.emit("container.event", ev)
        if ev.action == "destroy":
            self.engine.forget(ev.id)
        if ev.kind == str(Kind.SERVICE) and ev.agent and ev.action in ("start", "die", "stop", "destroy"):
            try:
                await self.containers.sync_agent(ev.agent, gone=ev.id if ev.action != "start" else None)
            except BerthError as e:
                logger.debug("could not recount %s's services: %s", ev.agent, e)

    # -- engines -----------------------------------------------------------------------------------

    async def add_engine(self, config: EngineConfig) -> EngineInfo:
        """Start driving an engine the person added (already checked and stored) and watch it."""
        self.engine.add_engine(config)
        await self._engine_up(config.name)
        self._watch(config.name)
        return await self.engine.get(config.name).info()

    async def remove_engine(self, name: str) -> None:
        task = self._watchers.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.engine.remove_engine(name)
        self.engine_states.pop(name, None)

    async def _keep_history(self) -> None:
        """Prune the run history to the retention setting now and every HISTORY_PRUNE_S, in a worker thread."""
        while True:
            try:
                await self.owner.prune_history()
            except Exception:
                logger.exception("could not prune the run history")
            await asyncio.sleep(HISTORY_PRUNE_S)

    def spawn_history_prune(self) -> None:
        """Prune the run history now (a retention setting changed), without waiting for it."""
        self._spawn(self.owner.prune_history())

    def _on_agents_changed(self, event: Event) -> None:
        """An agent's limits changed, it was disabled or removed: its warm containers no longer fit."""
        agent = event.data
        moved = False
        if isinstance(agent, Agent):
            moved = self._placement.get(agent.name, LOCAL_ENGINE) != agent.engine
            self._placement[agent.name] = agent.engine
        else:
            self._placement = {a.name: a.engine for a in self.store.list_agents()}
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a change made outside the loop (e.g. the CLI): the pool sees new limits at the next run
        if not isinstance(agent, Agent):
            self._spawn(self._drain_removed_agents())
        elif not agent.enabled or moved:  # moved to another engine: its warm containers here are of no use
            self.engine.pool.drain(agent.name)
        else:
            limits = agent.limits
            self.engine.pool.drain(
                agent.name,
                keep=lambda k: k.memory == limits.memory and (k.cpu_group is None or k.cpu_group.cpus == limits.cpus),
            )

    async def _drain_removed_agents(self) -> None:
        known = {a.name for a in await asyncio.to_thread(self.agents.list) if a.enabled}
        self.engine.pool.drain(keep=lambda k: k.agent in known)
        await self.engine.pool.settle()  # the removed agent's warm containers are gone: its network can go
        await self._prune_networks()

    async def _prune_networks(self) -> None:
        """Remove the networks of agents that no longer exist (one still used by containers stays for now)."""
        try:
            known = {a.name for a in await asyncio.to_thread(self.agents.list)}
            await self.engine.prune_networks(known)
        except BerthError as e:
            logger.info("could not tidy up agent networks: %s", e)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Cancel and await every task this application started, let temporary containers be removed, close
        the engine (its streams closed, its threads joined) and the store. When it returns, nothing of this
        application runs any more (`running_parts()` is empty): its loop may close, another may start."""
        while self._tasks:  # a task being cancelled may spawn another (a reconnect): go round until none is left
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self.alerts.close()
        await self.background.close()  # runs end first: their containers are removed while the engine is there
        await self.approvals.close()
        await self.engine.aclose()
        self.store.close()

    def running_parts(self) -> list[str]:
        """What of this application is still running (tasks, the engine's threads); for shutdown checks."""
        parts = [f"task {t.get_name()} ({t.get_coro()!r})" for t in self._tasks if not t.done()]
        parts += [f"engine task {t.get_name()}" for t in self.engine.tasks() if not t.done()]
        parts += [f"approval task {t.get_name()}" for t in self.approvals.tasks() if not t.done()]
        parts += [f"run task {t.get_name()}" for t in self.background.tasks() if not t.done()]
        parts += [f"thread {t.name}" for t in self.engine.threads()]
        return parts
