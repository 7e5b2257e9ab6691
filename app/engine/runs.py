"""Temporary runs: one command in a fresh container that is always removed afterwards.

A run takes a warm container from the pool when one is ready, else it goes the cold way: create,
start, wait (killing at the timeout), read the capped output. A pooled container made with the
runner (`runner.py`) takes the run over its socket: one local round trip and a fork; one made
without it (no runner binary, a remote engine, `BERTH_RUNNER=0`) takes it by `docker exec`. Either
way the container is removed in a cleanup that also runs when the caller goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable

import docker.errors

from app.engine.connection import Connection
from app.engine.containers import Containers, quietly
from app.engine.execs import ExecSession
from app.engine.faults import start_fault
from app.engine.images import Images, ProgressCallback
from app.engine.leftovers import Leftovers
from app.engine.logs import read_log
from app.engine.policy import IDLE_COMMAND, WORKSPACE, argv_of, full_name, host_user
from app.engine.pool import PoolKey, Warm, WarmPool
from app.engine.runner import COMMAND as RUNNER_COMMAND
from app.engine.runner import Channel, Folder, Runner
from app.engine.streams import CappedBuffer, as_bytes, raw_socket, read_multiplexed, send_stdin
from app.errors import BerthError, Conflict, InvalidParams, NotFound
from app.model import ContainerSpec, Kind, PoolConfig, RunResult, RunSpec

logger = logging.getLogger(__name__)

# What the engine answers on an exec whose process never started (bad workdir, missing program): the cold
# path, which reports these its own way (and creates a missing workdir), takes over.
EXEC_NOT_STARTED = "OCI runtime exec failed"


class Runs:
    def __init__(
        self,
        conn: Connection,
        instance: str,
        containers: Containers,
        images: Images,
        leftovers: Leftovers,
        pool_config: PoolConfig,
    ) -> None:
        self.conn = conn
        self.instance = instance
        self.containers = containers
        self.images = images
        self.leftovers = leftovers
        self._runs_in_flight = 0
        # The output buffers of pooled runs going on (an exec's output reaches only its stream), by container.
        self.live: dict[str, tuple[CappedBuffer, CappedBuffer]] = {}
        self._cpus = max(1, os.cpu_count() or 1)
        self.runner = Runner(instance, enabled=pool_config.runner, local=conn.endpoint.startswith("unix://"))
        self._channels: dict[str, Channel] = {}  # the runner of each ready pooled container made with one
        self.pool = WarmPool(self._create_idle, self._remove_idle, pool_config, busy=self._busy_with_runs)

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

    async def output_so_far(self, cid: str, cap: int) -> tuple[str, str]:
        """(stdout, stderr) a temporary run has written so far: a pooled run's exec buffers, else its log."""
        live = self.live.get(cid)
        if live is not None:
            out, err = live
            return out.text()[:cap], err.text()[:cap]
        stdout, _ = await self.conn.call(read_log, self.conn, cid, cap, stderr=False)
        stderr, _ = await self.conn.call(read_log, self.conn, cid, cap, stdout=False)
        return stdout, stderr

    def _busy_with_runs(self) -> bool:
        """As many temporary runs under way as there are CPUs: the pool waits rather than compete with them."""
        return self._runs_in_flight >= self._cpus

    # -- cold ------------------------------------------------------------------------------------

    async def _run_cold(
        self,
        spec: RunSpec,
        argv: list[str],
        progress: ProgressCallback | None,
        on_created: Callable[[str], None] | None,
    ) -> RunResult:
        name = f"tmp-{secrets.token_hex(5)}"
        full = full_name(self.instance, spec.agent, name)
        started = time.monotonic()
        stdin = as_bytes(spec.stdin)
        self.leftovers.in_use.add(full)
        create = asyncio.ensure_future(
            self.containers.create(
                spec, kind=Kind.TEMPORARY, name=name, command=argv, stdin_open=stdin is not None, progress=progress
            )
        )
        try:
            cid = await asyncio.shield(create)
            if on_created:
                on_created(cid)
            return await self._run_created(cid, spec, stdin, started)
        finally:
            self.leftovers.in_use.discard(full)
            self.leftovers.spawn_cleanup(self.leftovers.remove_after(create, full))

    async def _run_created(self, cid: str, spec: RunSpec, stdin: bytes | None, started: float) -> RunResult:
        """Attach, start, read the output as it comes until the container ends (killing it at the timeout), and
        ask for its status: the attach stream carries the output, so no log read is needed afterwards."""
        params = {"stdout": 1, "stderr": 1, "stream": 1, **({"stdin": 1} if stdin is not None else {})}
        sock = await self.conn.call(lambda: self.conn.api.attach_socket(cid, params=params))
        buffers = self.live[cid] = (CappedBuffer(spec.output_cap), CappedBuffer(spec.output_cap))
        out, err = buffers
        sending: asyncio.Future[None] | None = None
        timed_out = False
        try:
            try:
                await self.conn.call(lambda: self.conn.api.start(cid))
            except (BerthError, docker.errors.APIError) as e:
                # The caller's fault (a program not in the image), or the engine's.
                raise start_fault(e, "the run") from e
            if stdin is not None:  # sent while the output is read: a process that echoes its input never blocks
                sending = asyncio.ensure_future(self.conn.call(send_stdin, sock, stdin))
            try:
                await asyncio.wait_for(self.conn.call(read_multiplexed, sock, out, err), spec.timeout_s)
            except TimeoutError:
                timed_out = True
                await quietly(self.conn.call(lambda: self.conn.api.kill(cid)))
            status = await self.conn.call(lambda: self.conn.api.wait(cid))
        finally:
            with contextlib.suppress(OSError):
                raw_socket(sock).shutdown(socket.SHUT_RDWR)  # wakes a sender or reader still at it
            if sending is not None:
                await asyncio.gather(sending, return_exceptions=True)
            await self.conn.call(raw_socket(sock).close)
            self.live.pop(cid, None)
        exit_code = int(status.get("StatusCode", -1))
        oom = False
        if exit_code == 137 and not timed_out:
            state = (await self.conn.call(lambda: self.conn.api.inspect_container(cid)))["State"]
            oom = bool(state.get("OOMKilled"))
        return RunResult(
            id=cid,
            exit_code=exit_code,
            stdout=out.text(),
            stderr=err.text(),
            timed_out=timed_out,
            oom_killed=oom,
            duration_ms=int((time.monotonic() - started) * 1000),
            truncated=out.truncated or err.truncated,
        )

    # -- pooled ----------------------------------------------------------------------------------

    async def _run_pooled(
        self, warm: Warm, spec: RunSpec, argv: list[str], on_created: Callable[[str], None] | None
    ) -> RunResult | None:
        """Exec the run's command in a warm container, which is removed afterwards whatever happened.

        None when the command could not start there (the container is gone, a missing workdir or
        program): nothing ran, and the caller goes the cold way, which behaves as it always did.
        """
        channel = self._channels.pop(warm.id, None)
        if channel is not None:
            return await self._run_on_runner(warm, channel, spec, argv, on_created)
        started = time.monotonic()
        data = as_bytes(spec.stdin)
        try:
            self.leftovers.in_use.add(warm.id)
            try:
                session = await ExecSession.start(
                    self.conn,
                    warm.id,
                    argv,
                    stdin=data is not None,
                    env=spec.env,
                    workdir=spec.workdir or WORKSPACE,
                    user=spec.user or host_user(),
                )
            except (NotFound, Conflict, docker.errors.APIError) as e:
                # Gone, stopping, being removed (the engine restarting): nothing ran; the cold way decides.
                logger.info("pooled container %s cannot take the run (%s): running cold", warm.id[:12], e)
                return None
            buffers = self.live[warm.id] = (CappedBuffer(spec.output_cap), CappedBuffer(spec.output_cap))
            if on_created:
                on_created(warm.id)
            done = await session.finish(
                data,
                spec.timeout_s,
                spec.output_cap,
                on_timeout=lambda: quietly(self.conn.call(lambda: self.conn.api.kill(warm.id))),
                buffers=buffers,
            )
            code = done.state.get("ExitCode")
            if code in (126, 127) and not done.err.size and EXEC_NOT_STARTED in done.out.text()[:300]:
                return None
            exit_code = 137 if done.timed_out and (code is None or done.state.get("Running")) else code
            oom = exit_code == 137 and not done.timed_out and await self._oom_killed(warm.id)
        finally:
            self.live.pop(warm.id, None)
            self.leftovers.in_use.discard(warm.id)
            self.leftovers.spawn_cleanup(self.leftovers.remove(warm.id))
        return done.result(None if exit_code is None else int(exit_code), started, oom_killed=oom)

    async def _run_on_runner(
        self, warm: Warm, channel: Channel, spec: RunSpec, argv: list[str], on_created: Callable[[str], None] | None
    ) -> RunResult | None:
        """Hand the run to the container's runner; None when its program never started (the cold way decides,
        as for an exec that could not start). The container is removed afterwards whatever happened."""
        started = time.monotonic()
        buffers = self.live[warm.id] = (CappedBuffer(spec.output_cap), CappedBuffer(spec.output_cap))
        self.leftovers.in_use.add(warm.id)
        try:
            done = await channel.run(
                argv,
                spec.env,
                spec.workdir or WORKSPACE,
                spec.timeout_s,
                spec.output_cap,
                as_bytes(spec.stdin),
                buffers,
                on_started=(lambda: on_created(warm.id)) if on_created else (lambda: None),
                on_timeout=lambda: quietly(self.conn.call(lambda: self.conn.api.kill(warm.id))),
            )
            if not done.started:
                logger.info("pooled container %s did not start the run (%s): running cold", warm.id[:12], done.failure)
                return None
            self.runner.runs += 1
            exit_code = done.exit_code
            oom = False
            if exit_code in (137, None) and not done.timed_out:  # the runner lingers: the counters are still there
                oom = await self._oom_killed(warm.id)
                exit_code = 137 if oom else exit_code
        finally:
            channel.close()
            self.live.pop(warm.id, None)
            self.leftovers.in_use.discard(warm.id)
            self.leftovers.spawn_cleanup(self.leftovers.remove(warm.id))
        out, err = buffers
        return RunResult(
            id=warm.id,
            exit_code=exit_code,
            stdout=out.text(),
            stderr=err.text(),
            timed_out=done.timed_out,
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
        """Create and start a pooled container for `spec`'s key (never pulls: an unknown image is not pooled).

        With the runner, the container's command is the runner and the pool keeps its connection; a runner
        that does not answer idles instead, and its container takes its run by exec."""
        await self.containers.detect()
        if not await self.images.poolable(spec.image):
            raise InvalidParams(f"image {spec.image} has an entrypoint")
        name = f"pool-{secrets.token_hex(5)}"
        full = full_name(self.instance, spec.agent, name)
        folder = self.runner.folder() if self.runner.usable else None
        self.leftovers.in_use.add(full)  # ours while it is made (see made_here); the pool holds it from the return on
        try:
            cid = await self.containers.create(
                spec,
                kind=Kind.POOL,
                name=name,
                command=RUNNER_COMMAND if folder else IDLE_COMMAND,
                pull=False,
                runner_dir=str(folder.path) if folder else None,
            )
            try:
                await self.conn.call(lambda: self.conn.api.start(cid))
                usable = folder is None or await self._connect_runner(folder, cid)
            except BaseException:
                self.leftovers.spawn_cleanup(self.leftovers.remove(cid))
                raise
        finally:
            self.leftovers.in_use.discard(full)
            if folder is not None:
                self.runner.done(folder)
        if not usable:  # the runner could not even start here: made again without it
            self.leftovers.spawn_cleanup(self.leftovers.remove(cid))
            return await self._create_idle(spec)
        return Warm(cid)

    async def _connect_runner(self, folder: Folder, cid: str) -> bool:
        """Keep the runner's connection for the run. Without one (it never answered), pooled containers are made
        without the runner from now on, and this one takes its run by exec if it runs (False if it does not)."""
        try:
            self._channels[cid] = await folder.accept(cid)
            return True
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
            problem = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        state = (await self.conn.call(lambda: self.conn.api.inspect_container(cid)))["State"]
        self.runner.disable(f"the runner of a pooled container did not answer ({problem}; container {state['Status']})")
        return bool(state.get("Running"))

    async def _remove_idle(self, cid: str) -> None:
        """A ready pooled container the pool lets go: its runner first (it exits, and so does its container)."""
        channel = self._channels.pop(cid, None)
        if channel is not None:
            channel.close()
        await self.leftovers.remove(cid)

    def forget_runners(self) -> None:
        """After a reconcile: the connections of containers the pool no longer holds (the engine removed them)."""
        for cid in [c for c in self._channels if not self.pool.holds(c)]:
            self._channels.pop(cid).close()
        self.runner.remove_leftovers()


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
