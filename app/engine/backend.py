"""The engine interface: everything the rest of Berth asks of whatever runs its containers.

`Backend` lists exactly what `app/core` and `app/rpc` use of `Application.engine` today, with the
promises each method keeps. The Docker facade (`engine.Engine`) implements it, and mypy checks that it
does (the assignment at the end of this module). Another backend (Kubernetes, docs/SCALE.md) is a new
module implementing the same methods; several engines at once are several backends that a registry
hands out by name (issue #18). Names in it are Berth's, never the SDK's: containers are `ContainerInfo`,
failures are Berth's typed errors (`EngineUnavailable` when the engine does not answer, `NotFound` for
anything not made by this Berth instance).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, Protocol

from app.model import (
    LOGS_CAP,
    OUTPUT_CAP,
    ContainerDetail,
    ContainerEvent,
    ContainerInfo,
    EngineConfig,
    EngineInfo,
    PoolStatus,
    RunResult,
    RunSpec,
    ServiceSpec,
    Stats,
)

if TYPE_CHECKING:
    from app.engine.pool import PoolKey

ProgressCallback = Callable[[str], None]  # an image pull's progress, one line at a time


class WarmPoolControl(Protocol):
    """The warm pool of pre-created containers, as the core steers it (the backend fills and uses it)."""

    def status(self) -> PoolStatus:
        """Ready and filling containers, hits and misses since start."""
        ...

    def drain(self, agent: str | None = None, *, keep: Callable[[PoolKey], bool] | None = None) -> int:
        """Remove the warm containers of `agent` (or of all agents) except those whose key `keep` accepts;
        returns how many go. Called when an agent's limits change, it is disabled or removed."""
        ...

    async def settle(self) -> None:
        """Wait until no fill or removal is in flight."""
        ...


class CpuQuotaMechanism(Protocol):
    """How this engine holds an agent's CPU quota for all its containers together (reported in system.info)."""

    @property
    def mechanism(self) -> str:
        """ "parent" (one cgroup carries the agent's quota) or "per-container" (each gets the whole quota)."""
        ...

    @property
    def reason(self) -> str:
        """Why that mechanism, in words for the person."""
        ...


