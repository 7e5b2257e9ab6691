"""Settings -> Engines and the Engine choice in Agent Settings (issue #18), without a Docker engine: the local
engine is an address where nothing answers, and an engine the person added earlier (`gpu-box`) too."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.core.application import Application
from app.core.store import Store
from app.model import EngineConfig
from app.ui.add_engine_dialog import AddEngineDialog
from app.ui.agent_dialogs import AgentSettingsDialog
from app.ui.desktop import Desktop
from app.ui.engines_page import COL_AGENTS, COL_NAME, COL_STATE, LOCAL_TIP, EnginesPage
from app.ui.settings_dialog import SettingsDialog
from tests.ui.conftest import _free_port, assert_nothing_left, make_paths, wait_until


@pytest.fixture
async def two_engines(tmp_path: Path, qapp: object) -> AsyncIterator[Application]:
    """A real Application on two engines that never answer: `local` and `gpu-box`, added in an earlier session."""
    paths = make_paths(tmp_path / "data", f"test-{secrets.token_hex(5)}")
    store = Store(paths.db_path)
    store.add_engine(EngineConfig(name="gpu-box", host=f"tcp://127.0.0.1:{_free_port()}", files="sync"))
    store.close()
    desktop = Desktop(Application(paths, engine_endpoint=f"tcp://127.0.0.1:{_free_port()}"))
    try:
        yield desktop.app
    finally:
        await desktop.stop()
        await desktop.app.stop()  # never started, so `stop()` leaves it: the engines' threads asked here end
        desktop.window.close()
    assert_nothing_left(desktop)


async def engines_page(app: Application) -> tuple[SettingsDialog, EnginesPage]:
    dialog = SettingsDialog(app)
    dialog.show()
    assert dialog.engines.model.rowCount() == 0  # the engines are asked when the page is first shown
    dialog.tabs.setCurrentWidget(dialog.engines)
    await wait_until(lambda: dialog.engines.model.rowCount() == 2, what="the engines listed")
    return dialog, dialog.engines


async def open_add(page: EnginesPage) -> tuple[AddEngineDialog, asyncio.Task[object]]:
    task = page.add_engine()
    await wait_until(lambda: page.dialog is not None and page.dialog.isVisible(), what="the Add engine dialog")
    assert page.dialog is not None
    return page.dialog, task  # type: ignore[return-value]


async def test_the_tab_lists_local_first_and_local_cannot_be_removed(two_engines: Application) -> None:
    dialog, page = await engines_page(two_engines)
    model = page.model
    assert [model.index(r, COL_NAME).data() for r in range(model.rowCount())] == ["local", "gpu-box"]
    state = model.index(0, COL_STATE)
    assert state.data() == "not answering"
    assert "answers at tcp://127.0.0.1:" in state.data(Qt.ItemDataRole.ToolTipRole)  # the hint, in the tooltip
    assert model.index(0, COL_AGENTS).data() == "none"

    assert not page.remove_button.isEnabled()  # nothing chosen
    assert page.select("local")
    assert not page.remove_button.isEnabled() and page.remove_button.toolTip() == LOCAL_TIP
    assert page.select("gpu-box")
    assert page.remove_button.isEnabled()
    dialog.close()


async def test_test_connection_with_a_bad_address_says_so_and_adds_nothing(two_engines: Application) -> None:
    dialog, page = await engines_page(two_engines)
    add, task = await open_add(page)
    add.name.setText("build-box")
    add.address.setText(f"tcp://127.0.0.1:{_free_port()}")
    assert add.tls_ca.isEnabled()  # tcp:// asks for the TLS files
    info = await add.test_connection()
    assert info is not None and not info.available
    text = add.outcome.text()
    assert text.startswith("Engine 'build-box' does not answer at tcp://127.0.0.1:") and "check the network" in text
    assert add.test_button.isEnabled() and add.add_button.isEnabled() and add.progress.isHidden()
    assert two_engines.owner.engine_names() == ["local", "gpu-box"]
    add.reject()
    assert await task is None
    dialog.close()


async def test_add_with_an_invalid_name_shows_why_and_keeps_the_form(two_engines: Application) -> None:
    dialog, page = await engines_page(two_engines)
    add, task = await open_add(page)
    add.name.setText("Bad Name")
    add.address.setText("ssh://me@build-box")
    add.files_local.click()
    assert await add.add() is None
    assert "not a valid engine name" in add.outcome.text() and add.outcome.text().startswith("Not added:")
    assert add.isVisible()  # nothing lost: the person fixes the name and tries again
    assert (add.name.text(), add.address.text(), add.files_local.isChecked()) == (
        "Bad Name",
        "ssh://me@build-box",
        True,
    )
    assert two_engines.owner.engine_names() == ["local", "gpu-box"]
    add.reject()
    assert await task is None
    dialog.close()


async def test_remove_is_refused_while_an_agent_runs_there_and_says_what_to_do(two_engines: Application) -> None:
    await asyncio.to_thread(two_engines.agents.add, "trainer", engine="gpu-box")
    dialog, page = await engines_page(two_engines)
    assert page.model.index(page.model.row_of("gpu-box"), COL_AGENTS).data() == "trainer"
    assert page.select("gpu-box")
    assert await page.remove_selected() is False
    text = page.status.text()
    assert "Not removed: engine 'gpu-box' is used by trainer" in text and "Place those agents on another engine" in text
    assert two_engines.owner.engine_names() == ["local", "gpu-box"]
    dialog.close()


async def test_agent_settings_choose_the_engine_and_save_it_at_once(two_engines: Application) -> None:
    agent, _token = await asyncio.to_thread(two_engines.agents.add, "demo")
    dialog = AgentSettingsDialog(two_engines, agent)
    dialog.show()
    combo = dialog.engine_box
    assert [combo.itemText(i) for i in range(combo.count())] == ["local", "gpu-box"]
    assert combo.currentData() == "local"
    combo.setCurrentIndex(combo.findData("gpu-box"))  # saved as chosen, like every setting there
    await wait_until(lambda: dialog.status.text().startswith("Saved ✓"), what="the engine saved")
    assert "gpu-box" in dialog.status.text()
    assert (await asyncio.to_thread(two_engines.agents.get, "demo")).engine == "gpu-box"
    dialog.close()
