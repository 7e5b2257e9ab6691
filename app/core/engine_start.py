"""Start Docker from the engine-down banner: how the engine could be started here, and doing it.

`plan_start` is a pure function of the facts of this machine (`StartFacts`: platform, effective user,
which programs exist, whether systemd runs, the engine's address), so every case is testable without
touching the machine: `systemctl start docker` as root under systemd, `pkexec systemctl start docker`
for another user (polkit asks for the password), `systemctl --user start docker` for a rootless engine,
`service docker start` as root without systemd, `open -a Docker` on macOS. Where none applies, or the
engine is remote (tcp://, ssh://), the plan says why and what to do instead, and nothing is run.

`EngineStarter.start` runs the plan's command as the person's action (audited, actor "you") through an
injected runner (the host runner in the app, a fake in tests) without blocking the loop, then asks the
application to reconnect. A failure comes back as a `StartResult` with the command's stderr tail and
what to do, never as an exception.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass

from app.errors import BerthError, Conflict
from app.host import ShellResult

logger = logging.getLogger(__name__)

# Programs whose presence decides the plan (looked up on PATH).
PROGRAMS = ("systemctl", "pkexec", "service", "open", "colima")
SYSTEM_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
START_TIMEOUT_S = 120.0  # pkexec waits while the person types a password
SETTLE_S = 20.0  # after the command: how long the reconnect is retried before Berth's own retries take over
OUTPUT_TAIL_LINES = 6
OUTPUT_TAIL_CHARS = 600
SELF_START = "start Docker yourself, then press Retry now"

Runner = Callable[[Sequence[str], float], Awaitable[ShellResult]]


@dataclass(frozen=True)
class StartFacts:
    """What decides how the engine could be started here."""

    platform: str  # sys.platform: "linux", "darwin", "win32"
    euid: int | None  # None where there are no Unix users
    programs: Collection[str]  # those of PROGRAMS found on PATH
    endpoint: str  # the engine's address, e.g. unix:///var/run/docker.sock
    systemd: bool = False  # systemd is the init system (/run/systemd/system exists)
    runtime_dir: str = ""  # $XDG_RUNTIME_DIR: a rootless engine's socket lives there
    home: str = ""


@dataclass(frozen=True)
class StartPlan:
    """What Start Docker would run (`argv`), or why it cannot (`argv` empty). `reason` is the button's tooltip:
    what it does, or why not and what to do instead."""

    argv: tuple[str, ...]
    reason: str

    @property
    def possible(self) -> bool:
        return bool(self.argv)

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class StartResult:
    """How Start Docker went: `ok` if the command succeeded, `answered` if the engine answers now."""

    command: str
    ok: bool
    answered: bool
    message: str  # one sentence for the person
    output: str = ""  # on failure: the tail of what the command said (stderr, else stdout)
    hint: str = ""  # on failure: what to do


def _socket_path(endpoint: str) -> str | None:
    """The socket's path for a unix:// endpoint (also the default, empty one), else None."""
    if not endpoint:
        return SYSTEM_SOCKETS[0]
    if endpoint.startswith("unix://"):
        path = endpoint.removeprefix("unix://")
        return path if path.startswith("/") else "/" + path
    return None


def _remote(endpoint: str) -> StartPlan:
    return StartPlan(
        (),
        f"Berth uses the engine at {endpoint}, which Berth cannot start from here: start it where it runs, "
        "or choose another engine with Change engine…",
    )


def _run(argv: tuple[str, ...], note: str = "") -> StartPlan:
    return StartPlan(argv, f"Runs `{shlex.join(argv)}`" + (f" ({note})" if note else ""))


def plan_start(facts: StartFacts) -> StartPlan:
    """How the engine at `facts.endpoint` could be started from here, or why not."""
    endpoint = facts.endpoint
    path = _socket_path(endpoint)
    if endpoint.startswith("npipe://") or facts.platform == "win32":
        return StartPlan((), "Start Docker Desktop from the Start menu, then press Retry now")
    if path is None:
        return _remote(endpoint)
    has = set(facts.programs).__contains__
    if facts.platform == "darwin":
        if "/.colima/" in path:
            if has("colima"):
                return _run(("colima", "start"))
            return StartPlan((), f"Berth uses Colima's engine ({path}): run `colima start` in a terminal")
        if has("open"):
            return _run(("open", "-a", "Docker"), "Docker Desktop")
        return StartPlan((), "Start Docker Desktop from Applications, then press Retry now")
    if not facts.platform.startswith("linux"):
        return StartPlan((), f"Berth does not know how to start Docker on {facts.platform}: {SELF_START}")
    user_dirs = [d for d in (facts.runtime_dir, f"/run/user/{facts.euid}" if facts.euid is not None else "") if d]
    rootless = any(path.startswith(d.rstrip("/") + "/") for d in user_dirs)
    desktop = bool(facts.home) and path.startswith(facts.home.rstrip("/") + "/.docker/desktop/")
    if rootless or desktop:
        unit = "docker-desktop" if desktop else "docker"
        what = "Docker Desktop" if desktop else "your rootless Docker"
        if facts.systemd and has("systemctl"):
            return _run(("systemctl", "--user", "start", unit), what)
        how = "start Docker Desktop from your applications" if desktop else "run `dockerd-rootless.sh` in a terminal"
        return StartPlan((), f"No systemd user manager answers here: {how}, then press Retry now")
    if path not in SYSTEM_SOCKETS:
        return StartPlan(
            (),
            f"Berth uses the socket {path}, which no service Berth knows provides: start the engine that listens "
            "there, or choose another engine with Change engine…",
        )
    root = facts.euid == 0
    if facts.systemd and has("systemctl"):
        if root:
            return _run(("systemctl", "start", "docker"))
        if has("pkexec"):
            return _run(("pkexec", "systemctl", "start", "docker"), "your system asks for an administrator password")
        return StartPlan(
            (), "Starting the system's Docker needs an administrator: run `sudo systemctl start docker` in a terminal"
        )
    if root and has("service"):
        return _run(("service", "docker", "start"))
    if root:
        return StartPlan((), "No service manager here: start the engine yourself (`dockerd &`), then press Retry now")
    return StartPlan(
        (), "Starting the system's Docker needs an administrator: run `sudo service docker start` in a terminal"
    )


