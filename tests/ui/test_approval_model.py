"""The Approval Queue's table model without widgets: targeted updates, texts, escapes."""

from __future__ import annotations

import html
import time

from PySide6.QtCore import Qt
from PySide6.QtTest import QAbstractItemModelTester

from app.core.approvals import ShellRequest
from app.core.risks import command_risks
from app.host import ShellResult
from app.ui.approval_model import (
    COL_ACCESS,
    COL_AGENT,
    COL_COMMAND,
    COL_CWD,
    COL_EXIT,
    COL_STATUS,
    RequestTableModel,
    first_line,
)
from app.ui.tray import Notifier, command_start, notification_text

CREATED = time.time() - 5


def req(rid: str, status: str = "pending", command: str = "echo hi", cwd: str = "/tmp", **kw: object) -> ShellRequest:
    return ShellRequest(rid, "demo", command, cwd, 60, CREATED, status, **kw)  # type: ignore[arg-type]


def test_set_requests_inserts_removes_and_updates_in_place(qapp: object) -> None:
    model = RequestTableModel(history=True)
    QAbstractItemModelTester(model)
    changed: list[int] = []
    model.dataChanged.connect(lambda a, _b: changed.append(a.row()))
    model.set_requests([req("a"), req("b"), req("c")])
    assert [r.request_id for r in model.requests()] == ["a", "b", "c"]
    model.set_requests([req("d"), req("a"), req("c", "running", decided_by="user")])
    assert [r.request_id for r in model.requests()] == ["d", "a", "c"]
    assert changed == [2]  # only the row that changed
    assert model.index(2, COL_STATUS).data() == "running · by you"
    model.set_requests([req("c", "done", decided_by="pattern:7", result=ShellResult(3, "", ""))])
    assert model.rowCount() == 1
    assert model.index(0, COL_STATUS).data() == "done · by trusted pattern #7 (since removed)"
    model.set_patterns({7: "ls *"})  # the pattern itself, once the queue knows it
    assert model.index(0, COL_STATUS).data() == "done · by “ls *”"
    assert model.index(0, COL_EXIT).data() == "3"
    model.set_requests([req("e", "expired"), req("f", "denied", decided_by="user")])
    assert model.index(0, COL_STATUS).data().startswith("expired")
    assert model.index(1, COL_STATUS).data() == "denied by you"


def test_command_text_escapes_and_counts_lines(qapp: object) -> None:
    model = RequestTableModel()
    model.set_requests([req("a", command="ls\u202e -l\nrm x\nrm y")])
    text = model.index(0, COL_COMMAND).data()
    assert text.startswith("ls\\u202e -l") and "+2 more lines" in text and "\u202e" not in text
    assert "hidden" in model.index(0, COL_COMMAND).data(3)  # the tooltip warns
    assert first_line("a" * 300).endswith("…")


def test_notification_text_and_pause(qapp: object) -> None:
    sent: list[tuple[str, str]] = []

    class Spy:
        name = "spy"

        def send(self, title: str, body: str, warn: bool, note: object = None) -> bool:
            sent.append((title, body))
            return True

    enabled = [True]
    notifier = Notifier([lambda: None, Spy], lambda: enabled[0])
    n = notifier.notify(req("a", command="curl x\u200b | sh\nmore"))
    assert n is not None and n.channel == "spy" and "demo" in n.title
    assert n.body.startswith("curl x\\u200b | sh…") and "hidden characters" in n.body
    notifier.paused = True
    assert notifier.notify(req("b")) is None
    notifier.paused = False
    enabled[0] = False
    assert notifier.notify(req("c")) is None
    assert len(sent) == 1 and notifier.last_request == "a"
    assert command_start("x" * 200).endswith("…") and len(command_start("x" * 200)) == 80


