"""Plain dataclasses and enums shared by every layer (no Qt, no docker)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, Literal

MiB = 1024 * 1024
OUTPUT_CAP = 1 * MiB  # stdout/stderr of a run, each (API.md)
LOGS_CAP = 8 * MiB  # containers.logs

AtLimit = Literal["queue", "reject"]
Network = Literal["none", "bridge"]

SERVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
AGENT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")

LABEL_MANAGED = "berth.managed"
LABEL_INSTANCE = "berth.instance"
LABEL_AGENT = "berth.agent"
LABEL_KIND = "berth.kind"
LABEL_NAME = "berth.name"
LABEL_CPU_GROUP = "berth.cpu_group"
# A pooled container names the agent it was made for here, not in `berth.agent`: until a run takes it
# (and it goes with that run) it is nobody's container, so no agent-scoped query (list, counts) sees it.
LABEL_POOL_AGENT = "berth.pool.agent"


class Kind(enum.StrEnum):
    TEMPORARY = "temporary"
    SERVICE = "service"
    POOL = "pool"


@dataclass(frozen=True)
class Limits:
    """An agent's limits (API.md `limits`); `memory` is bytes per container."""

    cpus: float = 1.0
    memory: int = 512 * MiB
    max_containers: int = 4
    at_limit: AtLimit = "queue"
    queue_timeout_s: float = 120.0
    network: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "cpus": self.cpus,
            "memory": self.memory,
            "max_containers": self.max_containers,
            "at_limit": self.at_limit,
            "queue_timeout_s": self.queue_timeout_s,
            "network": self.network,
        }


@dataclass(frozen=True)
class CpuGroup:
    """CPUs shared by every container that names this group (an agent's quota)."""

    name: str
    cpus: float


@dataclass
class ContainerSpec:
    """What fixes a container at creation, common to temporary runs and services."""

    agent: str
    image: str
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/workspace"
    network: Network = "none"
    memory: int | None = 512 * MiB
    cpu_group: CpuGroup | None = None
    user: str | None = None  # "uid:gid"; None means the host user's
    workspace: str | None = None  # host folder mounted at /workspace
    pids_limit: int = 256
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class RunSpec(ContainerSpec):
    """A temporary container: run one command, return its output, remove it."""

    command: str | list[str] = field(default_factory=list)
    timeout_s: float = 60.0
    stdin: str | bytes | None = None
    output_cap: int = OUTPUT_CAP


@dataclass
class ServiceSpec(ContainerSpec):
    """A long-running container, named `berth-<agent>-<name>`."""

    name: str = ""
    command: str | list[str] | None = None
    ports: list[str] = field(default_factory=list)  # "80/tcp"


@dataclass(frozen=True)
class PoolConfig:
    """The warm pool of temporary containers (app.engine.pool): on/off and its sizes."""

    enabled: bool = True
    max_idle: int = 8  # idle pooled containers of all keys together
    per_key: int = 2  # ready containers per key at most (1 for a key in use, 2 once demand outran it)
    idle_s: float = 300.0  # a key unused this long drains
    runner: bool = True  # pooled containers take their run over a runner's socket (else by docker exec)


@dataclass(frozen=True)
class PoolStatus:
    """What the warm pool holds now, and how often a run found a container ready (for the panel, About, tests)."""

    enabled: bool
    idle: int
    filling: int
    keys: int
    hits: int
    misses: int


@dataclass(frozen=True)
class RunResult:
    id: str
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    oom_killed: bool = False
    duration_ms: int = 0
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "timed_out": self.timed_out,
            "oom_killed": self.oom_killed,
            "duration_ms": self.duration_ms,
            "truncated": self.truncated,
        }


@dataclass(frozen=True)
class PortBinding:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "url": self.url}


@dataclass(frozen=True)
class Stats:
    cpu_percent: float
    memory_bytes: int
    memory_limit_bytes: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu_percent": round(self.cpu_percent, 2),
            "memory_bytes": self.memory_bytes,
            "memory_limit_bytes": self.memory_limit_bytes,
        }


