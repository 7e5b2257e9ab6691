"""The records of the Approval Queue: a host shell request, a trusted pattern, and how each is read from a row.

Plain frozen dataclasses that every layer may hold (the window shows them, the RPC layer serialises them);
the store (approvals_store.py) writes the rows and `Approvals` (approvals.py) moves requests through their
states.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from app.core.display import display_command, display_text
from app.core.risks import Risk, command_risks
from app.host import Access, ShellResult

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
    risks: tuple[Risk, ...] = ()  # what the command could do that deserves a second look (risks.py)

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


def stopped() -> ShellResult:
    """The result recorded for a command whose run Berth lost (closed, or died, while it ran)."""
    return ShellResult(exit_code=None, stdout="", stderr=STOPPED)


def pattern_from_row(row: sqlite3.Row) -> TrustedPattern:
    return TrustedPattern(
        id=row["id"], agent=row["agent"], pattern=row["pattern"], created=row["created"], access=row["access"]
    )


Warnings = Callable[[str, str, str, Access], list[str]]
"""What to warn the person about a pending request: (agent, command, cwd, access) -> sentences."""


def request_from_row(row: sqlite3.Row, expiry_s: float, warnings: Warnings) -> ShellRequest:
    """A stored request; the expiry and warnings of a pending one are computed now, from today's settings."""
    status = row["status"]
    pending = status == "pending"
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
        expires_at=row["created"] + expiry_s if pending else None,
        access=row["access"],
        granted=row["granted"],
        warnings=tuple(warnings(row["agent"], row["command"], row["cwd"], row["access"])) if pending else (),
        risks=command_risks(row["command"], row["cwd"]),
    )