def test_access_column_says_what_it_asked_for_and_what_it_ran_with(qapp: object) -> None:
    model = RequestTableModel(history=True)
    model.set_requests(
        [
            req("a", access="host"),
            req("b", "done", access="host", granted="sandbox", decided_by="user"),
            req("c", "done", access="host", granted="host", decided_by="user"),
            req("d", "done", decided_by="user", granted="sandbox"),
        ]
    )
    assert [model.index(r, COL_ACCESS).data() for r in range(4)] == ["full access", "sandbox", "full access", "sandbox"]
    assert "asked for full access" in model.index(1, COL_ACCESS).data(Qt.ItemDataRole.ToolTipRole)
    assert "asked for" not in model.index(3, COL_ACCESS).data(Qt.ItemDataRole.ToolTipRole)
    assert model.headerData(COL_ACCESS, Qt.Orientation.Horizontal) == "Access"


def test_folder_cell_and_tooltips_escape_control_characters_and_markup(qapp: object) -> None:
    """Attack: a folder name with a newline, ESC and U+202E, and `<b>` markup that Qt would render in a
    tooltip (tooltips that look like HTML are rich text)."""
    cwd = "/ws/a\nb\x1b[8m<b>c\u202ed"
    model = RequestTableModel()
    model.set_requests([req("a", command="<b>rm</b> -rf\u202e x", cwd=cwd)])
    cell = model.index(0, COL_CWD).data()
    assert "\\n" in cell and "\\x1b" in cell and "\\u202e" in cell
    assert not any(c in cell for c in "\n\x1b\u202e")
    for col in (COL_CWD, COL_COMMAND):
        tip = model.index(0, col).data(Qt.ItemDataRole.ToolTipRole)
        assert "<b>" not in tip and "&lt;b&gt;" in tip and "\x1b" not in tip and "\u202e" not in tip
    shown = html.escape("a\\nb\\x1b[8m<b>c\\u202ed", quote=False)
    assert shown in model.index(0, COL_CWD).data(Qt.ItemDataRole.ToolTipRole)
    assert model.index(0, COL_AGENT).data() == "demo"
    assert model.index(0, COL_COMMAND).data(Qt.ItemDataRole.DecorationRole) is not None  # the warning mark


def test_notification_text_is_one_line_per_part_and_says_full_access(qapp: object) -> None:
    command = "g\u0456t push\nrm -rf ~"
    risks = command_risks(command, "/tmp/ws")
    title, body, warn = notification_text(req("a", command=command, cwd="/tmp/ws", access="host", risks=risks))
    assert title == "demo asks to run a command with full access" and warn
    command, *rest = body.split("\n")
    assert command == "g\u0456t push…"  # a look-alike letter is shown as itself (it is named in the queue)
    assert rest[0] == "in /tmp/ws" and rest[-1] == "Click to review it in Berth."
    assert "⚠ It has look-alike or hidden characters. Risks: deletes files, writes outside its folder." in rest
    title, body, warn = notification_text(req("b", command="ls", cwd="/tmp/ws", expires_at=time.time() + 95.5), more=2)
    assert title == "demo asks to run a command" and not warn
    assert body == "ls\nin /tmp/ws\n1 min 35 s left to decide · 2 more waiting\nClick to review it in Berth."


def test_a_folder_in_the_agents_workspace_reads_workspace(qapp: object) -> None:
    model = RequestTableModel(workspaces="/data/workspaces")
    model.set_requests(
        [
            req("a", cwd="/data/workspaces/demo"),
            req("b", cwd="/data/workspaces/demo/site"),
            req("c", cwd="/data/workspaces/demo-other/x"),  # another folder whose name starts the same
            req("d", cwd="/home/me/shop"),
        ]
    )
    assert [model.index(r, COL_CWD).data() for r in range(4)] == [
        "workspace",
        "workspace/site",
        "…/workspaces/demo-other/x",
        "/home/me/shop",
    ]
    assert model.index(1, COL_CWD).data(Qt.ItemDataRole.ToolTipRole).endswith("/data/workspaces/demo/site</p>")
