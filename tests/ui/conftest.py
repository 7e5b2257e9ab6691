"""UI tests: real widgets (offscreen) on a qasync loop, against the real engine where they need one.

Async tests here run on the app's own Qt-driven loop, `app.ui.qtloop.QtLoop` (pytest-asyncio's
loop-factory hook, scoped to this folder by pytest's per-directory conftest hooks), so Qt and asyncio
share one loop as in the app. Each test gets a fresh loop; the handover is clean because the harness
stops its Desktop completely and checks it: no task of the window or the core, no engine thread and
no other task on the loop is left when the test ends (a left-over task would be resumed by the next
test's loop, since Qt delivers every timer to whichever loop runs).
Never call `qtbot.wait*` inside an async test (a nested Qt loop inside a running task hangs):
await `wait_until` instead.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication

from app.config import Paths
from app.core.application import Application
from app.rpc.client import BerthClient
from app.runtime import Runtime
from app.ui.desktop import Desktop, make_qapp
from app.ui.qtloop import QtLoop


def _qt_loop() -> asyncio.AbstractEventLoop:
    app = make_qapp()  # pytest-qt may have made the QApplication: give it the app's settings (no quit on last window)
    return QtLoop(app)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Callable[[], Any]]:
    return {"qt": _qt_loop}


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> float:
    """Poll `predicate` on the loop (never a nested Qt loop); return the seconds it took."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def make_paths(root: Path, instance: str) -> Paths:
    paths = Paths(root, root / "state", root / "logs")
    paths.ensure()
    (root / "instance-id").write_text(instance + "\n")  # its containers carry the test's instance label
    return paths


class Harness:
    """A Desktop around a real Application and RPC server on a free port, with one agent."""

    def __init__(self, desktop: Desktop, runtime: Runtime, token: str) -> None:
        self.desktop = desktop
        self.runtime = runtime
        self.app = desktop.app
        self.panel = desktop.panel
        self.model = desktop.model
        self.window = desktop.window
        self.token = token

    def client(self) -> BerthClient:
        return BerthClient(self.runtime.rpc.url, self.token, timeout=60)

    async def rpc(self, method: str, **params: Any) -> Any:
        return await asyncio.to_thread(self.client().call, method, **params)


@pytest.fixture
async def harness(instance: str, tmp_path: Path, qapp: QApplication) -> AsyncIterator[Harness]:
    paths = make_paths(tmp_path / "data", instance)
    app = Application(paths, rpc_port=0)
    runtime = Runtime(app)
    desktop = Desktop(app, runtime)
    desktop.window.show()
    await desktop.start()
    _agent, token = await asyncio.to_thread(app.agents.add, "demo")
    await wait_until(lambda: desktop.feed.loaded_once, what="the first container list")
    try:
        yield Harness(desktop, runtime, token)
    finally:
        await desktop.stop()
        desktop.window.close()
        desktop.window.deleteLater()
    assert_nothing_left(desktop)


@pytest.fixture
async def offline_desktop(tmp_path: Path, qapp: object) -> AsyncIterator[tuple[Desktop, int]]:
    """A window on an endpoint where nothing answers, nor ever will: no engine is touched (so no `instance`
    fixture, whose clean-up asks the local engine)."""
    port = _free_port()
    paths = make_paths(tmp_path / "data", f"test-{secrets.token_hex(5)}")
    desktop = Desktop(Application(paths, engine_endpoint=f"tcp://127.0.0.1:{port}"))
    desktop.window.show()
    try:
        yield desktop, port
    finally:
        await desktop.stop()
        desktop.window.close()
    assert_nothing_left(desktop)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def collect_on_the_gui_thread() -> Iterator[None]:
    """After each test (and its harness), Python-owned QObjects of the test die here, on the GUI thread, rather
    than on whichever thread Python's collector happens to run next."""
    yield
    gc.collect()


def assert_nothing_left(desktop: Desktop) -> None:
    """After `Desktop.stop()`: no task of the window or core, no engine thread, no other task on this loop."""
    assert desktop.running_parts() == []
    current = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert others == [], f"tasks left on the loop after the desktop stopped: {others}"
