"""Open a shell in a running container in the person's own terminal emulator: find it, build its argv.

No process is started here: the window starts the argv (as it opens a browser for a port), after the
owner API has audited it as the person's action. The emulator is found the usual way: `$TERMINAL`
(the person's explicit choice), Debian's `x-terminal-emulator`, then the common ones; on macOS,
Terminal.app through `osascript`. Each emulator takes the command its own way (`-e`, `--`, `-x`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DEFAULT_ENDPOINTS = ("", "unix:///var/run/docker.sock", "unix://var/run/docker.sock")
# A shell that is there: bash where the image has it, else sh.
SHELL = ("sh", "-c", "command -v bash >/dev/null 2>&1 && exec bash || exec sh")

# name -> how it takes a command: the arguments that go before the command's argv
STYLES: dict[str, tuple[str, ...]] = {
    "x-terminal-emulator": ("-e",),
    "gnome-terminal": ("--",),
    "kgx": ("--",),
    "konsole": ("-e",),
    "xfce4-terminal": ("-x",),
    "tilix": ("-e",),
    "mate-terminal": ("-x",),
    "lxterminal": ("-e",),
    "terminator": ("-x",),
    "alacritty": ("-e",),
    "kitty": (),
    "foot": (),
    "wezterm": ("start", "--"),
    "urxvt": ("-e",),
    "st": ("-e",),
    "xterm": ("-e",),
}
SEARCH_ORDER = (
    "x-terminal-emulator",
    "gnome-terminal",
    "konsole",
    "xfce4-terminal",
    "kgx",
    "tilix",
    "mate-terminal",
    "lxterminal",
    "terminator",
    "alacritty",
    "kitty",
    "foot",
    "wezterm",
    "urxvt",
    "xterm",
)


@dataclass(frozen=True)
class Terminal:
    """An emulator found on this machine: its name and path, and the arguments that precede the command."""

    name: str
    path: str
    before: tuple[str, ...]

    def argv(self, command: list[str]) -> list[str]:
        if self.name == "Terminal.app":
            script = shlex.join(command).replace("\\", "\\\\").replace('"', '\\"')
            return [self.path, "-e", f'tell application "Terminal" to do script "{script}"', "-e",
                    'tell application "Terminal" to activate']  # fmt: skip
        return [self.path, *self.before, *command]


Which = Callable[[str, str | None], str | None]


def _which(name: str, path: str | None) -> str | None:
    return shutil.which(name, path=path)


def find_terminal(
    env: Mapping[str, str] | None = None, *, which: Which = _which, platform: str = sys.platform
) -> Terminal | None:
    """The person's terminal emulator, or None when none is found."""
    env = os.environ if env is None else env
    path = env.get("PATH")
    if platform == "darwin":
        osascript = which("osascript", path)
        return Terminal("Terminal.app", osascript, ()) if osascript else None
    chosen = env.get("TERMINAL", "").strip()
    if chosen:
        parts = shlex.split(chosen)
        found = which(parts[0], path) if parts else None
        if found:
            name = os.path.basename(parts[0])
            return Terminal(name, found, (*parts[1:], *STYLES.get(name, ("-e",))))
    for name in SEARCH_ORDER:
        found = which(name, path)
        if found:
            return Terminal(name, found, STYLES[name])
    return None


def docker_exec_argv(docker: str, container_id: str, endpoint: str = "") -> list[str]:
    """`docker exec -it ID sh -c ...` for the engine at `endpoint` (`-H` only where it is not the default)."""
    host = [] if endpoint in DEFAULT_ENDPOINTS else ["-H", endpoint]
    return [docker, *host, "exec", "-it", container_id, *SHELL]


@dataclass(frozen=True)
class TerminalPlan:
    """What Open terminal would do: the argv, or why it cannot (then `argv` is empty)."""

    argv: list[str]
    terminal: str = ""
    reason: str = ""

    @property
    def possible(self) -> bool:
        return bool(self.argv)


def plan_terminal(
    container_id: str,
    endpoint: str,
    env: Mapping[str, str] | None = None,
    *,
    which: Which = _which,
    platform: str = sys.platform,
) -> TerminalPlan:
    env = os.environ if env is None else env
    term = find_terminal(env, which=which, platform=platform)
    if term is None:
        return TerminalPlan([], reason="no terminal emulator found (set $TERMINAL, or install xterm or another)")
    docker = which("docker", env.get("PATH"))
    if docker is None:
        return TerminalPlan([], term.name, "the docker command is not installed (Berth itself does not need it)")
    return TerminalPlan(term.argv(docker_exec_argv(docker, container_id, endpoint)), term.name)
