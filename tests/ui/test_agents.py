"""Agent Settings against the real core, engine and RPC port: limits that the next run obeys, a new token."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QMessageBox, QPushButton

from app.errors import InvalidParams, LimitReached, Unauthorized
from app.rpc.client import BerthClient
from app.ui.agent_dialogs import AddAgentDialog, AgentSettingsDialog, RemoveAgentDialog
from app.ui.agents_view import (
    BAR_ROLE,
    COL_CONTAINERS,
    COL_CPU,
    COL_LAST_USED,
    COL_MEMORY,
    COL_NETWORK,
    COL_QUEUE,
    COL_WORKSPACE,
    AgentsView,
)
from app.ui.agents_view import (
    COL_NAME as AGENT_COL_NAME,
)
from app.ui.container_model import COL_NAME
from app.ui.patterns_editor import COL_ACCESS
from app.ui.token_dialog import TokenDialog
from tests.conftest import BUSYBOX
from tests.ui.conftest import Harness, wait_until
from tests.ui.test_approvals import choose_folder

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
    await wait_until(
        lambda: v.model.index(row, COL_CONTAINERS).data() == "1 of 1 · at limit", what="usage 1 of 1", timeout=8
    )
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


async def open_settings(v: AgentsView, name: str = "demo") -> tuple[AgentSettingsDialog, Any]:
    await wait_until(lambda: v.model.row_of(name) >= 0, what="the agent row")
    assert v.select(name)
    task = v.edit_selected()
    return await dialog_of(v, AgentSettingsDialog), task


async def test_host_folders_are_granted_and_taken_back(harness: Harness, tmp_path: Path) -> None:
    """Attack: an agent runs host commands in a folder the person never gave it; the request is refused
    until the folder is granted here, and again once it is removed. A folder that cannot be granted (a
    file, Berth's own data) is refused with the reason and the list stays as it was."""
    h, v = harness, view(harness)
    project = tmp_path / "project"
    project.mkdir()
    with pytest.raises(InvalidParams):
        await h.rpc("shell.request", command="ls", cwd=str(project), wait_s=0)
    h.window.show_view("agents")
    dialog, task = await open_settings(v)
    dialog.tabs.setCurrentIndex(2)
    folders = dialog.host_folders
    assert folders.folders() == [] and not folders.remove_button.isEnabled()

    await choose_folder(folders, project)
    await wait_until(lambda: folders.folders() == [str(project)], what="the granted folder in the list")
    assert h.app.agents.get("demo").host_folders == (str(project),)
    assert not dialog.host_folders_error.isVisible()
    r = await h.rpc("shell.request", command="ls", cwd=str(project), wait_s=0)
    assert r["status"] == "pending"  # allowed to ask there now
    await h.app.approvals.decide(r["request_id"], "deny")

    # A file, then Berth's own data folder: refused, said in the dialog, nothing lost.
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert await dialog.add_host_folder(str(a_file)) is None
    assert dialog.host_folders_error.isVisible() and "not an existing folder" in dialog.host_folders_error.text()
    await choose_folder(folders, h.app.workspaces.path("demo"))
    await wait_until(lambda: "Berth's own folder" in dialog.host_folders_error.text(), what="the refusal")
    assert folders.folders() == [str(project)] and h.app.agents.get("demo").host_folders == (str(project),)
    assert dialog.host_folders_error.textFormat() == Qt.TextFormat.PlainText

    assert folders.select(str(project)) and folders.remove_button.isEnabled()
    folders.remove_button.click()
    await wait_until(lambda: folders.folders() == [], what="the folder removed")
    assert h.app.agents.get("demo").host_folders == () and not dialog.host_folders_error.isVisible()
    with pytest.raises(InvalidParams):
        await h.rpc("shell.request", command="ls", cwd=str(project), wait_s=0)
    dialog.reject()
    await task


async def test_patterns_editor_shows_and_sets_full_access(harness: Harness) -> None:
    """Attack: a pattern silently gets full access, or a wildcard after a program that runs code from its
    arguments looks harmless; the editor says both as the pattern is typed and shows each pattern's access."""
    h, v = harness, view(harness)
    h.window.show_view("agents")
    dialog, task = await open_settings(v)
    dialog.tabs.setCurrentIndex(1)
    ed = dialog.patterns
    assert not ed.full_access.isChecked()
    ed.pattern.setText("make *")
    (warning,) = ed.warnings.texts()
    assert "“make” with any arguments can run any code" in warning and ed.warnings.isVisible()
    ed.pattern.setText("ls -1")
    assert ed.warnings.texts() == [] and not ed.warnings.isVisible()
    ed.full_access.setChecked(True)
    assert any("Full access" in w and "outside any sandbox" in w for w in ed.warnings.texts())
    added = await ed.save_pattern()
    assert added is not None and added.access == "host"
    assert [(p.pattern, p.access) for p in h.app.approvals.list_patterns("demo", False)] == [("ls -1", "host")]
    assert ed.model.index(0, COL_ACCESS).data() == "full access" and not ed.full_access.isChecked()
    ed.try_command.setText("ls -1")
    assert ed.try_result.text().startswith("✔ In the sandbox, runs without asking")
    assert ed.try_full.text().startswith("⚠ Asking for full access, runs as you without asking")

    # Edit it back to the sandbox: the same pattern, its access changed.
    ed.table.selectRow(0)
    ed.edit_selected()
    assert ed.full_access.isChecked()
    ed.full_access.setChecked(False)
    saved = await ed.save_pattern()
    assert saved is not None and saved.access == "sandbox" and saved.id == added.id
    assert ed.model.index(0, COL_ACCESS).data() == "sandbox"
    assert ed.try_full.text().startswith("✘ Asking for full access, would ask you first")
    assert h.app.approvals.check("demo", "ls -1", "host").allowed is False
    assert h.app.approvals.check("demo", "ls -1", "sandbox").allowed is True
    dialog.reject()
    await task


async def test_the_agents_network_and_its_services_are_shown(harness: Harness) -> None:
    """Agents view: the network column names the services other containers of the agent reach by name; the
    Container Panel says the same in the service's tooltip."""
    h, v = harness, view(harness)
    h.window.show_view("agents")
    await wait_until(lambda: v.model.row_of("demo") >= 0, what="the agent row")
    svc = await h.rpc("services.start", name="db", image=BUSYBOX, command="sleep 300")
    row = v.model.row_of("demo")
    cell = v.model.index(row, COL_NETWORK)
    await wait_until(lambda: cell.data() == "on · db", what="the service in the network column", timeout=15)
    tip = cell.data(Qt.ItemDataRole.ToolTipRole)
    assert f"berth.{h.app.instance}.demo" in tip and "db" in tip
    await wait_until(lambda: h.model.get(svc["id"]) is not None, what="the service row")
    panel_row = next(i for i, r in enumerate(h.model.rows()) if r.key == svc["id"])
    name_tip = h.model.index(panel_row, COL_NAME).data(Qt.ItemDataRole.ToolTipRole)
    assert "reachable as 'db'" in name_tip
    await h.rpc("containers.remove", id=svc["id"], force=True)


async def test_the_command_line_acts_through_the_running_app_and_the_window_shows_it(harness: Harness) -> None:
    """`berth trust add` and `berth agents add` while the window is open: they go through this running core,
    so an open Settings dialog lists the pattern and the Agents view the agent, without a reload."""
    h = harness
    h.window.show_view("agents")
    dialog = h.desktop.wiring.open_settings()
    await wait_until(lambda: dialog.patterns.model.rowCount() >= 0 and dialog.isVisible(), what="the Settings dialog")

    def berth(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "app", "--data-dir", str(h.app.paths.data_dir), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)

    await asyncio.to_thread(berth, "trust", "add", "uname -a")
    stored = [p.pattern for p in await asyncio.to_thread(h.app.approvals.list_patterns)]
    audit = [(e["action"], e["actor"]) for e in await asyncio.to_thread(h.app.store.list_audit)]
    assert "uname -a" in stored and ("trust.add", "you") in audit, (stored, audit)  # through the running core
    try:
        await wait_until(
            lambda: any(p.pattern == "uname -a" for p in dialog.patterns.model.patterns()),
            what="the pattern in the open dialog",
            timeout=20,  # a CLI process, an RPC call, an event and a reload in a thread, on a loaded machine
        )
    except AssertionError:
        shown = [p.pattern for p in dialog.patterns.model.patterns()]
        raise AssertionError(f"the dialog shows {shown}; the store has {stored}; open: {dialog.isVisible()}") from None
    await asyncio.to_thread(berth, "agents", "add", "from-cli")
    v = view(h)
    await wait_until(lambda: v.model.row_of("from-cli") >= 0, what="the agent in the Agents view", timeout=5)
    audit = await asyncio.to_thread(h.app.store.list_audit)
    assert any(e["action"] == "trust.add" and e["actor"] == "you" for e in audit)
    dialog.close()


async def test_agents_usage_bars_show_real_usage(harness: Harness) -> None:
    """Agents view at a glance: live bars of CPU against the quota, containers against the maximum, the largest
    container's memory against the cap, and the queue once requests wait at the limit -- from real containers."""
    h, v = harness, view(harness)
    await asyncio.to_thread(h.app.agents.set_limits, "demo", max_containers=2, at_limit="queue", queue_timeout_s=60)
    h.window.show_view("agents")
    await v.reload()
    row = v.model.row_of("demo")
    assert v.model.index(row, COL_LAST_USED).data() == "never"
    assert v.model.index(row, COL_WORKSPACE).data() == str(h.app.workspaces.path("demo"))
    busy = await h.rpc("services.start", name="busy", image=BUSYBOX, command="sh -c 'while :; do :; done'")
    idle = await h.rpc("services.start", name="idle", image=BUSYBOX, command="sleep 300")

    def bar(col: int) -> tuple[float, float, str]:
        value = v.model.index(row, col).data(BAR_ROLE)
        return value if value is not None else (0.0, 1.0, "")

    await wait_until(lambda: bar(COL_CPU)[0] > 20, what="the busy container's CPU on the bar", timeout=20)
    _value, maximum, text = bar(COL_CPU)
    assert maximum == 100 and text.endswith("of 100 %")  # 1 CPU = 100 %, as on the Containers page
    assert bar(COL_CONTAINERS)[:2] == (2, 2) and "at limit" in bar(COL_CONTAINERS)[2]
    assert v.model.index(row, COL_CONTAINERS).data(Qt.ItemDataRole.ForegroundRole) is not None  # marked
    assert v.model.index(row, AGENT_COL_NAME).data(Qt.ItemDataRole.DecorationRole) is not None
    largest, cap, _text = bar(COL_MEMORY)
    assert 0 < largest < cap == h.app.agents.get("demo").limits.memory
    assert v.model.index(row, COL_LAST_USED).data().endswith("ago")  # the token was just used

    # At the limit, a run waits: the queue shows it, and goes once a slot frees.
    queued = asyncio.ensure_future(h.rpc("containers.run", image=BUSYBOX, command="echo from the queue"))
    await wait_until(lambda: v.model.index(row, COL_QUEUE).data() == "1 waiting", what="the queue", timeout=10)
    await h.rpc("containers.remove", id=idle["id"], force=True)
    result = await queued
    assert result["stdout"] == "from the queue\n"
    await wait_until(lambda: v.model.index(row, COL_QUEUE).data() == "–", what="the queue empty", timeout=10)
    await h.rpc("containers.remove", id=busy["id"], force=True)
