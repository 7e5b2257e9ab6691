"""Admission control: how many containers each agent may have running at once.

Every temporary run holds a slot for its lifetime; a running service holds one until it stops.
At the limit a request is rejected at once (`at_limit=reject`) or waits in a FIFO queue
(`queue`) until a slot frees or `queue_timeout_s` passes. A freed slot is handed straight to the
first waiter, so a newcomer can never overtake the queue. Everything runs on the event loop's
thread, so counting is atomic without locks; a waiter whose caller goes away (its task is
cancelled) simply leaves the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from app.core.events import EventBus
from app.errors import LimitReached
from app.model import Limits

logger = logging.getLogger(__name__)


@dataclass
class _Waiter:
    ticket: int
    future: asyncio.Future[None]
    what: str


@dataclass
class _Gate:
    held: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)  # the held keys that are service container ids
    queue: deque[_Waiter] = field(default_factory=deque)


@dataclass(frozen=True)
class QueuedRequest:
    agent: str
    position: int  # 1 = next
    what: str


class Admission:
    def __init__(self, events: EventBus | None = None) -> None:
        self._gates: dict[str, _Gate] = {}
        self._tickets = itertools.count(1)
        self._events = events

    def _gate(self, agent: str) -> _Gate:
        return self._gates.setdefault(agent, _Gate())

    def agents(self) -> list[str]:
        return list(self._gates)

    def active(self, agent: str) -> int:
        return len(self._gates[agent].held) if agent in self._gates else 0

    def queued(self, agent: str | None = None) -> list[QueuedRequest]:
        out = []
        for name, gate in self._gates.items():
            if agent is None or name == agent:
                out += [QueuedRequest(name, i + 1, w.what) for i, w in enumerate(gate.queue)]
        return out

    async def acquire(self, agent: str, limits: Limits, key: str, *, what: str = "container") -> None:
        """Take a slot under `key` (a container id or a placeholder); raise LimitReached if none comes."""
        gate = self._gate(agent)
        if len(gate.held) < limits.max_containers and not gate.queue:
            gate.held.add(key)
            return
        if limits.at_limit == "reject":
            raise LimitReached(
                f"agent {agent!r} already has {len(gate.held)} of {limits.max_containers} containers running",
                hint="wait for one to finish, stop a service, or raise max_containers in Agent Settings",
            )
        waiter = _Waiter(next(self._tickets), asyncio.get_running_loop().create_future(), what)
        gate.queue.append(waiter)
        self._emit("admission.queued", agent)
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), limits.queue_timeout_s)
        except (TimeoutError, asyncio.CancelledError) as e:
            if waiter.future.done() and not waiter.future.cancelled():
                # The slot was handed over just as we gave up: give it back to the next in line.
                self._release_slot(agent, f"handoff-{waiter.ticket}")
            else:
                waiter.future.cancel()
                if waiter in gate.queue:
                    gate.queue.remove(waiter)
            self._emit("admission.queued", agent)
            if isinstance(e, TimeoutError):
                raise LimitReached(
                    f"agent {agent!r} waited {limits.queue_timeout_s:g} s for a free container slot "
                    f"(limit {limits.max_containers})",
                    hint="try again later, or raise max_containers or queue_timeout_s in Agent Settings",
                ) from None
            raise
        gate.held.discard(f"handoff-{waiter.ticket}")
        gate.held.add(key)
        self._emit("admission.queued", agent)

    @contextlib.asynccontextmanager
    async def slot(self, agent: str, limits: Limits, what: str, *, reuse: str | None = None) -> AsyncIterator[Slot]:
        """A slot for the block: taken (waiting in the queue, or refused, as the limits say), and given back
        when the block ends -- unless `slot.keep(container_id)` made it a service's, which holds it while it
        runs. `reuse`: a container that already holds a slot (a service restarted) takes no second one."""
        if reuse is not None and self.holds(agent, reuse):
            key = reuse
        else:
            key = f"{what.split()[0]}-{secrets.token_hex(6)}"
            await self.acquire(agent, limits, key, what=what)
        taken = Slot(self, agent, key)
        try:
            yield taken
        finally:
            if not taken.kept:
                self.release(agent, key)

    def rekey(self, agent: str, old: str, new: str, *, service: bool = False) -> None:
        """A placeholder slot now belongs to a real container id (a service's slot lasts while it runs)."""
        gate = self._gate(agent)
        if old in gate.held:
            gate.held.discard(old)
            gate.held.add(new)
            if service:
                gate.services.add(new)

    def holds(self, agent: str, key: str) -> bool:
        return key in self._gate(agent).held

    def release(self, agent: str, key: str) -> None:
        self._release_slot(agent, key)

    def _release_slot(self, agent: str, key: str) -> None:
        gate = self._gate(agent)
        if key not in gate.held:
            return
        gate.held.discard(key)
        gate.services.discard(key)
        self._wake(agent, gate)

    def _wake(self, agent: str, gate: _Gate, limit: int | None = None) -> None:
        while gate.queue and (limit is None or len(gate.held) < limit):
            waiter = gate.queue.popleft()
            if waiter.future.done():
                continue
            gate.held.add(f"handoff-{waiter.ticket}")
            waiter.future.set_result(None)
            if limit is None:
                break

    def limits_changed(self, agent: str, limits: Limits) -> None:
        """A raised limit lets waiters in at once."""
        gate = self._gate(agent)
        self._wake(agent, gate, limit=limits.max_containers)

    def sync_services(self, agent: str, running_ids: Iterable[str]) -> None:
        """Make the slots held by services match the engine: `running_ids` are the agent's running services.

        Slots of services that are no longer running are released (waking the queue); running services
        not yet counted (started outside Berth, or found again after a restart) are added.
        """
        gate = self._gate(agent)
        running = set(running_ids)
        for cid in gate.services - running:
            self._release_slot(agent, cid)
        for cid in running - gate.services:
            gate.services.add(cid)
            gate.held.add(cid)

    def _emit(self, topic: str, agent: str) -> None:
        if self._events is not None:
            self._events.emit(topic, agent)


class Slot:
    """A slot taken by `Admission.slot`; `keep(container_id)` hands it to a service that now runs."""

    def __init__(self, admission: Admission, agent: str, key: str) -> None:
        self._admission = admission
        self.agent = agent
        self.key = key
        self.kept = False

    def keep(self, container_id: str) -> None:
        self._admission.rekey(self.agent, self.key, container_id, service=True)
        self.kept = True
