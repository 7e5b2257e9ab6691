"""Agent Settings against the real core, engine and RPC port: limits that the next run obeys, a new token."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from PySide6.QtWidgets import QDialog, QMessageBox, QPushButton

from app.errors import LimitReached, Unauthorized
from app.rpc.client import BerthClient
from app.ui.agent_dialogs import AddAgentDialog, AgentSettingsDialog, RemoveAgentDialog
from app.ui.agents_view import COL_CONTAINERS, AgentsView
from app.ui.token_dialog import TokenDialog
from tests.conftest import BUSYBOX
from tests.ui.conftest import Harness, wait_until

pytestmark = pytest.mark.engine


def view(h: Harness) -> AgentsView:
    return h.desktop.wiring.agents


async def dialog_of(v: AgentsView, kind: type[QDialog]) -> Any:
    await wait_until(lambda: any(isinstance(d, kind) and d.isVisible() for d in v.dialogs), what=kind.__name__)
    return next(d for d in v.dialogs if isinstance(d, kind) and d.isVisible())


async def test_edited_limits_apply_to_the_next_run(harness: Harness) -> None:
    h, v = harness, view(harness)
    h.window.show_view("agents")
    await wait_until(lambda: v.model.row_of("demo") >= 0, what="the agent row")
    assert v.select("demo")
    task = v.edit_selected()
    dialog: AgentSettingsDialog = await dialog_of(v, AgentSettingsDialog)
    dialog.form.max_containers.setValue(1)
    dialog.form.at_limit.setCurrentIndex(dialog.form.at_limit.findData("reject"))
    dialog.form.network.setChecked(False)
    saved = await dialog.save()
    assert saved is not None and saved.limits.max_containers == 1 and saved.limits.at_limit == "reject"
    dialog.reject()
    await task

    svc = await h.rpc("services.start", name="holder", image=BUSYBOX, command="sleep 300")
    with pytest.raises(LimitReached) as err:
        await h.rpc("containers.run", image=BUSYBOX, command="echo no room")
    assert err.value.code == -32003
    # The table shows the usage against the new limit.
    row = v.model.row_of("demo")
    await wait_until(lambda: v.model.index(row, COL_CONTAINERS).data() == "1 / 1", what="usage 1 / 1", timeout=8)
    await h.rpc("containers.remove", id=svc["id"], force=True)


async def test_added_agent_gets_a_token_that_works_over_rpc(harness: Harness) -> None:
    h, v = harness, view(harness)
    h.window.show_view("agents")
    # The harness adds "demo" from a thread; the view learns of it from the agents event, a moment later.
    await wait_until(lambda: v.model.row_of("demo") >= 0, what="the agent row")
    task = v.add_agent()
    add: AddAgentDialog = await dialog_of(v, AddAgentDialog)
    add.name.setText("demo")
    assert not add.add_button.isEnabled()  # taken
    add.name.setText("Bad Name")
    assert not add.add_button.isEnabled()
    add.name.setText("newbie")
    assert add.add_button.isEnabled()
    add.add_button.click()
    token = await task
    shown: TokenDialog = await dialog_of(v, TokenDialog)
    assert shown.token_field.text() == token
    snippet = shown.snippet.toPlainText()
    url = h.runtime.rpc.url
    assert f"BERTH_TOKEN={token}" in snippet and f"BERTH_URL={url}" in snippet and f"{url}/mcp" in snippet
    shown.copy_button.click()
    info = await asyncio.to_thread(BerthClient(url, token).call, "containers.list")
    assert info == [] or isinstance(info, list | dict)
    shown.close()

    # A new token replaces it: the old one stops working.
    assert v.select("newbie")
    task = v.rotate_selected()
    await wait_until(lambda: any(b.isVisible() for b in v.findChildren(QMessageBox, "confirmBox")), what="confirm")
    next(b for b in v.findChildren(QMessageBox, "confirmBox") if b.isVisible()).findChild(
        QPushButton, "confirm"
    ).click()
    new = await task
    assert new and new != token
    with pytest.raises(Unauthorized):
        await asyncio.to_thread(BerthClient(url, token).call, "containers.list")
    await asyncio.to_thread(BerthClient(url, new).call, "containers.list")


async def test_remove_asks_about_containers_and_workspace(harness: Harness) -> None:
    h, v = harness, view(harness)
    await h.rpc("services.start", name="leftover", image=BUSYBOX, command="sleep 300")
    await h.rpc("workspace.write", path="keep.txt", content="x")
    h.window.show_view("agents")
    await wait_until(lambda: v.model.row_of("demo") >= 0, what="the agent row")
    assert v.select("demo")
    task = v.remove_selected()
    dialog: RemoveAgentDialog = await dialog_of(v, RemoveAgentDialog)
    assert "1 container" in dialog.remove_containers.text()
    assert dialog.remove_containers.isChecked() and dialog.keep_workspace.isChecked()
    dialog.remove_button.click()
    assert await task
    assert await h.app.engine.list_containers({"berth.agent": "demo"}) == []
    assert (h.app.workspaces.path("demo") / "keep.txt").exists()
    with pytest.raises(Unauthorized):
        await h.rpc("containers.list")
