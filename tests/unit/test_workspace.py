"""Tests for app.core.workspace: the agent's files, and the attacks a container sharing the folder can try.

Everything in the workspace is controlled by the agent's containers (it is mounted at /workspace), so
most tests here plant something in it the way a container would and check that Berth stays inside.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import socket
import stat
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

import app.core.workspace as workspace_module
from app.core.workspace import Workspaces
from app.errors import InvalidParams, NotFound, StorageFull
from app.model import MiB

SECRET = "root:x:0:0:the host's secret\n"


@pytest.fixture
def ws(tmp_path: Path) -> Workspaces:
    return Workspaces(tmp_path / "workspaces")


@pytest.fixture
def root(ws: Workspaces) -> Path:
    return ws.path("a")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the workspaces with a file no agent may see or change."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret").write_text(SECRET)
    return d


def refused(call: Callable[[], object], match: str | None = None) -> InvalidParams:
    with pytest.raises(InvalidParams, match=match) as info:
        call()
    assert info.value.message.startswith("path: "), info.value.message
    return info.value


# -- ordinary use ----------------------------------------------------------------------------------


def test_path_is_private_and_agent_names_are_checked(ws: Workspaces, root: Path) -> None:
    assert root == ws.root / "a" and stat.S_IMODE(root.stat().st_mode) == 0o700
    for bad in ("../x", "A", "", "a/b", "."):
        with pytest.raises(InvalidParams, match="agent: "):
            ws.path(bad)


def test_write_read_round_trip(ws: Workspaces, root: Path) -> None:
    assert ws.write("a", "notes/deep/hello.txt", "héllo\n") == {"size": 7}
    assert (root / "notes/deep/hello.txt").read_text() == "héllo\n"
    assert ws.read("a", "notes/deep/hello.txt") == {"content": "héllo\n", "encoding": "utf-8", "size": 7}
    assert ws.read("a", "./notes//deep/../deep/hello.txt")["content"] == "héllo\n"
    blob = bytes(range(256))
    assert ws.write("a", "bin", base64.b64encode(blob).decode(), encoding="base64") == {"size": 256}
    assert ws.read("a", "bin", encoding="base64") == {
        "content": base64.b64encode(blob).decode(), "encoding": "base64", "size": 256,
    }  # fmt: skip
    ws.write("a", "notes/deep/hello.txt", "replaced")
    assert ws.read("a", "notes/deep/hello.txt")["content"] == "replaced"
    assert sorted(p.name for p in (root / "notes/deep").iterdir()) == ["hello.txt"]  # no temporary files left


def test_list(ws: Workspaces, root: Path) -> None:
    ws.write("a", "b.txt", "12345")
    ws.write("a", "sub/x.txt", "x")
    (root / "link").symlink_to("b.txt")
    os.mkfifo(root / "pipe")
    entries = ws.list("a")
    assert [(e["path"], e["type"]) for e in entries] == [
        ("b.txt", "file"), ("link", "symlink"), ("pipe", "other"), ("sub", "dir"),
    ]  # fmt: skip
    assert entries[0]["size"] == 5 and entries[0]["mtime"] == pytest.approx((root / "b.txt").stat().st_mtime)
    assert ws.list("a", "sub") == ws.list("a", "./sub/") and ws.list("a", "sub")[0]["path"] == "sub/x.txt"
    assert ws.list("a", "") == entries
    with pytest.raises(NotFound, match="no such file in the workspace: nope"):
        ws.list("a", "nope")
    refused(lambda: ws.list("a", "b.txt"), "not a folder")


def test_read_errors(ws: Workspaces, root: Path) -> None:
    with pytest.raises(NotFound, match=r"no such file in the workspace: missing\.txt"):
        ws.read("a", "missing.txt")
    with pytest.raises(NotFound):
        ws.read("a", "no/such/dir.txt")
    ws.write("a", "sub/f", "x")
    refused(lambda: ws.read("a", "sub"), "is a folder")
    refused(lambda: ws.read("a", "."), "is a folder")
    (root / "latin1").write_bytes("café".encode("latin-1"))
    refused(lambda: ws.read("a", "latin1"), "encoding 'base64'")
    assert ws.read("a", "latin1", encoding="base64")["size"] == 4
    with open(root / "big", "wb") as f:
        f.truncate(8 * MiB + 1)
    refused(lambda: ws.read("a", "big"), "larger than 8 MiB")
    with pytest.raises(InvalidParams, match="encoding: "):
        ws.read("a", "sub/f", encoding="latin-1")


def test_write_errors(ws: Workspaces, root: Path) -> None:
    with pytest.raises(InvalidParams, match="content: is not valid base64"):
        ws.write("a", "f", "not base64!", encoding="base64")
    with pytest.raises(InvalidParams, match="encoding: "):
        ws.write("a", "f", "x", encoding="hex")
    ws.write("a", "sub/f", "x")
    refused(lambda: ws.write("a", "sub", "x"), "is a folder")
    refused(lambda: ws.write("a", ".", "x"), "is a folder")
    refused(lambda: ws.write("a", "sub/f/g", "x"), "not a folder")
    assert not list(root.glob("**/.berth-*"))


def test_delete(ws: Workspaces, root: Path) -> None:
    ws.write("a", "f", "x")
    ws.write("a", "tree/a/b/c", "x")
    assert ws.delete("a", "f") == {"deleted": True}
    assert ws.delete("a", "tree") == {"deleted": True}
    assert list(root.iterdir()) == []
    with pytest.raises(NotFound):
        ws.delete("a", "f")
    ws.write("a", "sub/d/f", "x")
    assert ws.delete("a", "sub/d/..") == {"deleted": True}  # names the folder sub
    ws.write("a", "sub/f", "x")
    for whole in (".", "", "sub/..", "./"):
        refused(partial(ws.delete, "a", whole), "workspace folder itself")
    assert root.is_dir()


def test_paths_that_leave_are_refused(ws: Workspaces, root: Path, outside: Path) -> None:
    """An agent asks for paths outside its folder: absolute, `..` above the root, NUL bytes."""
    for path in ("/etc/passwd", str(outside / "secret"), "../../outside/secret", "sub/../../b", ".."):
        for call in (
            partial(ws.read, "a", path),
            partial(ws.write, "a", path, "x"),
            partial(ws.delete, "a", path),
            partial(ws.list, "a", path),
        ):
            refused(call)
    refused(lambda: ws.read("a", "f\0.txt"), "NUL")
    ws.write("a", "sub/x", "x")
    refused(lambda: ws.read("a", "sub/../../a/sub/x"), "leads outside")  # even when it would come back in
    assert (outside / "secret").read_text() == SECRET


def test_another_agents_folder_is_outside(ws: Workspaces) -> None:
    """Agent b tries to reach agent a's files through `..`."""
    ws.write("a", "private", "a's")
    refused(lambda: ws.read("b", "../a/private"))


