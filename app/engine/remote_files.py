"""An agent's workspace on an engine that cannot see this machine's folders (API.md "Engines").

There the workspace is a named volume, `berth.<instance>.<agent>.workspace`, mounted at /workspace in
every container of the agent on that engine, as the local folder is on the local engine. The local
folder stays the agent's workspace (`workspace.*` reads and writes it); the volume is its copy, brought
in step both ways:

- before a temporary run and when a service starts: first what changed in the volume comes home
  (a service may have written there), then the volume is made equal to the local folder;
- after a temporary run, when a service stops or is removed, and before `workspace.*` reads: what
  changed in the volume comes home.

Changes are found by comparing each side with the state both had at the last sync (size and whole-second
mtime per file, kept in `<workspaces>/.sync/<engine>/<agent>.json`), as rsync's quick check does. The
rules for a file changed on both sides since then (a conflict): the local file is kept as it is, and the
volume's version is written beside it as `NAME.conflict-<engine>` (then copied to the volume like any
local file). A file deleted on one side and unchanged on the other is deleted on both; deleted on one side
and changed on the other, the changed one is kept.

Only regular files and folders travel. A symbolic link, device or other special file made in the volume
is never brought home, and nothing is ever written outside the local folder or through a link in it.
The copying goes through a helper container made (never started) on the volume with the archive API; only
deletions in the volume need one that runs (`rm`), made from the engine's busybox image.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import secrets
import stat
import tarfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import docker.errors

from app.engine.policy import WORKSPACE, host_user
from app.errors import BerthError, InvalidParams
from app.model import LABEL_MANAGED

if TYPE_CHECKING:
    from app.engine.engine import Engine

logger = logging.getLogger(__name__)

LABEL_SYNC = "berth.sync"  # on helper containers and volumes: the instance they belong to
HELPER_IMAGE = "berth/busybox:latest"
MAX_BYTES = 2 * 1024**3  # a workspace larger than this is refused rather than copied on every run

State = dict[str, tuple[int, int]]  # relative path -> (size, whole-second mtime)


def volume_name(instance: str, agent: str) -> str:
    return f"berth.{instance}.{agent}.workspace"


def local_state(root: Path) -> State:
    """The regular files under `root` (links are not followed, nor sent)."""
    out: State = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        for f in filenames:
            full = os.path.join(dirpath, f)
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode):
                out[os.path.relpath(full, root).replace(os.sep, "/")] = (st.st_size, int(st.st_mtime))
    return out


def _relative(member: str) -> str | None:
    """A tar member of `workspace/...` as a path relative to the workspace; None for anything unsafe."""
    parts = PurePosixPath(member).parts
    if not parts or parts[0] != "workspace" or len(parts) < 2:
        return None
    rel = parts[1:]
    if any(p in ("", ".", "..") for p in rel) or PurePosixPath(member).is_absolute():
        return None
    return "/".join(rel)


def read_volume_tar(data: bytes) -> tuple[State, dict[str, bytes]]:
    """The regular files of a `get_archive(/workspace)` tar: their state and their contents."""
    state: State = {}
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            rel = _relative(m.name)
            if rel is None or not m.isreg():
                continue
            f = tar.extractfile(m)
            if f is None:
                continue
            files[rel] = f.read()
            state[rel] = (m.size, int(m.mtime))
    return state, files


def safe_target(root: Path, rel: str) -> Path | None:
    """Where `rel` (checked: no `..`, not absolute) goes under `root`, if no link is on the way; else None."""
    current = os.path.realpath(root)
    for part in rel.split("/"):
        current = os.path.join(current, part)
        if os.path.islink(current):
            return None
    return Path(current)


def write_file(root: Path, rel: str, content: bytes, mtime: int) -> bool:
    target = safe_target(root, rel)
    if target is None:
        logger.warning("not bringing %s home: it would go outside the workspace or through a link", rel)
        return False
    if target.exists() and not target.is_file():
        logger.warning("not bringing %s home: a folder of that name is there", rel)
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    if safe_target(root, rel) is None:
        return False
    tmp = target.with_name(f".{target.name}.berth-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    os.utime(tmp, (mtime, mtime))
    os.replace(tmp, target)
    return True


def merge_home(root: Path, engine: str, base: State, volume: State, files: dict[str, bytes]) -> list[str]:
    """Bring the volume's changes since `base` into the local folder by the rules above; returns conflicts."""
    here = local_state(root)
    conflicts: list[str] = []
    for rel in sorted(set(volume) | set(base)):
        v, b, h = volume.get(rel), base.get(rel), here.get(rel)
        if v in (b, h):
            continue  # unchanged in the volume, or the same on both sides already
        if h == b:  # changed only in the volume
            if v is None:
                target = safe_target(root, rel)
                if target is not None and target.is_file():
                    target.unlink()
            else:
                write_file(root, rel, files[rel], v[1])
        elif v is not None:  # changed on both sides: the local one stays, the volume's goes beside it
            conflicts.append(rel)
            write_file(root, f"{rel}.conflict-{engine}", files[rel], v[1])
    return conflicts


