"""Tests for app.core.approvals: the Approval Queue over a real SQLite file and a real /bin/sh."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from app.config import Paths
from app.core.approvals import STOPPED, Approvals, ShellRequest
from app.core.events import Event, EventBus
from app.core.host_access import FolderPolicy, hidden_paths
from app.core.store import Store
from app.errors import Conflict, InvalidParams, NotFound
from app.host import HostRunner
from app.model import Limits


class Recorder:
    """Collects events so tests can assert what the core published."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[Event] = []
        bus.subscribe(self.events.append)

    def topics(self, request_id: str | None = None) -> list[str]:
        return [e.topic for e in self.events if request_id is None or getattr(e.data, "request_id", None) == request_id]


class World:
    """A store on disk, an event bus and the Approvals over them, reopenable like a restart of Berth."""

    def __init__(self, tmp_path: Path) -> None:
        self.paths = Paths(tmp_path / "data", tmp_path / "data" / "state", tmp_path / "data" / "logs")
        self.paths.ensure()
        self.db = self.paths.db_path
        self.host_folders: dict[str, list[str]] = {"alice": [], "bob": []}
        self.cwd = self.workspace("alice")  # alice's requests run in her workspace unless a test says otherwise
        self.store = Store(self.db)
        for name in ("alice", "bob"):
            self.store.add_agent(name, Limits(), token_hash=f"hash-{name}")
        self.bus = EventBus()
        self.recorder = Recorder(self.bus)
        self.approvals = self._make()

    def workspace(self, agent: str) -> Path:
        folder = self.paths.workspaces_dir / agent
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _make(self, expiry_s: float = 600.0) -> Approvals:
        runner = HostRunner(drain_grace_s=0.2, hidden=hidden_paths(self.paths))
        folders = FolderPolicy(self.paths, self.workspace, lambda agent: self.host_folders[agent])
        return Approvals(self.store, runner, self.bus, expiry_s=expiry_s, folders=folders)

    async def reopen(self, expiry_s: float = 600.0) -> Approvals:
        await self.approvals.close()
        self.store.close()
        self.store = Store(self.db)
        self.approvals = self._make(expiry_s)
        await self.approvals.start()
        return self.approvals

    async def request(self, command: str, agent: str = "alice", wait_s: float = 0, **kw: Any) -> ShellRequest:
        cwd = kw.get("cwd", str(self.cwd) if agent == "alice" else None)
        access = kw.get("access", "sandbox")
        return await self.approvals.request(agent, command, cwd, kw.get("timeout_s", 30), wait_s, access)

    def audit(self, action: str) -> list[dict[str, Any]]:
        return [a for a in self.store.list_audit() if a["action"] == action]

    async def close(self) -> None:
        await self.approvals.close()
        self.store.close()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = World(tmp_path)
    await w.approvals.start()
    yield w
    await w.close()


