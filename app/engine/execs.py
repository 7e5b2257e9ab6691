"""One exec in a running container: the sequence that a pooled run and `Engine.exec` share.

Create and start the exec (one call), feed its stdin, read its output (capped) until it ends or the
timeout, close the stream, then ask the engine how it ended. What to do at the timeout differs: a pooled
run kills its whole container, an exec in a service kills only its own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from app.engine.connection import Connection
from app.engine.containers import Containers
from app.engine.policy import argv_of
from app.engine.streams import CappedBuffer, as_bytes, raw_socket, read_multiplexed, send_stdin
from app.errors import Conflict
from app.model import OUTPUT_CAP, RunResult

logger = logging.getLogger(__name__)


@dataclass
class ExecOutcome:
    """How an exec ended: the engine's `exec_inspect` and what it wrote (kept also when it timed out)."""

    cid: str
    state: dict[str, Any]
    out: CappedBuffer
    err: CappedBuffer
    timed_out: bool

    def result(self, exit_code: int | None, started: float, *, oom_killed: bool = False) -> RunResult:
        return RunResult(
            id=self.cid,
            exit_code=exit_code,
            stdout=self.out.text(),
            stderr=self.err.text(),
            timed_out=self.timed_out,
            oom_killed=oom_killed,
            duration_ms=int((time.monotonic() - started) * 1000),
            truncated=self.out.truncated or self.err.truncated,
        )


class ExecSession:
    """An exec that has started: `finish` it (always, so its stream is closed)."""

    def __init__(self, conn: Connection, cid: str, exec_id: str, sock: Any) -> None:
        self.conn = conn
        self.cid = cid
        self.exec_id = exec_id
        self._sock = sock

    @classmethod
    async def start(
        cls,
        conn: Connection,
        cid: str,
        argv: list[str],
        *,
        stdin: bool,
        env: dict[str, str] | None,
        workdir: str | None,
        user: str,
    ) -> ExecSession:
        """Create and start `argv` in container `cid`, in one call; with `stdin`, its stdin is open."""

        def create_and_start() -> tuple[str, Any]:
            created = conn.api.exec_create(cid, argv, stdin=stdin, environment=env or None, workdir=workdir, user=user)
            exec_id = created["Id"]
            return exec_id, conn.api.exec_start(exec_id, socket=True)

        exec_id, sock = await conn.call(create_and_start)
        return cls(conn, cid, exec_id, sock)

    async def finish(
        self,
        stdin: bytes | None,
        timeout_s: float,
        output_cap: int,
        on_timeout: Callable[[], Awaitable[None]],
        buffers: tuple[CappedBuffer, CappedBuffer] | None = None,
    ) -> ExecOutcome:
        """Send `stdin`, read the output until the process ends or `timeout_s` (then `on_timeout` kills it).

        `buffers`: (stdout, stderr) to fill, for a caller that shows the output while the process runs.
        """
        out, err = buffers or (CappedBuffer(output_cap), CappedBuffer(output_cap))
        timed_out = False
        # Stdin goes in while the output is read: a process that writes as it reads (`cat`) would otherwise
        # fill its output pipe and stop reading, and both sides would wait for ever.
        sending = asyncio.ensure_future(self.conn.call(send_stdin, self._sock, stdin)) if stdin is not None else None
        try:
            await asyncio.wait_for(self.conn.call(read_multiplexed, self._sock, out, err), timeout_s)
        except TimeoutError:
            timed_out = True
            await on_timeout()
        finally:
            if sending is not None:
                if not sending.done():  # the process ended without reading all of it: wake the sender
                    with contextlib.suppress(OSError):
                        raw_socket(self._sock).shutdown(socket.SHUT_RDWR)
                await asyncio.gather(sending, return_exceptions=True)
            await self.conn.call(raw_socket(self._sock).close)
        state = await self.conn.call(lambda: self.conn.api.exec_inspect(self.exec_id))
        return ExecOutcome(self.cid, state, out, err, timed_out)

    async def kill_process(self) -> None:
        """Kill a timed-out exec's process (its host PID is visible when the engine is local)."""
        pid = (await self.conn.call(lambda: self.conn.api.exec_inspect(self.exec_id))).get("Pid")
        if pid and self.conn.endpoint.startswith("unix://"):
            try:
                os.kill(int(pid), signal.SIGKILL)
                return
            except (ProcessLookupError, PermissionError) as e:
                logger.warning("could not kill timed-out exec process %s: %s", pid, e)


async def exec_in(
    conn: Connection,
    containers: Containers,
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
    """Run a command in a running container of this Berth; at the timeout its process is killed."""
    argv = argv_of(command)
    started = time.monotonic()
    data = as_bytes(stdin)
    info = await containers.inspect(container)
    if info.status != "running":
        raise Conflict(f"container {info.name} is {info.status}, not running: start it first")
    session = await ExecSession.start(
        conn, info.id, argv, stdin=data is not None, env=env, workdir=workdir, user=user or ""
    )
    done = await session.finish(data, timeout_s, output_cap, on_timeout=session.kill_process)
    code = done.state.get("ExitCode")
    still_running = done.timed_out and done.state.get("Running")
    return done.result(None if code is None or still_running else int(code), started)