# -- symlinks planted by a container ---------------------------------------------------------------


def test_symlink_to_etc_is_refused(ws: Workspaces, root: Path) -> None:
    """A container plants workspace/link -> /etc and the agent reads link/passwd."""
    (root / "link").symlink_to("/etc")
    refused(lambda: ws.read("a", "link/passwd"), "points outside the workspace")
    refused(lambda: ws.list("a", "link"), "points outside")
    refused(lambda: ws.write("a", "link/evil", "x"), "points outside")
    assert not Path("/etc/evil").exists()


def test_relative_symlink_climbing_out_is_refused(ws: Workspaces, root: Path, outside: Path) -> None:
    """A container plants up -> ../../outside (relative), and a chain hop -> sub/../.. that climbs step by step."""
    (root / "up").symlink_to("../../outside")
    (root / "sub").mkdir()
    (root / "hop").symlink_to("sub/../..")
    for path in ("up/secret", "hop/outside/secret"):
        refused(partial(ws.read, "a", path), "leads outside")
        refused(partial(ws.write, "a", path, "x"), "leads outside")
        refused(partial(ws.delete, "a", path), "leads outside")
    assert (outside / "secret").read_text() == SECRET


def test_final_symlink_to_a_host_file(ws: Workspaces, root: Path, outside: Path) -> None:
    """A container plants leak -> /host/outside/secret; reading it is refused, writing replaces the link only."""
    (root / "leak").symlink_to(outside / "secret")
    refused(lambda: ws.read("a", "leak"), "points outside")
    assert ws.write("a", "leak", "mine") == {"size": 4}
    assert not (root / "leak").is_symlink() and (root / "leak").read_text() == "mine"
    assert (outside / "secret").read_text() == SECRET


