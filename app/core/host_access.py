"""What a host command may reach: the folders it may run in, what the sandbox hides, what to warn about.

- **Working folders.** A request's `cwd` must be the agent's workspace, a folder inside it, or inside
  one of the host folders the person granted this agent (Agent Settings, `berth agents set NAME
  --host-folder DIR`); never another agent's workspace or Berth's own folders. Checked on the real
  path (symlinks resolved) when the request comes in, and again when it runs.
- **Hidden in the sandbox.** Berth's data, state and log folders (tokens, the database, every
  workspace), the person's secrets (`~/.ssh`, `~/.gnupg`, cloud and cluster credentials, keyrings...)
  and the folders added in Settings.
- **Warnings.** A program that reads its settings or code from the folder it runs in (git, make, npm,
  pytest...) runs whatever an agent wrote there: the queue says so when that folder is writable by the
  agent's containers, and the pattern editor when a wildcard follows such a program.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import platformdirs

from app.config import APP_NAME, Paths
from app.core.display import describe_suspicious
from app.core.patterns import Pattern, PatternError, parse_literal_commands
from app.errors import InvalidParams
from app.host import Access, Folder

# The person's secrets, relative to their home folder (API.md "Host access").
SECRET_PATHS = (
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",
    ".netrc",
    ".git-credentials",
    ".local/share/keyrings",
    ".password-store",
)

# Programs that read settings or code from the folder they run in (or their arguments name code to run).
READS_FOLDER = frozenset(
    {
        "git",
        "make",
        "gmake",
        "npm",
        "npx",
        "yarn",
        "pnpm",
        "bun",
        "deno",
        "node",
        "pytest",
        "py.test",
        "python",
        "python3",
        "pip",
        "pip3",
        "tox",
        "nox",
        "poetry",
        "pipenv",
        "uv",
        "cargo",
        "go",
        "mvn",
        "gradle",
        "gradlew",
        "ant",
        "sbt",
        "dotnet",
        "cmake",
        "ninja",
        "meson",
        "just",
        "rake",
        "bundle",
        "ruby",
        "php",
        "composer",
        "perl",
        "sh",
        "bash",
        "dash",
        "zsh",
        "fish",
        "env",
        "xargs",
        "find",
        "direnv",
    }
)

ACCESS_WORDS: dict[str, str] = {
    "sandbox": "in a sandbox: reads your files, writes only its folder, no network",
    "host": "with full access as you, outside any sandbox",
}


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _real(path: str | Path) -> str:
    return os.path.realpath(os.fspath(path))


def berth_folders(paths: Paths) -> list[str]:
    """Berth's own folders: data (database, tokens, workspaces), state, logs, and its config folder."""
    return [str(paths.data_dir), str(paths.state_dir), str(paths.log_dir), platformdirs.user_config_dir(APP_NAME)]


def hidden_paths(paths: Paths, extra: Iterable[str] = (), home: str | None = None) -> list[str]:
    """Everything a sandboxed command must not see (present or not: the sandbox skips what is missing)."""
    home = home or os.path.expanduser("~")
    out = [*berth_folders(paths), *(os.path.join(home, p) for p in SECRET_PATHS)]
    out += [os.path.expanduser(p) for p in extra if isinstance(p, str) and p.strip()]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and not runtime.startswith("/run/"):
        out.append(runtime)  # session sockets: D-Bus, the keyring, a rootless Docker
    docker_host = os.environ.get("DOCKER_HOST", "")
    if docker_host.startswith("unix://"):
        out.append(docker_host.removeprefix("unix://"))
    out.append("/var/run/docker.sock")
    # Both spellings: a hidden folder given through a symlink is hidden at its real place too.
    return list(dict.fromkeys([*out, *(_real(p) for p in out)]))


