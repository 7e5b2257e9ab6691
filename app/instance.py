"""One Berth per data dir: an advisory lock on a file in the state folder (no Qt here).

Both `berth serve` and the desktop app hold the lock for as long as they run; the kernel drops it when
the process ends, however it ends, so a crash never leaves a stale lock behind. A second server on the
same data dir would fight the first over its containers, its store and `endpoint.json`, so it is
refused with a message that says who holds the data dir and where it listens.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from app.config import Paths

try:
    import fcntl
except ImportError:  # Windows: no flock; the RPC port is the only guard there
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

LOCK_NAME = "berth.lock"


class InstanceLock:
    """An exclusive, non-blocking `flock` on `<state>/berth.lock`, which also records the holder's pid."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.path: Path = paths.state_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if no other process holds it; True when this process now holds it."""
        if self._fd is not None:
            return True
        self.paths.ensure()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the last descriptor drops the flock
        self._fd = None

    def holder_pid(self) -> int | None:
        """The pid written by the process that holds (or last held) the lock."""
        try:
            return int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None

    def refusal(self) -> str:
        """One line for stderr: who runs on this data dir, where it listens, what to do."""
        pid = self.holder_pid()
        url = running_url(self.paths)
        who = "another Berth" + (f" (pid {pid})" if pid else "")
        where = f", serving {url}" if url else ""
        return (
            f"berth: {who} is already running on {self.paths.data_dir}{where}; "
            "stop it first, or give this one its own --data-dir"
        )

    def __enter__(self) -> InstanceLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def running_url(paths: Paths) -> str | None:
    """The RPC url in `endpoint.json`, if a Berth wrote one (it may have stopped since)."""
    try:
        data = json.loads(paths.endpoint_file.read_text())
    except (OSError, ValueError):
        return None
    url = data.get("url") if isinstance(data, dict) else None
    return url if isinstance(url, str) else None
