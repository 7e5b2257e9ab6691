"""SQLite store for agents, run history, the audit log and small settings, safe to call from any thread.

One connection per thread (WAL lets readers and one writer work side by side); the schema moves
forward through MIGRATIONS, applied in order at open. A new migration is one appended SQL script:
never edit or reorder the ones already released, since their index is the version of every
database that ran them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.errors import BerthError, Conflict, NotFound, StorageFull
from app.model import LOCAL_ENGINE, Agent, EngineConfig, Limits, RunRecord

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 10.0
SQLITE_FULL = 13

MIGRATIONS: list[str] = [
    # 1: agents, finished temporary runs, audit log, key/value settings.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE agents (
        name TEXT PRIMARY KEY,
        limits TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        token_hash TEXT NOT NULL UNIQUE,
        created REAL NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        agent TEXT NOT NULL,
        container_id TEXT NOT NULL,
        image TEXT NOT NULL,
        command TEXT NOT NULL,
        exit_code INTEGER,
        stdout TEXT NOT NULL,
        stderr TEXT NOT NULL,
        timed_out INTEGER NOT NULL,
        oom_killed INTEGER NOT NULL,
        truncated INTEGER NOT NULL,
        started REAL NOT NULL,
        finished REAL NOT NULL
    );
    CREATE INDEX runs_agent_finished ON runs (agent, finished);
    CREATE INDEX runs_finished ON runs (finished);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        agent TEXT,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_agent_time ON audit (agent, time);
    """,
    # 2: host shell requests (the Approval Queue and its record) and trusted patterns (app/core/approvals.py).
    """
    CREATE TABLE shell_requests (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        command TEXT NOT NULL,
        cwd TEXT NOT NULL,
        timeout_s REAL NOT NULL,
        created REAL NOT NULL,
        status TEXT NOT NULL,
        decided_by TEXT,
        decided_at REAL,
        started REAL,
        finished REAL,
        result TEXT
    );
    CREATE INDEX shell_requests_status_created ON shell_requests (status, created);
    CREATE INDEX shell_requests_agent_created ON shell_requests (agent, created);
    CREATE TABLE trusted_patterns (
        id INTEGER PRIMARY KEY,
        agent TEXT REFERENCES agents (name) ON DELETE CASCADE,
        pattern TEXT NOT NULL,
        created REAL NOT NULL,
        UNIQUE (agent, pattern)
    );
    -- UNIQUE treats NULLs as distinct: this index keeps global patterns (agent NULL) unique too.
    CREATE UNIQUE INDEX trusted_patterns_unique ON trusted_patterns (COALESCE(agent, ''), pattern);
    """,
    # 3: host access (app/host/): what a request asked for and what it was granted, a pattern's access,
    # and the host folders the person granted each agent. Existing patterns and requests become sandboxed ones.
    """
    ALTER TABLE shell_requests ADD COLUMN access TEXT NOT NULL DEFAULT 'sandbox';
    ALTER TABLE shell_requests ADD COLUMN granted TEXT;
    ALTER TABLE trusted_patterns ADD COLUMN access TEXT NOT NULL DEFAULT 'sandbox';
    ALTER TABLE agents ADD COLUMN host_folders TEXT NOT NULL DEFAULT '[]';
    """,
    # 4: the images an agent may have pulled, besides those already on the machine (app/core/images.py).
    """
    ALTER TABLE agents ADD COLUMN images TEXT NOT NULL DEFAULT '[]';
    """,
    # 5: the run history is searched by words of its command and output (app/core/history.py): a full-text
    # index over the runs table (it keeps no copy of the text), kept in step by triggers; filtered by exit code.
    """
    CREATE VIRTUAL TABLE runs_fts USING fts5 (command, stdout, stderr, content='runs', content_rowid='id');
    CREATE TRIGGER runs_fts_insert AFTER INSERT ON runs BEGIN
        INSERT INTO runs_fts (rowid, command, stdout, stderr) VALUES (new.id, new.command, new.stdout, new.stderr);
    END;
    CREATE TRIGGER runs_fts_delete AFTER DELETE ON runs BEGIN
        INSERT INTO runs_fts (runs_fts, rowid, command, stdout, stderr)
        VALUES ('delete', old.id, old.command, old.stdout, old.stderr);
    END;
    INSERT INTO runs_fts (runs_fts) VALUES ('rebuild');
    CREATE INDEX runs_exit_code ON runs (exit_code);
    """,
    # 6: more than one engine (API.md "Engines"): the engines the person added, and each agent's engine.
    """
    CREATE TABLE engines (
        name TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        created REAL NOT NULL
    );
    ALTER TABLE agents ADD COLUMN engine TEXT NOT NULL DEFAULT 'local';
    """,
]

