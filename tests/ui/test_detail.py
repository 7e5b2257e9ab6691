"""The Container Panel's detail pane against the real engine: live graphs, inspect with secrets hidden, Open
terminal's argv (the emulator is not started), and the notifications of a service that exits by itself."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from app.core.events import Event
from app.ui.container_detail import TAB_INSPECT, TAB_LOGS
from app.ui.inspect_model import HIDDEN
from tests.conftest import BUSYBOX, docker_cli
from tests.ui.conftest import Harness, wait_until

pytestmark = pytest.mark.engine

# Two spinning loops: the agent's quota (1 CPU) caps them at 100 %, and on a machine busy with other work
# two runnable threads still get well over half a CPU between them.
BUSY = "while :; do :; done & while :; do :; done"


async def _service(h: Harness, name: str, command: str, **params: object) -> str:
    svc = await h.rpc("services.start", name=name, image=BUSYBOX, command=command, **params)
    await wait_until(lambda: (r := h.model.get(svc["id"])) is not None and r.running, what=f"the {name} row")
    return str(svc["id"])


async def _details_of(h: Harness, cid: str) -> None:
    assert h.panel.select_key(cid)
    pane = h.panel.show_details()
    assert pane is not None and pane.isVisible() and pane.row is not None and pane.row.key == cid


async def test_a_busy_containers_graph_rises_above_half_a_cpu_and_an_idle_one_stays_low(harness: Harness) -> None:
    h = harness
    busy = await _service(h, "busy", BUSY)
    idle = await _service(h, "idle", "sleep 300")
    await _details_of(h, busy)
    pane = h.panel.details
    took = await wait_until(
        lambda: (pane.cpu.last_value or 0) > 50,
        timeout=5,
        what=f"the busy graph above 50 % (readings: {pane.cpu.values})",
    )
    assert pane.cpu.limit == 100.0  # the agent's quota: 1 CPU
    assert pane.memory.limit == 512 * 1024 * 1024 and (pane.memory.last_value or 0) > 0
    assert "limit" not in pane.cpu.summary() or "CPU" in pane.cpu.summary()
    print(f"busy graph above 50 % after {took:.1f} s")

    await _details_of(h, idle)
    await wait_until(lambda: len(pane.cpu.values) >= 3, timeout=8, what="three readings of the idle one")
    assert max(pane.cpu.values[1:]) < 5.0, pane.cpu.values  # the first reading has no interval to measure
    # Back to the busy one: its readings of the last minutes are still there (kept while Berth runs).
    await _details_of(h, busy)
    assert len(pane.cpu.values) >= 3 and max(pane.cpu.values) > 50


async def test_env_values_with_secret_names_are_hidden_until_clicked(harness: Harness) -> None:
    h = harness
    cid = await _service(h, "api", "sleep 300", env={"API_TOKEN": "x", "GREETING": "hello", "DB_PASSWORD": "pw1"})
    await _details_of(h, cid)
    pane = h.panel.details
    pane.tabs.setCurrentIndex(TAB_INSPECT)
    model = pane.inspect_model
    await wait_until(lambda: model.find("Environment", "API_TOKEN") >= 0, what="the inspect")
    token = model.find("Environment", "API_TOKEN")
    shown = model.index(token, 1).data()
    assert shown == HIDDEN and "x" not in shown.replace("(click to show)", "")
    assert model.index(model.find("Environment", "DB_PASSWORD"), 1).data() == HIDDEN
    assert model.index(model.find("Environment", "GREETING"), 1).data() == "hello"
    # The rest of the inspect: command, limits, network and mount.
    items = {(i.section, i.name): i.value for i in model.items()}
    assert items[("Container", "Command")] == "/bin/sh -c 'sleep 300'"
    assert items[("Limits", "Memory")].startswith("512 MiB")
    assert items[("Limits", "Protection")] == "all capabilities dropped, no new privileges, init process"
    assert items[("Mounts", "/workspace")].endswith("(bind, read-write)")
    # Copy keeps it hidden; a click shows it, another hides it again.
    pane.inspect.selectRow(token)
    pane.copy_inspect()
    from PySide6.QtWidgets import QApplication

    assert QApplication.clipboard().text() == f"API_TOKEN: {HIDDEN}"
    pane._inspect_clicked(model.index(token, 1))
    assert model.index(token, 1).data() == "x"
    pane.reload()  # a reload (the container changed) keeps it shown
    await wait_until(lambda: pane.tasks.pending() == [], what="the reload")
    assert model.index(model.find("Environment", "API_TOKEN"), 1).data() == "x"
    pane._inspect_clicked(model.index(model.find("Environment", "API_TOKEN"), 1))
    assert model.index(model.find("Environment", "API_TOKEN"), 1).data() == HIDDEN


def _executable(path: Path, body: str = "exit 1") -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


async def test_open_terminal_builds_the_argv_for_the_found_emulator_and_audits_it(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator found on PATH gets `docker exec -it <id> sh` its own way (konsole: -e); it is not started
    here. Without one, the button is disabled and says why."""
    h = harness
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    konsole = _executable(bin_dir / "konsole")
    docker = _executable(bin_dir / "docker")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("TERMINAL", raising=False)
    cid = await _service(h, "shell-me", "sleep 300")
    await _details_of(h, cid)
    pane = h.panel.details
    started: list[list[str]] = []
    pane.start_process = lambda argv: started.append(argv) or True
    assert pane.terminal_button.isEnabled(), pane.why.text()
    pane.terminal_button.click()
    await wait_until(lambda: started, what="the terminal's argv")
    assert started == [
        [str(konsole), "-e", str(docker), "exec", "-it", cid, "sh", "-c",
         "command -v bash >/dev/null 2>&1 && exec bash || exec sh"]
    ]  # fmt: skip
    audit = await asyncio.to_thread(h.app.store.list_audit)
    entry = next(e for e in audit if e["action"] == "container.terminal")
    assert entry["actor"] == "you" and entry["target"] == cid and entry["detail"]["terminal"] == "konsole"

    konsole.unlink()
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + str(tmp_path / "nothing-here"))
    pane.show_row(pane.row)  # type: ignore[arg-type]
    assert not pane.terminal_button.isEnabled()
    assert "no terminal emulator found" in pane.why.text() and pane.why.isVisible()


