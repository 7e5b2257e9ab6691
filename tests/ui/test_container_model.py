"""The Container Panel's model and filter without widgets or an engine: incremental updates, sorting, filtering."""

from __future__ import annotations

import time
from typing import Any

import pytest
from PySide6.QtCore import Qt

from app.model import ContainerInfo, Kind, PortBinding, RunRecord, Stats
from app.ui.container_model import (
    COL_AGE,
    COL_CPU,
    COL_KIND,
    COL_MEMORY,
    COL_NAME,
    COL_PORTS,
    COL_STATUS,
    PORTS_ROLE,
    ROW_ROLE,
    ContainerFilter,
    ContainerTableModel,
    row_from_run,
    summary_text,
    waiting_row,
)


def info(cid: str, name: str, *, agent: str = "alice", kind: Kind = Kind.SERVICE, status: str = "running", **kw: Any):
    return ContainerInfo(
        id=cid,
        name=name,
        full_name=f"berth-{agent}-{name}",
        agent=agent,
        kind=kind,
        status=status,
        image=kw.pop("image", "berth/busybox:latest"),
        created=kw.pop("created", time.time() - 60),
        **kw,
    )


def run_record(run_id: int, exit_code: int = 0, agent: str = "bob") -> RunRecord:
    now = time.time()
    return RunRecord(run_id, agent, f"c{run_id}", "berth/python:3", "echo hi", exit_code, "hi\n", "", False, False,
                     False, now - 1, now)  # fmt: skip


@pytest.fixture
def model(qtmodeltester: Any) -> ContainerTableModel:
    m = ContainerTableModel()
    m.update_container(info("a" * 64, "web", ports={"80/tcp": PortBinding("127.0.0.1", 49153)}))
    m.update_container(info("b" * 64, "db", agent="bob"))
    m.update_container(info("c" * 64, "tmp-1", kind=Kind.TEMPORARY, status="exited", exit_code=1))
    m.upsert(row_from_run(run_record(7, exit_code=3)))
    qtmodeltester.check(m)
    return m


def record_changes(m: ContainerTableModel) -> list[tuple[int, int, int]]:
    seen: list[tuple[int, int, int]] = []
    m.dataChanged.connect(lambda tl, br, _roles=None: seen.append((tl.row(), tl.column(), br.column())))
    return seen


def test_rows_and_texts(model: ContainerTableModel) -> None:
    assert model.rowCount() == 4
    texts = {model.index(r, COL_NAME).data(): model.index(r, COL_STATUS).data() for r in range(4)}
    assert texts == {"web": "running", "db": "running", "tmp-1": "exited (1)", "#7 echo hi": "exited (3)"}
    web = next(r for r in range(4) if model.index(r, COL_NAME).data() == "web")
    assert model.index(web, COL_PORTS).data(PORTS_ROLE) == [("49153→80", "http://127.0.0.1:49153")]
    assert model.index(web, COL_NAME).data(ROW_ROLE).full_name == "berth-alice-web"
    assert "berth-alice-web" in model.index(web, COL_NAME).data(Qt.ItemDataRole.ToolTipRole)


def test_stats_change_only_their_cells(model: ContainerTableModel) -> None:
    changes = record_changes(model)
    model.set_stats({"a" * 64: Stats(12.5, 10 * 1024 * 1024, 512 * 1024 * 1024)})
    row = model._index["a" * 64]
    assert changes == [(row, COL_CPU, COL_MEMORY)]  # one signal for the two cells, nothing else
    assert model.index(row, COL_CPU).data() == "12.5 %"
    assert model.index(row, COL_MEMORY).data() == "10 MiB / 512 MiB"
    changes.clear()
    model.set_stats({"a" * 64: Stats(12.5, 10 * 1024 * 1024, 512 * 1024 * 1024)})  # same sample: nothing to repaint
    assert changes == []
    model.set_stats({"c" * 64: Stats(1.0, 1, None), "gone": Stats(1.0, 1, None)})  # not running / unknown: ignored
    assert changes == []
    b = model._index["b" * 64]
    model.set_stats({"a" * 64: Stats(1.0, 1, None), "b" * 64: Stats(2.0, 1, None)})  # neighbours: one range
    assert changes == [(min(row, b), COL_CPU, COL_MEMORY)]


def test_incremental_update_of_one_container(model: ContainerTableModel) -> None:
    changes = record_changes(model)
    inserted: list[int] = []
    model.rowsInserted.connect(lambda _p, first, _last: inserted.append(first))
    row = model._index["b" * 64]
    model.update_container(info("b" * 64, "db", agent="bob", status="exited", exit_code=143))
    assert changes == [(row, COL_STATUS, COL_STATUS)] or all(r == row for r, _a, _b in changes)
    assert model.index(row, COL_STATUS).data() == "stopped"
    assert inserted == []
    model.update_container(info("d" * 64, "new"))
    assert inserted == [4]
    assert model.remove("b" * 64)
    assert not model.remove("b" * 64)
    assert [r.name for r in model.rows()] == ["web", "tmp-1", "#7 echo hi", "new"]
    assert model.get("d" * 64) is not None and model._index["d" * 64] == 3


