"""Host shell commands through `berth serve`, the Approval Queue and trusted patterns, with a real /bin/sh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.errors import Forbidden, InvalidParams, NotFound
from tests.e2e.conftest import Server, berth

TRUSTED = ("ls *", "git status", "echo *", "cat *", "wc *")


def trust_all(server: Server, agent: str | None = None) -> dict[str, int]:
    ids = {}
    for p in TRUSTED:
        out = berth(server.data_dir, "trust", "add", p, *(["--agent", agent] if agent else [])).stdout
        ids[p] = int(out.split(":", 1)[0])
    return ids


def workspace(server: Server, agent: str) -> Path:
    return server.data_dir / "workspaces" / agent


def test_trusted_command_runs_at_once(server: Server, tmp_path: Path) -> None:
    ids = trust_all(server)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "f.txt").write_text("x")
    berth(server.data_dir, "agents", "set", "alice", "--host-folder", str(folder))  # a folder the person granted
    r = server.client("alice").shell("ls -1", cwd=str(folder), wait_s=10)
    assert r["status"] == "done" and r["decided_by"] == f"pattern:{ids['ls *']}"
    assert r["result"]["exit_code"] == 0 and r["result"]["stdout"] == "f.txt\n"
    # The default cwd is the agent's workspace.
    server.client("alice").write("in-ws.txt", "y")
    r = server.client("alice").shell("ls", wait_s=10)
    assert r["result"]["stdout"] == "in-ws.txt\n"


def test_queued_command_waits_for_the_person(server: Server) -> None:
    alice = server.client("alice")
    written = workspace(server, "alice") / "out.txt"
    r = alice.shell("echo approved > out.txt; echo done", wait_s=0.5)
    assert r["status"] == "pending" and r["decided_by"] is None and r["result"] is None
    rid = r["request_id"]
    assert not written.exists()
    listed = berth(server.data_dir, "approvals", "list").stdout
    assert rid in listed and "agent=alice" in listed and "echo approved" in listed
    out = berth(server.data_dir, "approvals", "approve", rid).stdout
    assert rid in out
    r = alice.shell_status(rid, wait_s=10)
    assert r["status"] == "done" and r["decided_by"] == "user" and r["access"] == "sandbox"
    assert r["result"]["stdout"] == "done\n" and written.read_text() == "approved\n"


def test_denied_command_never_runs(server: Server) -> None:
    marker = workspace(server, "alice") / "marker"
    r = server.client("alice").shell(f"touch {marker}")
    berth(server.data_dir, "approvals", "deny", r["request_id"])
    r = server.client("alice").shell_status(r["request_id"], wait_s=5)
    assert r["status"] == "denied" and r["result"] is None  # final, and no run started: nothing ever will
    assert not marker.exists()
    # A decided request cannot be decided again.
    assert berth(server.data_dir, "approvals", "approve", r["request_id"], check=False).returncode == 1


def test_expired_command_never_runs(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    server.add_agent("alice")
    (server.data_dir / "settings.json").write_text(json.dumps({"approval_expiry_s": 1}))
    server.start()
    try:
        marker = workspace(server, "alice") / "marker"
        r = server.client("alice").shell(f"touch {marker}", wait_s=5)
        assert r["status"] == "expired"
        assert berth(server.data_dir, "approvals", "approve", r["request_id"], check=False).returncode == 1
        assert not marker.exists()
    finally:
        server.stop()


def test_pending_request_survives_a_restart(server: Server) -> None:
    r = server.client("alice").shell("echo after-restart > out.txt")
    server.stop()
    server.start()
    berth(server.data_dir, "approvals", "approve", r["request_id"])
    r = server.client("alice").shell_status(r["request_id"], wait_s=10)
    assert r["status"] == "done"
    assert (workspace(server, "alice") / "out.txt").read_text() == "after-restart\n"


def test_approve_and_trust(server: Server) -> None:
    alice = server.client("alice")
    r = alice.shell("wc -c /etc/hostname")
    # A pattern that does not cover the command is refused and nothing is saved.
    bad = berth(server.data_dir, "approvals", "approve", r["request_id"], "--trust", "wc -l *", check=False)
    assert bad.returncode == 1 and "trust" in bad.stderr
    assert "wc" not in berth(server.data_dir, "trust", "list").stdout
    berth(server.data_dir, "approvals", "approve", r["request_id"], "--trust", "wc *")
    assert alice.shell_status(r["request_id"], wait_s=10)["status"] == "done"
    again = alice.shell("wc -c /etc/hostname", wait_s=10)
    assert again["status"] == "done" and again["decided_by"].startswith("pattern:")
    # The pattern was trusted for alice only.
    assert server.client("bob").shell("wc -c /etc/hostname")["status"] == "pending"


def test_roles_and_isolation(server: Server) -> None:
    """Attack: an agent approves its own request, or peeks at / decides another agent's."""
    r = server.client("alice").shell("echo mine")
    with pytest.raises(Forbidden):
        server.client("alice").decide(r["request_id"], "approve")
    with pytest.raises(Forbidden):
        server.client("bob").approvals()
    with pytest.raises(NotFound):
        server.client("bob").shell_status(r["request_id"])
    assert [x["request_id"] for x in server.owner().approvals()] == [r["request_id"]]
    with pytest.raises(InvalidParams, match="cwd"):
        server.client("alice").shell("ls", cwd="/no/such/dir")


