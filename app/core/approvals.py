"""The Approval Queue: host shell requests, the person's decisions, their runs, and trusted patterns.

A request is stored once and never edited (what the person approves is byte for byte what runs);
only its state moves on: ``pending -> running -> done``, ``pending -> denied``, ``pending ->
expired``. Every move is a conditional UPDATE inside a store transaction, so a decision and an
expiry that race cannot both win. The store is the record (and the audit log); this object keeps
a snapshot and an asyncio.Event per open request so that any number of waiters wake on the final
state, and none waits past its own ``wait_s``.

Blocking store calls run via ``asyncio.to_thread`` from the async methods; the sync methods
(``list``, the pattern methods) call the store directly: they are small indexed queries.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import math
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from app.core.display import display_command, display_text
from app.core.events import EventBus
from app.core.host_access import FolderPolicy, request_warnings
from app.core.patterns import (
    MAX_COMMAND_LENGTH,
    Pattern,
    PatternError,
    Verdict,
    check_command,
    parse_pattern,
    pattern_matches,
    propose_pattern,
)
from app.core.store import Store
from app.errors import BerthError, Conflict, InvalidParams, NotFound
from app.host import ACCESS_LEVELS, Access, HostRunner, SandboxStatus, ShellResult

logger = logging.getLogger(__name__)

STATUSES = ("pending", "running", "done", "denied", "expired")
FINAL = frozenset({"done", "denied", "expired"})
MAX_TIMEOUT_S = 3600.0
MAX_WAIT_S = 600.0
LIST_LIMIT = 200
STOPPED = "Berth stopped while this command ran; its outcome is unknown"

Decision = Literal["approve", "deny"]


@dataclass(frozen=True)
class ShellRequest:
    """One host command an agent asked for; ``expires_at`` is set while it is pending."""

    request_id: str
    agent: str
    command: str
    cwd: str
    timeout_s: float
    created: float
    status: str
    decided_by: str | None = None
    decided_at: float | None = None
    result: ShellResult | None = None
    expires_at: float | None = None
    access: Access = "sandbox"  # what the agent asked for
    granted: Access | None = None  # what it runs (or ran) with, once approved; never more than `access`
    warnings: tuple[str, ...] = ()  # what the person should know before approving (host_access.py)

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def effective_access(self) -> Access:
        return self.granted or self.access

    def to_json(self) -> dict[str, Any]:
        """The API.md `shell.request` / `shell.status` result."""
        return {
            "request_id": self.request_id,
            "status": self.status,
            "decided_by": self.decided_by,
            "access": self.effective_access,
            "result": None if self.result is None else self.result.to_json(),
        }

    def to_owner_json(self) -> dict[str, Any]:
        """The `approvals.list` entry; the display_ fields show hidden characters as escapes."""
        return {
            "request_id": self.request_id,
            "agent": self.agent,
            "command": self.command,
            "display_command": display_command(self.command),
            "cwd": self.cwd,
            "display_cwd": display_text(self.cwd),
            "access": self.access,
            "granted": self.granted,
            "created": self.created,
            "status": self.status,
            "expires_at": self.expires_at,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class TrustedPattern:
    """A stored trusted pattern; ``agent`` None means it applies to every agent."""

    id: int
    agent: str | None
    pattern: str
    created: float
    access: Access = "sandbox"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "pattern": self.pattern,
            "created": self.created,
            "access": self.access,
        }


@dataclass
class _Open:
    """A request that is pending or running in this process: its latest state and a final-state event."""

    request: ShellRequest
    done: asyncio.Event = field(default_factory=asyncio.Event)


def _number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidParams(f"{name}: must be a number from {low:g} to {high:g}")
    if not low <= value <= high:
        raise InvalidParams(f"{name}: must be from {low:g} to {high:g}, not {value:g}")
    return float(value)


def _stopped() -> ShellResult:
    return ShellResult(exit_code=None, stdout="", stderr=STOPPED)


class Approvals:
    """Shell requests and trusted patterns, persisted in the store; events: approval.*, patterns.changed."""

    def __init__(
        self,
        store: Store,
        runner: HostRunner,
        events: EventBus,
        *,
        expiry_s: float = 600.0,
        folders: FolderPolicy | None = None,
    ) -> None:
        self._store = store
        self._runner = runner
        self._folders = folders
        self._events = events
        self.expiry_s = expiry_s
        self._open: dict[str, _Open] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._runs: dict[str, asyncio.Task[None]] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def sandbox(self) -> SandboxStatus:
        """Whether sandboxed host commands work here (checked by `start`)."""
        return self._runner.sandbox

    async def start(self) -> None:
        """Take up the requests of an earlier run: pending ones wait (or expire), running ones are closed."""
        status = await self._runner.check_sandbox()
        if not status.available:
            logger.warning("host commands cannot be sandboxed here: %s (none is approved by a pattern)", status.reason)
        rows = await asyncio.to_thread(
            self._store.query, "SELECT * FROM shell_requests WHERE status IN ('pending', 'running') ORDER BY created"
        )
        for row in rows:
            req = self._from_row(row)
            self._track(req)
            if req.status == "running":
                await self._finish(req, _stopped())  # Berth died while it ran
            elif req.expires_at is not None and req.expires_at <= time.time():
                await self._expire(req.request_id)
            else:
                self._schedule_expiry(req)

    def tasks(self) -> list[asyncio.Task[None]]:
        """Expiry timers and running commands (for shutdown checks)."""
        return [*self._timers.values(), *self._runs.values()]

    async def close(self) -> None:
        """Stop expiry timers and running commands (recorded as stopped); pending requests stay in the store."""
        tasks = [*self._timers.values(), *self._runs.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for entry in builtins.list(self._open.values()):
            if entry.request.status == "running":  # also a run cancelled before its task began
                await self._finish(entry.request, _stopped())
        for entry in self._open.values():
            entry.done.set()  # waiters return the current (pending) state
        self._open.clear()

    # -- the agent's side ------------------------------------------------------------------------

    async def request(
        self,
        agent: str,
        command: str,
        cwd: str | None,
        timeout_s: float,
        wait_s: float,
        access: Access = "sandbox",
    ) -> ShellRequest:
        """Record a request; run it at once if trusted patterns allow it, else queue it; wait up to wait_s.

        `cwd` None is the agent's workspace; anything else must be inside the agent's folders (-32602).
        """
        if access not in ACCESS_LEVELS:
            raise InvalidParams('access: must be "sandbox" or "host"')
        if not isinstance(command, str) or not command.strip():
            raise InvalidParams("command: must be a non-empty string")
        if len(command) > MAX_COMMAND_LENGTH:
            raise InvalidParams(f"command: longer than {MAX_COMMAND_LENGTH} characters")
        if "\0" in command:
            raise InvalidParams("command: contains a NUL character, which no command line can hold")
        timeout = _number("timeout_s", timeout_s, 1, MAX_TIMEOUT_S)
        wait = _number("wait_s", wait_s, 0, MAX_WAIT_S)
        folder = await asyncio.to_thread(self._policy().resolve, agent, cwd)
        req = await asyncio.to_thread(self._insert_request, agent, command, folder.path, timeout, access)
        self._track(req)
        if req.status == "running":
            logger.info("shell request %s of %s allowed by %s", req.request_id, agent, req.decided_by)
            self._events.emit("approval.decided", req)
            self._start_run(req)
        else:
            logger.info("shell request %s of %s is waiting for approval", req.request_id, agent)
            self._schedule_expiry(req)
            self._events.emit("approval.pending", req)
        return await self._wait(req.request_id, wait)

    async def status(self, agent: str, request_id: str, wait_s: float) -> ShellRequest:
        """The request's state after waiting up to wait_s for a final one; another agent's is not found."""
        wait = _number("wait_s", wait_s, 0, MAX_WAIT_S)
        entry = self._open.get(request_id) if isinstance(request_id, str) else None
        req = entry.request if entry is not None else await asyncio.to_thread(self._load, request_id)
        if req is None or req.agent != agent:
            raise NotFound(f"no shell request {request_id} for this agent")
        return req if entry is None else await self._wait(request_id, wait)

    # -- the owner's side ------------------------------------------------------------------------

    def list(self, status: str | None = "pending", agent: str | None = None) -> builtins.list[ShellRequest]:
        """Requests newest first (at most 200), of one status (None: all) and optionally one agent."""
        if status is not None and status not in STATUSES:
            raise InvalidParams(f"status: must be one of {', '.join(STATUSES)}")
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if agent is not None:
            where.append("agent = ?")
            params.append(agent)
        sql = "SELECT * FROM shell_requests" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._store.query(sql + " ORDER BY created DESC, rowid DESC LIMIT ?", (*params, LIST_LIMIT))
        return [self._from_row(r) for r in rows]

    async def decide(
        self,
        request_id: str,
        decision: Decision,
        trust: str | None = None,
        actor: str = "user",
        access: Access | None = None,
    ) -> ShellRequest:
        """Approve (the run starts, this returns with status running) or deny a pending request.

        ``access`` lowers what the agent asked for (``sandbox`` for a ``host`` request), never raises it:
        the one exception is where no sandbox works, where approving means full access and the person
        confirms it with ``access="host"``. With ``trust``, the pattern is first added to the agent's
        trusted patterns (sandboxed, unless ``access="host"`` was chosen explicitly); it must allow this
        exact command. The pattern, the decision and the audit entries are saved in one transaction.
        """
        if decision not in ("approve", "deny"):
            raise InvalidParams('decision: must be "approve" or "deny"')
        if access is not None and access not in ACCESS_LEVELS:
            raise InvalidParams('access: must be "sandbox", "host" or null')
        pattern: Pattern | None = None
        if trust is not None:
            if decision != "approve":
                raise InvalidParams("trust: a pattern can only be trusted when approving")
            if not isinstance(trust, str):
                raise InvalidParams("trust: must be a string or null")
            try:
                pattern = parse_pattern(trust)
            except PatternError as e:
                raise InvalidParams(f"trust: {e}") from e
        req, added = await asyncio.to_thread(self._record_decision, request_id, decision, pattern, actor, access)
        timer = self._timers.pop(request_id, None)
        if timer is not None:
            timer.cancel()
        self._track(req)
        logger.info("shell request %s: %s by %s", request_id, req.status, actor)
        if added is not None:
            self._events.emit("patterns.changed", added)
        self._events.emit("approval.decided", req)
        if req.status == "running":
            self._start_run(req)
        return req

    # -- trusted patterns ------------------------------------------------------------------------

    def add_pattern(
        self, pattern: str, agent: str | None = None, *, actor: str = "user", access: Access = "sandbox"
    ) -> TrustedPattern:
        """Trust a pattern globally or for one agent, with its access (sandbox unless the person says full
        access); adding an existing one changes its access to the one given."""
        if access not in ACCESS_LEVELS:
            raise InvalidParams('access: must be "sandbox" or "host"')
        try:
            parsed = parse_pattern(pattern)
        except PatternError as e:
            raise InvalidParams(f"pattern: {e}") from e
        with self._store.transaction() as conn:
            trusted, new = self._insert_pattern(conn, parsed.text, agent, actor, access)
        if new:
            self._events.emit("patterns.changed", trusted)
        return trusted

    def remove_pattern(self, pattern_id: int, *, actor: str = "user") -> None:
        with self._store.transaction() as conn:
            row = conn.execute("SELECT * FROM trusted_patterns WHERE id = ?", (pattern_id,)).fetchone()
            if row is None:
                raise NotFound(f"no trusted pattern {pattern_id}")
            conn.execute("DELETE FROM trusted_patterns WHERE id = ?", (pattern_id,))
            trusted = self._pattern_from_row(row)
            detail = {"pattern": trusted.pattern}
            self._store.audit("trust.remove", f"pattern:{pattern_id}", agent=trusted.agent, actor=actor, detail=detail)
        self._events.emit("patterns.changed", trusted)

    def list_patterns(self, agent: str | None = None, include_global: bool = True) -> builtins.list[TrustedPattern]:
        """With no agent: every pattern (global and each agent's). With one: its own, then global ones if asked."""
        if agent is None:
            rows = self._store.query("SELECT * FROM trusted_patterns ORDER BY agent IS NOT NULL, agent, id")
        else:
            where = "agent = ? OR agent IS NULL" if include_global else "agent = ?"
            rows = self._store.query(
                f"SELECT * FROM trusted_patterns WHERE {where} ORDER BY agent IS NULL, id", (agent,)
            )
        return [self._pattern_from_row(r) for r in rows]

    def check(self, agent: str, command: str, access: Access = "sandbox") -> Verdict:
        """Would ``command`` of ``agent``, asking for ``access``, run without asking? (its own patterns, then
        the global ones; a sandboxed request never where no sandbox works)."""
        return check_command(command, [p for _, p in self._eligible(self._patterns_for(agent), access)])

    def propose(self, command: str) -> str:
        """The pattern to offer for "approve and trust": the exact command (wildcards are the person's edit)."""
        try:
            return propose_pattern(command)
        except PatternError as e:
            raise InvalidParams(f"command: {e}") from e

    # -- store work (runs in a worker thread) ----------------------------------------------------

    def _from_row(self, row: sqlite3.Row) -> ShellRequest:
        status = row["status"]
        return ShellRequest(
            request_id=row["id"],
            agent=row["agent"],
            command=row["command"],
            cwd=row["cwd"],
            timeout_s=row["timeout_s"],
            created=row["created"],
            status=status,
            decided_by=row["decided_by"],
            decided_at=row["decided_at"],
            result=ShellResult.from_json(json.loads(row["result"])) if row["result"] else None,
            expires_at=row["created"] + self.expiry_s if status == "pending" else None,
            access=row["access"],
            granted=row["granted"],
            warnings=tuple(self._warnings(row["agent"], row["command"], row["cwd"], row["access"]))
            if status == "pending"
            else (),
        )

    def _warnings(self, agent: str, command: str, cwd: str, access: Access) -> builtins.list[str]:
        folders = self._folders
        writable = folders is not None and folders.in_workspace(agent, cwd)
        warnings = request_warnings(command, cwd, access, cwd_writable_by_containers=writable)
        if access == "sandbox" and not self.sandbox.available:
            warnings.append(f"No sandbox works here ({self.sandbox.reason}): approving it gives it full access.")
        return warnings

    def _policy(self) -> FolderPolicy:
        if self._folders is None:
            raise RuntimeError("Approvals was made without a folder policy: it cannot take requests")
        return self._folders

    def _eligible(
        self, entries: builtins.list[tuple[TrustedPattern, Pattern]], access: Access
    ) -> builtins.list[tuple[TrustedPattern, Pattern]]:
        """The patterns that may approve a request for `access`: a host request only by full-access patterns,
        a sandboxed one by any, but only where the sandbox works."""
        if access == "host":
            return [e for e in entries if e[0].access == "host"]
        return entries if self.sandbox.available else []

    def _load(self, request_id: str) -> ShellRequest | None:
        rows = self._store.query("SELECT * FROM shell_requests WHERE id = ?", (request_id,))
        return self._from_row(rows[0]) if rows else None

    def _patterns_for(self, agent: str) -> builtins.list[tuple[TrustedPattern, Pattern]]:
        out = []
        for trusted in self.list_patterns(agent):
            try:
                out.append((trusted, parse_pattern(trusted.pattern)))
            except PatternError as e:  # saved by a Berth with looser rules: never trusted now
                logger.warning("ignoring trusted pattern %d %r: %s", trusted.id, trusted.pattern, e)
        return out

    def _insert_request(self, agent: str, command: str, cwd: str, timeout_s: float, access: Access) -> ShellRequest:
        entries = self._eligible(self._patterns_for(agent), access)
        verdict = check_command(command, [p for _, p in entries])
        request_id, now = "sr-" + secrets.token_hex(8), time.time()
        with self._store.transaction() as conn:
            sql = "INSERT INTO shell_requests (id, agent, command, cwd, timeout_s, created, access, status"
            if not verdict.allowed:
                conn.execute(
                    sql + ") VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                    (request_id, agent, command, cwd, timeout_s, now, access),
                )
            else:
                # decided_by names the pattern that allowed the first simple command; the audit lists them all.
                texts = (verdict.pattern or "").split("; ")
                ids = [next(t.id for t, p in entries if p.text == text) for text in texts]
                decided_by = f"pattern:{ids[0]}"
                conn.execute(
                    sql + ", granted, decided_by, decided_at, started) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                    (request_id, agent, command, cwd, timeout_s, now, access, access, decided_by, now, now),
                )
                detail = {"command": command, "cwd": cwd, "patterns": ids, "access": access}
                self._store.audit("shell.approve", request_id, agent=agent, actor=decided_by, detail=detail)
            return self._from_row(conn.execute("SELECT * FROM shell_requests WHERE id = ?", (request_id,)).fetchone())

    def _insert_pattern(
        self, conn: sqlite3.Connection, text: str, agent: str | None, actor: str, access: Access = "sandbox"
    ) -> tuple[TrustedPattern, bool]:
        if agent is not None and conn.execute("SELECT 1 FROM agents WHERE name = ?", (agent,)).fetchone() is None:
            raise NotFound(f"no such agent: {agent}")
        sql = "SELECT * FROM trusted_patterns WHERE COALESCE(agent, '') = ? AND pattern = ?"
        row = conn.execute(sql, (agent or "", text)).fetchone()
        detail = {"pattern": text, "access": access}
        if row is not None:
            if row["access"] == access:
                return self._pattern_from_row(row), False
            conn.execute("UPDATE trusted_patterns SET access = ? WHERE id = ?", (access, row["id"]))
            self._store.audit("trust.access", f"pattern:{row['id']}", agent=agent, actor=actor, detail=detail)
            new_row = conn.execute("SELECT * FROM trusted_patterns WHERE id = ?", (row["id"],)).fetchone()
            return self._pattern_from_row(new_row), True
        insert = "INSERT INTO trusted_patterns (agent, pattern, created, access) VALUES (?, ?, ?, ?)"
        cur = conn.execute(insert, (agent, text, time.time(), access))
        trusted = self._pattern_from_row(
            conn.execute("SELECT * FROM trusted_patterns WHERE id = ?", (cur.lastrowid,)).fetchone()
        )
        self._store.audit("trust.add", f"pattern:{trusted.id}", agent=agent, actor=actor, detail=detail)
        return trusted, True

    @staticmethod
    def _pattern_from_row(row: sqlite3.Row) -> TrustedPattern:
        return TrustedPattern(
            id=row["id"], agent=row["agent"], pattern=row["pattern"], created=row["created"], access=row["access"]
        )

    def _granted(self, asked: Access, chosen: Access | None) -> Access:
        """The access an approval gives: the one asked for, or lower; full access where no sandbox works only
        when the person chose it explicitly."""
        if chosen == "host" and asked == "sandbox" and self.sandbox.available:
            raise InvalidParams(
                "access: the agent asked for the sandbox; an approval never gives more than was asked "
                "(approve it in the sandbox, or deny it)"
            )
        granted = chosen or asked
        if granted == "sandbox" and not self.sandbox.available:
            raise InvalidParams(
                f"no sandbox works here ({self.sandbox.reason}): approving runs the command with full access "
                'as you; to do that, approve with full access (access "host", `--full-access`)',
                hint="install bubblewrap to run host commands in a sandbox",
            )
        return granted

    def _record_decision(
        self, request_id: str, decision: Decision, pattern: Pattern | None, actor: str, access: Access | None = None
    ) -> tuple[ShellRequest, TrustedPattern | None]:
        with self._store.transaction() as conn:
            row = conn.execute("SELECT * FROM shell_requests WHERE id = ?", (request_id,)).fetchone()
            if row is None:
                raise NotFound(f"no shell request {request_id}")
            if row["status"] != "pending":
                raise Conflict(f"request {request_id} is already {row['status']}")
            granted = self._granted(row["access"], access) if decision == "approve" else None
            added: TrustedPattern | None = None
            if pattern is not None:
                if not pattern_matches(pattern, row["command"]):
                    raise InvalidParams(f"trust: the pattern `{pattern.text}` does not match the command")
                pattern_access: Access = "host" if access == "host" else "sandbox"
                added, new = self._insert_pattern(conn, pattern.text, row["agent"], actor, pattern_access)
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
            if pattern is not None:
                detail["trust"] = pattern.text
            self._store.audit(f"shell.{decision}", request_id, agent=row["agent"], actor=actor, detail=detail)
            new_row = conn.execute("SELECT * FROM shell_requests WHERE id = ?", (request_id,)).fetchone()
            return self._from_row(new_row), added

    def _record_expiry(self, request_id: str) -> ShellRequest | None:
        with self._store.transaction() as conn:
            sql = "UPDATE shell_requests SET status = 'expired', decided_at = ? WHERE id = ? AND status = 'pending'"
            if conn.execute(sql, (time.time(), request_id)).rowcount == 0:
                return None  # decided meanwhile
            row = conn.execute("SELECT * FROM shell_requests WHERE id = ?", (request_id,)).fetchone()
            detail = {"command": row["command"], "cwd": row["cwd"]}
            self._store.audit("shell.expire", request_id, agent=row["agent"], actor="system", detail=detail)
            return self._from_row(row)

    def _record_result(self, req: ShellRequest, result: ShellResult) -> ShellRequest | None:
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
            return self._from_row(
                conn.execute("SELECT * FROM shell_requests WHERE id = ?", (req.request_id,)).fetchone()
            )

    # -- waiting, expiry and runs (on the event loop) --------------------------------------------

    def _track(self, req: ShellRequest) -> None:
        """Store the latest state of an open request; a final state wakes its waiters and forgets it."""
        entry = self._open.get(req.request_id)
        if entry is None:
            if req.final:
                return
            entry = self._open[req.request_id] = _Open(req)
        entry.request = req
        if req.final:
            entry.done.set()
            del self._open[req.request_id]

    async def _wait(self, request_id: str, wait_s: float) -> ShellRequest:
        entry = self._open.get(request_id)
        if entry is None:
            req = await asyncio.to_thread(self._load, request_id)
            assert req is not None
            return req
        if wait_s > 0 and not entry.done.is_set():
            try:
                await asyncio.wait_for(entry.done.wait(), wait_s)
            except TimeoutError:
                pass
        return entry.request

    def _schedule_expiry(self, req: ShellRequest) -> None:
        delay = max(0.0, (req.expires_at or 0.0) - time.time())
        self._timers[req.request_id] = asyncio.create_task(self._expire_later(req.request_id, delay))

    async def _expire_later(self, request_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._timers.pop(request_id, None)  # from here on a decision must not cancel the write under way
        await self._expire(request_id)

    async def _expire(self, request_id: str) -> None:
        req = await asyncio.to_thread(self._record_expiry, request_id)
        if req is not None:
            logger.info("shell request %s expired without a decision", request_id)
            self._track(req)
            self._events.emit("approval.decided", req)

    def _start_run(self, req: ShellRequest) -> None:
        task = asyncio.create_task(self._run(req), name=f"shell {req.request_id}")
        self._runs[req.request_id] = task
        task.add_done_callback(lambda _: self._runs.pop(req.request_id, None))

    async def _run(self, req: ShellRequest) -> None:
        try:
            # Checked again now: the folder may have been swapped for a symlink, or the grant taken back.
            folder = await asyncio.to_thread(self._policy().resolve, req.agent, req.cwd)
            result = await self._runner.run(req.command, folder, req.timeout_s, access=req.effective_access)
        except BerthError as e:
            result = ShellResult(exit_code=None, stdout="", stderr=f"the command did not run: {e.message}")
        except OSError as e:
            result = ShellResult(exit_code=None, stdout="", stderr=f"the command could not be started: {e}")
        except Exception:
            logger.exception("shell request %s failed", req.request_id)
            result = ShellResult(exit_code=None, stdout="", stderr="the command failed: internal error (see the log)")
        await self._finish(req, result)

    async def _finish(self, req: ShellRequest, result: ShellResult) -> None:
        done = await asyncio.to_thread(self._record_result, req, result)
        if done is not None:
            self._track(done)
            self._events.emit("approval.finished", done)
