"""The engine-down banner: shown when the endpoint does not answer, gone by itself when it comes back."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.core.application import Application
from app.ui.desktop import Desktop
from tests.ui.conftest import make_paths, wait_until

pytestmark = pytest.mark.engine
DOCKER_SOCKET = "/var/run/docker.sock"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EngineProxy:
    """A TCP endpoint that forwards to the local engine's socket: "the engine is back" on demand."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(DOCKER_SOCKET)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in self.writers:
            w.close()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)


@pytest.fixture
async def down_desktop(instance: str, tmp_path: Path, qapp: object) -> AsyncIterator[tuple[Desktop, EngineProxy]]:
    port = free_port()
    app = Application(make_paths(tmp_path / "data", instance), engine_endpoint=f"tcp://127.0.0.1:{port}")
    desktop = Desktop(app)
    desktop.window.show()
    proxy = EngineProxy(port)
    try:
        yield desktop, proxy
    finally:
        await desktop.stop()
        await proxy.stop()
        desktop.window.close()


async def test_banner_while_the_engine_is_down_and_gone_when_it_is_back(
    down_desktop: tuple[Desktop, EngineProxy],
) -> None:
    desktop, proxy = down_desktop
    window = desktop.window
    await desktop.start()  # does not fail: Berth runs without an engine
    await wait_until(lambda: not window.banner.isHidden(), timeout=5, what="the banner")
    assert f"127.0.0.1:{proxy.port}" in window.banner.title.text()
    assert "DOCKER_HOST" in window.banner.hint.text()  # the engine layer's hint says what to do
    assert "disconnected" in window.engine_label.text()
    await wait_until(lambda: "Waiting for the Docker engine" in desktop.panel.empty.title.text(), what="empty state")
    assert "last check" in window.banner.note.text()  # when Berth last tried, and that it keeps trying
    assert not desktop.panel.filter_text.isEnabled()  # nothing to filter while nothing is listed
    asked: list[bool] = []
    window.settingsRequested.connect(lambda: asked.append(True))
    window.banner.change_button.click()  # "Change engine…" leads to the Settings, where the address is
    assert asked == [True]

    window.banner.retry_button.click()  # still down: says so, nothing freezes
    await wait_until(lambda: "Still no Docker engine" in window.statusBar().currentMessage(), what="retry answer")
    assert window.banner.retry_button.isEnabled()

    await proxy.start()  # the engine is back
    await wait_until(lambda: window.banner.isHidden(), timeout=15, what="the banner to go")
    assert "connected" in window.engine_label.text() and "dis" not in window.engine_label.text()
    await wait_until(lambda: "No containers yet" in desktop.panel.empty.title.text(), what="the normal empty state")
    assert desktop.panel.filter_text.isEnabled()
