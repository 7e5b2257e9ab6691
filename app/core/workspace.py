"""Agents' workspace folders on the host: list, read, write and delete files without ever leaving the folder.

The folder is mounted at /workspace in the agent's containers, so whatever is in it (symlinks, FIFOs,
folders swapped for links mid-request) is controlled by the agent. Paths are therefore never opened
by name after a check: each request walks from a file descriptor of the workspace, one component at
a time with O_NOFOLLOW, holding the descriptor of every folder it passed. Symlinks are resolved here,
by re-walking their target from those descriptors, and refused when they lead outside.
"""

from __future__ import annotations

import base64
import binascii
import errno
import logging
import os
import secrets
import shutil
import stat
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.errors import InvalidParams, NotFound, StorageFull
from app.model import AGENT_NAME_RE, MiB

logger = logging.getLogger(__name__)

READ_CAP = 8 * MiB
MAX_SYMLINK_HOPS = 40
CONTAINER_MOUNT = "/workspace"  # a symlink made in a container naturally points here

Encoding = Literal["utf-8", "base64"]
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    while limit > 0 and (chunk := os.read(fd, min(limit, 1 * MiB))):
        chunks.append(chunk)
        limit -= len(chunk)
    return b"".join(chunks)


@dataclass
class _Walk:
    """Open descriptors of the folders from the workspace root down to where a path leads."""

    rel: str  # the path as the agent gave it, for messages
    dirs: list[tuple[str, int]] = field(default_factory=list)  # (name, fd); dirs[0] is the root ("")
    name: str | None = None  # the final entry inside dirs[-1]; None: the path is the folder dirs[-1]

    @property
    def fd(self) -> int:
        return self.dirs[-1][1]

    def relpath(self, *more: str) -> str:
        return "/".join([n for n, _ in self.dirs[1:]] + list(more)) or "."

    def close(self) -> None:
        for _, fd in self.dirs:
            os.close(fd)
        self.dirs.clear()

    def bad(self, why: str) -> InvalidParams:
        return InvalidParams(f"path: {self.rel!r} {why}")


