"""The Approval Queue against the real core, the real RPC port and a real /bin/sh."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.ui.approval_model import COL_COMMAND, COL_EXIT, COL_STATUS
from app.ui.approval_queue import ApprovalQueue
from tests.ui.conftest import Harness, wait_until

pytestmark = pytest.mark.engine


def queue(h: Harness) -> ApprovalQueue:
    return h.desktop.wiring.queue


@pytest.fixture
def ws(harness: Harness) -> Path:
    """The agent's workspace: where its host commands may run."""
    return Path(harness.app.workspaces.path("demo"))


async def request(h: Harness, command: str, cwd: Path) -> str:
    r = await h.rpc("shell.request", command=command, cwd=str(cwd))
    assert r["status"] == "pending", r
    rid: str = r["request_id"]
    await wait_until(lambda: queue(h).pending_model.get(rid) is not None, what="the request in the queue")
    return rid


async def test_request_shows_in_queue_with_badge_and_approve_runs_it(harness: Harness, ws: Path) -> None:
    h, q = harness, queue(harness)
    h.window.show_view("approvals")
    command = "echo hello-from-the-host\necho second-line; pwd"
    rid = await request(h, command, ws)
    badge = h.window.nav["approvals"].badge
    await wait_until(lambda: badge.isVisible() and badge.text() == "1", what="the badge")
    assert q.select_request(rid)
    # The whole command, every line, exactly as it runs.
    assert q.detail.command.toPlainText() == command
    assert not q.detail.warning.isVisible()
    assert "demo" in q.detail.heading.text() and str(ws) in q.detail.meta.text()
    row = q.pending_model.row_of(rid)
    assert "+1 more line" in q.pending_model.index(row, COL_COMMAND).data()

    done = await q.approve_selected()
    assert done is not None and done.status == "running"
    status = await h.rpc("shell.status", request_id=rid, wait_s=10)
    assert status["status"] == "done" and status["decided_by"] == "user"
    assert status["result"]["stdout"] == f"hello-from-the-host\nsecond-line\n{ws}\n"
    await wait_until(lambda: not badge.isVisible(), what="the badge to go")
    await wait_until(
        lambda: (r := q.history_model.get(rid)) is not None and r.status == "done", what="the request in the history"
    )
    row = q.history_model.row_of(rid)
    assert q.history_model.index(row, COL_STATUS).data() == "done · by you"
    assert q.history_model.index(row, COL_EXIT).data() == "0"
    assert q.select_request(rid)
    assert "hello-from-the-host" in q.detail.output.toPlainText()
    assert "exit code 0" in q.detail.outcome.text()
    assert q.pending_stack.currentWidget() is q.empty


async def test_deny_from_the_keyboard_and_it_never_runs(harness: Harness, ws: Path) -> None:
    h, q = harness, queue(harness)
    h.window.show_view("approvals")
    h.window.activateWindow()
    marker = ws / "marker"
    rid = await request(h, f"touch {marker}", ws)
    assert q.select_request(rid)
    q.pending_table.setFocus()
    QTest.keyClick(q.pending_table, Qt.Key.Key_Delete)
    status = await h.rpc("shell.status", request_id=rid, wait_s=10)
    assert status["status"] == "denied" and status["decided_by"] == "user" and status["result"] is None
    await wait_until(lambda: (r := q.history_model.get(rid)) is not None and r.status == "denied", what="history")
    assert q.history_model.index(q.history_model.row_of(rid), COL_STATUS).data() == "denied by you"
    assert h.app.approvals.tasks() == []  # no run started, none is due: nothing can touch the marker later
    assert not marker.exists()


async def test_approve_and_trust_saves_a_pattern_that_then_allows_the_command(harness: Harness, ws: Path) -> None:
    h, q = harness, queue(harness)
    h.window.show_view("approvals")
    folder = ws / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    rid = await request(h, "ls -1 .", folder)
    assert q.select_request(rid)
    await q.open_trust()
    box = q.detail.trust
    assert box.isVisible() and box.pattern.text() == "ls -1 ."  # the core's proposal: the exact command
    assert box.confirm.isEnabled() and "exactly" in box.verdict.text()
    box.pattern.setText("cat *")  # does not allow this command: refused before saving
    assert not box.confirm.isEnabled() and "does not allow" in box.verdict.text()
    box.pattern.setText("ls $(x)")
    assert not box.confirm.isEnabled() and "Not a valid pattern" in box.verdict.text()
    assert await q.trust_selected() is None
    box.pattern.setText("ls -1 *")
    assert box.confirm.isEnabled()
    done = await q.trust_selected()
    assert done is not None and done.decided_by == "user"
    patterns = await asyncio.to_thread(h.app.approvals.list_patterns, "demo", False)
    assert [p.pattern for p in patterns] == ["ls -1 *"]

    again = await h.rpc("shell.request", command="ls -1 .", cwd=str(folder), wait_s=10)
    assert again["status"] == "done" and again["decided_by"] == f"pattern:{patterns[0].id}"
    assert again["result"]["stdout"] == "a.txt\n"
    await wait_until(
        lambda: (r := q.history_model.get(again["request_id"])) is not None and r.status == "done",
        what="the trusted run in history",
    )
    row = q.history_model.row_of(again["request_id"])
    assert q.history_model.index(row, COL_STATUS).data() == f"done · by pattern #{patterns[0].id}"


@pytest.mark.parametrize(("hidden", "escape"), [("\u202e", "\\u202e"), ("\u200b", "\\u200b")])
async def test_hidden_characters_are_shown_as_escapes(harness: Harness, ws: Path, hidden: str, escape: str) -> None:
    h, q = harness, queue(harness)
    h.window.show_view("approvals")
    command = f"echo safe{hidden}; rm -rf ~/important"
    rid = await request(h, command, ws)
    assert q.select_request(rid)
    shown = q.detail.command.toPlainText()
    assert escape in shown and hidden not in shown
    assert q.detail.warning.isVisible() and "hidden" in q.detail.warning.text()
    row = q.pending_model.row_of(rid)
    assert escape in q.pending_model.index(row, COL_COMMAND).data()
    # The notification (here the in-window channel: no tray offscreen) escapes it too.
    note = h.desktop.wiring.notifier.sent[-1]
    assert note.request_id == rid and escape in note.body and hidden not in note.body
    assert "demo" in note.title
    await q.deny_selected()


async def test_without_a_tray_the_window_is_the_channel(harness: Harness, ws: Path) -> None:
    h = harness
    w = h.desktop.wiring
    assert w.tray is None and not h.window.close_to_tray  # offscreen: no system tray
    h.window.show_view("containers")
    rid = await request(h, "echo banner", ws)
    await wait_until(lambda: w.banner.isVisible(), what="the in-window banner")
    assert "1 command waiting" in w.banner.text.text() and "echo banner" in w.banner.detail.text()
    w.banner.review.click()
    assert h.window.current_view() == "approvals" and not w.banner.isVisible()
    assert w.queue.detail.request is not None and w.queue.detail.request.request_id == rid
    # Notifications off in Settings: no new notification, the badge still counts.
    h.app.settings.notifications = False
    before = len(w.notifier.sent)
    await request(h, "echo quiet", ws)
    assert len(w.notifier.sent) == before
    await wait_until(lambda: h.window.nav["approvals"].badge.text() == "2", what="the badge")
