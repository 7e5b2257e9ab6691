"""Berth's containers on the engine: made with the rules of `policy`, then found, inspected and acted on.

Only the containers labelled with this instance exist for Berth: anything else is NotFound.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import Any

import docker.errors

from app.engine.connection import Connection
from app.engine.cpugroups import CpuGroups
from app.engine.faults import start_fault
from app.engine.images import Images, ProgressCallback
from app.engine.info import container_from_inspect, container_from_list, detail_from_inspect
from app.engine.networks import Networks
from app.engine.policy import argv_of, create_kwargs, published_ports
from app.errors import BerthError, Conflict, NotFound
from app.model import LABEL_INSTANCE, ContainerDetail, ContainerInfo, ContainerSpec, Kind, ServiceSpec

logger = logging.getLogger(__name__)


async def quietly(aw: Awaitable[Any]) -> None:
    """Await `aw`, ignoring that its container is gone or already in that state."""
    try:
        await aw
    except (NotFound, Conflict):
        pass


class Containers:
    def __init__(self, conn: Connection, instance: str, cpu_groups: CpuGroups, images: Images, networks: Networks):
        self.conn = conn
        self.instance = instance
        self.cpu_groups = cpu_groups
        self.images = images
        self.networks = networks
        self._detected = False

    async def detect(self) -> None:
        """Learn once from the engine how CPU groups can work here (before the first container is made)."""
        if not self._detected:
            info = await self.conn.call(lambda: self.conn.api.info())
            self.cpu_groups.detect(info, self.conn.endpoint)
            self._detected = True

    # -- creation --------------------------------------------------------------------------------

    async def create(
        self,
        spec: ContainerSpec,
        *,
        kind: Kind,
        name: str,
        command: list[str] | None,
        ports: Sequence[str] = (),
        stdin_open: bool = False,
        progress: ProgressCallback | None = None,
        pull: bool = True,
        runner_dir: str | None = None,
    ) -> str:
        """Create (not start) a container for `spec`; its id. With `pull`, a missing image is pulled first.
        `runner_dir`: a pooled container's runner folder (policy.RUNNER_MOUNT)."""
        await self.detect()
        if spec.network == "bridge":
            await self.networks.ensure(spec.agent)
        return await self.conn.call(
            self._create_sync,
            spec,
            kind=kind,
            name=name,
            command=command,
            ports=ports,
            stdin_open=stdin_open,
            progress=progress,
            pull=pull,
            runner_dir=runner_dir,
        )

    def _create_sync(
        self,
        spec: ContainerSpec,
        *,
        kind: Kind,
        name: str,
        command: list[str] | None,
        ports: Sequence[str],
        stdin_open: bool,
        progress: ProgressCallback | None,
        pull: bool,
        runner_dir: str | None = None,
    ) -> str:
        api = self.conn.api
        kwargs = create_kwargs(
            spec,
            instance=self.instance,
            kind=kind,
            name=name,
            command=command,
            ports=ports,
            stdin_open=stdin_open,
            cpu=self.cpu_groups.host_config(spec.cpu_group),
            api_version=api.api_version,
            runner_dir=runner_dir,
        )
        try:
            return str(api.create_container(spec.image, **kwargs)["Id"])
        except docker.errors.ImageNotFound:
            if not pull:
                raise
            self.images.pull_sync(spec.image, progress)
            return str(api.create_container(spec.image, **kwargs)["Id"])
        except docker.errors.APIError as e:
            if e.status_code == 409:
                raise Conflict(f"a container named {kwargs['name']} already exists") from e
            raise

    async def start_service(self, spec: ServiceSpec, *, progress: ProgressCallback | None = None) -> ContainerInfo:
        ports = published_ports(spec)
        argv = argv_of(spec.command) if spec.command is not None else None
        try:
            cid = await self.create(
                spec, kind=Kind.SERVICE, name=spec.name, command=argv, ports=ports, progress=progress
            )
        except Conflict as e:
            raise Conflict(f"a service named {spec.name!r} already exists for agent {spec.agent!r}") from e
        try:
            await self.conn.call(lambda: self.conn.api.start(cid))
        except BaseException as e:
            await quietly(self.conn.call(lambda: self.conn.api.remove_container(cid, force=True)))
            if isinstance(e, docker.errors.APIError | BerthError):
                raise start_fault(e, f"the service {spec.name!r}") from e  # the caller's fault, or the engine's
            raise
        return await self.inspect(cid)

    # -- queries and actions ---------------------------------------------------------------------

    def _filters(self, labels: dict[str, str] | None) -> dict[str, Any]:
        want = {LABEL_INSTANCE: self.instance, **(labels or {})}
        return {"label": [f"{k}={v}" for k, v in want.items()]}

    async def find(self, labels: dict[str, str] | None = None, *, all: bool = True) -> list[ContainerInfo]:
        """This Berth's containers, optionally narrowed by more labels."""
        raw = await self.conn.call(lambda: self.conn.api.containers(all=all, filters=self._filters(labels)))
        return [container_from_list(c) for c in raw]

    async def inspect(self, ref: str) -> ContainerInfo:
        """A container of this Berth by id or full name; NotFound for anything else."""
        return container_from_inspect(await self._inspect_raw(ref))

    async def inspect_detail(self, ref: str) -> ContainerDetail:
        """The same container with what the detail pane shows: command, times, limits, mounts, networks, env."""
        return detail_from_inspect(await self._inspect_raw(ref))

    async def _inspect_raw(self, ref: str) -> dict[str, Any]:
        raw: dict[str, Any] = await self.conn.call(
            lambda: self.conn.api.inspect_container(ref), what=f"container {ref}"
        )
        if raw.get("Config", {}).get("Labels", {}).get(LABEL_INSTANCE) != self.instance:
            raise NotFound(f"container {ref} not found")
        return raw

    async def stop(self, ref: str, timeout_s: float = 10) -> ContainerInfo:
        info = await self.inspect(ref)
        await self.conn.call(lambda: self.conn.api.stop(info.id, timeout=int(timeout_s)))
        return await self.inspect(info.id)

    async def start(self, ref: str) -> ContainerInfo:
        info = await self.inspect(ref)
        await self.conn.call(lambda: self.conn.api.start(info.id))
        return await self.inspect(info.id)

    async def restart(self, ref: str, timeout_s: float = 10) -> ContainerInfo:
        info = await self.inspect(ref)
        await self.conn.call(lambda: self.conn.api.restart(info.id, timeout=int(timeout_s)))
        return await self.inspect(info.id)

    async def remove(self, ref: str, *, force: bool = False) -> None:
        info = await self.inspect(ref)
        try:
            await self.conn.call(lambda: self.conn.api.remove_container(info.id, force=force))
        except Conflict as e:
            raise Conflict(f"container {info.name} is {info.status}: stop it first or remove with force") from e
        await self.conn.call(self.cpu_groups.remove_empty)