def test_stopped_event_and_stats_reset(model: ContainerTableModel) -> None:
    model.set_stats({"a" * 64: Stats(50.0, 1024, None)})
    model.update_container(info("a" * 64, "web", status="exited", exit_code=0))
    model.mark_stopped("a" * 64)
    row = model._index["a" * 64]
    assert model.index(row, COL_STATUS).data() == "stopped"
    assert model.index(row, COL_CPU).data() == ""
    model.update_container(info("a" * 64, "web"))
    assert model.index(row, COL_STATUS).data() == "running"
    assert model.running_count() == 2


def test_sync_waiting_rows(model: ContainerTableModel) -> None:
    model.sync("waiting", [waiting_row("queue:alice:1", "alice", "run berth/python:3", "temporary", "queued · next")],
               prefix="wait:queue:alice:")  # fmt: skip
    assert model.rowCount() == 5
    model.sync("waiting", [], prefix="wait:queue:alice:")
    assert model.rowCount() == 4


def test_sorting_by_cpu_and_age(model: ContainerTableModel) -> None:
    proxy = ContainerFilter()
    proxy.setSourceModel(model)
    model.set_stats({"a" * 64: Stats(5.0, 1, None), "b" * 64: Stats(40.0, 1, None)})
    proxy.sort(COL_CPU, Qt.SortOrder.DescendingOrder)
    assert [proxy.index(r, COL_NAME).data() for r in range(2)] == ["db", "web"]
    model.set_stats({"a" * 64: Stats(90.0, 1, None), "b" * 64: Stats(40.0, 1, None)})  # dynamic re-sort
    assert [proxy.index(r, COL_NAME).data() for r in range(2)] == ["web", "db"]
    model.update_container(info("e" * 64, "newest", created=time.time()))
    proxy.sort(COL_AGE, Qt.SortOrder.AscendingOrder)
    assert proxy.index(0, COL_NAME).data() in ("newest", "#7 echo hi")


def test_filtering(model: ContainerTableModel) -> None:
    proxy = ContainerFilter()
    proxy.setSourceModel(model)

    def names() -> set[str]:
        return {proxy.index(r, COL_NAME).data() for r in range(proxy.rowCount())}

    proxy.set_filter(agent="bob")
    assert names() == {"db", "#7 echo hi"}
    proxy.set_filter(agent="", kind="temporary")
    assert names() == {"tmp-1", "#7 echo hi"}
    proxy.set_filter(kind="", status="running")
    assert names() == {"web", "db"}
    proxy.set_filter(status="", text="49153")
    assert names() == {"web"}
    proxy.set_filter(text="")
    proxy.set_filter(show_runs=False)
    assert names() == {"web", "db", "tmp-1"}
    assert proxy.active() is False
    model.update_container(info("f" * 64, "another", agent="bob"))  # new rows are filtered as they come
    proxy.set_filter(agent="bob")
    assert names() == {"db", "another"}


def test_counts_add_up_to_the_rows(model: ContainerTableModel) -> None:
    """Issue 20: the summary counts every kind of row the table shows, so it adds up."""
    rows = model.rows()
    assert summary_text(rows) == "3 containers (2 running) · 1 finished run"
    model.upsert(waiting_row("queue:bob:1", "bob", "run echo", "temporary", "queued · next"))
    model.upsert(waiting_row("pull:bob:python", "bob", "python", "temporary", "pulling image · 10 %"))
    model.update_container(info("d" * 64, "pre", kind=Kind.POOL))  # idle pre-started: counted in its checkbox
    assert (
        summary_text(model.rows(), 2)
        == "3 containers (2 running) · 1 finished run · 1 queued · 1 image pulling · 2 shown"
    )
    assert summary_text([]) == "0 containers (0 running) · 0 finished runs"


def test_names_carry_the_full_command_in_their_tooltip(model: ContainerTableModel) -> None:
    m = ContainerTableModel()
    long_name = "nightly-aggregation-of-citation-graph-snapshots"
    m.update_container(info("e" * 64, long_name, command="/bin/sh -c 'python3 aggregate.py --all'"))
    m.upsert(row_from_run(run_record(9)))
    tip = m.index(0, COL_NAME).data(Qt.ItemDataRole.ToolTipRole)
    assert long_name in tip and "$ /bin/sh -c 'python3 aggregate.py --all'" in tip
    run_tip = m.index(1, COL_NAME).data(Qt.ItemDataRole.ToolTipRole)
    assert run_tip.startswith("Run #9\n$ echo hi")
    assert m.index(0, COL_KIND).data() == "service"
    m.update_container(info("f" * 64, "pre", kind=Kind.POOL))
    assert m.index(2, COL_KIND).data() == "pre-started"