def test_delete_removes_the_link_not_its_target(ws: Workspaces, root: Path, outside: Path) -> None:
    """A container plants gone -> /host/outside and the agent deletes `gone` (and `gone/secret`)."""
    (root / "gone").symlink_to(outside)
    refused(lambda: ws.delete("a", "gone/secret"), "points outside")
    assert ws.delete("a", "gone") == {"deleted": True}
    assert not (root / "gone").exists() and (outside / "secret").read_text() == SECRET


def test_symlinks_that_stay_inside_are_followed(ws: Workspaces, root: Path) -> None:
    """Links made in a container usually point at /workspace/...; those and relative ones inside work."""
    ws.write("a", "sub/f.txt", "inside")
    (root / "alias").symlink_to("sub")
    (root / "abs").symlink_to("/workspace/sub/f.txt")
    (root / "absdir").symlink_to("/workspace")
    (root / "sub" / "back").symlink_to("../sub/./f.txt")
    for path in ("alias/f.txt", "abs", "absdir/sub/f.txt", "sub/back", "absdir/alias/back"):
        assert ws.read("a", path)["content"] == "inside", path
    assert [e["path"] for e in ws.list("a", "alias")] == ["sub/back", "sub/f.txt"]  # where they really are
    ws.write("a", "alias/new", "n")
    assert (root / "sub/new").read_text() == "n"
    assert ws.resolve("a", "abs") == root / "sub/f.txt"
    assert ws.resolve("a", "alias/new") == root / "sub/new"
    (root / "workspacey").symlink_to("/workspace-other/x")
    refused(lambda: ws.read("a", "workspacey"), "points outside")
    refused(lambda: ws.resolve("a", "../x"))


def test_symlink_loops_are_refused(ws: Workspaces, root: Path) -> None:
    """A container plants loop1 -> loop2 -> loop1 (and self -> self) to make Berth spin for ever."""
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    (root / "self").symlink_to("self/x")
    for path in ("loop1", "loop1/x", "self"):
        refused(partial(ws.read, "a", path), "too many symbolic links")
    refused(lambda: ws.write("a", "loop1/x", "x"), "too many symbolic links")


# -- races: the container changes the folder while Berth uses it ----------------------------------


def test_symlink_swapped_in_after_the_check(
    ws: Workspaces, root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A symlink swapped in after the check: `f` is a plain file when Berth looks, a link to the host when it opens."""
    (root / "f").write_text("harmless")
    real_readlink = os.readlink

    def readlink_then_swap(path: str, *, dir_fd: int | None = None) -> str:
        try:
            return real_readlink(path, dir_fd=dir_fd)
        finally:
            if path == "f":
                (root / "f").unlink()
                (root / "f").symlink_to(outside / "secret")

    monkeypatch.setattr(os, "readlink", readlink_then_swap)
    refused(lambda: ws.read("a", "f"), "changed into a symbolic link")


def test_folder_swapped_for_a_link_mid_walk(
    ws: Workspaces, root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After Berth entered `sub`, the container renames it away and puts sub -> /host/outside in its place."""
    ws.write("a", "sub/secret", "the workspace's own file")
    real_readlink = os.readlink

    def readlink_then_swap(path: str, *, dir_fd: int | None = None) -> str:
        if path == "secret" and not (root / "sub").is_symlink():
            (root / "sub").rename(root / "moved")
            (root / "sub").symlink_to(outside)
        return real_readlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "readlink", readlink_then_swap)
    assert ws.read("a", "sub/secret")["content"] == "the workspace's own file"  # the folder it entered
    monkeypatch.undo()
    ws.write("a", "moved/new", "x")
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