class Backend(Protocol):
    """One engine, scoped to one Berth instance (its labels). Every method that may wait is async and never
    blocks the event loop; a backend's own threads and tasks are listed for shutdown checks."""

    # -- the engine --------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """Where the engine is reached (unix://..., tcp://..., ssh://..., or a cluster's API server)."""
        ...

    async def info(self) -> EngineInfo:
        """Whether the engine answers, its version, endpoint and CPU quota mechanism, or a hint. Never raises."""
        ...

    @property
    def cpu_groups(self) -> CpuQuotaMechanism: ...

    @property
    def pool(self) -> WarmPoolControl: ...

    # -- images ------------------------------------------------------------------------------------

    async def has_image(self, image: str) -> bool:
        """Whether `image` is on the engine already (no pull)."""
        ...

    async def images(self) -> list[str]:
        """Tags of the images on the engine (for the default-image setting)."""
        ...

    # -- names -------------------------------------------------------------------------------------

    def full_name(self, agent: str, name: str) -> str:
        """The engine-wide name of the agent's container `name` (unique per instance and agent)."""
        ...

    def network_name(self, agent: str) -> str:
        """The agent's own network on this engine, where its services find each other by name."""
        ...

    async def prune_networks(self, known_agents: set[str]) -> list[str]:
        """Remove the networks of agents not in `known_agents` that nothing uses any more; returns their names."""
        ...

    # -- runs, services, exec ----------------------------------------------------------------------

    async def run_temporary(
        self,
        spec: RunSpec,
        *,
        progress: ProgressCallback | None = None,
        on_created: Callable[[str], None] | None = None,
    ) -> RunResult:
        """Run one command in a fresh container with the safe defaults and the agent's limits, return its capped
        output, and always remove the container (also on timeout, cancel and error). `on_created` gets the
        container's id as soon as there is one (background runs show output so far with it)."""
        ...

    async def start_service(self, spec: ServiceSpec, *, progress: ProgressCallback | None = None) -> ContainerInfo:
        """Start a long-running container (published ports on 127.0.0.1 only); it runs until stopped or removed."""
        ...

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
        ...

    async def output_so_far(self, cid: str, *, cap: int = LOGS_CAP) -> tuple[str, str]:
        """(stdout, stderr) that a temporary run going on has written so far, apart (by its container id)."""
        ...

    # -- queries and actions -----------------------------------------------------------------------

    async def list_containers(self, labels: dict[str, str] | None = None, *, all: bool = True) -> list[ContainerInfo]:
        """This instance's containers (running ones only unless `all`), narrowed by more labels."""
        ...

    async def inspect(self, ref: str) -> ContainerInfo:
        """A container of this instance by id or full name; NotFound for anything else."""
        ...

    async def inspect_detail(self, ref: str) -> ContainerDetail:
        """What the detail pane shows of a container of this instance; NotFound for anything else."""
        ...

    async def logs(
        self,
        ref: str,
        *,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
        cap: int = LOGS_CAP,
    ) -> tuple[str, bool]:
        """A container's log text (at most `cap` bytes) and whether it was cut."""
        ...

    def follow_logs(self, ref: str, *, tail: int | None = 1000, timestamps: bool = False) -> AsyncGenerator[str, None]:
        """A container's log text as it comes, until it stops or the consumer stops iterating."""
        ...

    def follow_log_streams(
        self, ref: str, *, tail: int | None = 1000, timestamps: bool = False
    ) -> AsyncGenerator[tuple[str, str], None]:
        """Like `follow_logs`, with each piece's stream: ("stdout" | "stderr", text)."""
        ...

    async def stop(self, ref: str, timeout_s: float = 10) -> ContainerInfo: ...

    async def restart(self, ref: str, timeout_s: float = 10) -> ContainerInfo: ...

    async def remove(self, ref: str, *, force: bool = False) -> None: ...

    async def stats(self, containers: list[ContainerInfo]) -> dict[str, Stats]:
        """CPU % and memory of the running ones among `containers`, by id (cheap enough to call every second)."""
        ...

    def events(self, since: float | None = None) -> AsyncGenerator[ContainerEvent, None]:
        """This instance's container events from now on (or replayed from `since`, a unix time). Ends, or raises
        EngineUnavailable, when the engine goes away: the core reconnects and calls `reconcile`."""
        ...

    # -- leftovers and life cycle ------------------------------------------------------------------

    def made_here(self, cid: str, full_name: str) -> bool:
        """Whether this process made (or is making) this temporary or pooled container."""
        ...

    async def remove_leftover(self, cid: str) -> None:
        """Remove a temporary or pooled container this process did not make (a killed Berth's late create)."""
        ...

    async def reconcile(self) -> list[str]:
        """At start and when the engine comes back: remove temporaries and pooled containers a crash left
        behind, keep services and the runs in flight; returns what was removed."""
        ...

    async def aclose(self) -> None:
        """Remove the warm pool and pending temporaries, close the streams, join every thread of this engine."""
        ...

    def tasks(self) -> list[asyncio.Task[Any]]:
        """Removals and pool work still in flight (for shutdown checks)."""
        ...

    def threads(self) -> list[threading.Thread]:
        """This engine's threads still alive (none once `aclose` has returned)."""
        ...


class EngineSet(Backend, Protocol):
    """Several engines behind the one `Backend` (app/engine/registry.py): what it routes by agent and by
    container is the `Backend` above; this is what the core asks of the set itself, by engine name."""

    @property
    def local(self) -> Backend:
        """The local engine (DOCKER_HOST or the platform's socket), always there."""
        ...

    def names(self) -> list[str]:
        """The engines' names, `local` first."""
        ...

    def get(self, name: str) -> Backend:
        """One engine by name; NotFound for a name Berth does not know."""
        ...

    def config(self, name: str) -> EngineConfig | None:
        """How an added engine is reached (None for `local`)."""
        ...

    async def infos(self) -> list[EngineInfo]:
        """Every engine's `info()`."""
        ...

    async def identities(self) -> dict[str, str]:
        """The engine ID (`docker info`) of each engine that answers, by name."""
        ...

    def add_engine(self, config: EngineConfig) -> Backend:
        """Start driving an engine (the caller checked it answers)."""
        ...

    async def remove_engine(self, name: str) -> None:
        """Stop driving an engine: its pool, streams and threads end; its containers stay there."""
        ...

    def set_available(self, name: str, available: bool) -> None:
        """What the core's watch found: an engine that is down fails its own agents at once."""
        ...

    def engine_name(self, agent: str) -> str:
        """The engine an agent is placed on."""
        ...

    def forget(self, cid: str) -> None:
        """A container is gone (its destroy event): forget which engine had it."""
        ...

    async def sync_workspace(self, agent: str) -> bool:
        """Bring home what the agent's containers wrote to its workspace on an engine that cannot see the local
        folder; False when there is nothing to do."""
        ...


if TYPE_CHECKING:
    from app.engine.engine import Engine
    from app.engine.registry import Engines

    _the_registry_is_an_engine_set: type[EngineSet] = Engines

    _docker_engine_is_a_backend: type[Backend] = Engine  # mypy checks every member, signature by signature