class Workspaces:
    """The workspace folders of all agents under `root` (one folder per agent, mode 0700); blocking, thread-safe."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, agent: str) -> Path:
        """The agent's folder on the host, created on first use."""
        if not AGENT_NAME_RE.fullmatch(agent):
            raise InvalidParams(f"agent: {agent!r} is not a valid agent name")
        folder = self.root / agent
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.mkdir(exist_ok=True, mode=0o700)
        return folder

    def resolve(self, agent: str, rel: str) -> Path:
        """The host path `rel` leads to, symlinks resolved and checked; for display or a cwd, not for opening."""
        w = self._walk(agent, rel, last="follow")
        try:
            return self.path(agent).joinpath(*[n for n, _ in w.dirs[1:]], *([w.name] if w.name else []))
        finally:
            w.close()

    # -- the walk --------------------------------------------------------------------------------

    def _walk(self, agent: str, rel: str, *, last: Literal["dir", "follow", "entry"], create: bool = False) -> _Walk:
        """Walk `rel` from the root; `last` says whether the final part must be a folder, is followed, or kept."""
        if "\0" in rel:
            raise InvalidParams("path: must not contain a NUL character")
        if rel.startswith("/"):
            raise InvalidParams(f"path: {rel!r} must be relative to the workspace, not absolute")
        depth = 0
        for part in rel.split("/"):
            depth += -1 if part == ".." else 0 if part in ("", ".") else 1
            if depth < 0:
                raise InvalidParams(f"path: {rel!r} leads outside the workspace")
        w = _Walk(rel)
        w.dirs.append(("", os.open(self.path(agent), _DIR_FLAGS)))
        try:
            self._walk_parts(w, deque(p for p in rel.split("/") if p), last, create)
        except BaseException:
            w.close()
            raise
        return w

    def _walk_parts(self, w: _Walk, parts: deque[str], last: str, create: bool) -> None:
        hops = 0
        while parts:
            part = parts.popleft()
            final = not parts
            w.name = None
            if part == ".":
                continue
            if part == "..":
                if len(w.dirs) == 1:
                    raise w.bad("leads outside the workspace")
                os.close(w.dirs.pop()[1])
                continue
            if final and last == "entry":
                w.name = part
                return
            if final and last == "follow":
                target = self._readlink(w, part)
                if target is None:
                    w.name = part
                    return
            else:
                try:
                    w.dirs.append((part, os.open(part, _DIR_FLAGS, dir_fd=w.fd)))
                    continue
                except FileNotFoundError:
                    if not create:
                        raise NotFound(f"no such file in the workspace: {w.rel}") from None
                    try:
                        os.mkdir(part, 0o755, dir_fd=w.fd)
                    except FileExistsError:
                        pass  # made meanwhile (by a container): opened next round and checked as any other
                    except OSError as e:
                        raise self._os_error(w, e) from None
                    hops += 1  # bounds a container that keeps deleting what we create
                    if hops > MAX_SYMLINK_HOPS:
                        raise w.bad("keeps changing while Berth creates it") from None
                    parts.appendleft(part)
                    continue
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise self._os_error(w, e) from None
                    target = self._readlink(w, part)
                    if target is None:
                        raise w.bad(f"goes through {w.relpath(part)!r}, which is not a folder") from None
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise w.bad("goes through too many symbolic links")
            if target.startswith("/"):
                if target != CONTAINER_MOUNT and not target.startswith(CONTAINER_MOUNT + "/"):
                    raise w.bad(f"goes through a symbolic link that points outside the workspace ({w.relpath(part)})")
                while len(w.dirs) > 1:
                    os.close(w.dirs.pop()[1])
                target = target[len(CONTAINER_MOUNT) :]
            parts.extendleft(reversed([p for p in target.split("/") if p] or ["."]))

    def _readlink(self, w: _Walk, part: str) -> str | None:
        """The target of the symlink `part` in the current folder, or None if it is not a symlink (or missing)."""
        try:
            return os.readlink(part, dir_fd=w.fd)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            if e.errno == errno.EINVAL:
                return None
            raise self._os_error(w, e) from None

    @staticmethod
    def _os_error(w: _Walk, e: OSError) -> Exception:
        if e.errno == errno.ENOENT:
            return NotFound(f"no such file in the workspace: {w.rel}")
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageFull("the disk is full: nothing was written", hint="free some space on the disk, then retry")
        if e.errno in (errno.EACCES, errno.EPERM):
            return w.bad("cannot be used: permission denied")
        if e.errno == errno.ELOOP:
            return w.bad("changed into a symbolic link while Berth was using it; try again")
        if e.errno == errno.EISDIR:
            return w.bad("is a folder, not a file")
        if e.errno in (errno.ENAMETOOLONG, errno.ENOTDIR, errno.ENXIO, errno.ENOTEMPTY):
            return w.bad(f"cannot be used: {e.strerror}")
        return e

    # -- operations ------------------------------------------------------------------------------

    def list(self, agent: str, rel: str = ".") -> list[dict[str, Any]]:
        """The direct children of a folder, sorted by name; `type` is file, dir, symlink or other (FIFO, socket)."""
        w = self._walk(agent, rel, last="dir")
        try:
            out: list[dict[str, Any]] = []
            with os.scandir(w.fd) as it:
                for entry in it:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # removed while we looked
                    kind = (
                        "dir"
                        if stat.S_ISDIR(st.st_mode)
                        else "file"
                        if stat.S_ISREG(st.st_mode)
                        else "symlink"
                        if stat.S_ISLNK(st.st_mode)
                        else "other"
                    )
                    size = st.st_size if kind in ("file", "symlink") else 0
                    out.append({"path": w.relpath(entry.name), "type": kind, "size": size, "mtime": st.st_mtime})
            return sorted(out, key=lambda e: str(e["path"]))
        finally:
            w.close()

    def read(self, agent: str, rel: str, encoding: str = "utf-8") -> dict[str, Any]:
        """A regular file's content (at most 8 MiB), as text or base64."""
        if encoding not in ("utf-8", "base64"):
            raise InvalidParams("encoding: must be 'utf-8' or 'base64'")
        w = self._walk(agent, rel, last="follow")
        try:
            if w.name is None:
                raise w.bad("is a folder, not a file")
            try:
                fd = os.open(w.name, _READ_FLAGS, dir_fd=w.fd)  # O_NONBLOCK: a FIFO must not hang us
            except OSError as e:
                raise self._os_error(w, e) from None
            try:
                st = os.fstat(fd)
                if stat.S_ISDIR(st.st_mode):
                    raise w.bad("is a folder, not a file")
                if not stat.S_ISREG(st.st_mode):
                    raise w.bad("is not a regular file (a FIFO, socket or device); Berth reads only regular files")
                if st.st_size > READ_CAP:
                    raise w.bad(f"is larger than 8 MiB ({st.st_size} bytes): read it in a container instead")
                data = _read_at_most(fd, READ_CAP + 1)
            finally:
                os.close(fd)
            if len(data) > READ_CAP:
                raise w.bad("is larger than 8 MiB (it grew while being read): read it in a container instead")
        finally:
            w.close()
        if encoding == "base64":
            return {"content": base64.b64encode(data).decode("ascii"), "encoding": "base64", "size": len(data)}
        try:
            return {"content": data.decode("utf-8"), "encoding": "utf-8", "size": len(data)}
        except UnicodeDecodeError:
            raise w.bad("is not UTF-8 text: read it with encoding 'base64'") from None

    def write(self, agent: str, rel: str, content: str, encoding: str = "utf-8") -> dict[str, Any]:
        """Replace or create a file atomically, making parent folders; a symlink at `rel` is replaced, not followed."""
        data = self._decode(content, encoding)
        w = self._walk(agent, rel, last="entry", create=True)
        try:
            if w.name is None:
                raise w.bad("is a folder, not a file")
            tmp = f".berth-{secrets.token_hex(8)}.tmp"
            try:
                fd = os.open(tmp, _TMP_FLAGS, 0o644, dir_fd=w.fd)
            except OSError as e:
                raise self._os_error(w, e) from None
            try:
                try:
                    _write_all(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, w.name, src_dir_fd=w.fd, dst_dir_fd=w.fd)
            except OSError as e:
                try:
                    os.unlink(tmp, dir_fd=w.fd)
                except OSError:
                    logger.warning("could not remove the temporary file %s of a failed write", tmp)
                raise self._os_error(w, e) from None
            return {"size": len(data)}
        finally:
            w.close()

    @staticmethod
    def _decode(content: str, encoding: str) -> bytes:
        if encoding == "utf-8":
            try:
                return content.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidParams("content: is not valid Unicode text (lone surrogates)") from None
        if encoding == "base64":
            try:
                return base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidParams("content: is not valid base64") from None
        raise InvalidParams("encoding: must be 'utf-8' or 'base64'")

    def delete(self, agent: str, rel: str) -> dict[str, Any]:
        """Delete a file, a symlink (not what it points to) or a whole folder; never the workspace itself."""
        w = self._walk(agent, rel, last="entry")
        try:
            if w.name is None:  # "sub/.." or "." ends on a folder we hold open: delete it from its parent
                if len(w.dirs) == 1:
                    raise w.bad("is the workspace folder itself, which cannot be deleted")
                w.name, _ = w.dirs[-1]
                os.close(w.dirs.pop()[1])
            try:
                st = os.stat(w.name, dir_fd=w.fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    # fd-based and symlink-attack resistant on Linux (shutil.rmtree.avoids_symlink_attacks)
                    shutil.rmtree(w.name, dir_fd=w.fd)
                else:
                    os.unlink(w.name, dir_fd=w.fd)
            except OSError as e:
                raise self._os_error(w, e) from None
            return {"deleted": True}
        finally:
            w.close()
