"""Running one approved command on the host: ``/bin/sh -c COMMAND`` in its own process group.

The command runs with the person's rights, so it must never outlive what Berth reports: at the
timeout, on cancellation, and also once the shell itself has exited, the whole process group is
killed with SIGKILL. That last rule means a command cannot leave background processes behind
(``server &`` is stopped when the shell ends); a process that leaves the group (``setsid``) is out of
reach, as with any process-group based runner. stdout and stderr are read concurrently and each kept
up to a cap; reading continues past the cap (discarding) so the command never blocks on a full pipe.
The environment is Berth's own (the person's), stdin is /dev/null.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from app.capped import CappedBuffer
from app.errors import InvalidParams
from app.model import OUTPUT_CAP

logger = logging.getLogger(__name__)

SHELL = "/bin/sh"
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ShellResult:
    """The outcome of a host command (API.md `shell.request` `result`).

    ``exit_code`` is None when the command was killed at its timeout or its outcome is unknown; a
    command killed by another signal reports 128 + the signal number, as a shell would.
    """

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    duration_ms: int = 0
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "timed_out": self.timed_out,
            "duration_ms": self.duration_ms,
            "truncated": self.truncated,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShellResult:
        code = data.get("exit_code")
        return cls(
            exit_code=None if code is None else int(code),
            stdout=str(data.get("stdout", "")),
            stderr=str(data.get("stderr", "")),
            timed_out=bool(data.get("timed_out", False)),
            duration_ms=int(data.get("duration_ms", 0)),
            truncated=bool(data.get("truncated", False)),
        )


async def _pump(stream: asyncio.StreamReader | None, buf: CappedBuffer) -> None:
    """Read a pipe to its end, keeping what fits in `buf` and discarding the rest."""
    if stream is None:
        return
    while chunk := await stream.read(_READ_CHUNK):
        buf.add(chunk)


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Resolves `exited` when the shell exits; Process.wait() would also wait for every pipe to close."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=_READ_CHUNK, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


def _kill_group(pid: int) -> None:
    """SIGKILL every process in the group led by `pid` (the group outlives its leader)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone (macOS answers EPERM when only zombies are left)


class ShellRunner:
    """Runs host commands; `drain_grace_s` bounds how long output is read after the shell has exited."""

    def __init__(self, *, shell: str = SHELL, drain_grace_s: float = 0.5) -> None:
        self.shell = shell
        self.drain_grace_s = drain_grace_s

    async def run(self, command: str, cwd: str, timeout_s: float, output_cap: int = OUTPUT_CAP) -> ShellResult:
        """Run ``command`` in ``cwd`` and return its output; never raises for what the command does."""
        if not await asyncio.to_thread(os.path.isdir, cwd):
            raise InvalidParams(f"cwd: {cwd!r} is not an existing directory")
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: _Protocol(loop),
            self.shell,
            "-c",
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            start_new_session=True,  # its own session and process group, so killpg reaches every child
        )
        pid = transport.get_pid()
        out, err = CappedBuffer(output_cap), CappedBuffer(output_cap)
        readers = [asyncio.create_task(_pump(protocol.stdout, out)), asyncio.create_task(_pump(protocol.stderr, err))]
        timed_out = False
        try:
            try:
                await asyncio.wait_for(asyncio.shield(protocol.exited), timeout_s)
            except TimeoutError:
                timed_out = True
                _kill_group(pid)
                await protocol.exited
            # Background children may hold the pipes open: drain briefly, kill the group, stop reading.
            _, pending = await asyncio.wait(readers, timeout=self.drain_grace_s)
            _kill_group(pid)
            if pending:
                _, pending = await asyncio.wait(pending, timeout=self.drain_grace_s)
                for task in pending:
                    task.cancel()
        except BaseException:
            _kill_group(pid)
            for task in readers:
                task.cancel()
            raise
        finally:
            transport.close()  # closes our ends of the pipes; the child watcher still reaps the shell
        code = transport.get_returncode()
        if timed_out:
            code = None
        elif code is not None and code < 0:
            code = 128 - code
        duration_ms = int((time.monotonic() - started) * 1000)
        if timed_out:
            logger.info("host command timed out after %.1f s; its process group was killed", timeout_s)
        return ShellResult(code, out.text(), err.text(), timed_out, duration_ms, out.truncated or err.truncated)
