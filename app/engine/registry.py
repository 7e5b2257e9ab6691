"""Several engines at once, behind the one interface the core uses (API.md "Engines — more than one machine").

`Engines` holds the local engine and the ones the person added, each a full `Engine` of its own: its
connection and worker threads, event stream, stats, warm pool, CPU groups and reconcile. The core and the
window see engine names only. An agent's new containers go to its engine (`placement`); everything asked
of a container by id goes to the engine that has it (learned from what the engines report, else asked of
each). An engine the core found down fails its own agents at once (EngineUnavailable naming it) while
the others go on; it comes back when the core's watch on it sees it answer again.

On an engine that cannot see this machine's folders (`files == "sync"`), an agent's workspace is a named
volume there, kept in step with the local folder by `WorkspaceSync` (app/engine/remote_files.py) around
every temporary run, and at a service's start, stop and removal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import replace
from typing import Any

from app.engine.backend import ProgressCallback
from app.engine.connection import Access
from app.engine.engine import Engine
from app.engine.pool import PoolKey
from app.engine.remote_files import WorkspaceSync
from app.errors import EngineUnavailable, NotFound
from app.model import (
    FILES_SYNC,
    LABEL_AGENT,
    LOCAL_ENGINE,
    LOGS_CAP,
    ContainerDetail,
    ContainerEvent,
    ContainerInfo,
    EngineConfig,
    EngineInfo,
    Kind,
    PoolConfig,
    PoolStatus,
    RunResult,
    RunSpec,
    ServiceSpec,
    Stats,
)

logger = logging.getLogger(__name__)


def _tag(info: ContainerInfo, engine: str) -> ContainerInfo:
    return info if info.engine == engine else replace(info, engine=engine)


class _Pools:
    """The warm pools of every engine, steered as one (status adds up; drains and settles reach each)."""

    def __init__(self, engines: Callable[[], list[Engine]]) -> None:
        self._engines = engines

    def status(self) -> PoolStatus:
        statuses = [e.pool.status() for e in self._engines()]
        first = statuses[0]
        return replace(
            first,
            idle=sum(s.idle for s in statuses),
            filling=sum(s.filling for s in statuses),
            hits=sum(s.hits for s in statuses),
            misses=sum(s.misses for s in statuses),
        )

    def drain(self, agent: str | None = None, *, keep: Callable[[PoolKey], bool] | None = None) -> int:
        return sum(e.pool.drain(agent, keep=keep) for e in self._engines())

    async def settle(self) -> None:
        await asyncio.gather(*(e.pool.settle() for e in self._engines()))


class Engines:
    """The engines of one Berth instance by name; `local` is always there."""

    def __init__(
        self,
        instance: str,
        local_endpoint: str | None = None,
        *,
        pool: PoolConfig | None = None,
        placement: Callable[[str], str] | None = None,
        on_unreachable: Callable[[str], None] | None = None,
        workspace_of: Callable[[str], str] | None = None,
    ) -> None:
        self._workspace_of = workspace_of or (lambda agent: "")  # an agent's workspace folder on this machine
        self.instance = instance
        # Told when a call to an added engine finds it gone before the core's watch did (its event stream may
        # sit idle on a connection that no longer leads anywhere): the core then checks it and watches it again.
        self._on_unreachable = on_unreachable or (lambda name: None)
        self._pool_config = pool or PoolConfig(enabled=False)
        self._placement = placement or (lambda agent: LOCAL_ENGINE)
        self.local = Engine(instance, local_endpoint, pool=self._pool_config)
        self._engines: dict[str, Engine] = {LOCAL_ENGINE: self.local}
        self._configs: dict[str, EngineConfig] = {}
        self._sync: dict[str, WorkspaceSync] = {}
        self._down: set[str] = set()  # engines (other than local) the core found not answering
        self._where: dict[str, str] = {}  # container id -> the engine that has it
        self.pool = _Pools(lambda: list(self._engines.values()))

    # -- the set of engines ------------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self._engines)

    def get(self, name: str) -> Engine:
        try:
            return self._engines[name]
        except KeyError:
            raise NotFound(f"no engine named {name!r}", hint="`berth engines list` shows them") from None

    def config(self, name: str) -> EngineConfig | None:
        return self._configs.get(name)

    def add_engine(self, config: EngineConfig) -> Engine:
        """Start using an engine the person added (its connection is made on first use)."""
        if config.name in self._engines:
            raise ValueError(f"engine {config.name!r} is already known")
        access = Access(config.tls_ca, config.tls_cert, config.tls_key, config.context)
        engine = Engine(self.instance, config.host, pool=self._pool_config, name=config.name, access=access)
        self._engines[config.name] = engine
        self._configs[config.name] = config
        if config.files == FILES_SYNC:
            self._sync[config.name] = WorkspaceSync(engine, self._workspace_of)
        return engine

    async def remove_engine(self, name: str) -> None:
        """Stop using an engine: its pool goes, its streams close, its threads end. Its services keep running."""
        if name == LOCAL_ENGINE:
            raise ValueError("the local engine is always there")
        engine = self._engines.pop(name, None)
        self._configs.pop(name, None)
        self._sync.pop(name, None)
        self._down.discard(name)
        self._where = {cid: e for cid, e in self._where.items() if e != name}
        if engine is not None:
            await engine.aclose()

    def set_available(self, name: str, available: bool) -> None:
        """What the core's watch on the engine found: an engine found down fails its agents at once."""
        if available:
            self._down.discard(name)
        elif name != LOCAL_ENGINE:  # the local engine's own errors are as fast, and say more
            self._down.add(name)

    def engine_name(self, agent: str) -> str:
        return self._placement(agent)

    @contextlib.contextmanager
    def _noticing(self, name: str) -> Iterator[None]:
        """An added engine that turns out not to answer is marked down at once, and the core told."""
        try:
            yield
        except EngineUnavailable:
            if name != LOCAL_ENGINE and name not in self._down and name in self._engines:
                self._down.add(name)
                self._on_unreachable(name)
            raise

    def for_agent(self, agent: str) -> Engine:
        """The engine an agent's new containers go to; EngineUnavailable at once when it is known to be down."""
        name = self._placement(agent)
        engine = self._engines.get(name)
        if engine is None:
            raise EngineUnavailable(
                f"agent {agent!r} is placed on engine {name!r}, which Berth does not know",
                hint=f"add it (`berth engines add {name} ...`) or place the agent elsewhere "
                f"(`berth agents set {agent} --engine local`)",
                engine=name,
            )
        if name in self._down:
            raise EngineUnavailable(
                f"engine {name!r} is not reachable ({engine.endpoint})",
                hint=f"start that engine or check the network; Berth tries it again by itself (agents on other "
                f"engines go on). Or place {agent!r} on another engine: `berth agents set {agent} --engine local`",
                engine=name,
            )
        return engine

    def _up(self) -> list[tuple[str, Engine]]:
        return [(n, e) for n, e in self._engines.items() if n not in self._down]

    def _learn(self, info: ContainerInfo, name: str) -> ContainerInfo:
        self._where[info.id] = name
        return _tag(info, name)

    async def _which(self, ref: str) -> tuple[str, Engine]:
        """The engine that has the container `ref` (an id or full name); NotFound if none of them has it."""
        if len(self._engines) == 1:
            return LOCAL_ENGINE, self.local
        name = self._where.get(ref)
        if name is not None and name in self._engines:
            return name, self._engines[name]
        for name, engine in self._up():
            try:
                info = await engine.inspect(ref)
            except (NotFound, EngineUnavailable):
                continue
            self._where[info.id] = name
            return name, engine
        raise NotFound(f"no container {ref!r} of this Berth on any engine")

    # -- the Backend interface, routed ---------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self.local.endpoint

    @property
    def cpu_groups(self) -> Any:
        return self.local.cpu_groups

    async def info(self) -> EngineInfo:
        """The local engine's (the window's banner and start-up speak of it); `infos()` has them all."""
        return await self.local.info()

    async def identities(self) -> dict[str, str]:
        """The ID of each engine that answers, by name."""
        names = [n for n, _e in self._up()]
        ids = await asyncio.gather(*(self._engines[n].identity() for n in names), return_exceptions=True)
        return {n: i for n, i in zip(names, ids, strict=True) if isinstance(i, str)}

    async def infos(self) -> list[EngineInfo]:
        return list(await asyncio.gather(*(e.info() for e in self._engines.values())))

    async def has_image(self, image: str, agent: str | None = None) -> bool:
        engine = self.for_agent(agent) if agent is not None else self.local
        return await engine.has_image(image)

    async def images(self) -> list[str]:
        return await self.local.images()

    def full_name(self, agent: str, name: str) -> str:
        return self.local.full_name(agent, name)

    def network_name(self, agent: str) -> str:
        return self.local.network_name(agent)

    async def prune_networks(self, known_agents: set[str]) -> list[str]:
        removed: list[str] = []
        for _name, engine in self._up():
            with contextlib.suppress(EngineUnavailable):
                removed += await engine.prune_networks(known_agents)
        return removed

    async def run_temporary(
        self,
        spec: RunSpec,
        *,
        progress: ProgressCallback | None = None,
        on_created: Callable[[str], None] | None = None,
    ) -> RunResult:
        name = self._placement(spec.agent)
        engine = self.for_agent(spec.agent)
        made: list[str] = []

        def created(cid: str) -> None:
            self._where[cid] = name
            made.append(cid)
            if on_created is not None:
                on_created(cid)

        sync = self._sync.get(name)
        try:
            with self._noticing(name):
                if sync is None or spec.workspace is None:
                    return await engine.run_temporary(spec, progress=progress, on_created=created)
                async with sync.around(spec.agent) as volume:
                    run = replace(spec, workspace=volume)
                    return await engine.run_temporary(run, progress=progress, on_created=created)
        finally:
            for cid in made:  # the run's container is gone: nothing is asked of it by id any more
                self._where.pop(cid, None)

    async def start_service(self, spec: ServiceSpec, *, progress: ProgressCallback | None = None) -> ContainerInfo:
        name = self._placement(spec.agent)
        engine = self.for_agent(spec.agent)
        sync = self._sync.get(name)
        with self._noticing(name):
            if sync is not None and spec.workspace is not None:
                volume = await sync.push(spec.agent)
                spec = replace(spec, workspace=volume)
            return self._learn(await engine.start_service(spec, progress=progress), name)

    async def exec(self, container: str, command: str | list[str], **kw: Any) -> RunResult:
        _name, engine = await self._which(container)
        return await engine.exec(container, command, **kw)

    async def output_so_far(self, cid: str, *, cap: int = LOGS_CAP) -> tuple[str, str]:
        _name, engine = await self._which(cid)
        return await engine.output_so_far(cid, cap=cap)

    async def list_containers(self, labels: dict[str, str] | None = None, *, all: bool = True) -> list[ContainerInfo]:
        """Every engine's containers (those that answer); EngineUnavailable only when none does."""
        engines = self._up()
        if len(engines) == 1:
            name, engine = engines[0]
            return [self._learn(c, name) for c in await engine.list_containers(labels, all=all)]
        results = await asyncio.gather(
            *(e.list_containers(labels, all=all) for _n, e in engines), return_exceptions=True
        )
        out: list[ContainerInfo] = []
        failed: list[BaseException] = []
        for (name, _engine), result in zip(engines, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, EngineUnavailable):
                    raise result
                failed.append(result)
                continue
            out += [self._learn(c, name) for c in result]
        if failed and len(failed) == len(engines):
            raise failed[0]
        return out

    async def inspect(self, ref: str) -> ContainerInfo:
        name, engine = await self._which(ref)
        return self._learn(await engine.inspect(ref), name)

    async def inspect_detail(self, ref: str) -> ContainerDetail:
        name, engine = await self._which(ref)
        detail = await engine.inspect_detail(ref)
        return replace(detail, info=self._learn(detail.info, name))

    async def logs(
        self,
        ref: str,
        *,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
        cap: int = LOGS_CAP,
    ) -> tuple[str, bool]:
        _name, engine = await self._which(ref)
        return await engine.logs(ref, tail=tail, since=since, timestamps=timestamps, cap=cap)

    async def follow_logs(
        self, ref: str, *, tail: int | None = 1000, timestamps: bool = False
    ) -> AsyncGenerator[str, None]:
        _name, engine = await self._which(ref)
        async with contextlib.aclosing(engine.follow_logs(ref, tail=tail, timestamps=timestamps)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def follow_log_streams(
        self, ref: str, *, tail: int | None = 1000, timestamps: bool = False
    ) -> AsyncGenerator[tuple[str, str], None]:
        _name, engine = await self._which(ref)
        async with contextlib.aclosing(engine.follow_log_streams(ref, tail=tail, timestamps=timestamps)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def stop(self, ref: str, timeout_s: float = 10) -> ContainerInfo:
        name, engine = await self._which(ref)
        info = self._learn(await engine.stop(ref, timeout_s), name)
        await self._pull_service(name, info)
        return info

    async def restart(self, ref: str, timeout_s: float = 10) -> ContainerInfo:
        name, engine = await self._which(ref)
        return self._learn(await engine.restart(ref, timeout_s), name)

    async def remove(self, ref: str, *, force: bool = False) -> None:
        name, engine = await self._which(ref)
        if name in self._sync:
            with contextlib.suppress(NotFound):
                await self._pull_service(name, await engine.inspect(ref))
        await engine.remove(ref, force=force)
        self._where.pop(ref, None)

    async def _pull_service(self, name: str, info: ContainerInfo) -> None:
        """A service on a syncing engine stopped or goes: what it wrote in /workspace comes home."""
        sync = self._sync.get(name)
        agent = info.agent or info.labels.get(LABEL_AGENT, "")
        if sync is not None and agent and info.kind == Kind.SERVICE:
            await sync.pull(agent)

    async def sync_workspace(self, agent: str) -> bool:
        """Bring what the agent's services on a syncing engine wrote home now (workspace.* reads call it).
        False when the agent's engine sees the local folder (nothing to do)."""
        name = self._placement(agent)
        sync = self._sync.get(name)
        if sync is None or name in self._down:
            return False
        await sync.pull(agent)
        return True

    async def stats(self, containers: list[ContainerInfo]) -> dict[str, Stats]:
        by_engine: dict[str, list[ContainerInfo]] = {}
        for c in containers:
            by_engine.setdefault(self._where.get(c.id, c.engine), []).append(c)
        out: dict[str, Stats] = {}
        for name, group in by_engine.items():
            engine = self._engines.get(name)
            if engine is None or name in self._down:
                continue
            try:
                out.update(await engine.stats(group))
            except EngineUnavailable:
                if len(by_engine) == 1:
                    raise
        return out

    def events(self, since: float | None = None) -> AsyncGenerator[ContainerEvent, None]:
        """The local engine's events (the core watches each engine with `get(name).events`)."""
        return self.local.events(since)

    def made_here(self, cid: str, full_name: str) -> bool:
        return any(e.made_here(cid, full_name) for e in self._engines.values())

    async def remove_leftover(self, cid: str) -> None:
        _name, engine = await self._which(cid)
        await engine.remove_leftover(cid)

    async def reconcile(self) -> list[str]:
        return await self.local.reconcile()

    async def aclose(self) -> None:
        await asyncio.gather(*(e.aclose() for e in self._engines.values()))

    def tasks(self) -> list[asyncio.Task[Any]]:
        return [t for e in self._engines.values() for t in e.tasks()]

    def threads(self) -> list[threading.Thread]:
        return [t for e in self._engines.values() for t in e.threads()]

    # -- what the engine layer offers beyond the Backend (tests, benchmarks) -------------------------

    @property
    def conn(self) -> Any:
        return self.local.conn

    @property
    def runner(self) -> Any:
        return self.local.runner

    async def drain_cleanups(self) -> None:
        await asyncio.gather(*(e.drain_cleanups() for e in self._engines.values()))

    def forget(self, cid: str) -> None:
        """A container is gone (its destroy event): where it was is no longer worth keeping."""
        self._where.pop(cid, None)

    def engine_of(self, cid: str) -> str:
        """The engine's name a container was last seen on ("local" when unknown)."""
        return self._where.get(cid, LOCAL_ENGINE)


async def check_engine(instance: str, config: EngineConfig) -> tuple[EngineInfo, str]:
    """Whether an engine the person is adding answers, and its ID (a connection of its own, closed again)."""
    access = Access(config.tls_ca, config.tls_cert, config.tls_key, config.context)
    probe = Engine(instance, config.host, name=config.name, access=access)
    try:
        info = await probe.info()
        return info, (await probe.identity()) if info.available else ""
    finally:
        await probe.aclose()


async def copy_image(source: Engine, target: Engine, image: str) -> None:
    """`docker save | docker load` from one engine to another, streamed through this process."""

    def copy() -> None:
        chunks = source.conn.api.get_image(image)  # streamed: a large image never sits whole in memory
        target.conn.api.load_image(chunks)  # type: ignore[no-untyped-call]

    logger.info("copying image %s from engine %s to %s", image, source.name, target.name)
    await target.conn.call(copy, what=f"image {image}")
