"""The engine-down banner: shown when the endpoint does not answer, gone by itself when it comes back;
its Start Docker button (with a fake runner: these tests never start or stop an engine)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.core.application import Application
from app.core.engine_start import StartFacts
from app.host import ShellResult
from app.ui.desktop import Desktop
from tests.ui.conftest import make_paths, wait_until

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


@pytest.mark.engine
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


class FakeRunner:
    """Stands in for the host runner: records the argv, answers when the test lets it, starts nothing."""

    def __init__(self, result: ShellResult) -> None:
        self.result = result
        self.ran: list[list[str]] = []
        self.go = asyncio.Event()

    async def __call__(self, argv: list[str], timeout_s: float) -> ShellResult:
        self.ran.append(list(argv))
        await self.go.wait()
        return self.result


async def test_start_docker_is_disabled_for_a_remote_engine_and_says_why(
    offline_desktop: tuple[Desktop, int],
) -> None:
    desktop, port = offline_desktop
    banner = desktop.window.banner
    await desktop.start()
    await wait_until(lambda: not banner.isHidden(), timeout=5, what="the banner")
    await wait_until(lambda: "tcp://" in banner.start_button.toolTip(), what="the start plan")
    assert banner.start_button.text() == "Start Docker"
    assert not banner.start_button.isEnabled()  # Berth cannot start an engine reached over tcp://
    tip = banner.start_button.toolTip()
    assert f"tcp://127.0.0.1:{port}" in tip and "start it where it runs" in tip and "Change engine" in tip


async def test_start_docker_runs_the_planned_command_and_shows_its_failure(
    offline_desktop: tuple[Desktop, int],
) -> None:
    desktop, _port = offline_desktop
    window, app = desktop.window, desktop.app
    banner = window.banner
    stderr = (
        "Job for docker.service failed because the control process exited with error code.\n"
        'See "systemctl status docker.service" and "journalctl -xeu docker.service" for details.'
    )
    runner = FakeRunner(ShellResult(1, "", stderr))
    starter = app.owner.engine_starter
    starter.run = runner
    starter.facts = StartFacts("linux", 0, {"systemctl"}, "unix:///var/run/docker.sock", systemd=True)
    await desktop.start()
    await wait_until(lambda: not banner.isHidden(), timeout=5, what="the banner")
    await wait_until(lambda: banner.start_button.isEnabled(), what="Start Docker to be enabled")
    assert banner.start_button.toolTip() == "Runs `systemctl start docker`"

    banner.start_button.click()
    await wait_until(lambda: runner.ran, what="the command to run")
    assert runner.ran == [["systemctl", "start", "docker"]]
    assert banner.start_button.text() == "Starting…" and not banner.start_button.isEnabled()
    runner.go.set()
    await wait_until(lambda: not banner.failure.isHidden(), what="the failure in the banner")
    text = banner.failure.text()
    assert "Could not start Docker" in text and "<code>systemctl start docker</code> failed (exit 1)" in text
    assert "the control process exited with error code" in text  # the command's stderr tail
    assert "What to do" in text and "journalctl -u docker" in text
    assert banner.start_button.text() == "Start Docker" and banner.start_button.isEnabled()
    assert "Could not start Docker" in window.statusBar().currentMessage()
    entry = (await asyncio.to_thread(app.store.list_audit, 5))[0]
    assert (entry["action"], entry["actor"], entry["detail"]) == ("engine.start", "you", {"argv": runner.ran[0]})

    # Started, but the engine does not answer yet: no failure, Berth says it keeps trying.
    runner.result = ShellResult(0, "", "")
    starter.settle_s = 0.3
    banner.start_button.click()
    await wait_until(lambda: "connects by itself" in window.statusBar().currentMessage(), what="the start answer")
    assert banner.failure.isHidden()
    assert banner.start_button.isEnabled()