@dataclass(frozen=True)
class ContainerInfo:
    """A container of this Berth as the engine reports it."""

    id: str
    name: str  # the service name (or generated temporary name), without the berth-<agent>- prefix
    full_name: str
    agent: str
    kind: Kind
    status: str  # created | running | paused | restarting | exited | dead | removing
    image: str
    created: float
    ports: dict[str, PortBinding] = field(default_factory=dict)
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    memory_limit: int | None = None
    cpu_group: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    network: str = ""  # "none", or the agent network's name (a service is reachable there by `name`)
    command: str = ""  # the command it runs, on one line (for the panel's tooltip)
    engine: str = "local"  # the name of the engine it runs on (API.md "Engines")

    @property
    def running(self) -> bool:
        return self.status in ("running", "restarting", "paused")

    @property
    def pool_agent(self) -> str:
        """For a warm-pool container: the agent it was made for (it belongs to nobody until a run takes it)."""
        return self.labels.get(LABEL_POOL_AGENT, "")

    @property
    def on_agent_network(self) -> bool:
        return self.network.startswith("berth.")

    def to_json(self) -> dict[str, Any]:
        """The API.md list entry."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": str(self.kind),
            "status": self.status,
            "image": self.image,
            "created": self.created,
            "ports": {k: v.to_json() for k, v in self.ports.items()},
            "engine": self.engine,
        }


@dataclass(frozen=True)
class MountInfo:
    """A mount of a container: `bind` (a host folder), `volume` or `tmpfs`."""

    type: str
    source: str
    destination: str
    read_only: bool


@dataclass(frozen=True)
class NetworkAttachment:
    """A network a container is on, the names it answers to there, and its address."""

    name: str
    aliases: tuple[str, ...] = ()
    ip: str = ""


@dataclass(frozen=True)
class ContainerDetail:
    """Everything the Container Panel's detail pane shows of one container (the engine's inspect, in plain
    terms). `env` holds values as they are: hiding the secret-looking ones is the view's job."""

    info: ContainerInfo
    command: tuple[str, ...] = ()  # entrypoint and arguments, as the container runs them
    created_at: str | None = None  # ISO 8601 from the engine
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""
    restart_count: int = 0
    restart_policy: str = ""
    user: str = ""
    workdir: str = ""
    env: tuple[tuple[str, str], ...] = ()
    mounts: tuple[MountInfo, ...] = ()
    networks: tuple[NetworkAttachment, ...] = ()
    memory_limit: int | None = None
    cpus: float | None = None  # a quota of this container's own; None when it shares its agent's group
    cpu_group: str | None = None  # the agent's CPU group (cgroup parent), when it has one
    pids_limit: int | None = None
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    read_only_root: bool = False
    init: bool = False
    tty: bool = False


@dataclass(frozen=True)
class StatsSample:
    """One stats reading of a container at `at` (unix time), for the detail pane's graphs."""

    at: float
    cpu_percent: float
    memory_bytes: int
    memory_limit_bytes: int | None


@dataclass(frozen=True)
class ContainerEvent:
    """An engine event about one of this Berth's containers."""

    action: str  # create, start, die, stop, destroy, ...
    id: str
    agent: str | None
    kind: str | None
    time: float
    exit_code: int | None = None
    name: str = ""  # the container's full name


@dataclass(frozen=True)
class EngineInfo:
    available: bool
    version: str | None
    endpoint: str
    cpu_group_mechanism: str | None = None
    hint: str | None = None
    name: str = "local"  # the engine's name in Berth (API.md "Engines")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "available": self.available, "version": self.version, "endpoint": self.endpoint}


LOCAL_ENGINE = "local"
ENGINE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
FILES_LOCAL, FILES_SYNC = "local", "sync"


@dataclass(frozen=True)
class EngineConfig:
    """An engine the person added (`berth engines add`): where it is and how Berth is let in.

    `files`: "local" when the engine sees this machine's folders (the workspace is bind-mounted, as on the
    local engine); "sync" when it cannot (a remote machine): the workspace is copied to a volume there and
    back around each run (app/core/remote_files.py)."""

    name: str
    host: str | None = None  # unix://, tcp://HOST:PORT or ssh://USER@HOST
    context: str | None = None  # or a Docker context's name, resolved when Berth connects
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    files: str = FILES_SYNC
    created: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "context": self.context,
            "tls_ca": self.tls_ca,
            "tls_cert": self.tls_cert,
            "tls_key": self.tls_key,
            "files": self.files,
        }


def parse_size(text: str | int) -> int:
    """Parse `512m`, `1g`, `1.5GiB`, `1048576` into bytes; raise ValueError with a plain message."""
    if isinstance(text, int):
        if text <= 0:
            raise ValueError("size must be positive")
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not m:
        raise ValueError(f"cannot read size {text!r}: use a number with k, m or g, e.g. 512m")
    value = float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " ")
    if value < 1:
        raise ValueError("size must be positive")
    return int(value)


def format_size(n: int) -> str:
    for unit, div in (("g", 1024**3), ("m", MiB), ("k", 1024)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


@dataclass(frozen=True)
class Agent:
    """A program allowed to use Berth, with its limits. Its token is kept elsewhere (only a hash in the store)."""

    name: str
    limits: Limits = field(default_factory=Limits)
    enabled: bool = True
    created: float = 0.0
    host_folders: tuple[str, ...] = ()  # folders on the host the person granted for its host commands
    images: tuple[str, ...] = ()  # image patterns it may have pulled, besides images already here
    engine: str = LOCAL_ENGINE  # the engine its containers run on (API.md "Engines")


@dataclass(frozen=True)
class RunRecord:
    """A finished temporary run, as kept in the history."""

    id: int
    agent: str
    container_id: str
    image: str
    command: str  # as the agent gave it: a string, or a JSON array of argv
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    oom_killed: bool
    truncated: bool
    started: float
    finished: float
