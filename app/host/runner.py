"""Running one approved command on the host: ``/bin/sh -c COMMAND``, sandboxed or with full access.

This package is the only code that starts a process on the host. It takes a command, a working
folder, an access level and a timeout, and knows nothing of agents or approvals: the core decides
whether and how a command runs, this runs it.

- ``sandbox``: under bubblewrap (app/host/sandbox.py): read-only file system, writable only in the
  working folder, private /tmp, no network, hidden folders, a rebuilt environment. A sandboxed
  command's processes live in a PID namespace of their own and all die with it.
- ``host``: as the person's user, as if typed in their terminal (the environment is Berth's own,
  minus Berth's variables).

Either way the command must never outlive what Berth reports: at the timeout, on cancellation, and
also once the shell itself has exited, the whole process group is killed with SIGKILL, so a command
cannot leave background processes behind (``server &`` is stopped when the shell ends). stdout and
stderr are read concurrently and each kept up to a cap; reading continues past the cap (discarding)
so the command never blocks on a full pipe. stdin is /dev/null.

The working folder is opened by walking from a trusted root one component at a time without
following symlinks, and the command gets that very folder (by descriptor), not whatever its path
names a moment later.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.capped import CappedBuffer
from app.errors import BerthError, InvalidParams
from app.host.sandbox import SandboxStatus, bwrap_argv, detect
from app.model import OUTPUT_CAP

Access = Literal["sandbox", "host"]
ACCESS_LEVELS: tuple[Access, ...] = ("sandbox", "host")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

logger = logging.getLogger(__name__)

SHELL = "/bin/sh"
_READ_CHUNK = 64 * 1024


class SandboxUnavailable(BerthError):
    """A sandboxed run was asked for where no sandbox works (the core never lets one through; a guard)."""


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


@dataclass(frozen=True)
class Folder:
    """A working folder: `relative` (no `..`) inside `root`, a real folder the caller trusts (the agent's
    workspace, a folder the person granted). Opened without following any symlink below `root`."""

    root: str
    relative: str = "."

    @property
    def path(self) -> str:
        return os.path.normpath(os.path.join(self.root, self.relative))


def open_folder(folder: Folder) -> int:
    """An open descriptor of `folder`, walked from its root with O_NOFOLLOW; InvalidParams if it is not there
    any more or a part of it became a symlink (a container may have swapped it since it was checked)."""
    parts = [p for p in folder.relative.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidParams(f"cwd: {folder.path!r} goes up with '..'")
    try:
        fd = os.open(folder.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise InvalidParams(f"cwd: the folder {folder.root!r} cannot be opened ({e.strerror})") from e
    try:
        for part in parts:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                why = "is a symlink or not a folder" if e.errno in (errno.ELOOP, errno.ENOTDIR) else e.strerror
                raise InvalidParams(f"cwd: {folder.path!r} cannot be used: {part!r} {why}") from e
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


class HostRunner:
    """Runs host commands; `drain_grace_s` bounds how long output is read after the shell has exited.

    `hidden` gives the folders and files a sandboxed command must not see (Berth's own, the person's
    secrets): a list, or a function asked before each run (so a change in Settings applies at once)."""

    def __init__(
        self,
        *,
        shell: str = SHELL,
        drain_grace_s: float = 0.5,
        hidden: Sequence[str] | Callable[[], Sequence[str]] = (),
        sandbox: SandboxStatus | None = None,
    ) -> None:
        self.shell = shell
        self.drain_grace_s = drain_grace_s
        self._hidden = hidden
        self._sandbox = sandbox

    @property
    def hidden(self) -> list[str]:
        return list(self._hidden() if callable(self._hidden) else self._hidden)

    @property
    def sandbox(self) -> SandboxStatus:
        """Whether sandboxed commands can run here (checked once, on first use; blocking)."""
        if self._sandbox is None:
            self._sandbox = detect()
        return self._sandbox

    async def check_sandbox(self) -> SandboxStatus:
        """`sandbox`, without blocking the loop the first time."""
        if self._sandbox is None:
            self._sandbox = await asyncio.to_thread(detect)
        return self._sandbox

    async def run(
        self,
        command: str,
        cwd: Folder | str,
        timeout_s: float,
        output_cap: int = OUTPUT_CAP,
        *,
        access: Access = "host",
    ) -> ShellResult:
        """Run ``command`` in ``cwd`` with ``access`` and return its output; never raises for what the command
        does (InvalidParams for a working folder that cannot be used, BerthError where no sandbox works)."""
        folder = cwd if isinstance(cwd, Folder) else Folder(cwd)
        fd = await asyncio.to_thread(open_folder, folder)
        try:
            if access == "sandbox":
                status = await self.check_sandbox()
                if not status.available:
                    raise SandboxUnavailable(status.reason or "no sandbox works here")
                argv = bwrap_argv(
                    command, folder.path, fd, hidden=self.hidden, shell=self.shell, bwrap=status.program or "bwrap"
                )
                return await self._run(argv, None, fd, timeout_s, output_cap)
            env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
            workdir = f"/proc/self/fd/{fd}" if sys.platform.startswith("linux") else folder.path
            return await self._run([self.shell, "-c", command], workdir, fd, timeout_s, output_cap, env)
        finally:
            os.close(fd)

    async def _run(
        self,
        argv: list[str],
        workdir: str | None,
        fd: int,
        timeout_s: float,
        output_cap: int,
        env: dict[str, str] | None = None,
    ) -> ShellResult:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: _Protocol(loop),
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env=env,
            pass_fds=(fd,),
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
