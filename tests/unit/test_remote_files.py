"""The rules that keep a workspace in step with its copy on an engine that cannot see it (app/engine/remote_files.py).

The whole round trip runs against a real second engine in tests/engines/test_multi_engine.py; these pin each rule
of the merge, and what a hostile tar from the engine can and cannot do, on plain files.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from app.engine.remote_files import local_state, merge_home, read_volume_tar, safe_target


def _tar(entries: list[tuple[str, bytes | None, str]]) -> bytes:
    """A tar as `get_archive(/workspace)` gives it: (name, content, kind) with kind "file", "dir" or a link target."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content, kind in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "file":
                info.size = len(content or b"")
                tar.addfile(info, io.BytesIO(content or b""))
            else:
                info.type = tarfile.SYMTYPE
                info.linkname = kind
                tar.addfile(info)
    return buf.getvalue()


def _write(root: Path, rel: str, text: str, mtime: int) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def test_each_side_s_changes_since_the_last_sync(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    _write(root, "same.txt", "a", 100)
    _write(root, "local-only-change.txt", "changed here", 200)
    _write(root, "gone-there.txt", "x", 100)
    _write(root, "both.txt", "local edit", 300)
    base = {
        "same.txt": (1, 100),
        "local-only-change.txt": (1, 100),
        "gone-there.txt": (1, 100),
        "both.txt": (1, 100),
        "changed-there.txt": (1, 100),
    }
    _write(root, "changed-there.txt", "o", 100)
    volume = {
        "same.txt": (1, 100),
        "local-only-change.txt": (1, 100),
        "both.txt": (6, 400),
        "changed-there.txt": (3, 500),
        "new-there.txt": (3, 500),
    }
    files = {"both.txt": b"engine", "changed-there.txt": b"new", "new-there.txt": b"new"}

    conflicts = merge_home(root, "b", base, volume, files)

    assert conflicts == ["both.txt"]
    assert (root / "both.txt").read_text() == "local edit"  # the local file keeps its name
    assert (root / "both.txt.conflict-b").read_text() == "engine"  # the engine's is beside it
    assert (root / "changed-there.txt").read_text() == "new"  # changed only there: comes home
    assert (root / "new-there.txt").read_text() == "new"
    assert int((root / "new-there.txt").stat().st_mtime) == 500  # with its time, so the next check sees no change
    assert not (root / "gone-there.txt").exists()  # deleted there, unchanged here: deleted here
    assert (root / "local-only-change.txt").read_text() == "changed here"  # the next push takes it there


def test_deleted_there_but_changed_here_keeps_the_local_file(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    _write(root, "kept.txt", "edited", 900)
    assert merge_home(root, "b", {"kept.txt": (1, 100)}, {}, {}) == []
    assert (root / "kept.txt").read_text() == "edited"


def test_links_and_escapes_in_the_engine_s_tar_never_come_home(tmp_path: Path) -> None:
    """Attack: a container leaves links in /workspace (to the host's /etc, to a folder outside), and a tar member
    named with `..`, hoping the copy home writes outside the workspace or through a link."""
    data = _tar(
        [
            ("workspace", None, "dir"),
            ("workspace/ok.txt", b"fine", "file"),
            ("workspace/etc", None, "/etc"),
            ("workspace/passwd", None, "/etc/passwd"),
            ("workspace/../../escape.txt", b"out", "file"),
            ("other/file.txt", b"not ours", "file"),
        ]
    )
    state, files = read_volume_tar(data)
    assert set(state) == set(files) == {"ok.txt"}


def test_a_link_already_in_the_folder_is_never_written_through(tmp_path: Path) -> None:
    """Attack: the local folder holds a link to a folder outside (made by the agent through an earlier sync or by
    hand); a file the engine sends under that name must not land outside."""
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "d").symlink_to(outside)
    assert safe_target(root, "d/f.txt") is None
    merge_home(root, "b", {}, {"d/f.txt": (3, 100)}, {"d/f.txt": b"bad"})
    assert list(outside.iterdir()) == []
    assert "d/f.txt" not in local_state(root)  # links are not followed when the folder is read either