@pytest.mark.timeout(60)
def test_racing_container_never_gets_berth_outside(ws: Workspaces, root: Path, outside: Path) -> None:
    """A container flips `sub` between a real folder and a link to the host as fast as it can, while the agent
    reads, writes, lists and deletes through it: Berth never reads, writes or deletes outside."""
    (root / "sub").mkdir()
    (root / "sub" / "secret").write_text("inside")
    (root / "evil").symlink_to(outside)
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            for a, b in (("sub", "real"), ("evil", "sub"), ("sub", "evil"), ("real", "sub")):
                with contextlib.suppress(OSError):
                    os.rename(root / a, root / b)

    flipper = threading.Thread(target=flip)
    flipper.start()
    outcomes: set[str] = set()
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            for op in (
                lambda: ws.read("a", "sub/secret")["content"],
                lambda: ws.write("a", "sub/planted", "x") and "written",
                lambda: ws.list("a", "sub") and "listed",
                lambda: ws.delete("a", "sub/planted") and "deleted",
            ):
                try:
                    result = op()
                    assert result != SECRET
                    outcomes.add(str(result))
                except (InvalidParams, NotFound) as e:
                    outcomes.add(type(e).__name__)
    finally:
        stop.set()
        flipper.join()
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == SECRET
    assert "inside" in outcomes  # the race really ran both ways
    assert "InvalidParams" in outcomes


# -- special files ---------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_fifo_does_not_hang_the_reader(ws: Workspaces, root: Path) -> None:
    """A FIFO planted by the container hangs the reader (an open() for reading waits for a writer for ever)."""
    os.mkfifo(root / "pipe")
    (root / "to-pipe").symlink_to("pipe")
    refused(lambda: ws.read("a", "pipe"), "not a regular file")
    refused(lambda: ws.read("a", "to-pipe"), "not a regular file")
    refused(lambda: ws.list("a", "pipe"), "not a folder")
    refused(lambda: ws.read("a", "pipe/x"), "not a folder")
    refused(lambda: ws.write("a", "pipe/x", "x"), "not a folder")
    assert ws.write("a", "pipe", "replaced") == {"size": 8}  # the FIFO itself is replaced, never opened
    assert ws.read("a", "to-pipe")["content"] == "replaced"


def test_socket_is_refused(ws: Workspaces, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unix socket planted by the container: opening it by name fails (ENXIO); refused plainly."""
    monkeypatch.chdir(root)  # a socket path must be short
    with socket.socket(socket.AF_UNIX) as s:
        s.bind("sock")
        refused(lambda: ws.read("a", "sock"), "cannot be used")


def test_device_is_refused(ws: Workspaces, root: Path) -> None:
    """A device node in the workspace (containers cannot make one without CAP_MKNOD, the person might): refused."""
    try:
        os.mknod(root / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    refused(lambda: ws.read("a", "null"), "not a regular file")


# -- the disk ---------------------------------------------------------------------------------------


def test_disk_full_writes_nothing(ws: Workspaces, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC half-way through: the old content stays, the temporary file goes, StorageFull says so."""
    ws.write("a", "f", "old content")

    def full(fd: int, data: bytes) -> None:
        os.write(fd, data[:3])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(workspace_module, "_write_all", full)
    with pytest.raises(StorageFull, match="the disk is full: nothing was written"):
        ws.write("a", "f", "new content")
    assert (root / "f").read_text() == "old content"
    assert [p.name for p in root.iterdir()] == ["f"]