_SCHEMA_VERSION_DDL = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied REAL)"
_LIMIT_FIELDS = frozenset(f.name for f in dataclasses.fields(Limits))


class DatabaseTooNew(BerthError):
    """The database was written by a newer Berth whose schema this code does not know."""


def split_sql(script: str) -> list[str]:
    """Split a script into complete statements (executescript() would commit the open transaction)."""
    out: list[str] = []
    buf = ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \t\r\n;"):
                out.append(buf.strip())
            buf = ""
    if buf.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement in migration: {buf.strip()[:80]!r}")
    return out


def _is_full(e: sqlite3.Error) -> bool:
    return getattr(e, "sqlite_errorcode", None) == SQLITE_FULL or "database or disk is full" in str(e)


class Store:
    """Berth's SQLite database: every method is blocking and thread-safe (call it via asyncio.to_thread)."""

    def __init__(self, path: Path, *, migrations: Sequence[str] | None = None) -> None:
        self.path = path
        self._migrations = list(MIGRATIONS if migrations is None else migrations)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Run output and the audit log are private: create the file 0600 (SQLite gives -wal/-shm the same mode).
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        self._migrate()

    # -- connections and transactions ------------------------------------------------------------

    def _connect(self, *, foreign_keys: bool = True) -> sqlite3.Connection:
        # check_same_thread=False only so close() may close every thread's connection; each is used by one thread.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("the store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            with self._lock:
                self._connections.append(conn)
            self._local.conn = conn
            self._local.depth = 0
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error; nested calls become savepoints."""
        conn = self._conn()
        depth: int = self._local.depth
        self._local.depth = depth + 1
        try:
            with self._storage_errors():
                if depth:
                    conn.execute(f"SAVEPOINT sp{depth}")
                    try:
                        yield conn
                    except BaseException:
                        conn.execute(f"ROLLBACK TO sp{depth}")
                        conn.execute(f"RELEASE sp{depth}")
                        raise
                    conn.execute(f"RELEASE sp{depth}")
                else:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield conn
                        conn.execute("COMMIT")
                    except BaseException:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise
        finally:
            self._local.depth = depth

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read-only statement on this thread's connection."""
        with self._storage_errors():
            return self._conn().execute(sql, params).fetchall()

    @contextmanager
    def _storage_errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as e:
            if not _is_full(e):
                raise
            logger.error("database %s: %s", self.path, e)
            raise StorageFull(
                "the disk holding Berth's database is full: the change was not saved",
                hint=f"free some space on the disk that holds {self.path.parent}, then try again",
            ) from e

    def close(self) -> None:
        """Close every thread's connection; the store cannot be used afterwards."""
        with self._lock:
            self._closed = True
            conns, self._connections = self._connections, []
        for conn in conns:
            conn.close()

    # -- schema ----------------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Bring the database to the newest schema this code knows, in one transaction."""
        known = len(self._migrations)
        conn = self._connect(foreign_keys=False)  # as SQLite advises for schema changes; checked below
        try:
            with self._storage_errors():
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(_SCHEMA_VERSION_DDL)
                    current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
                    if current > known:
                        raise DatabaseTooNew(
                            f"the database {self.path} was written by a newer Berth "
                            f"(schema version {current}; this Berth knows up to {known})",
                            hint="update Berth, or start it with another --data-dir",
                        )
                    for version in range(current + 1, known + 1):
                        logger.info("database %s: applying migration %d", self.path, version)
                        for statement in split_sql(self._migrations[version - 1]):
                            conn.execute(statement)
                        conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
                    if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                        raise RuntimeError(f"database {self.path}: a migration broke a foreign key")
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        finally:
            conn.close()

    def schema_version(self) -> int:
        return int(self.query("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])

    # -- agents ----------------------------------------------------------------------------------

    @staticmethod
    def _agent(row: sqlite3.Row) -> Agent:
        raw = json.loads(row["limits"])
        limits = Limits(**{k: v for k, v in raw.items() if k in _LIMIT_FIELDS})
        return Agent(
            name=row["name"],
            limits=limits,
            enabled=bool(row["enabled"]),
            created=row["created"],
            host_folders=tuple(json.loads(row["host_folders"] or "[]")) if "host_folders" in row.keys() else (),  # noqa: SIM118
            images=tuple(json.loads(row["images"] or "[]")) if "images" in row.keys() else (),  # noqa: SIM118
            engine=row["engine"] if "engine" in row.keys() else LOCAL_ENGINE,  # noqa: SIM118
        )

    def add_agent(self, name: str, limits: Limits, token_hash: str) -> Agent:
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM agents WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"agent {name!r} already exists")
            try:
                conn.execute(
                    "INSERT INTO agents (name, limits, enabled, token_hash, created) VALUES (?, ?, 1, ?, ?)",
                    (name, json.dumps(limits.to_json()), token_hash, time.time()),
                )
            except sqlite3.IntegrityError as e:
                raise Conflict("that token is already in use by another agent") from e
            return self._agent(conn.execute("SELECT * FROM agents WHERE name = ?", (name,)).fetchone())

    def get_agent(self, name: str) -> Agent | None:
        rows = self.query("SELECT * FROM agents WHERE name = ?", (name,))
        return self._agent(rows[0]) if rows else None

    def agent_by_token_hash(self, token_hash: str) -> Agent | None:
        rows = self.query("SELECT * FROM agents WHERE token_hash = ?", (token_hash,))
        return self._agent(rows[0]) if rows else None

    def list_agents(self) -> list[Agent]:
        return [self._agent(r) for r in self.query("SELECT * FROM agents ORDER BY name")]

    def update_agent(
        self,
        name: str,
        *,
        limits: Limits | None = None,
        enabled: bool | None = None,
        token_hash: str | None = None,
        host_folders: tuple[str, ...] | None = None,
        images: tuple[str, ...] | None = None,
        engine: str | None = None,
    ) -> Agent:
        changes: dict[str, Any] = {}
        if engine is not None:
            changes["engine"] = engine
        if host_folders is not None:
            changes["host_folders"] = json.dumps(list(host_folders))
        if images is not None:
            changes["images"] = json.dumps(list(images))
        if limits is not None:
            changes["limits"] = json.dumps(limits.to_json())
        if enabled is not None:
            changes["enabled"] = int(enabled)
        if token_hash is not None:
            changes["token_hash"] = token_hash
        with self.transaction() as conn:
            if changes:
                sets = ", ".join(f"{column} = ?" for column in changes)
                try:
                    conn.execute(f"UPDATE agents SET {sets} WHERE name = ?", (*changes.values(), name))
                except sqlite3.IntegrityError as e:
                    raise Conflict("that token is already in use by another agent") from e
            row = conn.execute("SELECT * FROM agents WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFound(f"no such agent: {name}")
            return self._agent(row)

    def remove_agent(self, name: str) -> None:
        with self.transaction() as conn:
            if conn.execute("DELETE FROM agents WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no such agent: {name}")

    # -- engines ---------------------------------------------------------------------------------

    @staticmethod
    def _engine(row: sqlite3.Row) -> EngineConfig:
        raw = json.loads(row["config"])
        known = {f.name for f in dataclasses.fields(EngineConfig)} - {"name", "created"}
        return EngineConfig(name=row["name"], created=row["created"], **{k: v for k, v in raw.items() if k in known})

    def list_engines(self) -> list[EngineConfig]:
        """The engines the person added (the local engine is not stored: it is always there)."""
        return [self._engine(r) for r in self.query("SELECT * FROM engines ORDER BY name")]

    def add_engine(self, config: EngineConfig) -> EngineConfig:
        body = {k: v for k, v in config.to_json().items() if k != "name"}
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM engines WHERE name = ?", (config.name,)).fetchone():
                raise Conflict(f"engine {config.name!r} already exists", hint="remove it first, or pick another name")
            conn.execute(
                "INSERT INTO engines (name, config, created) VALUES (?, ?, ?)",
                (config.name, json.dumps(body), time.time()),
            )
            return self._engine(conn.execute("SELECT * FROM engines WHERE name = ?", (config.name,)).fetchone())

    def remove_engine(self, name: str) -> None:
        """Forget an engine; refused (Conflict) while an agent is placed on it."""
        with self.transaction() as conn:
            users = [r[0] for r in conn.execute("SELECT name FROM agents WHERE engine = ? ORDER BY name", (name,))]
            if users:
                raise Conflict(
                    f"engine {name!r} is used by {', '.join(users)}",
                    hint="place those agents on another engine first (`berth agents set NAME --engine local`)",
                )
            if conn.execute("DELETE FROM engines WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no engine named {name!r}", hint="`berth engines list` shows them")

    # -- finished runs ---------------------------------------------------------------------------

    def add_run(
        self,
        agent: str,
        container_id: str,
        image: str,
        command: str,
        exit_code: int | None,
        stdout: str,
        stderr: str,
        timed_out: bool,
        oom_killed: bool,
        truncated: bool,
        started: float,
        finished: float,
    ) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO runs (agent, container_id, image, command, exit_code, stdout, stderr, timed_out,"
                " oom_killed, truncated, started, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *(agent, container_id, image, command, exit_code, stdout, stderr),
                    *(int(timed_out), int(oom_killed), int(truncated), started, finished),
                ),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    @staticmethod
    def _run(row: sqlite3.Row) -> RunRecord:
        values = dict(row)
        for flag in ("timed_out", "oom_killed", "truncated"):
            values[flag] = bool(values[flag])
        return RunRecord(**values)

    def list_runs(self, agent: str | None = None, limit: int = 100) -> list[RunRecord]:
        """The newest finished runs first, of one agent or of all."""
        if agent is None:
            rows = self.query("SELECT * FROM runs ORDER BY finished DESC, id DESC LIMIT ?", (limit,))
        else:
            sql = "SELECT * FROM runs WHERE agent = ? ORDER BY finished DESC, id DESC LIMIT ?"
            rows = self.query(sql, (agent, limit))
        return [self._run(r) for r in rows]

    def get_run(self, run_id: int) -> RunRecord | None:
        rows = self.query("SELECT * FROM runs WHERE id = ?", (run_id,))
        return self._run(rows[0]) if rows else None

    def prune_runs(self, keep: int = 500) -> int:
        """Delete all but the `keep` newest runs (of all agents together); return how many went."""
        with self.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM runs WHERE id NOT IN (SELECT id FROM runs ORDER BY finished DESC, id DESC LIMIT ?)",
                (max(keep, 0),),
            )
            return cur.rowcount

    # -- audit log -------------------------------------------------------------------------------

    def audit(
        self,
        action: str,
        target: str,
        *,
        agent: str | None = None,
        actor: str = "system",
        detail: dict[str, Any] | None = None,
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO audit (time, agent, actor, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), agent, actor, action, target, json.dumps(detail or {}, default=str)),
            )

    def list_audit(self, limit: int = 200, agent: str | None = None) -> list[dict[str, Any]]:
        """The newest entries first: {"id", "time", "agent", "actor", "action", "target", "detail"}."""
        if agent is None:
            rows = self.query("SELECT * FROM audit ORDER BY time DESC, id DESC LIMIT ?", (limit,))
        else:
            rows = self.query("SELECT * FROM audit WHERE agent = ? ORDER BY time DESC, id DESC LIMIT ?", (agent, limit))
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]

    # -- meta ------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
