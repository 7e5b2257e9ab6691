"""Tests for app.core.store: real SQLite files in tmp_path, several threads, migrations forward and refused."""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.store import MIGRATIONS, DatabaseTooNew, Store, split_sql
from app.errors import Conflict, NotFound, StorageFull
from app.model import Agent, Limits, MiB


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "data" / "berth.sqlite3")
    yield s
    s.close()


def run_args(agent: str = "a", finished: float = 1.0, **over: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        agent=agent, container_id="c1", image="berth/busybox:latest", command='["echo", "hi"]', exit_code=0,
        stdout="hi\n", stderr="", timed_out=False, oom_killed=False, truncated=False, started=finished - 1,
        finished=finished,
    )  # fmt: skip
    args.update(over)
    return args


def test_open_creates_schema_wal_and_private_folder(store: Store, tmp_path: Path) -> None:
    assert store.schema_version() == len(MIGRATIONS)
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    assert store.query("PRAGMA foreign_keys")[0][0] == 1
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    store.set_meta("k", "v")
    for f in (tmp_path / "data").iterdir():  # the database, its -wal and -shm
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    tables = {r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "agents", "runs", "audit", "schema_version"} <= tables


def test_agents_round_trip(store: Store) -> None:
    limits = Limits(cpus=0.5, memory=256 * MiB, max_containers=2, at_limit="reject", queue_timeout_s=5, network=False)
    added = store.add_agent("bob", limits, "h-bob")
    store.add_agent("alice", Limits(), "h-alice")
    assert added == Agent("bob", limits, True, added.created) and added.created > 0
    assert store.get_agent("bob") == added
    assert store.get_agent("nobody") is None
    assert store.agent_by_token_hash("h-alice") == store.get_agent("alice")
    assert store.agent_by_token_hash("nope") is None
    assert [a.name for a in store.list_agents()] == ["alice", "bob"]

    changed = store.update_agent("bob", enabled=False, token_hash="h-bob-2")
    assert not changed.enabled and changed.limits == limits
    assert store.agent_by_token_hash("h-bob") is None and store.agent_by_token_hash("h-bob-2") == changed
    assert store.update_agent("bob", limits=Limits(cpus=2)).limits == Limits(cpus=2)
    assert store.update_agent("bob") == store.get_agent("bob")

    store.remove_agent("bob")
    assert store.get_agent("bob") is None


def test_agent_errors(store: Store) -> None:
    store.add_agent("bob", Limits(), "h1")
    with pytest.raises(Conflict, match="agent 'bob' already exists"):
        store.add_agent("bob", Limits(), "h2")
    with pytest.raises(Conflict):
        store.add_agent("carol", Limits(), "h1")  # a token hash belongs to one agent
    store.add_agent("carol", Limits(), "h3")
    with pytest.raises(Conflict):
        store.update_agent("carol", token_hash="h1")
    with pytest.raises(NotFound):
        store.update_agent("nobody", enabled=True)
    with pytest.raises(NotFound):
        store.remove_agent("nobody")
    assert [a.name for a in store.list_agents()] == ["bob", "carol"]  # failed writes left nothing behind


def test_limits_from_older_or_newer_rows_still_load(store: Store) -> None:
    """Rows written by another version: missing keys get defaults, unknown keys are ignored."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO agents (name, limits, enabled, token_hash, created) VALUES ('old', ?, 1, 'h', 0)",
            (json.dumps({"cpus": 3, "from_the_future": 1}),),
        )
    assert store.get_agent("old") == Agent("old", Limits(cpus=3), True, 0.0)


def test_runs(store: Store) -> None:
    ids = [store.add_run(**run_args("a", finished=t)) for t in (10.0, 30.0, 20.0)]
    other = store.add_run(**run_args("b", finished=25.0, exit_code=None, timed_out=True, truncated=True))
    assert [r.finished for r in store.list_runs()] == [30.0, 25.0, 20.0, 10.0]
    assert [r.id for r in store.list_runs("a", limit=2)] == [ids[1], ids[2]]
    got = store.get_run(other)
    assert got is not None and got.exit_code is None and got.timed_out is True and got.truncated is True
    assert got.oom_killed is False and got.agent == "b" and got.command == '["echo", "hi"]'
    assert store.get_run(12345) is None

    assert store.prune_runs(keep=2) == 2
    assert [r.finished for r in store.list_runs()] == [30.0, 25.0]
    assert store.prune_runs(keep=2) == 0


def test_audit_and_meta(store: Store) -> None:
    store.audit("agent.add", "bob", actor="cli")
    store.audit("shell.approve", "req-1", agent="bob", actor="user", detail={"command": "ls", "n": 1})
    entries = store.list_audit()
    assert [e["action"] for e in entries] == ["shell.approve", "agent.add"]
    assert entries[0]["detail"] == {"command": "ls", "n": 1} and entries[0]["agent"] == "bob"
    assert entries[1] | {"id": 0, "time": 0} == {
        "id": 0, "time": 0, "agent": None, "actor": "cli", "action": "agent.add", "target": "bob", "detail": {},
    }  # fmt: skip
    assert [e["target"] for e in store.list_audit(agent="bob")] == ["req-1"]
    assert len(store.list_audit(limit=1)) == 1

    assert store.get_meta("k") is None
    store.set_meta("k", "v1")
    store.set_meta("k", "v2")
    assert store.get_meta("k") == "v2"


def test_transaction_rolls_back_and_nests(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.set_meta("a", "1")
        raise RuntimeError("boom")
    assert store.get_meta("a") is None

    with store.transaction():
        store.set_meta("outer", "1")
        with pytest.raises(Conflict), store.transaction():
            store.set_meta("inner", "1")
            raise Conflict("inner fails")
    assert store.get_meta("outer") == "1" and store.get_meta("inner") is None


def test_many_threads_write_at_once(store: Store) -> None:
    """8 threads, each with its own connection, add runs and audit entries concurrently: nothing is lost."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(25):
                store.add_run(**run_args(f"agent{n}", finished=float(i)))
                store.audit("run", f"{n}-{i}", agent=f"agent{n}")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.list_runs(limit=1000)) == 200
    assert len(store.list_audit(limit=1000)) == 200
    assert len({r.id for r in store.list_runs(limit=1000)}) == 200
    assert len(store._connections) == 9  # one per thread (and the test's own)


