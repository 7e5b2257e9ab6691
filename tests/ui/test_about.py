"""Help > About: the version, the engine Berth talks to (checked in the background), the data and log folders."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

from app import __version__
from app.core.application import Application
from app.ui.about import CHECKING, AboutDialog
from tests.conftest import BUSYBOX
from tests.ui.conftest import Harness, make_paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def refreshed(dialog: AboutDialog, timeout: float = 20) -> None:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    dialog.refreshed.connect(lambda: done.done() or done.set_result(None))
    await asyncio.wait_for(done, timeout)


@pytest.fixture
async def no_engine_app(instance: str, tmp_path: Path, qapp: object) -> AsyncIterator[Application]:
    """An Application whose engine endpoint answers nobody (a closed local port)."""
    app = Application(make_paths(tmp_path / "data", instance), engine_endpoint=f"tcp://127.0.0.1:{free_port()}")
    yield app
    await app.engine.aclose()
    app.store.close()


async def test_about_shows_version_folders_and_a_missing_engine(
    no_engine_app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = no_engine_app
    dialog = AboutDialog(app)
    dialog.show()
    # The window is never held up: engine, RPC and keyring are still being checked in the background.
    assert dialog.engine_label.text() == CHECKING and dialog.keyring_label.text() == CHECKING
    assert __version__ in dialog.version_label.text()
    assert dialog.data_label.text() == str(app.paths.data_dir)
    assert dialog.log_label.text() == str(app.paths.log_dir)

    await refreshed(dialog)
    assert app.engine.endpoint in dialog.engine_label.text() and "not connected" in dialog.engine_label.text()
    assert not dialog.engine_hint.isHidden() and dialog.engine_hint.text()  # what to do about it
    assert "not listening" in dialog.rpc_label.text()  # no endpoint.json: no server runs on this data dir
    assert dialog.keyring_label.text() != CHECKING
    if app.vault.using_fallback:  # a headless machine: the dialog says where tokens are kept instead
        assert "file" in dialog.keyring_label.text()
        assert not dialog.keyring_warning.isHidden() and str(app.paths.tokens_file) in dialog.keyring_warning.text()

    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    dialog.open_data.click()
    dialog.open_logs.click()
    assert [u.toLocalFile() for u in opened] == [str(app.paths.data_dir), str(app.paths.log_dir)]
    dialog.close()


async def test_closing_at_once_cancels_the_checks(no_engine_app: Application) -> None:
    dialog = AboutDialog(no_engine_app)
    dialog.show()
    checks = dialog.checks
    assert checks is not None
    dialog.reject()
    with pytest.raises(asyncio.CancelledError):
        await checks  # nothing is left running against a closed dialog


@pytest.mark.engine
async def test_help_about_shows_the_connected_engine_and_the_rpc_address(harness: Harness) -> None:
    window = harness.window
    window.about_action.trigger()
    dialog = window.findChild(AboutDialog)
    assert isinstance(dialog, AboutDialog) and dialog.isVisible()
    await refreshed(dialog)
    info = await harness.app.engine.info()
    text = dialog.engine_label.text()
    assert "connected" in text and "not connected" not in text
    assert str(info.version) in text and info.endpoint in text
    assert harness.runtime.rpc.url in dialog.rpc_label.text()
    await harness.rpc("containers.run", image=BUSYBOX, command="true")  # a run: the pool's hit rate has a base
    await dialog.refresh()
    status = harness.app.pool_status()
    assert f"of {status.hits + status.misses} runs found a container ready" in dialog.pool_label.text()
    dialog.close()
