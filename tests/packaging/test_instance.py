"""`berth serve`: one server per data dir. A second one is refused (exit 1, one line saying who runs)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from app.config import Paths
from app.instance import InstanceLock
from app.main import serve
from tests.packaging.helpers import SOURCE, Running, berth_env, run


def paths_in(root: Path) -> Paths:
    return Paths(root, root / "state", root / "logs")


def test_the_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    paths = paths_in(tmp_path / "data")
    first, second = InstanceLock(paths), InstanceLock(paths)
    assert first.acquire()
    assert not second.acquire()  # flock: a second open file is refused, also in the same process
    assert second.holder_pid() is not None
    first.release()
    assert second.acquire()
    second.release()


def test_serve_refuses_a_data_dir_that_is_taken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = paths_in(tmp_path / "data")
    paths.ensure()
    (paths.state_dir / "endpoint.json").write_text('{"url": "http://127.0.0.1:7450", "pid": 1}\n')
    with InstanceLock(paths) as lock:
        assert lock.acquire()
        assert serve(paths, 0) == 1
    err = capsys.readouterr().err
    assert "already running" in err and str(paths.data_dir) in err and "http://127.0.0.1:7450" in err
    assert "--data-dir" in err  # and what to do about it


@pytest.mark.slow
def test_a_second_berth_serve_does_not_start_a_second_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = berth_env(data)
    first = Running([*SOURCE, "serve", "--rpc-port", "0"], data, env)
    try:
        endpoint = first.wait_serving()
        second = run([*SOURCE, "serve", "--rpc-port", "0"], env)
        assert second.returncode == 1, second.stderr
        assert "already running" in second.stderr and f"pid {first.proc.pid}" in second.stderr
        assert str(endpoint["url"]) in second.stderr
        assert first.endpoint() == endpoint  # the first one still owns the data dir
        assert first.proc.poll() is None
        # A second server on another data dir is fine.
        other = Running([*SOURCE, "serve", "--rpc-port", "0"], tmp_path / "other", berth_env(tmp_path / "other"))
        try:
            other.wait_serving()
        finally:
            assert other.stop() == 0
    finally:
        assert first.stop() == 0


@pytest.mark.slow
def test_a_killed_server_leaves_no_stale_lock(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = berth_env(data)
    first = Running([*SOURCE, "serve", "--rpc-port", "0"], data, env)
    first.wait_serving()
    first.stop(signal.SIGKILL)  # no clean-up at all: the kernel drops the flock
    again = Running([*SOURCE, "serve", "--rpc-port", "0"], data, env)
    try:
        again.wait_serving()
    finally:
        assert again.stop() == 0


def test_a_new_berth_says_how_to_add_an_agent_and_stops_saying_it_once_there_is_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = berth_env(data)
    first = Running([*SOURCE, "serve", "--rpc-port", "0"], data, env)
    try:
        first.wait_serving()
        first.wait_output("no agents yet: add one with `berth agents add NAME`")
    finally:
        assert first.stop() == 0
    assert run([*SOURCE, "agents", "add", "helper"], env).returncode == 0
    again = Running([*SOURCE, "serve", "--rpc-port", "0"], data, env)
    try:
        again.wait_serving()
        again.wait_output("berth: serving")
    finally:
        assert again.stop() == 0
    assert "no agents yet" not in again.output()


def test_berth_without_a_display_says_so_and_serves_headless(tmp_path: Path) -> None:
    """What `make run` does on a server: `berth` (the desktop app) with no DISPLAY."""
    data = tmp_path / "data"
    env = berth_env(data, BERTH_RPC_PORT="0")
    for key in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(key, None)
    app = Running([*SOURCE], data, env)
    try:
        app.wait_serving()
        app.wait_output("no display here")
        app.wait_output("no agents yet")
    finally:
        assert app.stop() == 0
