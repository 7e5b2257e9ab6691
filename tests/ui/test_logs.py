"""The logs viewer: follows a real container's new lines, searches, toggles; stays responsive with 100 000 lines."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from app.ui.container_model import RUN
from app.ui.logs_viewer import LINE_COLORS, LogsView
from tests.conftest import BUSYBOX
from tests.ui.conftest import Harness, wait_until

SCRIPT = (
    'i=0; while true; do echo "line $i"; if [ $i = 12 ]; then echo "found the needle"; fi; i=$((i+1)); sleep 0.1; done'
)


@pytest.mark.engine
async def test_logs_follow_new_lines_and_find_a_word(harness: Harness, tmp_path: Path) -> None:
    h = harness
    svc = await h.rpc("services.start", name="talker", image=BUSYBOX, command=SCRIPT)
    await wait_until(lambda: h.model.get(svc["id"]) is not None, what="the row")
    assert h.panel.select_key(svc["id"])
    (window,) = h.panel.open_logs()
    view = window.view
    await wait_until(lambda: "line 3" in view.text.toPlainText(), what="the first lines")
    seen = view.line_count()
    await wait_until(lambda: view.line_count() >= seen + 5 and view.pending() == 0, what="new lines to follow")
    assert view.following
    sb = view.text.verticalScrollBar()
    assert sb.value() == sb.maximum()

    await wait_until(lambda: "found the needle" in view.text.toPlainText(), what="the needle line")
    view.search.setText("needle")
    assert view.find_next()
    assert view.text.textCursor().selectedText() == "needle"
    assert view.match_label.text() == "1 / 1"
    assert not view.following  # reading a match pauses follow mode
    assert len(view.text.extraSelections()) == 1

    view.timestamps_button.setChecked(True)
    await wait_until(lambda: view.pending() == 0, what="the rebuild")
    first = view.text.toPlainText().splitlines()[0]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  line 0", first), first
    view.wrap_button.setChecked(True)

    await view.save_to(tmp_path / "saved.log")
    saved = (tmp_path / "saved.log").read_text()
    assert "found the needle" in saved and saved.count("\n") >= 13

    view.follow_button.setChecked(True)
    n = view.line_count()
    await wait_until(lambda: view.line_count() > n + 2 and view.pending() == 0, what="more lines")
    assert sb.value() == sb.maximum()
    window.close()


async def test_follow_pauses_while_scrolled_up_and_resumes_at_the_end(qapp: object) -> None:
    view = LogsView()
    view.resize(600, 300)
    view.show()
    view.append("".join(f"line {i}\n" for i in range(500)))
    await wait_until(lambda: view.pending() == 0, what="the first lines")
    sb = view.text.verticalScrollBar()
    assert view.following and sb.value() == sb.maximum()
    sb.setValue(10)  # the person scrolls up
    assert not view.following
    view.append("".join(f"more {i}\n" for i in range(100)))
    await wait_until(lambda: view.pending() == 0, what="more lines")
    assert sb.value() == 10  # not pulled down while reading
    sb.setValue(sb.maximum())  # back at the end: follow again
    assert view.following
    view.append("last\n")
    await wait_until(lambda: view.pending() == 0, what="the last line")
    assert sb.value() == sb.maximum()
    view.close()


async def test_hundred_thousand_lines_are_all_shown_and_searchable(qapp: object) -> None:
    """All of a big log arrives in batches (how smooth that is: bench/logs_view.py) and search finds one line."""
    view = LogsView()
    view.resize(900, 500)
    view.show()
    for chunk in range(100):  # as a follow stream delivers it: many chunks
        view.append("".join(f"2024-05-01T10:00:00.{i:09d}Z request {chunk * 1000 + i} ok\n" for i in range(1000)))
        await asyncio.sleep(0)
    await wait_until(lambda: view.pending() == 0, timeout=60, what="100 000 lines")
    assert view.text.document().blockCount() >= 100_000
    view.search.setText("request 99999 ")
    assert view.find_next()
    assert view.match_label.text() == "1 / 1"
    view.close()


async def test_the_current_match_is_counted_as_you_go(qapp: object) -> None:
    """ "3 / 42": which match the cursor is on, of how many; Shift+F3 goes back, and it wraps around."""
    view = LogsView(timestamps=False)
    view.resize(600, 300)
    view.show()
    view.append("".join(f"step {i}: {'retry' if i % 10 == 0 else 'ok'}\n" for i in range(420)))
    await wait_until(lambda: view.pending() == 0, what="the lines")
    view.search.setText("retry")
    view._search_changed()  # what the typing timer does
    assert view.match_label.text() == "1 / 42"
    assert view.find_next() and view.find_next()
    assert view.match_label.text() == "3 / 42" and view.current_match() == 3
    assert view.find_previous()
    assert view.match_label.text() == "2 / 42"
    view.find_previous()
    view.find_previous()  # before the first: wraps to the last
    assert view.match_label.text() == "42 / 42"
    view.search.setText("nothing like it")
    view._search_changed()
    assert view.match_label.text() == "no match"
    view.close()


def _colour_of_line(view: LogsView, number: int) -> str:
    block = view.text.document().findBlockByNumber(number)
    return block.begin().fragment().charFormat().foreground().color().name()


async def test_warn_error_and_stderr_lines_are_coloured(qapp: object) -> None:
    view = LogsView(timestamps=False)
    view.show()
    view.append("starting\nWARN disk almost full\n")
    view.append("Traceback (most recent call last):\n  boom\n", "stderr")
    view.append("ERROR cannot connect\nINFO processed 3 records, 0 errors\nerror: missing config.toml\n")
    await wait_until(lambda: view.pending() == 0, what="the lines")
    assert view.line_classes() == ["", "warn", "error", "stderr", "error", "", "error"]
    assert [_colour_of_line(view, i) for i in range(7)] == [
        LINE_COLORS[c] for c in ("", "warn", "error", "stderr", "error", "", "error")
    ]
    assert view.plain_text().splitlines()[3] == "  boom"  # colour only: the text is as it came
    view.close()


async def test_stdout_and_stderr_chunks_never_mix_their_lines(qapp: object) -> None:
    view = LogsView(timestamps=False)
    view.append("hal")
    view.append("oops ", "stderr")
    view.append("f a line\n")
    view.append("went wrong\n", "stderr")
    view.finish()
    assert view.plain_text().splitlines() == ["half a line", "oops went wrong"]
    assert view.is_stderr(1) and not view.is_stderr(0)


@pytest.mark.engine
async def test_a_finished_run_says_exited_2_in_red(harness: Harness) -> None:
    h = harness
    result = await h.rpc("containers.run", image=BUSYBOX, command="echo building; echo 'error: no config' >&2; exit 2")
    assert result["exit_code"] == 2
    await wait_until(lambda: any(r.type == RUN and r.exit_code == 2 for r in h.model.rows()), what="the run")
    row = next(r for r in h.model.rows() if r.type == RUN)
    h.panel.select_key(row.key)
    (window,) = h.panel.open_logs()
    await asyncio.wait_for(window.ended.wait(), 10)
    assert window.chip.isVisible() and window.chip.text() == "Exited (2)" and window.chip.property("bad") is True
    await wait_until(lambda: window.view.pending() == 0, what="the output")
    lines = window.view.plain_text().splitlines()
    assert lines[-1] == "error: no config" and window.view.is_stderr(len(lines) - 1)
    window.close()
