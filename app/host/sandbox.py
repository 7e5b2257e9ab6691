"""The sandbox for host commands: bubblewrap's arguments, built in one place, and whether it works here.

A sandboxed command runs as the person's user with:
- the whole file system read-only (`--ro-bind / /`), a minimal /dev, a /proc of its own;
- one writable folder, its working folder, bound from an open directory descriptor (`--bind-fd`), so a
  folder swapped for a symlink after it was checked cannot redirect the bind;
- a private, empty /tmp and /run (no sockets of the host: not Docker's, not the session's D-Bus or
  keyring, not X11), and empty stand-ins for the hidden folders (Berth's own, the person's secrets);
- no network at all (a network namespace of its own: not even 127.0.0.1), its own PID, IPC, UTS and
  cgroup namespaces, a new session (no terminal to inject keystrokes into), no capabilities and no
  way to make further user namespaces (which is what keeps a root user from unmounting what hides);
- an environment rebuilt from a short allowlist.

`bwrap_argv` is the one function that builds the arguments; each rule above has a test.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

BWRAP = "bwrap"
# Variables a sandboxed command gets from Berth's environment; nothing else (tokens, DOCKER_HOST,
# SSH_AUTH_SOCK, DBUS_SESSION_BUS_ADDRESS...) reaches it.
ENV_ALLOWLIST = ("PATH", "HOME", "LANG", "TERM", "USER", "LOGNAME", "TZ")
ENV_PREFIX_ALLOWLIST = ("LC_",)
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
# Folders whose whole content is replaced by an empty one (besides the hidden folders given): sockets live here.
PRIVATE_DIRS = ("/tmp", "/run", "/var/run", "/var/tmp", "/dev/shm")


@dataclass(frozen=True)
class SandboxStatus:
    """Whether host commands can be sandboxed here (API.md `system.info.host_sandbox`)."""

    available: bool
    mechanism: str | None
    reason: str | None = None
    program: str | None = None  # the bwrap found, when available

    def to_json(self) -> dict[str, Any]:
        return {"available": self.available, "mechanism": self.mechanism, "reason": self.reason}


def sandbox_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The sandboxed command's environment: the allowlisted variables of `environ`, and a PATH."""
    env = {k: v for k, v in environ.items() if k in ENV_ALLOWLIST or k.startswith(ENV_PREFIX_ALLOWLIST)}
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def bwrap_argv(
    command: str,
    cwd: str,
    cwd_fd: int,
    *,
    hidden: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    bwrap: str = BWRAP,
    shell: str = "/bin/sh",
) -> list[str]:
    """The bubblewrap command line that runs `shell -c command` sandboxed, writable only in `cwd`.

    `cwd` is the real (symlink-free) path of the working folder and `cwd_fd` an open descriptor of it
    (the caller passes it to the child). `hidden` are folders or files shown empty inside, besides
    the private /tmp, /run and the like. A hidden folder that holds `cwd` is hidden first and `cwd`
    bound into it (a workspace inside Berth's hidden data folder, a folder under /tmp); every other one
    is hidden on top of the bind, so a working folder that holds a hidden one (a home folder holding
    ~/.ssh) still hides it.
    """
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    private = [d for d in PRIVATE_DIRS if os.path.isdir(d) and not os.path.islink(d)]
    present = list(private)
    for h in sorted({os.path.realpath(h) for h in hidden if os.path.lexists(h)}, key=len):
        # Within a folder already hidden it is gone with it -- unless it is inside the working folder, which
        # is bound back on top of that hidden folder: then it must be hidden again, after the bind.
        if h != "/" and (_inside(h, cwd) or not any(_inside(h, p) for p in present)):
            present.append(h)
    holding = [h for h in present if _inside(cwd, h)]
    others = [h for h in present if not _inside(cwd, h)]
    for h in sorted(holding, key=len):
        argv += _hide(h)
    argv += ["--bind-fd", str(cwd_fd), cwd]
    for h in sorted(others, key=len):
        argv += _hide(h)
    argv += [
        "--chdir",
        cwd,
        "--unshare-all",  # network, PID, IPC, UTS, cgroup (and user, below)
        "--unshare-user",
        "--disable-userns",
        "--cap-drop",
        "ALL",
        "--new-session",
        "--die-with-parent",
        "--clearenv",
    ]
    for key, value in sorted(sandbox_env(os.environ if env is None else env).items()):
        argv += ["--setenv", key, value]
    argv += ["--", shell, "-c", command]
    return argv


def _hide(path: str) -> list[str]:
    """An empty folder in place of a folder, /dev/null in place of anything else."""
    if os.path.isdir(path):
        return ["--tmpfs", path]
    return ["--ro-bind", "/dev/null", path]


def detect() -> SandboxStatus:
    """Can bubblewrap sandbox a command here? Checked once per program by running `true` in the full sandbox.

    `BERTH_BWRAP` names another bwrap (packagers; tests point it at a missing one to see Berth without a
    sandbox)."""
    return _detect(os.environ.get("BERTH_BWRAP") or BWRAP)


@functools.lru_cache(maxsize=4)
def _detect(bwrap: str) -> SandboxStatus:
    if not sys.platform.startswith("linux"):
        return SandboxStatus(False, None, f"no sandbox for host commands on {sys.platform} yet (Linux: bubblewrap)")
    found = shutil.which(bwrap)
    if found is None:
        return SandboxStatus(
            False,
            None,
            "bubblewrap is not installed: install the package `bubblewrap` (make run does on Debian)",
        )
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        probe = subprocess.run(
            bwrap_argv("true", "/tmp", fd, bwrap=found, env={"PATH": DEFAULT_PATH}),
            pass_fds=(fd,),
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return SandboxStatus(False, None, f"bubblewrap could not run: {e}")
    finally:
        os.close(fd)
    if probe.returncode != 0:
        detail = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        return SandboxStatus(
            False,
            None,
            f"bubblewrap does not work here ({detail}); unprivileged user namespaces may be switched off",
        )
    return SandboxStatus(True, "bubblewrap", program=found)


def real_folder(path: str | Path) -> str:
    """The real path of a folder (symlinks resolved), for comparing folders."""
    return os.path.realpath(os.fspath(path))
