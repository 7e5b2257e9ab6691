"""The engine facade: the only API the rest of Berth uses to run containers.

Every method is async; the blocking docker SDK calls run in the connection's worker threads.
Containers carry Berth's labels (API.md) and are created with the safe defaults of DESIGN.md:
no network unless asked, all capabilities dropped, no-new-privileges, a pids limit, an init
process, memory without extra swap, the agent's CPU group, the host user's UID:GID, and only the
workspace mounted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

import docker.errors

from app.engine.connection import Connection, engine_hint
from app.engine.cpugroups import CpuGroups
from app.engine.events import watch_events
from app.engine.follow import follow
from app.engine.info import container_from_inspect, container_from_list, normalize_port
from app.engine.pool import PoolKey, Warm, WarmPool
from app.engine.stats import StatsReader
from app.engine.streams import CappedBuffer, raw_socket, read_capped, read_multiplexed, send_stdin
from app.errors import (
    BerthError,
    Conflict,
    EngineUnavailable,
    ImageUnavailable,
    InvalidParams,
    NetworkUnavailable,
    NotFound,
)
from app.model import (
    LABEL_AGENT,
    LABEL_CPU_GROUP,
    LABEL_INSTANCE,
    LABEL_KIND,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_POOL_AGENT,
    LOGS_CAP,
    OUTPUT_CAP,
    ContainerEvent,
    ContainerInfo,
    ContainerSpec,
    EngineInfo,
    Kind,
    PoolConfig,
    RunResult,
    RunSpec,
    ServiceSpec,
    Stats,
)

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str], None]

# PID 1 of a pooled container (under `init`): idles until a run execs its command, then goes with the container.
IDLE_COMMAND = ["sleep", "2147483647"]
# What the engine answers on an exec whose process never started (bad workdir, missing program): the cold
# path, which reports these its own way (and creates a missing workdir), takes over.
EXEC_NOT_STARTED = "OCI runtime exec failed"


def argv_of(command: str | list[str]) -> list[str]:
    """A string runs through `/bin/sh -c`; a list is the argv itself."""
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    if not command or not all(isinstance(a, str) for a in command):
        raise InvalidParams("command must be a non-empty string or a non-empty array of strings")
    return list(command)


def host_user() -> str:
    return f"{os.getuid()}:{os.getgid()}"


class Engine:
    """Async facade over one Docker engine, scoped to one Berth instance (its labels)."""

    def __init__(self, instance: str, endpoint: str | None = None, *, pool: PoolConfig | None = None) -> None:
        self.instance = instance
        self.conn = Connection(endpoint, name=f"berth-{instance}")
        self.cpu_groups = CpuGroups(f"berth-{instance}")
        self._stats = StatsReader(self.conn)
        self._detected = False
        self._cleanups: set[asyncio.Task[None]] = set()
        self._in_use: set[str] = set()  # names/ids of temporary containers this process is running now
        self._poolable: dict[str, bool] = {}
        self._networks: set[str] = set()  # agent networks known to exist
        self._network_locks: dict[str, asyncio.Lock] = {}
        self._runs_in_flight = 0
        self._cpus = max(1, os.cpu_count() or 1)
        self.pool = WarmPool(
            self._create_idle, self._remove_idle, pool or PoolConfig(enabled=False), busy=self._busy_with_runs
        )

    @property
    def endpoint(self) -> str:
        return self.conn.endpoint

    # -- engine ----------------------------------------------------------------------------------

    async def info(self) -> EngineInfo:
        """Whether the engine answers, and its version. Never raises."""
        try:
            version = await self.conn.call(lambda: self.conn.api.version())
            await self._detect()
            return EngineInfo(True, str(version.get("Version")), self.endpoint, self.cpu_groups.mechanism)
        except BerthError as e:
            return EngineInfo(False, None, self.endpoint, None, e.hint or str(e))
        except Exception as e:
            return EngineInfo(False, None, self.endpoint, None, engine_hint(self.endpoint, str(e)))

    async def _detect(self) -> None:
        if not self._detected:
            info = await self.conn.call(lambda: self.conn.api.info())
            self.cpu_groups.detect(info, self.endpoint)
            self._detected = True

    async def ensure_image(self, image: str, progress: ProgressCallback | None = None) -> None:
        """Make sure `image` is local: pull it if not, reporting progress; ImageUnavailable if that fails."""
        try:
            await self.conn.call(lambda: self.conn.api.inspect_image(image), what=f"image {image}")  # type: ignore[no-untyped-call]
            return
        except NotFound:
            pass
        await self.conn.call(self._pull, image, progress)

    async def has_image(self, image: str) -> bool:
        try:
            await self.conn.call(lambda: self.conn.api.inspect_image(image), what=f"image {image}")  # type: ignore[no-untyped-call]
            return True
        except NotFound:
            return False

    async def images(self) -> list[str]:
        """Tags of the local images (for the default-image setting)."""
        raw = await self.conn.call(lambda: self.conn.api.images())
        return sorted(t for img in raw for t in (img.get("RepoTags") or []) if t != "<none>:<none>")

    def _pull(self, image: str, progress: ProgressCallback | None) -> None:
        repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
        if progress:
            progress(f"pulling {image} ...")
        try:
            for line in self.conn.api.pull(repo, tag=tag, stream=True, decode=True):
                if "error" in line:
                    raise ImageUnavailable(image, f"image {image!r} is not local and the pull failed: {line['error']}")
                if progress and line.get("status"):
                    detail = line.get("progress") or ""
                    progress(f"{line.get('id', image)}: {line['status']} {detail}".strip())
        except docker.errors.APIError as e:
            raise ImageUnavailable(
                image, f"image {image!r} is not local and could not be pulled: {e.explanation}"
            ) from e
        if progress:
            progress(f"pulled {image}")

    # -- creation --------------------------------------------------------------------------------

    def labels(self, agent: str, kind: Kind, name: str) -> dict[str, str]:
        return {
            LABEL_MANAGED: "true",
            LABEL_INSTANCE: self.instance,
            LABEL_POOL_AGENT if kind == Kind.POOL else LABEL_AGENT: agent,
            LABEL_KIND: str(kind),
            LABEL_NAME: name,
        }

    def full_name(self, agent: str, name: str) -> str:
        """The engine-wide container name: `berth.<instance>.<agent>.<name>`. Neither an instance id nor an
        agent name holds a dot, so no two (instance, agent, name) ever share one (`team`/`b-web` and
        `team-b`/`web` used to)."""
        return f"berth.{self.instance}.{agent}.{name}"

    def network_name(self, agent: str) -> str:
        """The agent's own network on this engine (API.md "Agent networks")."""
        return f"berth.{self.instance}.{agent}"

    def _create_sync(
        self,
        spec: ContainerSpec,
        *,
        kind: Kind,
        name: str,
        command: list[str] | None,
        ports: list[str] = (),  # type: ignore[assignment]
        stdin_open: bool = False,
        progress: ProgressCallback | None = None,
        pull: bool = True,
    ) -> str:
        api = self.conn.api
        network = self.network_name(spec.agent) if spec.network == "bridge" else spec.network
        host_kwargs: dict[str, Any] = {
            "network_mode": network,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "pids_limit": spec.pids_limit,
            "init": True,
        }
        if kind == Kind.SERVICE:  # "runs until stopped or removed": also across a restart of the engine
            host_kwargs["restart_policy"] = {"Name": "unless-stopped"}
        if spec.memory:
            host_kwargs.update(mem_limit=spec.memory, memswap_limit=spec.memory)
        host_kwargs.update(self.cpu_groups.host_config(spec.cpu_group))
        if spec.workspace:
            host_kwargs["binds"] = {spec.workspace: {"bind": "/workspace", "mode": "rw"}}
        if ports:
            host_kwargs["port_bindings"] = {p: ("127.0.0.1", None) for p in ports}
        labels = {**spec.labels, **self.labels(spec.agent, kind, name)}
        if "cgroup_parent" in host_kwargs:
            labels[LABEL_CPU_GROUP] = host_kwargs["cgroup_parent"]
        kwargs: dict[str, Any] = {
            "command": command,
            "name": self.full_name(spec.agent, name),
            "environment": spec.env,
            "working_dir": spec.workdir or "/workspace",
            "user": spec.user or host_user(),
            "labels": labels,
            "stdin_open": stdin_open,
            "ports": [tuple(p.split("/")) if p.endswith("/udp") else int(p.split("/")[0]) for p in ports] or None,
            "host_config": api.create_host_config(**host_kwargs),
        }
        if spec.network == "bridge" and kind == Kind.SERVICE:  # found by its name from the agent's containers
            kwargs["networking_config"] = api.create_networking_config(
                {network: api.create_endpoint_config(aliases=[name])}  # type: ignore[arg-type]
            )
        try:
            return str(api.create_container(spec.image, **kwargs)["Id"])
        except docker.errors.ImageNotFound:
            if not pull:
                raise
            self._pull(spec.image, progress)
            return str(api.create_container(spec.image, **kwargs)["Id"])
        except docker.errors.APIError as e:
            if e.status_code == 409:
                raise Conflict(f"a container named {kwargs['name']} already exists") from e
            raise

    async def _create(self, spec: ContainerSpec, **kw: Any) -> str:
        await self._detect()
        if spec.network == "bridge":
            await self.ensure_network(spec.agent)
        return await self.conn.call(self._create_sync, spec, **kw)

    # -- agent networks --------------------------------------------------------------------------

    async def ensure_network(self, agent: str) -> str:
        """The agent's network, made on first use (found again, never duplicated, after a restart)."""
        name = self.network_name(agent)
        lock = self._network_locks.setdefault(agent, asyncio.Lock())
        async with lock:
            if name in self._networks:
                return name
            found = await self.conn.call(lambda: self.conn.api.networks(names=[name]))
            if not any(n.get("Name") == name for n in found):
                labels = {LABEL_MANAGED: "true", LABEL_INSTANCE: self.instance, LABEL_AGENT: agent}

                def create() -> None:
                    try:
                        self.conn.api.create_network(name, driver="bridge", labels=labels, check_duplicate=True)
                    except docker.errors.APIError as e:
                        if e.status_code == 409:
                            return  # made meanwhile (another Berth process on this data dir cannot be; a race)
                        full = "address pool" in str(e.explanation or e)
                        raise NetworkUnavailable(
                            f"the engine could not make the network of agent {agent!r}: {e.explanation or e}",
                            hint="the engine has no address range left for another network: remove unused ones "
                            "(docker network prune) or give it more (default-address-pools in daemon.json)"
                            if full
                            else "check that the engine can make bridge networks (docker network create), or "
                            "switch network off for this agent",
                        ) from e

                await self.conn.call(create, what=f"network {name}")
                logger.info("made network %s for agent %s", name, agent)
            self._networks.add(name)
            return name

    async def networks(self) -> dict[str, str]:
        """This instance's agent networks: agent -> network name."""
        raw = await self.conn.call(
            lambda: self.conn.api.networks(filters={"label": [f"{LABEL_INSTANCE}={self.instance}"]})
        )
        return {str((n.get("Labels") or {}).get(LABEL_AGENT)): str(n.get("Name")) for n in raw}

    async def remove_network(self, agent: str) -> bool:
        """Remove the agent's network; False (and it stays) while containers of the agent still use it."""
        name = self.network_name(agent)
        self._networks.discard(name)
        try:
            await self.conn.call(lambda: self.conn.api.remove_network(name), what=f"network {name}")
        except NotFound:
            return True
        except (BerthError, docker.errors.APIError) as e:  # 403 "has active endpoints": still in use
            logger.info("network %s stays for now: %s", name, getattr(e, "explanation", None) or e)
            return False
        logger.info("removed network %s", name)
        return True

    async def prune_networks(self, known_agents: set[str]) -> list[str]:
        """Remove the networks of agents not in `known_agents` that no container uses any more."""
        removed = []
        for agent in await self.networks():
            if agent not in known_agents and await self.remove_network(agent):
                removed.append(agent)
        return removed

    # -- temporary runs --------------------------------------------------------------------------

    async def run_temporary(
        self,
        spec: RunSpec,
        *,
        progress: ProgressCallback | None = None,
        on_created: Callable[[str], None] | None = None,
    ) -> RunResult:
        """Run one command in a fresh container and always remove it: a warm one from the pool when one is
        ready (exec into it), else create, start, wait (killing at the timeout) and read the capped output."""
        argv = argv_of(spec.command)
        key: PoolKey | None = None
        self._runs_in_flight += 1
        try:
            if self.pool.enabled:
                key = PoolKey.of(spec)
                warm = self.pool.take(key)
                if warm is not None:
                    result = await self._run_pooled(warm, spec, argv, on_created)
                    if result is not None:
                        return result
            return await self._run_cold(spec, argv, progress, on_created)
        finally:
            self._runs_in_flight -= 1  # before done(): the refill behind this run sees it finished
            if key is not None:
                self.pool.done(key)

    def _busy_with_runs(self) -> bool:
        """As many temporary runs under way as there are CPUs: the pool waits rather than compete with them."""
        return self._runs_in_flight >= self._cpus

    async def _run_cold(
        self,
        spec: RunSpec,
        argv: list[str],
        progress: ProgressCallback | None,
        on_created: Callable[[str], None] | None,
    ) -> RunResult:
        name = f"tmp-{secrets.token_hex(5)}"
        started = time.monotonic()
        stdin = spec.stdin.encode() if isinstance(spec.stdin, str) else spec.stdin
        self._in_use.add(self.full_name(spec.agent, name))
        create = asyncio.ensure_future(
            self._create(
                spec, kind=Kind.TEMPORARY, name=name, command=argv, stdin_open=stdin is not None, progress=progress
            )
        )
        try:
            cid = await asyncio.shield(create)
            if on_created:
                on_created(cid)
            return await self._run_created(cid, spec, stdin, started)
        finally:
            self._in_use.discard(self.full_name(spec.agent, name))
            self._spawn_cleanup(self._remove_after(create, self.full_name(spec.agent, name)))

    async def _run_created(self, cid: str, spec: RunSpec, stdin: bytes | None, started: float) -> RunResult:
        if stdin is not None:
            sock = await self.conn.call(lambda: self.conn.api.attach_socket(cid, params={"stdin": 1, "stream": 1}))
            try:
                await self.conn.call(lambda: self.conn.api.start(cid))
                await self.conn.call(send_stdin, sock, stdin)
            finally:
                await self.conn.call(raw_socket(sock).close)
        else:
            await self.conn.call(lambda: self.conn.api.start(cid))
        timed_out = False
        try:
            status = await asyncio.wait_for(self.conn.call(lambda: self.conn.api.wait(cid)), spec.timeout_s)
        except TimeoutError:
            timed_out = True
            await self._quietly(self.conn.call(lambda: self.conn.api.kill(cid)))
            status = await self.conn.call(lambda: self.conn.api.wait(cid))
        exit_code = int(status.get("StatusCode", -1))
        oom = False
        if exit_code == 137 and not timed_out:
            state = (await self.conn.call(lambda: self.conn.api.inspect_container(cid)))["State"]
            oom = bool(state.get("OOMKilled"))
        cap = spec.output_cap
        stdout, t_out = await self.conn.call(
            lambda: read_capped(self.conn.api.logs(cid, stderr=False, stream=True, follow=False), cap)
        )
        stderr, t_err = await self.conn.call(
            lambda: read_capped(self.conn.api.logs(cid, stdout=False, stream=True, follow=False), cap)
        )
        return RunResult(
            id=cid,
            exit_code=exit_code,
            stdout=stdout,
            stderr=stderr,
            timed_out=timed_out,
            oom_killed=oom,
            duration_ms=int((time.monotonic() - started) * 1000),
            truncated=t_out or t_err,
        )

    async def _run_pooled(
        self, warm: Warm, spec: RunSpec, argv: list[str], on_created: Callable[[str], None] | None
    ) -> RunResult | None:
        """Exec the run's command in a warm container, which is removed afterwards whatever happened.

        None when the command could not start there (the container is gone, a missing workdir or
        program): nothing ran, and the caller goes the cold way, which behaves as it always did.
        """
        started = time.monotonic()
        data = spec.stdin.encode() if isinstance(spec.stdin, str) else spec.stdin
        out, err = CappedBuffer(spec.output_cap), CappedBuffer(spec.output_cap)
        timed_out = False
        try:

            def create_and_start() -> tuple[str, Any]:
                exec_id = self.conn.api.exec_create(
                    warm.id,
                    argv,
                    stdin=data is not None,
                    environment=spec.env or None,
                    workdir=spec.workdir or "/workspace",
                    user=spec.user or host_user(),
                )["Id"]
                return exec_id, self.conn.api.exec_start(exec_id, socket=True)

            self._in_use.add(warm.id)
            try:
                exec_id, sock = await self.conn.call(create_and_start)
            except (NotFound, Conflict, docker.errors.APIError) as e:
                # Gone, stopping, being removed (the engine restarting): nothing ran; the cold way decides.
                logger.info("pooled container %s cannot take the run (%s): running cold", warm.id[:12], e)
                return None
            if on_created:
                on_created(warm.id)
            try:
                if data is not None:
                    await self.conn.call(send_stdin, sock, data)
                await asyncio.wait_for(self.conn.call(read_multiplexed, sock, out, err), spec.timeout_s)
            except TimeoutError:
                timed_out = True
                await self._quietly(self.conn.call(lambda: self.conn.api.kill(warm.id)))
            finally:
                await self.conn.call(raw_socket(sock).close)
            state = await self.conn.call(lambda: self.conn.api.exec_inspect(exec_id))
            code = state.get("ExitCode")
            if code in (126, 127) and not err.size and EXEC_NOT_STARTED in out.text()[:300]:
                return None
            exit_code = 137 if timed_out and (code is None or state.get("Running")) else code
            oom = exit_code == 137 and not timed_out and await self._oom_killed(warm.id)
        finally:
            self._in_use.discard(warm.id)
            self._spawn_cleanup(self._remove_idle(warm.id))
        return RunResult(
            id=warm.id,
            exit_code=None if exit_code is None else int(exit_code),
            stdout=out.text(),
            stderr=err.text(),
            timed_out=timed_out,
            oom_killed=oom,
            duration_ms=int((time.monotonic() - started) * 1000),
            truncated=out.truncated or err.truncated,
        )

    async def _oom_killed(self, cid: str) -> bool:
        """Whether the memory cgroup of a pooled container killed a process (used once, so it was the run's).

        The engine marks `State.OOMKilled` only when PID 1 dies of it; an exec'd process shows in the
        cgroup's own counter, read here where the engine shares this machine's cgroup tree.
        """
        raw = await self.conn.call(lambda: self.conn.api.inspect_container(cid), what=f"container {cid}")
        if raw.get("State", {}).get("OOMKilled"):
            return True
        parent = (raw.get("HostConfig", {}).get("CgroupParent") or "").strip("/")
        return await asyncio.to_thread(oom_kills_in_cgroup, parent, cid) > 0

    async def _create_idle(self, spec: ContainerSpec) -> Warm:
        """Create and start a pooled container for `spec`'s key (never pulls: an unknown image is not pooled)."""
        await self._detect()
        if spec.image not in self._poolable:
            raw = await self.conn.call(lambda: self.conn.api.inspect_image(spec.image), what=f"image {spec.image}")  # type: ignore[no-untyped-call]
            # An entrypoint would wrap the idle command but not an exec: such images always run cold.
            self._poolable[spec.image] = not (raw.get("Config") or {}).get("Entrypoint")
        if not self._poolable[spec.image]:
            raise InvalidParams(f"image {spec.image} has an entrypoint")
        name = f"pool-{secrets.token_hex(5)}"
        if spec.network == "bridge":
            await self.ensure_network(spec.agent)
        full = self.full_name(spec.agent, name)
        self._in_use.add(full)  # ours while it is made (see made_here); the pool holds it from the return on
        try:
            cid = await self.conn.call(
                self._create_sync, spec, kind=Kind.POOL, name=name, command=IDLE_COMMAND, pull=False
            )
            try:
                await self.conn.call(lambda: self.conn.api.start(cid))
            except BaseException:
                self._spawn_cleanup(self._remove_idle(cid))
                raise
            return Warm(cid)
        finally:
            self._in_use.discard(full)

    async def _remove_idle(self, cid: str) -> None:
        await self._remove_after(_done(cid), cid)

    async def _remove_after(self, create: asyncio.Future[str], full_name: str) -> None:
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

    def _spawn_cleanup(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def drain_cleanups(self) -> None:
        """Wait for pending removals (at shutdown, and in tests)."""
        while self._cleanups:
            await asyncio.gather(*list(self._cleanups), return_exceptions=True)

    @staticmethod
    async def _quietly(aw: Any) -> None:
        try:
            await aw
        except (NotFound, Conflict):
            pass

    # -- services --------------------------------------------------------------------------------

    async def start_service(self, spec: ServiceSpec, *, progress: ProgressCallback | None = None) -> ContainerInfo:
        ports = [normalize_port(p) for p in spec.ports]
        if ports and spec.network == "none":
            raise InvalidParams("ports: publishing ports needs network 'bridge'")
        argv = argv_of(spec.command) if spec.command is not None else None
        try:
            cid = await self._create(
                spec, kind=Kind.SERVICE, name=spec.name, command=argv, ports=ports, progress=progress
            )
        except Conflict as e:
            raise Conflict(f"a service named {spec.name!r} already exists for agent {spec.agent!r}") from e
        try:
            await self.conn.call(lambda: self.conn.api.start(cid))
        except BaseException as e:
            await self._quietly(self.conn.call(lambda: self.conn.api.remove_container(cid, force=True)))
            if isinstance(e, docker.errors.APIError | BerthError):
                raise InvalidParams(f"the service could not start: {getattr(e, 'explanation', None) or e}") from e
            raise
        return await self.inspect(cid)

    # -- exec ------------------------------------------------------------------------------------

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
        argv = argv_of(command)
        started = time.monotonic()
        data = stdin.encode() if isinstance(stdin, str) else stdin
        info = await self.inspect(container)
        if info.status != "running":
            raise Conflict(f"container {info.name} is {info.status}, not running: start it first")

        def create_and_start() -> tuple[str, Any]:
            exec_id = self.conn.api.exec_create(
                info.id, argv, stdin=data is not None, environment=env or None, workdir=workdir, user=user or ""
            )["Id"]
            return exec_id, self.conn.api.exec_start(exec_id, socket=True)

        exec_id, sock = await self.conn.call(create_and_start)
        out, err = CappedBuffer(output_cap), CappedBuffer(output_cap)
        timed_out = False
        try:
            if data is not None:
                await self.conn.call(send_stdin, sock, data)
            await asyncio.wait_for(self.conn.call(read_multiplexed, sock, out, err), timeout_s)
        except TimeoutError:
            timed_out = True
            await self._kill_exec(exec_id)
        finally:
            await self.conn.call(raw_socket(sock).close)
        result = await self.conn.call(lambda: self.conn.api.exec_inspect(exec_id))
        code = result.get("ExitCode")
        return RunResult(
            id=info.id,
            exit_code=None if code is None or (timed_out and result.get("Running")) else int(code),
            stdout=out.text(),
            stderr=err.text(),
            timed_out=timed_out,
            duration_ms=int((time.monotonic() - started) * 1000),
            truncated=out.truncated or err.truncated,
        )

    async def _kill_exec(self, exec_id: str) -> None:
        """Kill a timed-out exec's process (its host PID is visible when the engine is local)."""
        pid = (await self.conn.call(lambda: self.conn.api.exec_inspect(exec_id))).get("Pid")
        if pid and self.endpoint.startswith("unix://"):
            try:
                os.kill(int(pid), signal.SIGKILL)
                return
            except (ProcessLookupError, PermissionError) as e:
                logger.warning("could not kill timed-out exec process %s: %s", pid, e)

    # -- queries and actions ---------------------------------------------------------------------

    def _filters(self, labels: dict[str, str] | None) -> dict[str, Any]:
        want = {LABEL_INSTANCE: self.instance, **(labels or {})}
        return {"label": [f"{k}={v}" for k, v in want.items()]}

    async def list_containers(self, labels: dict[str, str] | None = None, *, all: bool = True) -> list[ContainerInfo]:
        """This Berth's containers, optionally narrowed by more labels."""
        raw = await self.conn.call(lambda: self.conn.api.containers(all=all, filters=self._filters(labels)))
        return [container_from_list(c) for c in raw]

    async def inspect(self, ref: str) -> ContainerInfo:
        """A container of this Berth by id or full name; NotFound for anything else."""
        raw = await self.conn.call(lambda: self.conn.api.inspect_container(ref), what=f"container {ref}")
        if raw.get("Config", {}).get("Labels", {}).get(LABEL_INSTANCE) != self.instance:
            raise NotFound(f"container {ref} not found")
        return container_from_inspect(raw)

    async def logs(
        self,
        ref: str,
        *,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
        cap: int = LOGS_CAP,
    ) -> tuple[str, bool]:
        info = await self.inspect(ref)
        return await self.conn.call(
            lambda: read_capped(
                self.conn.api.logs(
                    info.id,
                    stream=True,
                    follow=False,
                    tail="all" if tail is None else tail,
                    since=since,
                    timestamps=timestamps,
                ),
                cap,
            )
        )

    async def follow_logs(
        self, ref: str, *, tail: int | None = 1000, timestamps: bool = False
    ) -> AsyncGenerator[str, None]:
        """Yield a container's log text (stdout and stderr interleaved) as it comes, until the container stops
        or the consumer stops iterating. A thread and a client of its own: it never holds a pooled connection."""
        info = await self.inspect(ref)

        def open_stream(client: Any) -> Any:
            return client.api.logs(
                info.id, stream=True, follow=True, timestamps=timestamps, tail="all" if tail is None else tail
            )

        async with contextlib.aclosing(
            follow(self.conn, f"logs-{info.id[:12]}", open_stream, lambda b: b.decode("utf-8", errors="replace"))
        ) as chunks:
            async for chunk in chunks:
                yield chunk

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

    async def stats(self, containers: list[ContainerInfo]) -> dict[str, Stats]:
        """CPU % and memory of the running ones among `containers` (cheap: cgroup files where possible)."""
        running = {c.id: c.cpu_group for c in containers if c.status == "running"}
        return await self.conn.call(self._stats.sample, running)

    def events(self, since: float | None = None) -> AsyncGenerator[ContainerEvent, None]:
        """This instance's container events from now on (or replayed from `since`, a unix time)."""
        return watch_events(self.conn, self.instance, since)

    def made_here(self, cid: str, full_name: str) -> bool:
        """Whether this process made (or is making) this temporary or pooled container: a run in flight, a
        pooled container being made or ready. Anything else of those kinds is a leftover of another process."""
        return cid in self._in_use or full_name in self._in_use or self.pool.holds(cid)

    async def remove_leftover(self, cid: str) -> None:
        """Remove a temporary or pooled container this process did not make (a killed Berth's late create)."""
        await self._remove_after(_done(cid), cid)

    async def reconcile(self) -> list[str]:
        """At start (and when the engine comes back): remove leftover temporary and pool containers that a
        crash left behind; keep services, and the temporary runs this process is running right now."""
        self.pool.forget()
        removed: list[str] = []
        for kind in (Kind.TEMPORARY, Kind.POOL):
            for c in await self.list_containers({LABEL_KIND: str(kind)}):
                if c.id in self._in_use or c.full_name in self._in_use:
                    continue
                try:
                    await self.conn.call(lambda cid=c.id: self.conn.api.remove_container(cid, force=True))
                    removed.append(c.id)
                except NotFound:
                    pass
        await self._detect()
        await self.conn.call(self.cpu_groups.remove_empty)
        if removed:
            logger.info("reconcile removed %d leftover container(s)", len(removed))
        return removed

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
        return [*self._cleanups, *self.pool.tasks()]

    def threads(self) -> list[threading.Thread]:
        """This engine's threads still alive (none once `aclose` has returned)."""
        return self.conn.threads()


def _done(value: str) -> asyncio.Future[str]:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


def oom_kills_in_cgroup(parent: str, cid: str, root: str = "/sys/fs/cgroup") -> int:
    """The OOM kills counted in a container's memory cgroup (v1 `memory.oom_control`, v2 `memory.events`)."""
    group = parent or "docker"
    for path, field_name in (
        (f"{root}/memory/{group}/{cid}/memory.oom_control", "oom_kill"),
        (f"{root}/{group}/{cid}/memory.events", "oom_kill"),
        (f"{root}/{group}/docker-{cid}.scope/memory.events", "oom_kill"),
    ):
        try:
            with open(path) as f:
                for line in f:
                    name, _, value = line.partition(" ")
                    if name == field_name:
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0


__all__ = ["Engine", "EngineUnavailable", "argv_of", "host_user"]