def local_tar(root: Path, paths: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel in paths:
            full = root.joinpath(*rel.split("/"))
            try:
                info = tar.gettarinfo(str(full), arcname=rel)
            except FileNotFoundError:
                continue  # deleted since it was listed
            if not info.isreg():
                continue
            # The engine keeps the owner a tar entry names: the run user's (host_user), as in the local folder.
            info.uid, info.gid, info.uname, info.gname = os.getuid(), os.getgid(), "", ""
            with open(full, "rb") as f:
                tar.addfile(info, f)
    return buf.getvalue()


class WorkspaceSync:
    """The workspace volumes of one engine that cannot see this machine's folders, kept in step."""

    def __init__(self, engine: Engine, workspace_of: Callable[[str], str]) -> None:
        self.engine = engine
        self.conn = engine.conn
        self.instance = engine.instance
        self._workspace_of = workspace_of  # agent -> its local folder
        self._locks: dict[str, asyncio.Lock] = {}
        self._swept = False

    def _root(self, agent: str) -> Path:
        return Path(self._workspace_of(agent))

    def _lock(self, agent: str) -> asyncio.Lock:
        return self._locks.setdefault(agent, asyncio.Lock())

    def _state_file(self, agent: str) -> Path:
        root = self._root(agent)
        return root.parent / ".sync" / self.engine.name / f"{agent}.json"

    def _base(self, agent: str) -> State:
        try:
            raw = json.loads(self._state_file(agent).read_text())
            return {k: (int(v[0]), int(v[1])) for k, v in raw.items()}
        except (OSError, ValueError, TypeError, IndexError):
            return {}

    def _save(self, agent: str, state: State) -> None:
        path = self._state_file(agent)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)

    # -- on the engine -----------------------------------------------------------------------------

    def _labels(self, agent: str) -> dict[str, str]:
        return {LABEL_MANAGED: "true", LABEL_SYNC: self.instance, "berth.sync.agent": agent}

    def _volume_exists(self, name: str) -> bool:
        try:
            self.conn.api.inspect_volume(name)
        except docker.errors.NotFound:
            return False
        return True

    def _ensure_volume(self, agent: str) -> str:
        name = volume_name(self.instance, agent)
        api = self.conn.api
        if not self._volume_exists(name):
            api.create_volume(name, labels=self._labels(agent))
            # A new volume's root is root's: make it the run user's, as the local folder is.
            self._run_helper(name, ["chown", host_user(), WORKSPACE])
        return name

    def _sweep(self) -> None:
        """Helpers a killed Berth left behind."""
        api = self.conn.api
        for c in api.containers(all=True, filters={"label": f"{LABEL_SYNC}={self.instance}"}):
            with contextlib.suppress(Exception):
                api.remove_container(c["Id"], force=True)

    def _helper(self, volume: str, command: list[str] | None = None, *, user: str | None = None) -> str:
        api = self.conn.api
        host_config = api.create_host_config(
            binds={volume: {"bind": WORKSPACE, "mode": "rw"}},
            network_mode="none",
            cap_drop=["ALL"] if user != "0:0" else ["NET_RAW", "MKNOD", "AUDIT_WRITE", "SETFCAP", "SETPCAP"],
            security_opt=["no-new-privileges"],
        )
        created = api.create_container(
            HELPER_IMAGE,
            command=command or ["true"],
            user=user or host_user(),
            labels=self._labels("-"),
            host_config=host_config,
            network_disabled=True,
        )
        return str(created["Id"])

    def _run_helper(self, volume: str, command: list[str]) -> None:
        api = self.conn.api
        cid = self._helper(volume, command, user="0:0")
        try:
            api.start(cid)
            code = api.wait(cid, timeout=120).get("StatusCode")
            if code != 0:
                raise BerthError(f"tidying the workspace volume {volume} failed (exit {code})")
        finally:
            api.remove_container(cid, force=True)

    def _fetch(self, volume: str) -> bytes:
        api = self.conn.api
        cid = self._helper(volume)
        try:
            stream, _stat = api.get_archive(cid, WORKSPACE)
            data = b"".join(stream)
        finally:
            api.remove_container(cid, force=True)
        if len(data) > MAX_BYTES:
            raise InvalidParams("the workspace is larger than 2 GiB: too large to keep in step with a remote engine")
        return data

    def _send(self, volume: str, data: bytes, deleted: list[str]) -> None:
        if deleted:
            self._run_helper(volume, ["rm", "-rf", "--", *(f"{WORKSPACE}/{rel}" for rel in deleted)])
        if not data:
            return
        api = self.conn.api
        cid = self._helper(volume)
        try:
            if not api.put_archive(cid, WORKSPACE, data):
                raise BerthError(f"the engine did not take the workspace copy for {volume}")
        finally:
            api.remove_container(cid, force=True)

    # -- the sync ------------------------------------------------------------------------------------

    def _pull_sync(self, agent: str, *, create: bool = False) -> tuple[list[str], State]:
        """Bring home what changed in the volume (made first with `create`; without, no volume: nothing)."""
        root = self._root(agent)
        if not self._swept:
            self._sweep()
            self._swept = True
        volume = volume_name(self.instance, agent)
        if create:
            self._ensure_volume(agent)
        elif not self._volume_exists(volume):
            return [], {}
        state, files = read_volume_tar(self._fetch(volume))
        conflicts = merge_home(root, self.engine.name, self._base(agent), state, files)
        if conflicts:
            logger.warning(
                "%s: changed both here and on engine %s: kept the local files, the engine's beside them (%s)",
                agent,
                self.engine.name,
                ", ".join(f"{c}.conflict-{self.engine.name}" for c in conflicts),
            )
        # What both sides hold now: the volume as it is, except where the local file won.
        self._save(agent, {rel: s for rel, s in state.items() if local_state_one(root, rel) == s})
        return conflicts, state

    def _push_sync(self, agent: str) -> str:
        root = self._root(agent)
        _conflicts, volume_now = self._pull_sync(agent, create=True)
        here = local_state(root)
        changed = [rel for rel, s in here.items() if volume_now.get(rel) != s]
        deleted = [rel for rel in volume_now if rel not in here]
        total = sum(here[rel][0] for rel in changed)
        if total > MAX_BYTES:
            raise InvalidParams("the workspace is larger than 2 GiB: too large to keep in step with a remote engine")
        self._send(volume_name(self.instance, agent), local_tar(root, changed), deleted)
        self._save(agent, here)
        return volume_name(self.instance, agent)

    async def push(self, agent: str) -> str:
        """Make the volume equal to the local folder (after bringing home what changed there); its name."""
        async with self._lock(agent):
            return await self.conn.call(self._push_sync, agent, what=f"the workspace of {agent}")

    async def pull(self, agent: str) -> list[str]:
        """Bring home what changed in the volume (also one a Berth before this one filled); the conflicts."""
        async with self._lock(agent):
            conflicts, _state = await self.conn.call(self._pull_sync, agent, what=f"the workspace of {agent}")
            return conflicts

    @contextlib.asynccontextmanager
    async def around(self, agent: str) -> AsyncIterator[str]:
        """For a temporary run: the volume, made equal to the folder before, and brought home after."""
        volume = await self.push(agent)
        try:
            yield volume
        finally:
            started = time.monotonic()
            try:
                await asyncio.shield(self.pull(agent))
            except BerthError as e:
                logger.warning("could not bring %s's workspace home from engine %s: %s", agent, self.engine.name, e)
            logger.debug("workspace of %s home in %.0f ms", agent, (time.monotonic() - started) * 1000)


def local_state_one(root: Path, rel: str) -> tuple[int, int] | None:
    try:
        st = os.lstat(root.joinpath(*rel.split("/")))
    except OSError:
        return None
    return (st.st_size, int(st.st_mtime)) if stat.S_ISREG(st.st_mode) else None