ATTACKS = [
    "ls; touch {m}",
    "ls;touch {m}",
    "ls && touch {m}",
    "ls || touch {m}",
    "ls | touch {m}",
    "ls\ntouch {m}",
    "ls\rtouch {m}",
    "ls\n\ntouch {m}",
    "ls $(touch {m})",
    "ls `touch {m}`",
    'ls "$(touch {m})"',
    'echo "`touch {m}`"',
    "ls <(touch {m})",
    "ls --color=$(touch {m})",
    "ls ${{X:=$(touch {m})}}",
    "ls $((1))$(touch {m})",
    "X=$(touch {m}) ls",
    "PATH=/tmp ls",
    "echo hi > {m}",
    "echo hi >> {m}",
    "ls 2>{m}",
    "ls &>{m}",
    "cat <<EOF > {m}\nx\nEOF",
    "(touch {m})",
    "{{ touch {m}; }}",
    "touch {m} &",
    "ls & touch {m}",
    "\\touch {m}",
    "'l''s'; touch {m}",
    "/bin/touch {m}",
    "./ls; touch {m}",
    "l\u0455; touch {m}",
    "ls\u202e; touch {m}",
    "ls\u200b; touch {m}",
    "git status; touch {m}",
    "git status$(touch {m})",
    "echo $'\\x3b'; touch {m}",
    "if true; then touch {m}; fi",
    "for x in 1; do touch {m}; done",
    "f() {{ touch {m}; }}; f",
    "! touch {m}",
    "ls *; touch {m}",
    "ls # ; touch {m}\ntouch {m}",
    "echo hi | sh -c 'touch {m}'",
    "eval 'touch {m}'",
    "ls '$(touch {m})'",  # trusted, but the quotes make it a literal argument: ls runs, nothing else
    "echo '`touch {m}`'",  # trusted, literal
]


def test_attack_commands_have_no_side_effects(server: Server) -> None:
    """Attack: commands that try to slip `touch MARKER` past trusted patterns; markers live in the workspace,
    which a sandboxed command may write, so any that ran would show."""
    trust_all(server)
    alice = server.client("alice")
    markers = []
    requests = {}
    for i, template in enumerate(ATTACKS):
        marker = workspace(server, "alice") / f"m{i}"
        markers.append(marker)
        requests[template] = alice.shell(template.format(m=marker))["request_id"]
    # Every request is either waiting for the person or allowed; wait for the allowed ones to finish.
    statuses = {}
    for t, rid in requests.items():
        status = alice.shell_status(rid)["status"]
        statuses[t] = status if status == "pending" else alice.shell_status(rid, wait_s=30)["status"]
    assert all(s in ("pending", "done") for s in statuses.values()), statuses
    assert [m.name for m in markers if m.exists()] == []
    allowed = {t for t, s in statuses.items() if s != "pending"}
    assert allowed == {"ls '$(touch {m})'", "echo '`touch {m}`'"}, allowed
