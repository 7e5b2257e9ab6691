"""Agents and their tokens: who may use Berth, and with which limits.

A token is shown once when it is made; the store keeps only its SHA-256, the token itself goes to
the OS keyring (or the 0600 fallback file) so the Agent Settings can show it again. The owner
token (the person at the desk, used by `berth approvals`) is made the same way on first start.
"""

from __future__ import annotations

import hmac
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from app.core.events import EventBus
from app.core.images import check_pattern
from app.core.store import Store
from app.core.tokens import TokenVault, hash_token, new_token
from app.core.workspace import Workspaces
from app.errors import Forbidden, InvalidParams, NotFound, Unauthorized
from app.model import AGENT_NAME_RE, LOCAL_ENGINE, Agent, Limits

logger = logging.getLogger(__name__)

OWNER = "owner"
OWNER_HASH_KEY = "owner_token_hash"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an agent, or the owner (the person)."""

    agent: Agent | None

    @property
    def is_owner(self) -> bool:
        return self.agent is None

    @property
    def name(self) -> str:
        return self.agent.name if self.agent else OWNER


def validate_limits(limits: Limits) -> Limits:
    """Refuse limits that make no sense, with the name of the field."""
    if not 0.01 <= limits.cpus <= 1024:
        raise InvalidParams("cpus: must be between 0.01 and 1024")
    if limits.memory < 6 * 1024 * 1024:
        raise InvalidParams("memory: must be at least 6m (the engine's minimum)")
    if not 1 <= limits.max_containers <= 1000:
        raise InvalidParams("max_containers: must be between 1 and 1000")
    if limits.at_limit not in ("queue", "reject"):
        raise InvalidParams("at_limit: must be 'queue' or 'reject'")
    if not 0 <= limits.queue_timeout_s <= 86400:
        raise InvalidParams("queue_timeout_s: must be between 0 and 86400")
    return limits


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not AGENT_NAME_RE.fullmatch(name) or name == OWNER:
        raise InvalidParams(
            f"name: {name!r} is not a valid agent name (lower-case letters, digits, '-' and '_', "
            "at most 32, starting with a letter or digit; not 'owner')"
        )
    return name


LAST_USED_KEY = "agent_last_used:"
LAST_USED_WRITE_S = 60.0


class Agents:
    def __init__(self, store: Store, vault: TokenVault, workspaces: Workspaces, events: EventBus) -> None:
        self._store = store
        self._vault = vault
        self._workspaces = workspaces
        self._events = events
        self._last_used: dict[str, float] = {}  # agent -> last time its token was used (kept in meta, per minute)

    # -- owner -----------------------------------------------------------------------------------

    def ensure_owner_token(self) -> str:
        """The owner token, made on first start. Blocking (keyring): call from a thread."""
        token = self._vault.get(OWNER)
        stored = self._store.get_meta(OWNER_HASH_KEY)
        if token is None or stored is None or not hmac.compare_digest(stored, hash_token(token)):
            token = new_token()
            self._vault.set(OWNER, token)
            self._store.set_meta(OWNER_HASH_KEY, hash_token(token))
            logger.info("made a new owner token")
        return token

    def owner_token(self) -> str | None:
        return self._vault.get(OWNER)

    # -- agents ----------------------------------------------------------------------------------

    def add(self, name: str, limits: Limits | None = None, *, engine: str = LOCAL_ENGINE) -> tuple[Agent, str]:
        """Create an agent; returns it and its token (shown once)."""
        validate_name(name)
        self._check_engine(engine)
        token = new_token()
        agent = self._store.add_agent(name, validate_limits(limits or Limits()), hash_token(token))
        if engine != LOCAL_ENGINE:
            agent = self._store.update_agent(name, engine=engine)
        self._vault.set(name, token)
        self._workspaces.path(name)
        self._store.audit("agent.add", name, actor="user", detail={"limits": agent.limits.to_json()})
        self._events.emit("agents.changed", agent)
        return agent, token

    def get(self, name: str) -> Agent:
        agent = self._store.get_agent(name)
        if agent is None:
            raise NotFound(f"no agent named {name!r}")
        return agent

    def list(self) -> list[Agent]:
        return self._store.list_agents()

    def set_limits(self, name: str, **changes: Any) -> Agent:
        agent = self.get(name)
        limits = validate_limits(replace(agent.limits, **changes))
        agent = self._store.update_agent(name, limits=limits)
        self._store.audit("agent.limits", name, actor="user", detail=limits.to_json())
        self._events.emit("agents.changed", agent)
        return agent

    def set_host_folders(self, name: str, folders: Sequence[str], check: Callable[[str], str]) -> Agent:
        """Grant `folders` to the agent's host commands (each made a real path by `check`, which refuses what
        cannot be granted); an empty list takes every grant back."""
        self.get(name)
        granted = tuple(dict.fromkeys(check(f) for f in folders))
        agent = self._store.update_agent(name, host_folders=granted)
        self._store.audit("agent.host_folders", name, actor="user", detail={"host_folders": list(granted)})
        self._events.emit("agents.changed", agent)
        return agent

    def set_images(self, name: str, patterns: Sequence[str]) -> Agent:
        """The images the agent may have pulled, besides those already on the machine (patterns like `python:*`)."""
        self.get(name)
        checked = tuple(dict.fromkeys(check_pattern(p) for p in patterns))
        agent = self._store.update_agent(name, images=checked)
        self._store.audit("agent.images", name, actor="user", detail={"images": list(checked)})
        self._events.emit("agents.changed", agent)
        return agent

    def _check_engine(self, engine: str) -> None:
        if engine != LOCAL_ENGINE and engine not in {e.name for e in self._store.list_engines()}:
            raise InvalidParams(
                f"engine: there is no engine named {engine!r}", hint="`berth engines list` shows them; add one first"
            )

    def set_engine(self, name: str, engine: str) -> Agent:
        """Place the agent on an engine: its next containers run there (those running stay where they are)."""
        before = self.get(name)
        self._check_engine(engine)
        agent = self._store.update_agent(name, engine=engine)
        self._store.audit("agent.engine", name, actor="user", detail={"engine": engine, "was": before.engine})
        self._events.emit("agents.changed", agent)
        return agent

    def set_enabled(self, name: str, enabled: bool) -> Agent:
        self.get(name)
        agent = self._store.update_agent(name, enabled=enabled)
        self._store.audit("agent.enable" if enabled else "agent.disable", name, actor="user")
        self._events.emit("agents.changed", agent)
        return agent

    def rotate_token(self, name: str) -> str:
        self.get(name)
        token = new_token()
        self._store.update_agent(name, token_hash=hash_token(token))
        self._vault.set(name, token)
        self._store.audit("agent.rotate_token", name, actor="user")
        return token

    def token(self, name: str) -> str | None:
        return self._vault.get(name)

    def remove(self, name: str, *, delete_workspace: bool = False) -> None:
        """Forget an agent (its containers are the caller's business). The workspace is kept unless asked."""
        self.get(name)
        self._store.remove_agent(name)
        self._vault.delete(name)
        if delete_workspace:
            shutil.rmtree(self._workspaces.path(name), ignore_errors=True)
        self._store.audit("agent.remove", name, actor="user", detail={"delete_workspace": delete_workspace})
        self._events.emit("agents.changed", None)

    # -- authentication --------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> Principal:
        """Map a bearer token to its principal: Unauthorized if unknown, Forbidden if the agent is disabled."""
        if not token:
            raise Unauthorized("missing token: send 'Authorization: Bearer <token>'")
        digest = hash_token(token)
        owner = self._store.get_meta(OWNER_HASH_KEY)
        if owner is not None and hmac.compare_digest(owner, digest):
            return Principal(None)
        agent = self._store.agent_by_token_hash(digest)
        if agent is None:
            raise Unauthorized("unknown token", hint="make one with `berth agents add NAME` or in Agent Settings")
        if not agent.enabled:
            raise Forbidden(f"agent {agent.name!r} is disabled", hint="enable it in Agent Settings")
        self._used(agent.name)
        return Principal(agent)

    def _used(self, name: str) -> None:
        """Remember the token's use (Agents view: "Last used"); written to the store at most once a minute."""
        now = time.time()
        before = self.last_used(name) or 0.0
        self._last_used[name] = now
        if now - before >= LAST_USED_WRITE_S:
            self._store.set_meta(LAST_USED_KEY + name, f"{now:.0f}")

    def last_used(self, name: str) -> float | None:
        """When the agent's token was last used (to the minute across restarts), None if never. Blocking."""
        if name not in self._last_used:
            stored = self._store.get_meta(LAST_USED_KEY + name)
            if stored is None:
                return None
            self._last_used[name] = float(stored)
        return self._last_used[name]
