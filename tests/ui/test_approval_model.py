"""The Approval Queue's table model without widgets: targeted updates, texts, escapes."""

from __future__ import annotations

import time

from PySide6.QtTest import QAbstractItemModelTester

from app.core.approvals import ShellRequest
from app.host import ShellResult
from app.ui.approval_model import COL_COMMAND, COL_EXIT, COL_STATUS, RequestTableModel, first_line
from app.ui.tray import Notifier, command_start

CREATED = time.time() - 5


def req(rid: str, status: str = "pending", command: str = "echo hi", **kw: object) -> ShellRequest:
    return ShellRequest(rid, "demo", command, "/tmp", 60, CREATED, status, **kw)  # type: ignore[arg-type]


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
    assert model.index(0, COL_STATUS).data() == "done · by pattern #7"
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

        def send(self, title: str, body: str, warn: bool) -> bool:
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
