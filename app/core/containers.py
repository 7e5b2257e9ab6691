"""The agent's view of containers: runs, services, exec, logs, actions — scoped, limited and recorded.

Every container is looked up through `_own`, which answers NotFound for anything that is not the
calling agent's (another agent's container is "not found", never "forbidden"). Admission control
wraps every start; the engine does the rest.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any

from app.core.admission import Admission
from app.core.events import EventBus
from app.core.images import ImagePolicy
from app.core.store import Store
from app.core.workspace import Workspaces
from app.engine.backend import Backend
from app.errors import Conflict, Forbidden, NotFound
from app.model import (
    LABEL_AGENT,
    LABEL_KIND,
    LABEL_NAME,
    OUTPUT_CAP,
    Agent,
    ContainerInfo,
    CpuGroup,
    Kind,
    Network,
    RunResult,
    RunSpec,
    ServiceSpec,
    Stats,
)

logger = logging.getLogger(__name__)

_ID = re.compile(r"[0-9a-f]{12,64}")
HISTORY_CAP = 8 * 1024 * 1024  # what the history keeps of each stream; the API result is cut at OUTPUT_CAP


def _cut(text: str, cap: int) -> tuple[str, bool]:
    data = text.encode()
    if len(data) <= cap:
        return text, False
    return data[:cap].decode("utf-8", errors="ignore"), True


class Containers:
    def __init__(
        self,
        engine: Backend,
        store: Store,
        admission: Admission,
        workspaces: Workspaces,
        events: EventBus,
        default_image: str,
        images: ImagePolicy | None = None,
    ) -> None:
        self.engine = engine
        self._store = store
        self._admission = admission
        self._workspaces = workspaces
        self._events = events
        self.default_image = default_image
        self.images = images or ImagePolicy(lambda image, _agent: engine.has_image(image), lambda: [])

    # -- helpers ---------------------------------------------------------------------------------

    def _network(self, agent: Agent, network: Network | None, default: Network) -> Network:
        chosen = network or default
        if chosen == "bridge" and not agent.limits.network:
            raise Forbidden(
                f"network is off for agent {agent.name!r}",
                hint=f"allow it in Agent Settings or with `berth agents set {agent.name} --network`",
            )
        return chosen

    def _common(self, agent: Agent) -> dict[str, Any]:
        return {
            "agent": agent.name,
            "memory": agent.limits.memory,
            "cpu_group": CpuGroup(agent.name, agent.limits.cpus),
            "workspace": str(self._workspaces.path(agent.name)),
        }

    async def _own(self, agent: Agent, ref: str) -> ContainerInfo:
        """The agent's container by id, its own name or its full name; NotFound for anything else."""
        if not isinstance(ref, str) or not ref:
            raise NotFound("no such container")
        lookups = [self._by_ref, self._named] if _ID.fullmatch(ref) else [self._named, self._by_ref]
        for lookup in lookups:  # an id is most likely an id; anything else most likely the agent's own name
            info = await lookup(agent, ref)
            if info is not None:
                return info
        raise NotFound(f"no container {ref!r} for agent {agent.name!r}")

    async def _by_ref(self, agent: Agent, ref: str) -> ContainerInfo | None:
        """The container with this id or full name, if it is the agent's."""
        try:
            info = await self.engine.inspect(ref)
        except NotFound:
            return None
        return info if info.agent == agent.name and info.kind in (Kind.SERVICE, Kind.TEMPORARY) else None

    async def _named(self, agent: Agent, name: str) -> ContainerInfo | None:
        """The agent's container whose own name is `name`: by its full name, else by label (a container made by
        a Berth of before, when full names were built another way)."""
        info = await self._by_ref(agent, self.engine.full_name(agent.name, name))
        if info is not None:
            return info
        found = await self.engine.list_containers({LABEL_AGENT: agent.name, LABEL_NAME: name})
        mine = [c for c in found if c.kind in (Kind.SERVICE, Kind.TEMPORARY)]
        return await self._by_ref(agent, mine[0].id) if mine else None

    # -- temporary runs --------------------------------------------------------------------------

    async def run(
        self,
        agent: Agent,
        *,
        command: str | list[str],
        image: str | None = None,
        env: dict[str, str] | None = None,
        workdir: str = "/workspace",
        timeout_s: float = 60.0,
        network: Network | None = None,
        stdin: str | None = None,
    ) -> RunResult:
        spec = RunSpec(
            **self._common(agent),
            image=image or self.default_image,
            command=command,
            env=env or {},
            workdir=workdir,
            timeout_s=timeout_s,
            network=self._network(agent, network, "none"),
            stdin=stdin,
            output_cap=HISTORY_CAP,
        )
        await self.images.check(agent, spec.image)  # an image from elsewhere only if the person allows it
        async with self._admission.slot(agent.name, agent.limits, f"run {spec.image}") as slot:
            key = slot.key
            started = time.time()
            self._events.emit("run.started", {"agent": agent.name, "image": spec.image, "key": key})
            full = await self.engine.run_temporary(
                spec, progress=self._progress(agent, spec.image), on_created=self._announce(agent, spec, key)
            )
        await self._record(agent, spec, full, started)
        stdout, cut_out = _cut(full.stdout, OUTPUT_CAP)
        stderr, cut_err = _cut(full.stderr, OUTPUT_CAP)
        return RunResult(
            id=full.id,
            exit_code=full.exit_code,
            stdout=stdout,
            stderr=stderr,
            timed_out=full.timed_out,
            oom_killed=full.oom_killed,
            duration_ms=full.duration_ms,
            truncated=full.truncated or cut_out or cut_err,
        )

    def _announce(self, agent: Agent, spec: RunSpec, key: str) -> Any:
        """Tell the UI which container serves a run: a pooled one carries no agent label of its own."""

        def report(container_id: str) -> None:
            command = spec.command if isinstance(spec.command, str) else " ".join(spec.command)
            self._events.emit(
                "run.container",
                {"agent": agent.name, "id": container_id, "image": spec.image, "command": command, "key": key},
            )

        return report

    def _progress(self, agent: Agent, image: str) -> Any:
        def report(message: str) -> None:
            self._events.emit("image.progress", {"agent": agent.name, "image": image, "message": message})

        return report

    async def _record(self, agent: Agent, spec: RunSpec, r: RunResult, started: float) -> None:
        command = spec.command if isinstance(spec.command, str) else json.dumps(spec.command)
        try:
            run_id = await asyncio.to_thread(
                self._store.add_run,
                agent.name,
                r.id,
                spec.image,
                command,
                r.exit_code,
                r.stdout,
                r.stderr,
                r.timed_out,
                r.oom_killed,
                r.truncated,
                started,
                time.time(),
            )
            self._events.emit("run.finished", run_id)
        except Exception:
            logger.exception("could not record the run of %s in the history", agent.name)

    # -- services --------------------------------------------------------------------------------

    async def start_service(
        self,
        agent: Agent,
        *,
        name: str,
        image: str | None = None,
        command: str | list[str] | None = None,
        env: dict[str, str] | None = None,
        workdir: str = "/workspace",
        ports: list[str] | None = None,
        network: Network | None = None,
    ) -> ContainerInfo:
        if ports and not agent.limits.network:
            raise Forbidden(
                f"publishing ports needs network, which is off for agent {agent.name!r}",
                hint=f"allow it in Agent Settings or with `berth agents set {agent.name} --network`",
            )
        spec = ServiceSpec(
            **self._common(agent),
            image=image or self.default_image,
            name=name,
            command=command,
            env=env or {},
            workdir=workdir,
            ports=list(ports or []),
            network=self._network(agent, network, "bridge" if agent.limits.network else "none"),
        )
        if await self._named(agent, name) is not None:
            raise Conflict(f"a service named {name!r} already exists for agent {agent.name!r}")
        await self.images.check(agent, spec.image)
        async with self._admission.slot(agent.name, agent.limits, f"service {name}") as slot:
            info = await self.engine.start_service(spec, progress=self._progress(agent, spec.image))
            slot.keep(info.id)  # a running service holds its slot until it stops
        await self._audit(agent, "service.start", info)
        return info

    async def _audit(self, agent: Agent, action: str, info: ContainerInfo, actor: str | None = None) -> None:
        await asyncio.to_thread(
            self._store.audit, action, info.id, agent=agent.name, actor=actor or agent.name, detail={"name": info.name}
        )

    # -- the rest --------------------------------------------------------------------------------

    async def exec(self, agent: Agent, ref: str, **kw: Any) -> RunResult:
        info = await self._own(agent, ref)
        return await self.engine.exec(info.id, **kw)

    async def list(self, agent: Agent, *, all: bool = True) -> list[ContainerInfo]:
        found = await self.engine.list_containers({LABEL_AGENT: agent.name}, all=all)
        return [c for c in found if c.kind in (Kind.SERVICE, Kind.TEMPORARY)]

    async def inspect(self, agent: Agent, ref: str) -> tuple[ContainerInfo, Stats | None]:
        info = await self._own(agent, ref)
        stats = (await self.engine.stats([info])).get(info.id) if info.status == "running" else None
        return info, stats

    async def logs(self, agent: Agent, ref: str, **kw: Any) -> tuple[str, bool]:
        info = await self._own(agent, ref)
        return await self.engine.logs(info.id, **kw)

    async def stop(self, agent: Agent, ref: str, timeout_s: float = 10, *, actor: str | None = None) -> ContainerInfo:
        info = await self._own(agent, ref)
        after = await self.engine.stop(info.id, timeout_s)
        await self.sync_agent(agent.name)
        await self._audit(agent, "container.stop", info, actor)
        return after

    async def restart(
        self, agent: Agent, ref: str, timeout_s: float = 10, *, actor: str | None = None
    ) -> ContainerInfo:
        """A restart is admitted like a new container unless the service already holds its slot."""
        info = await self._own(agent, ref)
        async with self._admission.slot(agent.name, agent.limits, f"restart {info.name}", reuse=info.id) as slot:
            after = await self.engine.restart(info.id, timeout_s)
            slot.keep(info.id)
        await self._audit(agent, "container.restart", info, actor)
        return after

    async def remove(self, agent: Agent, ref: str, *, force: bool = False, actor: str | None = None) -> None:
        info = await self._own(agent, ref)
        await self.engine.remove(info.id, force=force)
        self._admission.release(agent.name, info.id)
        await self._audit(agent, "container.remove", info, actor)

    async def usage(self, agent: Agent, *, largest_memory: bool = False) -> dict[str, Any]:
        """What the agent uses now; `network` names its network and the services reachable there by name.
        With `largest_memory` (the window's Agents view), also the memory of its largest running container."""
        running = [c for c in await self.list(agent, all=False) if c.status == "running"]
        stats = await self.engine.stats(running)
        cpus = sum(s.cpu_percent for s in stats.values()) / 100.0
        services = sorted(c.name for c in running if c.kind == Kind.SERVICE and c.on_agent_network)
        return {
            "containers": self._admission.active(agent.name),
            "cpus_in_use": round(cpus, 3),
            "queued": len(self._admission.queued(agent.name)),
            "network": {"name": self.engine.network_name(agent.name), "services": services}
            if agent.limits.network
            else None,
        } | ({"largest_memory": max((s.memory_bytes for s in stats.values()), default=0)} if largest_memory else {})

    def usage_offline(self, agent: Agent) -> dict[str, Any]:
        """`usage` while the engine is away: what admission knows, no CPU reading."""
        return {
            "containers": self._admission.active(agent.name),
            "cpus_in_use": 0.0,
            "queued": len(self._admission.queued(agent.name)),
            "network": {"name": self.engine.network_name(agent.name), "services": []} if agent.limits.network else None,
        }

    async def sync_agent(self, agent: str, *, gone: str | None = None) -> None:
        """Recount the agent's running services from the engine (after stops, deaths, restarts of Berth).

        `gone` is a container the engine just reported dead: a list made right after its `die` event may
        still show it running.
        """
        running = await self.engine.list_containers({LABEL_AGENT: agent, LABEL_KIND: str(Kind.SERVICE)}, all=False)
        self._admission.sync_services(agent, [c.id for c in running if c.status == "running" and c.id != gone])

    async def sync_all(self) -> None:
        services = await self.engine.list_containers({LABEL_KIND: str(Kind.SERVICE)}, all=False)
        by_agent: dict[str, list[str]] = {}
        for c in services:
            if c.status == "running":
                by_agent.setdefault(c.agent, []).append(c.id)
        for agent in set(by_agent) | set(self._admission.agents()):
            self._admission.sync_services(agent, by_agent.get(agent, []))
