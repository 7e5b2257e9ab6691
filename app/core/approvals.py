"""The Approval Queue: host shell requests, the person's decisions, their runs, and trusted patterns.

A request is stored once and never edited (what the person approves is byte for byte what runs);
only its state moves on: ``pending -> running -> done``, ``pending -> denied``, ``pending ->
expired``. Every move is a conditional UPDATE inside a store transaction (approvals_store.py), so a
decision and an expiry that race cannot both win. The store is the record (and the audit log); this
object keeps a snapshot and an asyncio.Event per open request so that any number of waiters wake on
the final state, and none waits past its own ``wait_s``. Trusted patterns are in trust.py; the
records (ShellRequest, TrustedPattern) in approval_records.py, re-exported here.

Blocking store calls run via ``asyncio.to_thread`` from the async methods; the sync methods
(``list``, the pattern methods) call the store directly: they are small indexed queries.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import logging
import math
import sqlite3
import time
from dataclasses import dataclass, field

from app.core.approval_records import (
    FINAL,
    LIST_LIMIT,
    MAX_TIMEOUT_S,
    MAX_WAIT_S,
    STATUSES,
    STOPPED,
    Decision,
    ShellRequest,
    TrustedPattern,
    request_from_row,
    stopped,
)
from app.core.approvals_store import ApprovalStore
from app.core.events import EventBus
from app.core.host_access import FolderPolicy, request_warnings
from app.core.patterns import MAX_COMMAND_LENGTH, Pattern, PatternError, Verdict, parse_pattern
from app.core.store import Store
from app.core.trust import TrustedPatterns
from app.errors import BerthError, InvalidParams, NotFound
from app.host import ACCESS_LEVELS, Access, HostRunner, SandboxStatus, ShellResult

__all__ = [
    "FINAL",
    "LIST_LIMIT",
    "MAX_TIMEOUT_S",
    "MAX_WAIT_S",
    "STATUSES",
    "STOPPED",
    "Approvals",
    "Decision",
    "ShellRequest",
    "TrustedPattern",
]

logger = logging.getLogger(__name__)


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
        self._runner = runner
        self._folders = folders
        self._events = events
        self._expiry_s = expiry_s
        self._records = ApprovalStore(store, self._from_row)
        self._trust = TrustedPatterns(self._records, events, lambda: self._runner.sandbox)
        self._open: dict[str, _Open] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._runs: dict[str, asyncio.Task[None]] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def sandbox(self) -> SandboxStatus:
        """Whether sandboxed host commands work here (checked by `start`)."""
        return self._runner.sandbox

    @property
    def expiry_s(self) -> float:
        """How long a request waits for a decision before it expires (Settings: approval expiry)."""
        return self._expiry_s

    @expiry_s.setter
    def expiry_s(self, seconds: float) -> None:
        self.set_expiry(seconds)

    def set_expiry(self, seconds: float) -> None:
        """Change the approval expiry, for waiting requests too: each now expires at its creation plus
        `seconds` (at once if that has passed), the time its `expires_at` shows. Call on the event loop."""
        self._expiry_s = seconds
        rescheduled = []
        for request_id, timer in builtins.list(self._timers.items()):
            entry = self._open.get(request_id)
            if entry is None or entry.request.status != "pending":
                continue
            timer.cancel()  # still asleep: a timer leaves `_timers` when it wakes up
            req = dataclasses.replace(entry.request, expires_at=entry.request.created + seconds)
            entry.request = req
            self._schedule_expiry(req)
            rescheduled.append(req)
        for req in rescheduled:
            self._events.emit("approval.rescheduled", req)  # the queue reloads and shows the new expiry

    async def start(self) -> None:
        """Take up the requests of an earlier run: pending ones wait (or expire), running ones are closed."""
        status = await self._runner.check_sandbox()
        if not status.available:
            logger.warning("host commands cannot be sandboxed here: %s (none is approved by a pattern)", status.reason)
        for req in await asyncio.to_thread(self._records.open_requests):
            self._track(req)
            if req.status == "running":
                await self._finish(req, stopped())  # Berth died while it ran
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
                await self._finish(entry.request, stopped())
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
        req = entry.request if entry is not None else await asyncio.to_thread(self._records.load, request_id)
        if req is None or req.agent != agent:
            raise NotFound(f"no shell request {request_id} for this agent")
        return req if entry is None else await self._wait(request_id, wait)

    # -- the owner's side ------------------------------------------------------------------------

    def list(self, status: str | None = "pending", agent: str | None = None) -> builtins.list[ShellRequest]:
        """Requests newest first (at most 200), of one status (None: all) and optionally one agent."""
        if status is not None and status not in STATUSES:
            raise InvalidParams(f"status: must be one of {', '.join(STATUSES)}")
        return self._records.list_requests(status, agent)

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
        req, added = await asyncio.to_thread(
            self._records.record_decision,
            request_id,
            decision,
            actor,
            grant=lambda asked: self._granted(asked, access),
            trust=pattern,
            trust_access="host" if access == "host" else "sandbox",
        )
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

    # -- trusted patterns (trust.py) -------------------------------------------------------------

    def add_pattern(
        self, pattern: str, agent: str | None = None, *, actor: str = "user", access: Access = "sandbox"
    ) -> TrustedPattern:
        """Trust a pattern globally or for one agent, with its access (sandbox unless the person says full
        access); adding an existing one changes its access to the one given."""
        return self._trust.add(pattern, agent, actor=actor, access=access)

    def remove_pattern(self, pattern_id: int, *, actor: str = "user") -> None:
        self._trust.remove(pattern_id, actor=actor)

    def list_patterns(self, agent: str | None = None, include_global: bool = True) -> builtins.list[TrustedPattern]:
        """With no agent: every pattern (global and each agent's). With one: its own, then global ones if asked."""
        return self._trust.list(agent, include_global)

    def check(self, agent: str, command: str, access: Access = "sandbox") -> Verdict:
        """Would ``command`` of ``agent``, asking for ``access``, run without asking? (its own patterns, then
        the global ones; a sandboxed request never where no sandbox works)."""
        return self._trust.check(agent, command, access)

    def propose(self, command: str) -> str:
        """The pattern to offer for "approve and trust": the exact command (wildcards are the person's edit)."""
        return self._trust.propose(command)

    # -- helpers (the store work among them runs in a worker thread) -----------------------------

    def _from_row(self, row: sqlite3.Row) -> ShellRequest:
        return request_from_row(row, self._expiry_s, self._warnings)

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

    def _insert_request(self, agent: str, command: str, cwd: str, timeout_s: float, access: Access) -> ShellRequest:
        allowed_by = self._trust.allowed_by(agent, command, access)
        return self._records.insert_request(agent, command, cwd, timeout_s, access, allowed_by)

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
            req = await asyncio.to_thread(self._records.load, request_id)
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
        req = await asyncio.to_thread(self._records.record_expiry, request_id)
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
        done = await asyncio.to_thread(self._records.record_result, req, result)
        if done is not None:
            self._track(done)
            self._events.emit("approval.finished", done)
