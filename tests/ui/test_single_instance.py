"""A second `berth` on the same data dir brings the running window to the front; no second server starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtNetwork import QLocalSocket
from PySide6.QtWidgets import QMainWindow
from pytestqt.qtbot import QtBot

from app.config import Paths
from app.instance import InstanceLock
from app.ui.single_instance import SingleInstance, server_name
from tests.packaging.helpers import ROOT, SOURCE, Running, berth_env, run

SECOND = """
import sys
from PySide6.QtWidgets import QApplication
from app.config import Paths
from app.instance import InstanceLock
from app.ui.single_instance import SingleInstance
app = QApplication([])
guard = SingleInstance(Paths.resolve(sys.argv[1]))
sys.exit(0 if guard.claim() else 10 + guard.exit_code)
"""


def test_the_socket_name_is_per_data_dir(tmp_path: Path) -> None:
    a, b = Paths.resolve(tmp_path / "a"), Paths.resolve(tmp_path / "b")
    assert server_name(a) == server_name(Paths.resolve(tmp_path / "a"))
    assert server_name(a) != server_name(b)
    assert len(server_name(a)) < 40  # a Unix socket path has room for ~100 bytes, with the temp dir


def test_a_second_instance_raises_the_window_of_the_first(tmp_path: Path, qtbot: QtBot) -> None:
    paths = Paths.resolve(tmp_path / "data")
    guard = SingleInstance(paths)
    window = QMainWindow()
    qtbot.addWidget(window)
    guard.window = window
    try:
        assert guard.claim()
        assert not window.isVisible()
        with qtbot.waitSignal(guard.activated, timeout=30_000):
            second = subprocess.Popen(
                [sys.executable, "-c", SECOND, str(paths.data_dir)], cwd=ROOT, env=berth_env(paths.data_dir)
            )
        assert second.wait(30) == 10  # it handed over (exit code 0) instead of claiming the data dir
        assert window.isVisible()
        with InstanceLock(paths) as headless:  # the data dir is still this process's: `berth serve` is refused
            assert not headless.acquire()
    finally:
        guard.close()


def test_the_socket_ignores_other_requests(tmp_path: Path, qtbot: QtBot) -> None:
    guard = SingleInstance(Paths.resolve(tmp_path / "data"))
    replies: list[bytes] = []
    try:
        assert guard.claim()
        sock = QLocalSocket()
        sock.readyRead.connect(lambda: replies.append(bytes(sock.readAll().data())))
        sock.connectToServer(guard.name)
        qtbot.waitUntil(lambda: sock.state() == QLocalSocket.LocalSocketState.ConnectedState)
        with qtbot.assertNotEmitted(guard.activated, wait=200):
            sock.write(b"rm -rf /\n")
            qtbot.waitUntil(lambda: bool(replies))
        assert replies == [b"unknown\n"]
    finally:
        guard.close()


@pytest.mark.slow
def test_a_second_berth_does_not_start_a_second_server(tmp_path: Path) -> None:
    """End to end: two `berth` processes on one data dir; then `berth serve` on it, refused too."""
    data = tmp_path / "data"
    env = berth_env(data)
    first = Running([*SOURCE, "app", "--rpc-port", "0"], data, env)
    try:
        endpoint = first.wait_serving()
        second = run([*SOURCE, "app", "--rpc-port", "0"], env)
        assert second.returncode == 0, second.stderr
        assert "brought its window to the front" in second.stderr
        first.wait_output("another berth was started on this data dir")
        assert first.endpoint() == endpoint  # still the first one's server, nobody else's
        headless = run([*SOURCE, "serve", "--rpc-port", "0"], env)
        assert headless.returncode == 1 and "already running" in headless.stderr
        assert first.proc.poll() is None
    finally:
        assert first.stop() == 0


@pytest.mark.slow
def test_a_window_is_refused_next_to_a_headless_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = berth_env(data)
    server = Running([*SOURCE, "serve", "--rpc-port", "0"], data, env)
    try:
        endpoint = server.wait_serving()
        window = run([*SOURCE, "app", "--rpc-port", "0"], env)
        assert window.returncode == 1, window.stderr
        assert "already running" in window.stderr and str(endpoint["url"]) in window.stderr
        assert server.endpoint() == endpoint
    finally:
        assert server.stop() == 0
