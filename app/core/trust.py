"""Trusted patterns: the person's standing approvals, global or per agent, each with its access.

A pattern lets matching host commands run without asking (patterns.py decides what matches). Which
patterns may approve a request depends on the access it asks for: a full-access (``host``) request only
by full-access patterns; a sandboxed one by any pattern, but only where the sandbox works, since a
sandboxed approval there would silently run with full access.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable

from app.core.approval_records import TrustedPattern
from app.core.approvals_store import ApprovalStore
from app.core.events import EventBus
from app.core.patterns import Pattern, PatternError, Verdict, check_command, parse_pattern, propose_pattern
from app.errors import InvalidParams
from app.host import ACCESS_LEVELS, Access, SandboxStatus

logger = logging.getLogger(__name__)


class TrustedPatterns:
    """Add, remove, list and apply trusted patterns; `sandbox()` says whether sandboxed commands work now.
    Events: patterns.changed (with the TrustedPattern)."""

    def __init__(self, store: ApprovalStore, events: EventBus, sandbox: Callable[[], SandboxStatus]) -> None:
        self._store = store
        self._events = events
        self._sandbox = sandbox

    def add(
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
        trusted, new = self._store.add_pattern(parsed.text, agent, actor, access)
        if new:
            self._events.emit("patterns.changed", trusted)
        return trusted

    def remove(self, pattern_id: int, *, actor: str = "user") -> None:
        trusted = self._store.remove_pattern(pattern_id, actor)
        self._events.emit("patterns.changed", trusted)

    def list(self, agent: str | None = None, include_global: bool = True) -> builtins.list[TrustedPattern]:
        """With no agent: every pattern (global and each agent's). With one: its own, then global ones if asked."""
        return self._store.list_patterns(agent, include_global)

    def check(self, agent: str, command: str, access: Access = "sandbox") -> Verdict:
        """Would ``command`` of ``agent``, asking for ``access``, run without asking? (its own patterns, then
        the global ones; a sandboxed request never where no sandbox works)."""
        return check_command(command, [p for _, p in self._eligible(agent, access)])

    def allowed_by(self, agent: str, command: str, access: Access) -> builtins.list[int] | None:
        """The ids of the patterns that allow this request, one per simple command that needed one (the first
        names who decided); None when it must wait for the person (blocking: reads the store)."""
        entries = self._eligible(agent, access)
        verdict = check_command(command, [p for _, p in entries])
        if not verdict.allowed:
            return None
        texts = (verdict.pattern or "").split("; ")
        return [next(t.id for t, p in entries if p.text == text) for text in texts]

    @staticmethod
    def propose(command: str) -> str:
        """The pattern to offer for "approve and trust": the exact command (wildcards are the person's edit)."""
        try:
            return propose_pattern(command)
        except PatternError as e:
            raise InvalidParams(f"command: {e}") from e

    def _eligible(self, agent: str, access: Access) -> builtins.list[tuple[TrustedPattern, Pattern]]:
        """The agent's patterns (its own, then global) that may approve a request for `access`: a host request
        only by full-access patterns, a sandboxed one by any, but only where the sandbox works."""
        entries = self._parsed(agent)
        if access == "host":
            return [e for e in entries if e[0].access == "host"]
        return entries if self._sandbox().available else []

    def _parsed(self, agent: str) -> builtins.list[tuple[TrustedPattern, Pattern]]:
        out = []
        for trusted in self.list(agent):
            try:
                out.append((trusted, parse_pattern(trusted.pattern)))
            except PatternError as e:  # saved by a Berth with looser rules: never trusted now
                logger.warning("ignoring trusted pattern %d %r: %s", trusted.id, trusted.pattern, e)
        return out
