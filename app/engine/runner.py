"""The runner path of a pooled run: one local socket round trip instead of three engine calls.

A pooled container made for the runner starts `runner/berth-runner` (a static binary, so it needs
nothing from the image) as its command under `init`. Before the container is created, Berth makes a
private host folder (0700) holding a copy of the binary and a listening Unix socket, and mounts it
read-only at `/.berth` in that one container only. The runner connects and says hello; Berth checks
the peer's user, and then unlinks the socket, the copy and the folder, so nothing of it is left on
the host and nothing else can ever connect. The connection waits in the pool with its container.

A run sends argv, env, workdir, timeout, output cap and stdin once, and reads the output frames and
the exit status (see the protocol in runner/berth-runner.c). The runner is an ordinary process of
the container: same user, capabilities, network, limits. Whatever a run writes is only data for its
own result: frames are bounded, the output capped, and the timeout is enforced here too (the
container is killed a little after the runner should have done it).

This module does no engine calls; `Runs` decides when to use it and removes the container after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import struct
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from app.capped import CappedBuffer

logger = logging.getLogger(__name__)

MOUNT = "/.berth"  # where the folder appears in the container (read-only)
COMMAND = [f"{MOUNT}/runner", f"{MOUNT}/s"]
BINARY_NAME = "berth-runner"
HELLO, STDOUT, STDERR, EXIT, FAILED, STARTED = range(6)
PROTOCOL = b"berth-runner 1"
NO_STDIN = (1 << 64) - 1
MAX_SMALL_FRAME = 4096  # hello, exit, failure: anything longer is not the runner speaking
CHUNK = 65536
CONNECT_TIMEOUT_S = 10.0  # from the container's start to the runner's hello
GRACE_S = 3.0  # past a run's timeout, Berth kills the container itself

ROOT = Path(__file__).resolve().parents[2]


def find_binary() -> Path | None:
    """The runner binary built at set-up (`scripts/build-images`): `BERTH_RUNNER_BIN`, else runner/ in the tree."""
    explicit = os.environ.get("BERTH_RUNNER_BIN")
    path = Path(explicit) if explicit else ROOT / "runner" / BINARY_NAME
    return path if path.is_file() and os.access(path, os.X_OK) else None


def default_base() -> Path:
    """Where the per-container folders are made: private to the user where the platform has such a place."""
    explicit = os.environ.get("BERTH_RUNNER_DIR")
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime)
    return Path(tempfile.gettempdir())


@dataclass
class Outcome:
    """How a run on the runner ended. `started` False: its program never ran (the cold path takes over)."""

    started: bool
    exit_code: int | None = None
    timed_out: bool = False
    failure: str = ""


class Channel:
    """The connection to one runner, waiting for the one run of its container."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=CHUNK * 2)
        channel = cls(reader, writer)
        try:
            kind, payload = await channel._small_frame()
            if kind != HELLO or payload != PROTOCOL:
                raise ConnectionError(f"not a berth runner: {payload[:40]!r}")
        except BaseException:
            channel.close()
            raise
        return channel

    def close(self) -> None:
        """Let go of the runner: it kills whatever is left of its run and exits (so does its container)."""
        self._writer.close()

    async def run(
        self,
        argv: list[str],
        env: dict[str, str],
        workdir: str,
        timeout_s: float,
        cap: int,
        stdin: bytes | None,
        buffers: tuple[CappedBuffer, CappedBuffer],
        *,
        on_started: Callable[[], None],
        on_timeout: Callable[[], Awaitable[None]],
    ) -> Outcome:
        """Send the request and read until the runner reports the end; `buffers` fill as output comes."""
        try:
            request = encode(argv, env, workdir, timeout_s, cap, stdin)
        except (UnicodeEncodeError, ValueError):
            return Outcome(False, failure="argv, env or workdir the runner cannot pass (NUL or bad text)")
        self._writer.write(request)
        if stdin:
            self._writer.write(stdin)
        state = Outcome(False)
        try:
            return await asyncio.wait_for(self._read(state, buffers, on_started), timeout_s + GRACE_S)
        except TimeoutError:
            logger.warning("a runner did not end its run at the timeout: killing its container")
        except ConnectionError as e:  # bad frames: nothing a runner sends; the run's own doing, at worst
            logger.warning("a runner broke its protocol (%s): killing its container", e)
            state.exit_code = None
            await on_timeout()
            return state
        state.timed_out = True
        state.exit_code = 137
        await on_timeout()
        return state

    async def _read(
        self, state: Outcome, buffers: tuple[CappedBuffer, CappedBuffer], on_started: Callable[[], None]
    ) -> Outcome:
        reader = self._reader
        while True:
            try:
                head = await reader.readexactly(5)
            except (asyncio.IncompleteReadError, ConnectionError):
                # The runner is gone without a word: its container was killed or removed (or OOM took it).
                if not state.started:
                    state.failure = "the pooled container went away before the run started"
                return state
            kind, size = head[0], int.from_bytes(head[1:5], "big")
            if kind in (STDOUT, STDERR):
                buf = buffers[0] if kind == STDOUT else buffers[1]
                while size:
                    chunk = await reader.readexactly(min(size, CHUNK))
                    size -= len(chunk)
                    buf.add(chunk)
                continue
            if size > MAX_SMALL_FRAME:
                raise ConnectionError(f"frame {kind} of {size} bytes")
            payload = await reader.readexactly(size)
            if kind == STARTED and not state.started:
                state.started = True
                on_started()
            elif kind == EXIT and len(payload) == 5:
                state.exit_code = int.from_bytes(payload[:4], "big", signed=True)
                state.timed_out = bool(payload[4])
                return state
            elif kind == FAILED and len(payload) >= 5 and not state.started:
                stage, err = payload[0], int.from_bytes(payload[1:5], "big")
                state.failure = f"{payload[5:].decode(errors='replace')} failed: {os.strerror(err)} (stage {stage})"
                return state
            else:
                raise ConnectionError(f"unexpected frame {kind}")

    async def _small_frame(self) -> tuple[int, bytes]:
        head = await self._reader.readexactly(5)
        size = int.from_bytes(head[1:5], "big")
        if size > MAX_SMALL_FRAME:
            raise ConnectionError(f"frame of {size} bytes")
        return head[0], await self._reader.readexactly(size)