async def settle(rounds: int = 10) -> None:
    """Let every task that is ready run until it waits (no threads involved: a few loop turns suffice)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# -- trusted patterns allow, everything else queues ---------------------------------------------


async def test_allowed_by_pattern_runs_at_once(world: World) -> None:
    echo = world.approvals.add_pattern("echo *")
    pwd = world.approvals.add_pattern("pwd", agent="alice")
    req = await world.request("echo hi && pwd", wait_s=5)
    assert req.status == "done"
    assert req.decided_by == f"pattern:{echo.id}"  # the pattern of the first simple command
    assert req.result is not None and req.result.exit_code == 0
    assert req.result.stdout == f"hi\n{world.cwd}\n"
    assert req.to_json() == {
        "request_id": req.request_id,
        "status": "done",
        "decided_by": f"pattern:{echo.id}",
        "access": "sandbox",
        "result": req.result.to_json(),
    }
    (approve,) = world.audit("shell.approve")
    assert approve["actor"] == f"pattern:{echo.id}"
    assert approve["detail"]["patterns"] == [echo.id, pwd.id]
    (run,) = world.audit("shell.run")
    assert (run["target"], run["detail"]["exit_code"], run["actor"]) == (req.request_id, 0, f"pattern:{echo.id}")
    assert world.recorder.topics(req.request_id) == ["approval.decided", "approval.finished"]


async def test_not_allowed_stays_pending(world: World) -> None:
    world.approvals.add_pattern("echo *")
    marker = world.cwd / "marker"
    start = time.monotonic()
    req = await world.request(f"echo hi > {marker}", wait_s=0.3)  # a redirection is never trusted
    assert 0.3 <= time.monotonic() - start < 2
    assert (req.status, req.decided_by, req.result) == ("pending", None, None)
    (listed,) = world.approvals.list()
    assert listed.to_owner_json() == {
        "request_id": req.request_id,
        "agent": "alice",
        "command": f"echo hi > {marker}",
        "display_command": f"echo hi > {marker}",
        "cwd": str(world.cwd),
        "display_cwd": str(world.cwd),
        "access": "sandbox",
        "granted": None,
        "created": req.created,
        "status": "pending",
        "expires_at": req.created + 600.0,
        "warnings": [],
    }
    assert world.recorder.topics(req.request_id) == ["approval.pending"]
    assert not marker.exists()


async def test_approve_runs_the_command_and_status_returns_its_output(world: World) -> None:
    req = await world.request("echo approved; echo warn >&2; exit 4")
    decided = await world.approvals.decide(req.request_id, "approve")
    assert (decided.status, decided.decided_by) == ("running", "user")
    done = await world.approvals.status("alice", req.request_id, wait_s=5)
    assert done.status == "done" and done.result is not None
    assert (done.result.exit_code, done.result.stdout, done.result.stderr) == (4, "approved\n", "warn\n")
    assert world.recorder.topics(req.request_id) == ["approval.pending", "approval.decided", "approval.finished"]
    assert [a["actor"] for a in world.audit("shell.approve")] == ["user"]
    assert world.audit("shell.run")[0]["detail"]["exit_code"] == 4
    assert world.approvals.list() == []
    assert [r.status for r in world.approvals.list(status=None)] == ["done"]


async def test_deny_never_runs(world: World) -> None:
    marker = world.cwd / "marker"
    req = await world.request(f"touch {marker}")
    denied = await world.approvals.decide(req.request_id, "deny", actor="cli")
    assert (denied.status, denied.decided_by, denied.result) == ("denied", "cli", None)
    assert (await world.approvals.status("alice", req.request_id, wait_s=0)).status == "denied"
    with pytest.raises(Conflict, match=f"request {req.request_id} is already denied"):
        await world.approvals.decide(req.request_id, "approve")
    assert world.approvals.tasks() == []  # no run started, none is due: nothing can touch the marker later
    assert not marker.exists()
    assert world.audit("shell.deny")[0]["detail"]["command"] == f"touch {marker}"
    assert world.audit("shell.run") == []


async def test_expiry_never_runs(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.approvals = w._make(expiry_s=0.5)
    await w.approvals.start()
    try:
        marker = w.cwd / "marker"
        start = time.monotonic()
        req = await w.request(f"touch {marker}", wait_s=5)  # the expiry wakes the waiter
        assert req.status == "expired" and req.decided_by is None
        assert 0.4 <= time.monotonic() - start < 2
        with pytest.raises(Conflict, match="already expired"):
            await w.approvals.decide(req.request_id, "approve")
        assert (await w.approvals.status("alice", req.request_id, 0)).status == "expired"
        assert w.recorder.topics(req.request_id) == ["approval.pending", "approval.decided"]
        assert w.audit("shell.expire")[0]["target"] == req.request_id
        assert not marker.exists()
    finally:
        await w.close()


async def test_a_shorter_expiry_applies_to_waiting_requests(world: World) -> None:
    """Settings shorten the expiry while a request waits: it expires at its creation plus the new value, which
    is also the `expires_at` it shows, not at the time its first timer was set for."""
    req = await world.request("echo waiting")
    assert req.expires_at == req.created + 600.0
    world.approvals.expiry_s = 1.0  # what Settings does
    assert world.approvals.expiry_s == 1.0
    (listed,) = world.approvals.list()
    assert listed.expires_at == req.created + 1.0
    done = await world.approvals.status("alice", req.request_id, wait_s=10)  # the expiry wakes the waiter
    assert done.status == "expired" and done.decided_at is not None
    assert req.created + 0.9 <= done.decided_at < req.created + 5  # 0.9: the loop's clock is not time.time()
    assert world.recorder.topics(req.request_id) == ["approval.pending", "approval.rescheduled", "approval.decided"]
    assert [a["target"] for a in world.audit("shell.expire")] == [req.request_id]


async def test_an_expiry_already_past_expires_waiting_requests_at_once(world: World) -> None:
    req = await world.request("echo waiting")
    start = time.monotonic()
    world.approvals.set_expiry(0.0)
    done = await world.approvals.status("alice", req.request_id, wait_s=10)
    assert done.status == "expired"
    assert time.monotonic() - start < 2
    assert world.approvals.tasks() == []


# -- restarts -----------------------------------------------------------------------------------


async def test_pending_request_survives_a_restart_and_can_be_approved(world: World) -> None:
    req = await world.request("echo after restart")
    approvals = await world.reopen()
    assert [r.request_id for r in approvals.list()] == [req.request_id]
    waiter = asyncio.create_task(approvals.status("alice", req.request_id, wait_s=5))
    await approvals.decide(req.request_id, "approve")
    done = await waiter
    assert done.status == "done" and done.result is not None and done.result.stdout == "after restart\n"


async def test_restart_closes_running_and_expires_overdue_requests(world: World) -> None:
    running = await world.request("sleep 30")
    overdue = await world.request("echo late")
    await world.approvals.decide(running.request_id, "approve")
    await world.approvals.close()  # as if Berth died: the row stays "running"
    with world.store.transaction() as conn:
        conn.execute("UPDATE shell_requests SET status = 'running', result = NULL WHERE id = ?", (running.request_id,))
        conn.execute("UPDATE shell_requests SET created = created - 700 WHERE id = ?", (overdue.request_id,))
    approvals = await world.reopen()
    stopped = await approvals.status("alice", running.request_id, 0)
    assert stopped.status == "done" and stopped.result is not None
    assert (stopped.result.exit_code, stopped.result.stderr) == (None, STOPPED)
    assert (await approvals.status("alice", overdue.request_id, 0)).status == "expired"
    assert approvals.list() == []


async def test_close_stops_a_running_command(world: World) -> None:
    world.approvals.add_pattern("sleep *")
    req = await world.request("sleep 30")
    assert req.status == "running"
    start = time.monotonic()
    await world.approvals.close()
    assert time.monotonic() - start < 10  # far less than the command's 30 s: it was stopped, not waited for
    row = world.store.query("SELECT status, result FROM shell_requests WHERE id = ?", (req.request_id,))[0]
    assert row["status"] == "done" and json.loads(row["result"])["stderr"] == STOPPED


# -- approve and trust --------------------------------------------------------------------------


async def test_trust_that_does_not_match_is_refused_and_nothing_is_saved(world: World) -> None:
    req = await world.request("echo hi")
    with pytest.raises(InvalidParams, match=r"^trust: the pattern `ls \*` does not match the command"):
        await world.approvals.decide(req.request_id, "approve", trust="ls *")
    with pytest.raises(InvalidParams, match=r"^trust: "):
        await world.approvals.decide(req.request_id, "approve", trust="/bin/echo *")
    with pytest.raises(InvalidParams, match=r"^trust: "):
        await world.approvals.decide(req.request_id, "deny", trust="echo *")
    assert world.approvals.list_patterns() == []
    assert (await world.approvals.status("alice", req.request_id, 0)).status == "pending"
    assert world.audit("shell.approve") == [] and world.audit("trust.add") == []


async def test_trust_then_the_same_command_is_approved_by_the_pattern(world: World) -> None:
    req = await world.request("echo one")
    assert world.approvals.propose(req.command) == "echo one"  # exact; the wildcard below is the person's edit
    await world.approvals.decide(req.request_id, "approve", trust="echo *")
    (trusted,) = world.approvals.list_patterns()
    assert (trusted.agent, trusted.pattern) == ("alice", "echo *")
    assert "patterns.changed" in world.recorder.topics()
    again = await world.request("echo two", wait_s=5)
    assert (again.status, again.decided_by) == ("done", f"pattern:{trusted.id}")
    other = await world.request("echo two", agent="bob")  # trusted for alice only
    assert other.status == "pending"


# -- agents and waiters -------------------------------------------------------------------------


async def test_another_agents_request_is_not_found(world: World) -> None:
    req = await world.request("echo mine")
    with pytest.raises(NotFound, match=f"no shell request {req.request_id} for this agent"):
        await world.approvals.status("bob", req.request_id, 0)
    with pytest.raises(NotFound):
        await world.approvals.status("alice", "sr-0000000000000000", 0)
    with pytest.raises(NotFound):
        await world.approvals.decide("sr-0000000000000000", "approve")
    assert world.approvals.list(agent="bob") == []


async def test_many_waiters_wake_on_the_decision(world: World) -> None:
    req = await world.request("echo shared")
    waiters = [asyncio.create_task(world.approvals.status("alice", req.request_id, wait_s=5)) for _ in range(20)]
    await settle()  # every waiter is waiting on the request now
    start = time.monotonic()
    await world.approvals.decide(req.request_id, "approve")
    results = await asyncio.gather(*waiters)
    assert time.monotonic() - start < 2
    assert {r.status for r in results} == {"done"}
    assert {r.result.stdout for r in results if r.result} == {"shared\n"}


async def test_a_waiter_returns_pending_when_its_wait_ends(world: World) -> None:
    req = await world.request("echo later")
    start = time.monotonic()
    current = await world.approvals.status("alice", req.request_id, wait_s=0.3)
    assert current.status == "pending"
    assert 0.3 <= time.monotonic() - start < 5  # it waited, and not for ever


async def test_close_wakes_waiters(world: World) -> None:
    req = await world.request("echo waiting")
    waiter = asyncio.create_task(world.approvals.status("alice", req.request_id, wait_s=30))
    await settle()
    await world.approvals.close()
    assert (await asyncio.wait_for(waiter, 2)).status == "pending"


async def test_cwd_removed_before_approval_gives_a_result_not_a_hang(world: World) -> None:
    gone = world.cwd / "gone"
    gone.mkdir()
    req = await world.approvals.request("alice", "echo hi", str(gone), 30, 0)
    gone.rmdir()
    await world.approvals.decide(req.request_id, "approve")
    done = await world.approvals.status("alice", req.request_id, 5)
    assert done.status == "done" and done.result is not None
    assert done.result.exit_code is None and done.result.stderr.startswith("the command did not run: cwd: ")


# -- validation and pattern management ----------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "cwd", "timeout_s", "wait_s", "message"),
    [
        ("", None, 30, 0, "^command: "),
        ("   ", None, 30, 0, "^command: "),
        ("x" * 100_001, None, 30, 0, "^command: "),
        ("echo \0", None, 30, 0, "^command: "),
        ("true", "relative/dir", 30, 0, "^cwd: "),
        ("true", "/no/such/dir", 30, 0, "^cwd: "),
        ("true", None, 0.5, 0, "^timeout_s: "),
        ("true", None, 3601, 0, "^timeout_s: "),
        ("true", None, True, 0, "^timeout_s: "),
        ("true", None, 30, -1, "^wait_s: "),
        ("true", None, 30, 601, "^wait_s: "),
        ("true", None, 30, float("nan"), "^wait_s: "),
    ],
)
async def test_invalid_requests_are_refused(
    world: World, command: str, cwd: str | None, timeout_s: Any, wait_s: Any, message: str
) -> None:
    with pytest.raises(InvalidParams, match=message):
        await world.approvals.request("alice", command, cwd or str(world.cwd), timeout_s, wait_s)
    assert world.approvals.list(status=None) == []


async def test_decide_and_list_validate_their_arguments(world: World) -> None:
    req = await world.request("echo x")
    with pytest.raises(InvalidParams, match=r"^decision: "):
        await world.approvals.decide(req.request_id, "maybe")  # type: ignore[arg-type]
    with pytest.raises(InvalidParams, match=r"^status: "):
        world.approvals.list(status="all")


async def test_pattern_management(world: World) -> None:
    g = world.approvals.add_pattern("git  status")
    assert g.pattern == "git status" and g.agent is None
    assert world.approvals.add_pattern("git status") == g  # duplicate: the existing one
    a = world.approvals.add_pattern("git diff *", agent="alice")
    b = world.approvals.add_pattern("ls", agent="bob")
    with pytest.raises(InvalidParams, match=r"^pattern: "):
        world.approvals.add_pattern("rm -rf $HOME")
    with pytest.raises(NotFound):
        world.approvals.add_pattern("ls", agent="nobody")
    assert world.approvals.list_patterns() == [g, a, b]
    assert world.approvals.list_patterns("alice") == [a, g]
    assert world.approvals.list_patterns("alice", include_global=False) == [a]
    assert a.to_json() == {
        "id": a.id,
        "agent": "alice",
        "pattern": "git diff *",
        "created": a.created,
        "access": "sandbox",
    }
    assert world.approvals.check("alice", "git diff HEAD | git status").allowed
    assert not world.approvals.check("bob", "git diff HEAD").allowed
    assert not world.approvals.check("alice", "git diff $(rm -rf ~)").allowed
    with pytest.raises(InvalidParams, match=r"^command: "):
        world.approvals.propose("echo $(id)")
    world.approvals.remove_pattern(a.id)
    with pytest.raises(NotFound):
        world.approvals.remove_pattern(a.id)
    assert world.approvals.list_patterns("alice") == [g]
    assert world.recorder.topics().count("patterns.changed") == 4
    assert [e["action"] for e in world.store.list_audit()].count("trust.add") == 3
    world.store.remove_agent("bob")  # an agent's patterns go with it
    assert world.approvals.list_patterns() == [g]