def test_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "berth.sqlite3"
    s = Store(path)
    s.add_agent("bob", Limits(memory=MiB), "h")
    s.close()
    with pytest.raises(RuntimeError, match="closed"):
        s.get_agent("bob")
    s2 = Store(path)
    try:
        assert s2.get_agent("bob") == Agent("bob", Limits(memory=MiB), True, s2.list_agents()[0].created)
        assert s2.schema_version() == len(MIGRATIONS)
    finally:
        s2.close()


def test_migration_upgrades_an_older_database(tmp_path: Path) -> None:
    """A database at version 1 opened by code that knows one more migration gets it, keeping its rows."""
    path = tmp_path / "berth.sqlite3"
    old = Store(path, migrations=MIGRATIONS[:1])
    old.add_agent("bob", Limits(), "h")
    old.close()

    extra = (
        "ALTER TABLE agents ADD COLUMN note TEXT NOT NULL DEFAULT 'x'; CREATE TABLE things (id INTEGER PRIMARY KEY);"
    )
    new = Store(path, migrations=[*MIGRATIONS[:1], extra])
    try:
        assert new.schema_version() == 2
        assert new.query("SELECT name, note FROM agents")[0][:] == ("bob", "x")
        assert new.get_agent("bob") is not None
        assert new.query("SELECT COUNT(*) FROM things")[0][0] == 0
    finally:
        new.close()


def test_requests_and_patterns_of_before_the_sandbox_become_sandboxed(tmp_path: Path) -> None:
    """Upgrading a database from before host access: a waiting request and a trusted pattern, both made when
    every host command ran with full access, now mean the sandbox (never more than the person gave)."""
    path = tmp_path / "berth.sqlite3"
    old = Store(path, migrations=MIGRATIONS[:2])
    old.add_agent("bob", Limits(), "h")
    with old.transaction() as conn:
        conn.execute(
            "INSERT INTO shell_requests (id, agent, command, cwd, timeout_s, created, status) "
            "VALUES ('sr-1', 'bob', 'make', '/tmp', 30, 0, 'pending')"
        )
        conn.execute("INSERT INTO trusted_patterns (agent, pattern, created) VALUES ('bob', 'make *', 0)")
    old.close()
    new = Store(path)
    try:
        assert new.query("SELECT access, granted FROM shell_requests")[0][:] == ("sandbox", None)
        assert new.query("SELECT access FROM trusted_patterns")[0][0] == "sandbox"
        agent = new.get_agent("bob")
        assert agent is not None and agent.host_folders == ()
    finally:
        new.close()


def test_failed_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "berth.sqlite3"
    Store(path, migrations=MIGRATIONS[:1]).close()
    with pytest.raises(sqlite3.OperationalError):
        Store(path, migrations=[*MIGRATIONS[:1], "CREATE TABLE ok (x); SELECT * FROM no_such_table;"])
    s = Store(path, migrations=MIGRATIONS[:1])
    try:
        assert s.schema_version() == 1
        assert not s.query("SELECT name FROM sqlite_master WHERE name = 'ok'")
    finally:
        s.close()


def test_database_from_the_future_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "berth.sqlite3"
    Store(path, migrations=[*MIGRATIONS, "CREATE TABLE later (x);"]).close()
    known = len(MIGRATIONS)
    expected = rf"newer Berth \(schema version {known + 1}; this Berth knows up to {known}\)"
    with pytest.raises(DatabaseTooNew, match=expected) as info:
        Store(path)
    assert info.value.hint and "--data-dir" in info.value.hint


def test_disk_full_is_storage_full(store: Store) -> None:
    """SQLite's 'database or disk is full' (here forced with max_page_count) becomes StorageFull with a hint."""
    pages = store.query("PRAGMA page_count")[0][0]
    store.query(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StorageFull, match="disk holding Berth's database is full") as info:
        store.add_run(**run_args(stdout="x" * 200_000))
    assert info.value.hint and "free some space" in info.value.hint
    store.query("PRAGMA max_page_count = 1073741823")
    assert store.add_run(**run_args()) > 0  # the connection is usable again


def test_split_sql() -> None:
    assert split_sql("CREATE TABLE a (x); -- one; two\nINSERT INTO a VALUES ('; not a split');\n") == [
        "CREATE TABLE a (x);",
        "-- one; two\nINSERT INTO a VALUES ('; not a split');",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        split_sql("CREATE TABLE a (x); INSERT INTO a VALUES ('open")
