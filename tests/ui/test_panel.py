"""The Container Panel against the real engine: live updates, actions, finished runs."""

from __future__ import annotations

import asyncio
import time

import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QMessageBox, QPushButton

from app.core.events import Event
from app.errors import NotFound
from app.ui.container_feed import POOL_IDLE_NAME
from app.ui.container_model import COL_AGENT, COL_NAME, COL_STATUS, CONTAINER, RUN
from app.ui.status_delegate import StatusDelegate
from tests.conftest import BUSYBOX, docker_cli
from tests.ui.conftest import Harness, wait_until

pytestmark = pytest.mark.engine


def shown_names(h: Harness) -> set[str]:
    proxy = h.panel.proxy
    return {proxy.index(r, COL_NAME).data() for r in range(proxy.rowCount())}


async def test_service_started_over_rpc_appears_after_its_start_event(harness: Harness) -> None:
    """The row comes from the engine's start event (how fast is measured by bench/panel.py, not here)."""
    h = harness
    started: dict[str, float] = {}

    def on_event(ev: Event) -> None:
        if ev.data.action == "start":
            started.setdefault(ev.data.id, time.monotonic())

    h.app.events.subscribe(on_event, "container.event")
    # The empty state says what to do.
    await wait_until(lambda: "containers.run" in h.panel.empty.text.text(), what="the empty state")
    assert h.panel.stack.currentWidget() is h.panel.empty

    svc = await h.rpc("services.start", name="web", image=BUSYBOX, command="httpd -f -p 8080", ports=[8080])
    await wait_until(lambda: svc["id"] in started, what="the start event")
    await wait_until(lambda: (r := h.model.get(svc["id"])) is not None and r.running, what="the row")
    assert "web" in shown_names(h)
    assert h.panel.stack.currentWidget() is h.panel.table
    row = h.model.get(svc["id"])
    assert row is not None and row.agent == "demo" and row.kind == "service"
    assert row.ports["8080/tcp"].port == svc["ports"]["8080/tcp"]["port"]
    await wait_until(lambda: h.window.running_label.text() == "1 running", what="the running count")
    # Stats arrive for the running container within a couple of ticks.
    await wait_until(lambda: (r := h.model.get(svc["id"])) is not None and r.memory, timeout=5, what="stats")


async def test_container_made_with_docker_appears_and_docker_rm_removes_it(harness: Harness) -> None:
    h = harness
    cid = (
        await asyncio.to_thread(
            docker_cli,
            "run",
            "-d",
            "--init",
            "--label",
            f"berth.instance={h.app.instance}",
            "--label",
            "berth.agent=outsider",
            "--label",
            "berth.kind=service",
            "--name",
            f"berth-outsider-{h.app.instance}",
            BUSYBOX,
            "sleep",
            "300",
        )
    ).stdout.strip()
    await wait_until(lambda: h.model.get(cid) is not None, timeout=5, what="the docker-made container")
    await asyncio.to_thread(docker_cli, "rm", "-f", cid)
    await wait_until(lambda: h.model.get(cid) is None, timeout=5, what="the row to go")


async def test_stop_restart_remove_through_the_panel(harness: Harness) -> None:
    h = harness
    svc = await h.rpc("services.start", name="sleeper", image=BUSYBOX, command="sleep 300")
    cid = svc["id"]
    await wait_until(lambda: (r := h.model.get(cid)) is not None and r.running, what="the service row")
    assert h.panel.select_key(cid)
    assert h.panel.act_stop.isEnabled()

    assert await h.panel.stop_selected() == 1
    assert (await h.app.engine.inspect(cid)).status == "exited"
    await wait_until(lambda: h.model.get(cid).status_text == "stopped", what="stopped in the panel")  # type: ignore[union-attr]

    h.panel.select_key(cid)
    assert await h.panel.restart_selected() == 1
    assert (await h.app.engine.inspect(cid)).status == "running"
    await wait_until(lambda: h.model.get(cid).running, what="running again")  # type: ignore[union-attr]

    # Remove asks first: Cancel keeps it.
    h.panel.select_key(cid)
    task = h.panel.remove_selected()
    box = await _confirm_box(h)
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert await task == 0
    assert (await h.app.engine.inspect(cid)).status == "running"

    h.panel.select_key(cid)
    task = h.panel.remove_selected()
    box = await _confirm_box(h)
    assert "running" in box.informativeText()
    box.findChild(QPushButton, "confirm").click()
    assert await task == 1
    with pytest.raises(NotFound):
        await h.app.engine.inspect(cid)
    await wait_until(lambda: h.model.get(cid) is None, what="the row to go")