def encode(
    argv: list[str], env: dict[str, str], workdir: str, timeout_s: float, cap: int, stdin: bytes | None
) -> bytes:
    """The request the runner reads (runner/berth-runner.c); stdin follows it on the socket."""
    parts = [*argv, *(f"{k}={v}" for k, v in env.items()), workdir]
    if any("\0" in p for p in parts):
        raise ValueError("NUL in an argument")
    blob = b"".join(p.encode() + b"\0" for p in argv)
    env_blob = b"".join(f"{k}={v}".encode() + b"\0" for k, v in env.items())
    timeout_ms = min(max(1, int(timeout_s * 1000)), 0xFFFFFFFF)
    body = (
        struct.pack(">IIQI", timeout_ms, min(cap, 0xFFFFFFFE), NO_STDIN if stdin is None else len(stdin), len(argv))
        + blob
        + struct.pack(">I", len(env))
        + env_blob
        + workdir.encode()
        + b"\0"
    )
    return b"BRQ1" + struct.pack(">I", len(body)) + body


class Folder:
    """The host folder of one pooled container: a copy of the runner and Berth's listening socket (0700)."""

    def __init__(self, base: Path, prefix: str, binary: Path) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
        self._listener: socket.socket | None = None
        try:
            target = self.path / "runner"
            try:
                os.link(binary, target)  # safe to share: the folder is mounted read-only
            except OSError:
                shutil.copyfile(binary, target)
                os.chmod(target, 0o555)
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            self._listener.bind(str(self.path / "s"))
            self._listener.listen(1)
            self._listener.setblocking(False)
        except BaseException:
            self.remove()
            raise

    async def accept(self, cid: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Channel:
        """The runner's connection, once it said hello. The peer must be a process of container `cid`
        (its cgroup names it): the folder is private, and this makes sure of it."""
        assert self._listener is not None
        loop = asyncio.get_running_loop()
        sock, _ = await asyncio.wait_for(loop.sock_accept(self._listener), timeout_s)
        try:
            self.remove()  # one connection ever: nobody can connect after the runner
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid, _uid, _gid = struct.unpack("3i", creds)
            if not in_container(pid, cid):
                raise ConnectionError(f"the runner's peer (pid {pid}) is not a process of container {cid[:12]}")
            return await asyncio.wait_for(Channel.open(sock), timeout_s)
        except BaseException:
            sock.close()
            raise

    def remove(self) -> None:
        """Close the listener and delete the folder (the container keeps its mount of the deleted folder)."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        shutil.rmtree(self.path, ignore_errors=True)


def in_container(pid: int, cid: str) -> bool:
    """Whether process `pid` (as this process sees it) belongs to container `cid`: its cgroup path names it."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return pid > 0 and cid in f.read()
    except OSError:
        return False


class Runner:
    """Whether pooled containers use the runner, and the folders they are made with."""

    def __init__(self, instance: str, *, enabled: bool, local: bool, base: Path | None = None) -> None:
        self.binary = find_binary() if enabled else None
        self.base = base or default_base()
        self.prefix = f"berth-{instance}-"
        self.why_not = ""
        if not enabled:
            self.why_not = "the runner is turned off (BERTH_RUNNER=0)"
        elif self.binary is None:
            self.why_not = "the runner binary is not built (scripts/build-images builds it)"
        elif not local:
            self.why_not = "the engine is not on this machine, so it cannot mount a folder of this one"
        self.runs = 0  # runs it served (tests, benchmarks)
        self._making: set[Path] = set()

    @property
    def usable(self) -> bool:
        return not self.why_not

    def disable(self, why: str) -> None:
        if not self.why_not:
            self.why_not = why
            logger.warning("pooled runs use docker exec from now on: %s", why)

    def folder(self) -> Folder:
        assert self.binary is not None
        folder = Folder(self.base, self.prefix, self.binary)
        self._making.add(folder.path)
        return folder

    def done(self, folder: Folder) -> None:
        folder.remove()
        self._making.discard(folder.path)

    def remove_leftovers(self) -> int:
        """Folders a killed Berth of this instance left (a container being made at that moment)."""
        count = 0
        with contextlib.suppress(OSError):
            for path in self.base.glob(f"{self.prefix}*"):
                if path not in self._making and path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                    count += 1
        return count
