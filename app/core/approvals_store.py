"""The Approval Queue's SQL: shell requests, trusted patterns and their audit entries.

A request is inserted once and never edited; only its state moves on, each move a conditional UPDATE
(``... AND status = 'pending'``) inside one store transaction (BEGIN IMMEDIATE) with its audit entry,
so a decision and an expiry that race cannot both win. Every method blocks: `Approvals` calls them in
a worker thread, except the small indexed reads behind its sync methods.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from app.core.approval_records import LIST_LIMIT, Decision, ShellRequest, TrustedPattern, pattern_from_row
from app.core.patterns import Pattern, pattern_matches
from app.core.store import Store
from app.errors import Conflict, InvalidParams, NotFound
from app.host import Access, ShellResult

_SELECT_REQUEST = "SELECT * FROM shell_requests WHERE id = ?"
_SELECT_PATTERN = "SELECT * FROM trusted_patterns WHERE id = ?"


class ApprovalStore:
    """Shell requests and trusted patterns in the store; `to_request` turns a row into a ShellRequest."""

    def __init__(self, store: Store, to_request: Callable[[sqlite3.Row], ShellRequest]) -> None:
        self._store = store
        self._to_request = to_request

    # -- shell requests --------------------------------------------------------------------------

    def load(self, request_id: str) -> ShellRequest | None:
        rows = self._store.query(_SELECT_REQUEST, (request_id,))
        return self._to_request(rows[0]) if rows else None

    def open_requests(self) -> list[ShellRequest]:
        """The pending and running requests, oldest first (what a restart takes up)."""
        rows = self._store.query("SELECT * FROM shell_requests WHERE status IN ('pending', 'running') ORDER BY created")
        return [self._to_request(r) for r in rows]

    def list_requests(self, status: str | None, agent: str | None) -> list[ShellRequest]:
        """Requests newest first (at most LIST_LIMIT), of one status (None: all) and optionally one agent."""
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if agent is not None:
            where.append("agent = ?")
            params.append(agent)
        sql = "SELECT * FROM shell_requests" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._store.query(sql + " ORDER BY created DESC, rowid DESC LIMIT ?", (*params, LIST_LIMIT))
        return [self._to_request(r) for r in rows]

    def insert_request(
        self, agent: str, command: str, cwd: str, timeout_s: float, access: Access, allowed_by: list[int] | None
    ) -> ShellRequest:
        """A new request: pending, or running at once when `allowed_by` names the trusted patterns that allow it."""
        request_id, now = "sr-" + secrets.token_hex(8), time.time()
        with self._store.transaction() as conn:
            sql = "INSERT INTO shell_requests (id, agent, command, cwd, timeout_s, created, access, status"
            if allowed_by is None:
                conn.execute(
                    sql + ") VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                    (request_id, agent, command, cwd, timeout_s, now, access),
                )
            else:
                # decided_by names the pattern that allowed the first simple command; the audit lists them all.
                decided_by = f"pattern:{allowed_by[0]}"
                conn.execute(
                    sql + ", granted, decided_by, decided_at, started) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                    (request_id, agent, command, cwd, timeout_s, now, access, access, decided_by, now, now),
                )
                detail = {"command": command, "cwd": cwd, "patterns": allowed_by, "access": access}
                self._store.audit("shell.approve", request_id, agent=agent, actor=decided_by, detail=detail)
            return self._to_request(conn.execute(_SELECT_REQUEST, (request_id,)).fetchone())

    def record_decision(
        self,
        request_id: str,
        decision: Decision,
        actor: str,
        *,
        grant: Callable[[Access], Access],
        trust: Pattern | None = None,
        trust_access: Access = "sandbox",
    ) -> tuple[ShellRequest, TrustedPattern | None]:
        """Approve or deny a pending request, first trusting `trust` for its agent if given; all or nothing.

        `grant` maps the access asked for to the one an approval gives (or raises InvalidParams). Returns the
        request and the pattern if it was added or its access changed.
        """
        with self._store.transaction() as conn:
            row = conn.execute(_SELECT_REQUEST, (request_id,)).fetchone()
            if row is None:
                raise NotFound(f"no shell request {request_id}")
            if row["status"] != "pending":
                raise Conflict(f"request {request_id} is already {row['status']}")
            granted = grant(row["access"]) if decision == "approve" else None
            added: TrustedPattern | None = None
            if trust is not None:
                if not pattern_matches(trust, row["command"]):
                    raise InvalidParams(f"trust: the pattern `{trust.text}` does not match the command")
                added, new = self.insert_pattern(conn, trust.text, row["agent"], actor, trust_access)
                added = added if new else None
            now = time.time()
            if decision == "approve":
                sql = "UPDATE shell_requests SET status = 'running', granted = ?, decided_by = ?, decided_at = ?"
                sql += ", started = ? WHERE id = ? AND status = 'pending'"
                conn.execute(sql, (granted, actor, now, now, request_id))
            else:
                sql = "UPDATE shell_requests SET status = 'denied', decided_by = ?, decided_at = ?"
                conn.execute(sql + " WHERE id = ? AND status = 'pending'", (actor, now, request_id))
            detail: dict[str, Any] = {"command": row["command"], "cwd": row["cwd"], "access": granted or row["access"]}
            if trust is not None:
                detail["trust"] = trust.text
            self._store.audit(f"shell.{decision}", request_id, agent=row["agent"], actor=actor, detail=detail)
            return self._to_request(conn.execute(_SELECT_REQUEST, (request_id,)).fetchone()), added

    def record_expiry(self, request_id: str) -> ShellRequest | None:
        """Expire a request still pending; None if it was decided meanwhile."""
        with self._store.transaction() as conn:
            sql = "UPDATE shell_requests SET status = 'expired', decided_at = ? WHERE id = ? AND status = 'pending'"
            if conn.execute(sql, (time.time(), request_id)).rowcount == 0:
                return None  # decided meanwhile
            row = conn.execute(_SELECT_REQUEST, (request_id,)).fetchone()
            detail = {"command": row["command"], "cwd": row["cwd"]}
            self._store.audit("shell.expire", request_id, agent=row["agent"], actor="system", detail=detail)
            return self._to_request(row)

    def record_result(self, req: ShellRequest, result: ShellResult) -> ShellRequest | None:
        """Close a running request with its result; None if it was not running (already closed)."""
        with self._store.transaction() as conn:
            sql = "UPDATE shell_requests SET status = 'done', finished = ?, result = ? WHERE id = ?"
            sql += " AND status = 'running'"
            params = (time.time(), json.dumps(result.to_json()), req.request_id)
            if conn.execute(sql, params).rowcount == 0:
                return None
            detail = {
                "command": req.command,
                "exit_code": result.exit_code,
                "timed_out": result.timed_out,
                "duration_ms": result.duration_ms,
            }
            actor = req.decided_by or "system"
            self._store.audit("shell.run", req.request_id, agent=req.agent, actor=actor, detail=detail)
            return self._to_request(conn.execute(_SELECT_REQUEST, (req.request_id,)).fetchone())

    # -- trusted patterns ------------------------------------------------------------------------

    def add_pattern(self, text: str, agent: str | None, actor: str, access: Access) -> tuple[TrustedPattern, bool]:
        with self._store.transaction() as conn:
            return self.insert_pattern(conn, text, agent, actor, access)

    def insert_pattern(
        self, conn: sqlite3.Connection, text: str, agent: str | None, actor: str, access: Access = "sandbox"
    ) -> tuple[TrustedPattern, bool]:
        """Trust a (normalised) pattern inside the caller's transaction; an existing one takes the access given.
        Returns the pattern and whether anything changed."""
        if agent is not None and conn.execute("SELECT 1 FROM agents WHERE name = ?", (agent,)).fetchone() is None:
            raise NotFound(f"no such agent: {agent}")
        sql = "SELECT * FROM trusted_patterns WHERE COALESCE(agent, '') = ? AND pattern = ?"
        row = conn.execute(sql, (agent or "", text)).fetchone()
        detail = {"pattern": text, "access": access}
        if row is not None:
            if row["access"] == access:
                return pattern_from_row(row), False
            conn.execute("UPDATE trusted_patterns SET access = ? WHERE id = ?", (access, row["id"]))
            self._store.audit("trust.access", f"pattern:{row['id']}", agent=agent, actor=actor, detail=detail)
            return pattern_from_row(conn.execute(_SELECT_PATTERN, (row["id"],)).fetchone()), True
        insert = "INSERT INTO trusted_patterns (agent, pattern, created, access) VALUES (?, ?, ?, ?)"
        cur = conn.execute(insert, (agent, text, time.time(), access))
        trusted = pattern_from_row(conn.execute(_SELECT_PATTERN, (cur.lastrowid,)).fetchone())
        self._store.audit("trust.add", f"pattern:{trusted.id}", agent=agent, actor=actor, detail=detail)
        return trusted, True

    def remove_pattern(self, pattern_id: int, actor: str) -> TrustedPattern:
        with self._store.transaction() as conn:
            row = conn.execute(_SELECT_PATTERN, (pattern_id,)).fetchone()
            if row is None:
                raise NotFound(f"no trusted pattern {pattern_id}")
            conn.execute("DELETE FROM trusted_patterns WHERE id = ?", (pattern_id,))
            trusted = pattern_from_row(row)
            detail = {"pattern": trusted.pattern}
            self._store.audit("trust.remove", f"pattern:{pattern_id}", agent=trusted.agent, actor=actor, detail=detail)
            return trusted

    def list_patterns(self, agent: str | None, include_global: bool) -> list[TrustedPattern]:
        """With no agent: every pattern (global and each agent's). With one: its own, then global ones if asked."""
        if agent is None:
            rows = self._store.query("SELECT * FROM trusted_patterns ORDER BY agent IS NOT NULL, agent, id")
        else:
            where = "agent = ? OR agent IS NULL" if include_global else "agent = ?"
            rows = self._store.query(
                f"SELECT * FROM trusted_patterns WHERE {where} ORDER BY agent IS NULL, id", (agent,)
            )
        return [pattern_from_row(r) for r in rows]