class FolderPolicy:
    """Where an agent's host commands may run. `host_folders(agent)` gives the folders granted to it."""

    def __init__(self, paths: Paths, workspace: Callable[[str], Path], host_folders: Callable[[str], Sequence[str]]):
        self._paths = paths
        self._workspace = workspace
        self._host_folders = host_folders

    def roots(self, agent: str) -> list[str]:
        """The agent's allowed folders, real paths: its workspace first, then its granted host folders."""
        return [_real(self._workspace(agent)), *(_real(f) for f in self._host_folders(agent))]

    def resolve(self, agent: str, cwd: str | None) -> Folder:
        """The request's working folder inside one of the agent's roots; -32602 naming them otherwise."""
        roots = self.roots(agent)
        if cwd is None:
            return Folder(roots[0])
        if not isinstance(cwd, str) or not os.path.isabs(cwd) or "\0" in cwd:
            raise InvalidParams("cwd: must be an absolute path")
        real = _real(cwd)
        if not os.path.isdir(real):
            raise InvalidParams(f"cwd: {cwd!r} is not an existing directory")
        berths = [_real(b) for b in berth_folders(self._paths)]
        for i, root in enumerate(roots):
            if not _inside(real, root):
                continue
            if i > 0 and any(_inside(real, b) for b in berths):
                continue  # a granted folder that holds Berth's data never opens it (other workspaces, tokens)
            return Folder(root, os.path.relpath(real, root))
        allowed = ", ".join(roots)
        raise InvalidParams(
            f"cwd: {cwd!r} is outside the folders this agent may use: {allowed}",
            hint="use the agent's workspace, or grant a host folder in Agent Settings "
            "or with `berth agents set NAME --host-folder DIR`",
            allowed=roots,
        )

    def in_workspace(self, agent: str, cwd: str) -> bool:
        """Is `cwd` in the agent's workspace (so its containers can write what runs there)?"""
        return _inside(_real(cwd), _real(self._workspace(agent)))


def check_grant(folder: str, paths: Paths, hidden: Sequence[str]) -> str:
    """A folder the person wants to grant an agent, as a real path; InvalidParams for one that cannot be
    granted: not a folder, the whole machine, inside Berth's own folders or inside a hidden folder."""
    if not isinstance(folder, str) or not folder.strip():
        raise InvalidParams("host folder: must be a folder path")
    real = _real(os.path.expanduser(folder))
    if not os.path.isdir(real):
        raise InvalidParams(f"host folder: {folder!r} is not an existing folder")
    if real == "/":
        raise InvalidParams("host folder: `/` is the whole machine; grant a project folder instead")
    for b in berth_folders(paths):
        if _inside(real, _real(b)):
            raise InvalidParams(f"host folder: {folder!r} is inside Berth's own folder {b}; grant a folder of your own")
    for h in hidden:
        if _inside(real, _real(h)):
            raise InvalidParams(f"host folder: {folder!r} is inside {h}, which is kept from host commands")
    return real


def _programs(command: str) -> list[str]:
    try:
        return [os.path.basename(argv[0]) for argv in parse_literal_commands(command) if argv]
    except PatternError:
        first = command.strip().split(maxsplit=1)
        return [os.path.basename(first[0])] if first else []


def request_warnings(command: str, cwd: str, access: Access, *, cwd_writable_by_containers: bool) -> list[str]:
    """What the person should know before approving, in words (API.md `approvals.list` `warnings`)."""
    warnings: list[str] = []
    for what, text in (("command", command), ("folder", cwd)):
        found = describe_suspicious(text)
        if found:
            warnings.append(f"The {what} has {found[0].lower()}{found[1:]}")
    readers = sorted({p for p in _programs(command) if p in READS_FOLDER})
    if readers and cwd_writable_by_containers:
        names = " and ".join(", ".join(f"`{p}`" for p in readers).rsplit(", ", 1))
        one = len(readers) == 1
        warnings.append(
            f"{names} {'reads' if one else 'read'} settings or code from the folder {'it runs' if one else 'they run'}"
            f" in, and the agent's containers can write that folder: {'it' if one else 'they'} can run whatever the "
            "agent put there."
        )
    if access == "host":
        warnings.append("It asks for full access: it would run as you, outside any sandbox.")
    return warnings


def pattern_warnings(pattern: Pattern, access: Access = "sandbox") -> list[str]:
    """What a trusted pattern really allows, beyond its words (for the pattern editor)."""
    warnings: list[str] = []
    program = pattern.words[0]
    if "*" in pattern.words and program in READS_FOLDER:
        warnings.append(
            f"`{program}` with any arguments can run any code an agent likes (options such as `-c`, `--eval`, "
            "`-p` or a config file in the folder choose what runs); trust the exact command instead."
        )
    if access == "host":
        warnings.append("Full access: matching commands run as you, outside any sandbox, with no question asked.")
    return warnings