async def test_remove_several_at_once(harness: Harness) -> None:
    h = harness
    ids = [(await h.rpc("services.start", name=f"s{i}", image=BUSYBOX, command="sleep 300"))["id"] for i in range(3)]
    await wait_until(lambda: all(h.model.get(i) is not None for i in ids), what="three rows")
    h.panel.table.selectAll()
    assert len([r for r in h.panel.selected_rows() if r.type == CONTAINER]) == 3
    task = h.panel.remove_selected()
    box = await _confirm_box(h)
    assert "3 containers" in box.text()
    box.findChild(QPushButton, "confirm").click()
    assert await task == 3
    await wait_until(lambda: not any(h.model.get(i) for i in ids), what="all rows to go")


async def test_finished_run_shows_exit_code_and_output(harness: Harness) -> None:
    h = harness
    result = await h.rpc("containers.run", image=BUSYBOX, command="echo hello-from-run; echo oops >&2; exit 3")
    assert result["exit_code"] == 3
    await wait_until(lambda: any(r.type == RUN for r in h.model.rows()), what="the finished run")
    run_row = next(r for r in h.model.rows() if r.type == RUN)
    assert run_row.status_text == "exited (3)"
    await wait_until(lambda: h.model.get(result["id"]) is None, what="the temporary container's row to go")
    assert h.panel.select_key(run_row.key)
    (window,) = h.panel.open_logs()
    await asyncio.wait_for(window.ended.wait(), 5)
    await wait_until(lambda: window.view.pending() == 0, what="the output shown")
    text = window.view.text.toPlainText()
    assert "hello-from-run" in text and "oops" in text
    assert "exit code 3" in window.state.text()
    window.close()


async def test_waiting_work_is_shown(harness: Harness) -> None:
    h = harness
    await asyncio.to_thread(h.app.agents.set_limits, "demo", max_containers=1, at_limit="queue")
    first = asyncio.ensure_future(h.rpc("containers.run", image=BUSYBOX, command="sleep 2"))
    await wait_until(lambda: h.app.admission.active("demo") == 1, what="the first run")
    await wait_until(
        lambda: any(r.type == CONTAINER and r.kind == "temporary" and r.running for r in h.model.rows()),
        timeout=3,
        what="the running temporary container",
    )
    second = asyncio.ensure_future(h.rpc("containers.run", image=BUSYBOX, command="true"))
    await wait_until(lambda: any(r.type == "waiting" for r in h.model.rows()), what="the queued request")
    waiting = next(r for r in h.model.rows() if r.type == "waiting")
    assert "queued" in waiting.status_text and "next" in waiting.status_text
    # The person sees it in the table (through the sort/filter proxy), as the agent's queued work.
    shown = [
        r for r in range(h.panel.proxy.rowCount()) if h.panel.proxy.index(r, COL_STATUS).data() == waiting.status_text
    ]
    assert len(shown) == 1, f"the queued request should be one row of the table, found {len(shown)}"
    assert h.panel.proxy.index(shown[0], COL_AGENT).data() == "demo"
    # The counts add up to the rows: the running run, the queued one (and no finished run yet).
    await wait_until(lambda: "1 queued" in h.panel.summary.text(), what="the counts")
    assert h.panel.summary.text() == "1 container (1 running) · 0 finished runs · 1 queued"
    await asyncio.gather(first, second)
    await wait_until(lambda: not any(r.type == "waiting" for r in h.model.rows()), what="the queue to empty")
    await wait_until(
        lambda: h.panel.summary.text() == "0 containers (0 running) · 2 finished runs", what="the counts after"
    )


async def _confirm_box(h: Harness) -> QMessageBox:
    found: list[QMessageBox] = []

    def visible_box() -> bool:
        found[:] = [b for b in h.panel.findChildren(QMessageBox, "confirmBox") if b.isVisible()]
        return bool(found)

    await wait_until(visible_box, timeout=3, what="the confirmation")
    return found[0]


async def test_warm_pool_is_a_group_of_its_own_and_a_pooled_run_shows_as_the_agents(harness: Harness) -> None:
    h = harness
    await h.rpc("containers.run", image=BUSYBOX, command="true")  # the pool learns the key and warms one

    def idle_pool() -> list[str]:
        return [r.key for r in h.model.rows() if r.kind == "pool"]

    await wait_until(lambda: idle_pool(), timeout=15, what="a warm pool container")
    row = h.model.get(idle_pool()[0])
    assert row is not None and row.agent == "demo"
    await wait_until(lambda: h.panel.pool_box.text() == f"Pre-started ({len(idle_pool())})", what="the pool count")
    assert h.window.running_label.text() == "0 running"  # idle pool containers are not the agent's
    hidden = {h.panel.proxy.index(r, COL_NAME).data() for r in range(h.panel.proxy.rowCount())}
    assert POOL_IDLE_NAME not in hidden
    h.panel.pool_box.setChecked(True)
    assert POOL_IDLE_NAME in shown_names(h)
    h.panel.pool_box.setChecked(False)

    await wait_until(lambda: (st := h.app.engine.pool.status()).idle >= 1 and not st.filling, what="a ready one")
    warm = set(idle_pool())
    task = asyncio.ensure_future(h.rpc("containers.run", image=BUSYBOX, command="sleep 2; echo pooled"))

    def serving() -> list[str]:
        return [k for k in warm if (r := h.model.get(k)) is not None and r.kind == "temporary"]

    await wait_until(serving, timeout=10, what="the pooled run")
    served = h.model.get(serving()[0])
    assert served is not None and served.agent == "demo" and "sleep 2" in served.name
    assert (await task)["stdout"] == "pooled\n"


