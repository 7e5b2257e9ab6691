"""The engine facade: the only API the rest of Berth uses to run containers.

Every method is async; the blocking docker SDK calls run in the connection's worker threads.
Containers carry Berth's labels (API.md) and are created with the safe defaults of DESIGN.md
(`policy`). The work is done by one part per job, built here and sharing one connection:
`images`, `networks`, `containers` (creation, services, queries and actions), `runs` (temporary
runs, cold and pooled), `execs`, `logs` and `leftovers` (removals and reconcile).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Any

from app.engine import policy
from app.engine.connection import Access, Connection, engine_hint
from app.engine.containers import Containers
from app.engine.cpugroups import CpuGroups
from app.engine.events import watch_events
from app.engine.execs import exec_in
from app.engine.images import Images, ProgressCallback
from app.engine.leftovers import Leftovers
from app.engine.logs import Logs
from app.engine.networks import Networks
from app.engine.policy import argv_of, host_user
from app.engine.runs import Runs
from app.engine.stats import StatsReader
from app.errors import BerthError, EngineUnavailable
from app.model import (
    LOCAL_ENGINE,
    LOGS_CAP,
    OUTPUT_CAP,
    ContainerDetail,
    ContainerEvent,
    ContainerInfo,
    EngineInfo,
    Kind,
    PoolConfig,
    RunResult,
    RunSpec,
    ServiceSpec,
    Stats,
)

logger = logging.getLogger(__name__)


class Engine:
    """Async facade over one Docker engine, scoped to one Berth instance (its labels)."""

    def __init__(
        self,
        instance: str,
        endpoint: str | None = None,
        *,
        pool: PoolConfig | None = None,
        name: str = LOCAL_ENGINE,
        access: Access | None = None,
    ) -> None:
        self.instance = instance
        self.name = name  # Berth's name for this engine: "local", or one the person added
        thread_prefix = f"berth-{instance}" if name == LOCAL_ENGINE else f"berth-{instance}-{name}"
        self.conn = Connection(endpoint, name=thread_prefix, access=access, engine=name)
        self.cpu_groups = CpuGroups(f"berth-{instance}")
        self._stats = StatsReader(self.conn)
        self._images = Images(self.conn)
        self._networks = Networks(self.conn, instance)
        self._containers = Containers(self.conn, instance, self.cpu_groups, self._images, self._networks)
        self._leftovers = Leftovers(self.conn, self._containers, self.cpu_groups)
        self._runs = Runs(
            self.conn, instance, self._containers, self._images, self._leftovers, pool or PoolConfig(enabled=False)
        )
        self._logs = Logs(self.conn, self._containers)
        self.pool = self._runs.pool
        self.runner = self._runs.runner

    @property
    def endpoint(self) -> str:
        return self.conn.endpoint

    # -- engine ----------------------------------------------------------------------------------

    async def info(self) -> EngineInfo:
        """Whether the engine answers, and its version. Never raises."""
        try:
            version = await self.conn.call(lambda: self.conn.api.version())
            await self._containers.detect()
            return EngineInfo(
                True, str(version.get("Version")), self.endpoint, self.cpu_groups.mechanism, name=self.name
            )
        except BerthError as e:
            return EngineInfo(False, None, self.endpoint, None, e.hint or str(e), name=self.name)
        except Exception as e:
            hint = engine_hint(self.endpoint, str(e), engine=self.name)
            return EngineInfo(False, None, self.endpoint, None, hint, name=self.name)

    async def identity(self) -> str:
        """Who the engine is (`docker info`): the same engine reached two ways gives the same. The ID alone is not
        enough: Docker 20.10 derives it from /etc/docker/key.json, which two engines on one machine share."""
        info = await self.conn.call(lambda: self.conn.api.info())
        return "|".join(str(info.get(k) or "") for k in ("ID", "Name", "DockerRootDir"))

    # -- images ----------------------------------------------------------------------------------

    async def ensure_image(self, image: str, progress: ProgressCallback | None = None) -> None:
        """Make sure `image` is local: pull it if not, reporting progress; ImageUnavailable if that fails."""
        await self._images.ensure(image, progress)

    async def has_image(self, image: str) -> bool:
        return await self._images.has(image)

    async def images(self) -> list[str]:
        """Tags of the local images (for the default-image setting)."""
        return await self._images.tags()

    # -- names -----------------------------------------------------------------------------------

    def labels(self, agent: str, kind: Kind, name: str) -> dict[str, str]:
        return policy.labels(self.instance, agent, kind, name)

    def full_name(self, agent: str, name: str) -> str:
        """The engine-wide container name: `berth.<instance>.<agent>.<name>` (see `policy.full_name`)."""
        return policy.full_name(self.instance, agent, name)

    def network_name(self, agent: str) -> str:
        """The agent's own network on this engine (API.md "Agent networks")."""
        return policy.network_name(self.instance, agent)

    # -- agent networks --------------------------------------------------------------------------

    async def ensure_network(self, agent: str) -> str:
        """The agent's network, made on first use (found again, never duplicated, after a restart)."""
        return await self._networks.ensure(agent)

    async def networks(self) -> dict[str, str]:
        """This instance's agent networks: agent -> network name."""
        return await self._networks.by_agent()

    async def remove_network(self, agent: str) -> bool:
        """Remove the agent's network; False (and it stays) while containers of the agent still use it."""
        return await self._networks.remove(agent)

    async def prune_networks(self, known_agents: set[str]) -> list[str]:
        """Remove the networks of agents not in `known_agents` that no container uses any more."""
        return await self._networks.prune(known_agents)

    # -- runs, services, exec --------------------------------------------------------------------

    async def run_temporary(
        self,
        spec: RunSpec,
        *,
        progress: ProgressCallback | None = None,
        on_created: Callable[[str], None] | None = None,
    ) -> RunResult:
        """Run one command in a fresh container and always remove it: a warm one from the pool when one is
        ready (exec into it), else create, start, wait (killing at the timeout) and read the capped output."""
        return await self._runs.run_temporary(spec, progress=progress, on_created=on_created)

    async def drain_cleanups(self) -> None:
        """Wait for pending removals (at shutdown, and in tests)."""
        await self._leftovers.drain()

    async def start_service(self, spec: ServiceSpec, *, progress: ProgressCallback | None = None) -> ContainerInfo:
        return await self._containers.start_service(spec, progress=progress)

    async def exec(
        self,
        container: str,
        command: str | list[str],
        *,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        timeout_s: float = 60.0,
        stdin: str | bytes | None = None,
        user: str | None = None,
        output_cap: int = OUTPUT_CAP,
    ) -> RunResult:
        """Run a command in a running container; at the timeout its process is killed."""
        return await exec_in(
            self.conn,
            self._containers,
            container,
            command,
            env=env,
            workdir=workdir,
            timeout_s=timeout_s,
            stdin=stdin,
            user=user,
            output_cap=output_cap,
        )

    # -- queries and actions ---------------------------------------------------------------------

    async def list_containers(self, labels: dict[str, str] | None = None, *, all: bool = True) -> list[ContainerInfo]:
        """This Berth's containers, optionally narrowed by more labels."""
        return await self._containers.find(labels, all=all)

    async def inspect(self, ref: str) -> ContainerInfo:
        """A container of this Berth by id or full name; NotFound for anything else."""
        return await self._containers.inspect(ref)

    async def inspect_detail(self, ref: str) -> ContainerDetail:
        """What the detail pane shows of a container of this Berth (command, times, exit and OOM, limits,
        mounts, networks and aliases, labels, env); NotFound for anything else."""
        return await self._containers.inspect_detail(ref)

    async def logs(
        self,
        ref: str,
        *,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
        cap: int = LOGS_CAP,
    ) -> tuple[str, bool]:
        return await self._logs.read(ref, tail=tail, since=since, timestamps=timestamps, cap=cap)

    async def output_so_far(self, cid: str, *, cap: int = LOGS_CAP) -> tuple[str, str]:
        """(stdout, stderr) that a temporary run going on has written so far, apart (its container id)."""
        return await self._runs.output_so_far(cid, cap)

    def follow_logs(self, ref: str, *, tail: int | None = 1000, timestamps: bool = False) -> AsyncGenerator[str, None]:
        """Yield a container's log text (stdout and stderr interleaved) as it comes, until the container stops
        or the consumer stops iterating. A thread and a client of its own: it never holds a pooled connection."""
        return self._logs.follow(ref, tail=tail, timestamps=timestamps)

    def follow_log_streams(
        self, ref: str, *, tail: int | None = 1000, timestamps: bool = False
    ) -> AsyncGenerator[tuple[str, str], None]:
        """Like `follow_logs`, with each piece's stream: ("stdout" | "stderr", text)."""
        return self._logs.follow_streams(ref, tail=tail, timestamps=timestamps)

    async def stop(self, ref: str, timeout_s: float = 10) -> ContainerInfo:
        return await self._containers.stop(ref, timeout_s)

    async def start(self, ref: str) -> ContainerInfo:
        return await self._containers.start(ref)

    async def restart(self, ref: str, timeout_s: float = 10) -> ContainerInfo:
        return await self._containers.restart(ref, timeout_s)

    async def remove(self, ref: str, *, force: bool = False) -> None:
        await self._containers.remove(ref, force=force)

    async def stats(self, containers: list[ContainerInfo]) -> dict[str, Stats]:
        """CPU % and memory of the running ones among `containers` (cheap: cgroup files where possible)."""
        running = {c.id: c.cpu_group for c in containers if c.status == "running"}
        return await self.conn.call(self._stats.sample, running)

    def events(self, since: float | None = None) -> AsyncGenerator[ContainerEvent, None]:
        """This instance's container events from now on (or replayed from `since`, a unix time)."""
        return watch_events(self.conn, self.instance, since)

    # -- leftovers -------------------------------------------------------------------------------

    def made_here(self, cid: str, full_name: str) -> bool:
        """Whether this process made (or is making) this temporary or pooled container: a run in flight, a
        pooled container being made or ready. Anything else of those kinds is a leftover of another process."""
        return self._leftovers.in_flight(cid, full_name) or self.pool.holds(cid)

    async def remove_leftover(self, cid: str) -> None:
        """Remove a temporary or pooled container this process did not make (a killed Berth's late create)."""
        await self._leftovers.remove(cid)

    async def reconcile(self) -> list[str]:
        """At start (and when the engine comes back): remove leftover temporary and pool containers that a
        crash left behind; keep services, and the temporary runs this process is running right now."""
        removed = await self._leftovers.reconcile(self.pool)
        self._runs.forget_runners()
        return removed

    # -- shutdown --------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Remove the warm pool and pending temporaries, close the streams, and join every thread of this engine.
        The agents' CPU groups that no container uses any more are removed (services keep theirs)."""
        await self.pool.close()
        await self.drain_cleanups()
        try:
            await self.conn.call(self.cpu_groups.remove_empty)
            # Networks no container uses any more go too (made again on first use): an engine has room for
            # only a few dozen networks, and they should not pile up across the runs of many agents.
            await self.prune_networks(set())
        except Exception as e:
            logger.debug("could not tidy up CPU groups or networks: %s", e)
        self._stats.close()
        await self.conn.aclose()

    def tasks(self) -> list[asyncio.Task[Any]]:
        """Removals and pool work still in flight (for shutdown checks)."""
        return [*self._leftovers.tasks(), *self.pool.tasks()]

    def threads(self) -> list[threading.Thread]:
        """This engine's threads still alive (none once `aclose` has returned)."""
        return self.conn.threads()


__all__ = ["Engine", "EngineUnavailable", "argv_of", "host_user"]