async def test_the_logs_tab_follows_with_stderr_apart(harness: Harness) -> None:
    h = harness
    cid = await _service(h, "talker", "echo hello; echo 'oops' >&2; sleep 300")
    await _details_of(h, cid)
    pane = h.panel.details
    pane.tabs.setCurrentIndex(TAB_LOGS)
    view = pane.logs.view
    await wait_until(lambda: view.line_count() >= 2 and view.pending() == 0, what="both lines")
    lines = view.plain_text().splitlines()  # the engine keeps no order between the two streams
    assert sorted(lines) == ["hello", "oops"]
    assert view.is_stderr(lines.index("oops")) and not view.is_stderr(lines.index("hello"))


async def test_enter_opens_the_pane_beside_the_table_and_esc_closes_it(harness: Harness) -> None:
    h = harness
    cid = await _service(h, "web", "sleep 300")
    assert h.panel.select_key(cid)
    h.panel.table.setFocus()
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    QTest.keyClick(h.panel.table, Qt.Key.Key_Return)
    pane = h.panel.details
    assert pane.isVisible() and pane.title.text() == "web"
    assert h.panel.table.isColumnHidden(h.panel.table.model().columnCount() - 1)  # Age moves to the pane
    h.panel.hide_details()
    assert not pane.isVisible() and not h.panel.table.isColumnHidden(h.panel.table.model().columnCount() - 1)


async def test_docker_kill_of_a_service_raises_a_notification_and_a_stop_does_not(harness: Harness) -> None:
    """An outside `docker kill` (as a crash or the OOM killer would) is news; the person's own stop is not."""
    h = harness
    notifier = h.desktop.wiring.notifier
    killed = await _service(h, "fragile", "sleep 300")
    stopped = await _service(h, "calm", "sleep 300")

    await asyncio.to_thread(docker_cli, "kill", killed)
    await wait_until(lambda: any(n.request_id == f"service:{killed}" for n in notifier.sent), timeout=10,
                     what="the notification")  # fmt: skip
    note = next(n for n in notifier.sent if n.request_id == f"service:{killed}")
    assert note.title == "Service fragile stopped unexpectedly"
    assert "demo's service exited with code 137" in note.body
    assert "Service fragile stopped unexpectedly" in h.window.statusBar().currentMessage()

    seen: list[str] = []
    h.app.events.subscribe(lambda ev: seen.append(ev.data.action) if ev.data.id == stopped else None, "container.event")
    h.panel.select_key(stopped)
    assert await h.panel.stop_selected() == 1
    await wait_until(lambda: "stop" in seen and stopped not in h.app.alerts._pending, what="the stop event")
    assert not any(n.request_id == f"service:{stopped}" for n in notifier.sent)

    # The Setting turns it off.
    h.app.settings.notify_service_exits = False
    again = await _service(h, "fragile2", "sleep 300")
    alerts: list[Event] = []
    h.app.events.subscribe(alerts.append, "alert.service_exited")
    await asyncio.to_thread(docker_cli, "kill", again)
    await wait_until(lambda: alerts, timeout=10, what="the alert event")
    assert not any(n.request_id == f"service:{again}" for n in notifier.sent)


async def test_an_agent_starting_to_queue_raises_a_notification(harness: Harness) -> None:
    h = harness
    notifier = h.desktop.wiring.notifier
    await asyncio.to_thread(h.app.agents.set_limits, "demo", max_containers=1, at_limit="queue")
    first = asyncio.ensure_future(h.rpc("containers.run", image=BUSYBOX, command="sleep 2"))
    await wait_until(lambda: h.app.admission.active("demo") == 1, what="the first run")
    second = asyncio.ensure_future(h.rpc("containers.run", image=BUSYBOX, command="true"))
    await wait_until(lambda: any(n.request_id == "queue:demo" for n in notifier.sent), what="the notification")
    note = next(n for n in notifier.sent if n.request_id == "queue:demo")
    assert note.title == "demo is at its container limit" and "1 request waiting" in note.body
    await asyncio.gather(first, second)