async def test_a_restart_from_the_panel_is_admitted_like_the_agents_own(harness: Harness) -> None:
    """The panel used to restart a stopped service straight on the engine: an agent at `max_containers` got
    one more running container than its limit. Now the person's restart goes through admission too, and is
    in the audit log as "you"."""
    h = harness
    await asyncio.to_thread(h.app.agents.set_limits, "demo", max_containers=1, at_limit="reject")
    first = await h.rpc("services.start", name="first", image=BUSYBOX, command="sleep 300")
    await wait_until(lambda: (r := h.model.get(first["id"])) is not None and r.running, what="the first service")
    h.panel.select_key(first["id"])
    assert await h.panel.stop_selected() == 1
    second = await h.rpc("services.start", name="second", image=BUSYBOX, command="sleep 300")  # takes the slot
    await wait_until(lambda: h.model.get(first["id"]) is not None, what="the stopped service row")
    h.panel.select_key(first["id"])
    assert await h.panel.restart_selected() == 0  # refused: the agent is at its limit
    assert (await h.app.owner.inspect(first["id"])).status != "running"
    await h.rpc("containers.remove", id=second["id"], force=True)
    h.panel.select_key(first["id"])
    assert await h.panel.restart_selected() == 1  # room again
    audit = await asyncio.to_thread(h.app.store.list_audit)
    assert any(e["action"] == "container.restart" and e["actor"] == "you" for e in audit)


async def test_clear_finished_runs_empties_the_list_but_history_keeps_them(harness: Harness) -> None:
    h = harness
    svc = await h.rpc("services.start", name="keep", image=BUSYBOX, command="sleep 300")
    for word in ("alpha", "beta"):
        await h.rpc("containers.run", image=BUSYBOX, command=f"echo {word}")
    await wait_until(lambda: sum(r.type == RUN for r in h.model.rows()) == 2, what="two finished runs")
    await wait_until(lambda: "2 finished runs" in h.panel.summary.text(), what="the counts")
    assert h.panel.act_clear_runs.isEnabled()
    assert await h.panel.clear_finished_runs() == 2
    assert not any(r.type == RUN for r in h.model.rows())
    assert h.model.get(svc["id"]) is not None  # containers stay
    await wait_until(  # the last run's container goes a moment after its run is recorded
        lambda: h.panel.summary.text().startswith("1 container (1 running) · 0 finished runs"), what="the counts"
    )
    assert not h.panel.act_clear_runs.isEnabled()
    assert (await h.app.owner.search_history("beta")).total == 1  # nothing lost
    await h.rpc("containers.run", image=BUSYBOX, command="echo gamma")  # later runs show again
    await wait_until(lambda: sum(r.type == RUN for r in h.model.rows()) == 1, what="the new run")
    h.panel.feed.spawn(h.panel.feed.load_runs())  # as at the next start: the cleared ones stay off the list
    await wait_until(lambda: h.panel.feed.tasks.pending() == [], what="the reload")
    assert [r.full_name for r in h.model.rows() if r.type == RUN] == ["echo gamma"]


async def test_status_is_a_dot_and_a_word_readable_when_selected(harness: Harness) -> None:
    """The Status cell paints a coloured dot and the word in the text colour (the highlighted-text colour on a
    selected row), never coloured text on the selection."""
    h = harness
    svc = await h.rpc("services.start", name="dotted", image=BUSYBOX, command="sleep 300")
    await wait_until(lambda: (r := h.model.get(svc["id"])) is not None and r.running, what="the row")
    assert isinstance(h.panel.table.itemDelegateForColumn(COL_STATUS), StatusDelegate)
    h.panel.select_key(svc["id"])
    row = next(r for r in range(h.panel.proxy.rowCount()) if h.panel.proxy.index(r, COL_NAME).data() == "dotted")
    rect = h.panel.table.visualRect(h.panel.proxy.index(row, COL_STATUS))
    image = h.panel.table.viewport().grab(rect).toImage()
    dot = image.pixelColor(8 + 4, rect.height() // 2)  # the dot's centre
    assert dot.green() > dot.red() and dot.green() > 90, dot.name()  # green: running
    text_colours = {
        image.pixelColor(x, y).name()
        for x in range(24, min(rect.width(), 80))
        for y in range(rect.height())
        if image.pixelColor(x, y).lightness() < 100
    }
    assert text_colours, "the word is drawn"
    assert all(QColor(c).green() - QColor(c).red() < 40 for c in text_colours), text_colours  # not green text
