"""The History view: search a word of a run's output among many, filter by agent and exit code, read, copy
and save one run's output."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from app.ui.history_view import COL_COMMAND, COL_EXIT
from tests.conftest import BUSYBOX
from tests.ui.conftest import Harness, wait_until


def _many_runs(h: Harness, n: int) -> None:
    now = time.time()
    for i in range(n):
        h.app.store.add_run(
            "bulk" if i % 2 else "other", f"c{i}", BUSYBOX, f"python3 job.py --part {i}",
            i % 3, f"part {i} processed\nrecords: {i * 7}\n", "", False, False, False, now - 5000 + i, now - 4999 + i,
        )  # fmt: skip


async def _searched(h: Harness, text: str = "", **kw: object) -> None:
    view = h.desktop.history
    done = asyncio.get_running_loop().create_future()

    def finished() -> None:
        if not done.done():
            done.set_result(None)

    view.searched.connect(finished)
    try:
        view.set_filter(text, **kw)  # type: ignore[arg-type]
        await asyncio.wait_for(done, 10)
    finally:
        view.searched.disconnect(finished)


@pytest.mark.engine
async def test_search_a_word_of_the_output_among_many_runs(harness: Harness, tmp_path: Path) -> None:
    h = harness
    await asyncio.to_thread(_many_runs, h, 1000)
    await h.rpc(
        "containers.run", image=BUSYBOX, command="echo building; echo 'error: missing zebrafish.toml' >&2; exit 2"
    )
    view = h.desktop.history
    h.window.show_view("history")
    await wait_until(lambda: view.total == 1001, what="the history listed")
    assert "1,001 finished runs kept" in view.result.text()

    await _searched(h, "zebrafish")
    assert [r.command for r in view.model.runs()].__len__() == 1
    assert "zebrafish" in view.model.index(0, COL_COMMAND).data() or "zebrafish" in view.model.runs()[0].snippet
    assert view.model.index(0, COL_EXIT).data() == "2"
    assert view.result.text().startswith("1 run of 1,001 match")
    await wait_until(lambda: view.chip.text() == "Exited (2)", what="the selected run's output")
    await wait_until(lambda: "missing zebrafish.toml" in view.output.view.plain_text(), what="the output")
    out = view.output.view
    await wait_until(lambda: out.match_label.text() == "1 / 2", what="the word marked in the output (command, stderr)")

    # Copy and save the run's whole output.
    view.copy_button.click()  # the whole output, whatever is selected in it
    assert "building\nerror: missing zebrafish.toml" in QApplication.clipboard().text()
    await view.output.view.save_to(tmp_path / "run.txt")
    assert "error: missing zebrafish.toml" in (tmp_path / "run.txt").read_text()

    # Filters: an agent, an exit code, and both with a word.
    await _searched(h, "", agent="bulk")
    assert view.result.text().startswith("500 runs of 1,001 match")
    await _searched(h, "processed", agent="bulk", exit=2)
    assert all(r.agent == "bulk" and r.exit_code == 2 for r in view.model.runs())
    assert view.result.text().startswith("166 runs of 1,001 match")  # i = 5, 11, ... 995: odd, i % 3 == 2
    await _searched(h, "records: 6993")  # the last bulk run's output
    assert [r.command for r in view.model.runs()] == ["python3 job.py --part 999"]
    await _searched(h, "no-such-word-anywhere")
    assert view.stack.currentWidget() is view.empty and "No run matches" in view.empty.title.text()


@pytest.mark.engine
async def test_the_retention_setting_prunes_in_the_background(harness: Harness) -> None:
    from app.ui.settings_dialog import SettingsDialog

    h = harness
    await asyncio.to_thread(_many_runs, h, 1000)
    dialog = SettingsDialog(h.app, h.window)
    assert (dialog.history_days.value(), dialog.history_runs.value()) == (7, 10_000)  # the defaults
    dialog.history_runs.setValue(300)
    assert await dialog.save() is not None
    assert h.app.settings.history_max_runs == 300
    await wait_until(lambda: h.app.history.count() == 300, what="the history pruned to 300 runs")
    kept = (await h.app.owner.search_history("")).runs
    assert kept[0].command == "python3 job.py --part 999" and kept[-1].command == "python3 job.py --part 700"
    dialog.close()
    dialog.deleteLater()
