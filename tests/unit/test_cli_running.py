"""The command line finds the running Berth: a stale endpoint is gone around, a busy Berth is waited for.

A Berth whose loop is busy for a few seconds (a heavy window, a loaded machine) once made `berth trust add`
decide that none ran and write the store behind its back: the open window never heard of the change.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import cli
from app.config import Paths
from app.errors import BerthError
from app.runtime import write_endpoint


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers: a Berth whose loop is busy."""
    srv = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except TimeoutError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()


def _paths(tmp_path: Path) -> Paths:
    paths = Paths(tmp_path, tmp_path / "state", tmp_path / "logs")
    paths.state_dir.mkdir(parents=True)
    return paths


def test_a_stale_endpoint_means_no_berth_runs(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]  # closed below: nothing listens there any more
    paths = _paths(tmp_path)
    write_endpoint(paths, f"http://127.0.0.1:{port}")
    assert cli._health(f"http://127.0.0.1:{port}") == "gone"
    assert cli._running_owner(paths) is None  # the command acts on the data dir itself


def test_a_busy_berth_is_waited_for_and_never_gone_around(
    tmp_path: Path, silent_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _paths(tmp_path)
    write_endpoint(paths, silent_server)
    monkeypatch.setattr(cli, "HEALTH_WAIT_S", 0.5)
    monkeypatch.setattr(cli, "_health", lambda url: "busy")  # each real check waits its 5 s timeout
    started = time.monotonic()
    with pytest.raises(BerthError) as e:
        cli._running_owner(paths)
    assert "did not answer" in str(e.value) and e.value.hint and "try again" in e.value.hint
    assert time.monotonic() - started >= 0.5


def test_a_listening_berth_that_has_not_answered_yet_is_busy(silent_server: str) -> None:
    started = time.monotonic()
    assert cli._health(silent_server) == "busy"
    assert time.monotonic() - started < 15  # one check's own timeout, not for ever