def gather_facts(endpoint: str) -> StartFacts:
    """The facts of this machine and user (a few file look-ups: cheap enough for the GUI thread)."""
    geteuid = getattr(os, "geteuid", None)
    return StartFacts(
        platform=sys.platform,
        euid=geteuid() if geteuid is not None else None,
        programs=frozenset(p for p in PROGRAMS if shutil.which(p)),
        endpoint=endpoint,
        systemd=os.path.isdir("/run/systemd/system"),
        runtime_dir=os.environ.get("XDG_RUNTIME_DIR", ""),
        home=os.path.expanduser("~"),
    )


def output_tail(result: ShellResult) -> str:
    """The last lines of what a failed command said: stderr, else stdout."""
    text = (result.stderr.strip() or result.stdout.strip()).replace("\r", "")
    tail = "\n".join(text.splitlines()[-OUTPUT_TAIL_LINES:])
    return tail if len(tail) <= OUTPUT_TAIL_CHARS else "…" + tail[-OUTPUT_TAIL_CHARS:]


def failure_hint(argv: Sequence[str], exit_code: int | None) -> str:
    """What to do when the start command failed."""
    program = argv[0] if argv else ""
    if program == "pkexec":
        if exit_code == 126:  # the password dialog was dismissed, or polkit said no
            return "the password was not given: press Start Docker again, or run `sudo systemctl start docker`"
        return "run `sudo systemctl start docker` in a terminal; `journalctl -u docker` tells why it fails"
    if program == "systemctl" and "--user" in argv:
        return "`systemctl --user status docker` and `journalctl --user -u docker` tell why; " + SELF_START
    if program == "systemctl":
        return "`systemctl status docker` and `journalctl -u docker` tell why; " + SELF_START
    if program == "service":
        return "the engine's log (/var/log/docker.log) tells why; " + SELF_START
    if program == "open":
        return "install Docker Desktop (docker.com), or start it from Applications, then press Retry now"
    if program == "colima":
        return "`colima status` tells why; " + SELF_START
    return SELF_START


Audit = Callable[[Sequence[str]], Awaitable[None]]


class EngineStarter:
    """Start Docker as the person asked: plan (cached facts), audit, run, reconnect."""

    def __init__(
        self,
        endpoint: str,
        *,
        run: Runner,
        audit: Audit,
        reconnect: Callable[[], Awaitable[bool]],
        facts: StartFacts | None = None,
        timeout_s: float = START_TIMEOUT_S,
        settle_s: float = SETTLE_S,
    ) -> None:
        self.endpoint = endpoint
        self.run = run  # tests put a fake here: nothing is started
        self.facts = facts
        self.timeout_s = timeout_s
        self.settle_s = settle_s
        self._audit = audit
        self._reconnect = reconnect
        self.busy = False

    def plan(self) -> StartPlan:
        if self.facts is None:
            self.facts = gather_facts(self.endpoint)
        return plan_start(self.facts)

    async def start(self) -> StartResult:
        """Run the plan's command, then reconnect. Conflict while a start is under way, BerthError if the plan
        has no command (the banner's button is disabled then: a guard)."""
        if self.busy:
            raise Conflict("Docker is being started already")
        plan = self.plan()
        if not plan.possible:
            raise BerthError("Berth cannot start Docker here", hint=plan.reason)
        self.busy = True
        try:
            return await self._start(plan)
        finally:
            self.busy = False

    async def _start(self, plan: StartPlan) -> StartResult:
        command = plan.command
        await self._audit(plan.argv)
        logger.info("starting the Docker engine: %s", command)
        try:
            result = await self.run(plan.argv, self.timeout_s)
        except (OSError, BerthError) as e:
            logger.warning("%s could not run: %s", command, e)
            return StartResult(command, False, False, f"`{command}` could not run", str(e), SELF_START)
        if result.timed_out:
            logger.warning("%s did not finish in %.0f s", command, self.timeout_s)
            return StartResult(
                command,
                False,
                False,
                f"`{command}` did not finish within {self.timeout_s:.0f} s",
                output_tail(result),
                SELF_START,
            )
        if result.exit_code != 0:
            tail = output_tail(result)
            logger.warning("%s failed (exit %s): %s", command, result.exit_code, tail)
            hint = failure_hint(plan.argv, result.exit_code)
            return StartResult(command, False, False, f"`{command}` failed (exit {result.exit_code})", tail, hint)
        if await self._settle():
            return StartResult(command, True, True, "Docker started: the engine answers.")
        return StartResult(
            command, True, False, "Docker is starting; Berth connects by itself as soon as the engine answers."
        )

    async def _settle(self) -> bool:
        """Reconnect now, then a few more times while the engine comes up (Docker Desktop takes a while)."""
        deadline = time.monotonic() + self.settle_s
        delay = 0.25
        while True:
            try:
                if await self._reconnect():
                    return True
            except Exception as e:  # the reconnect loop of the application goes on regardless
                logger.info("reconnecting after the start failed: %r", e)
            if time.monotonic() + delay > deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)


__all__ = [
    "EngineStarter",
    "StartFacts",
    "StartPlan",
    "StartResult",
    "failure_hint",
    "gather_facts",
    "output_tail",
    "plan_start",
]
