"""Things the person should hear about besides approvals: a service that exits on its own or is OOM-killed,
and an agent whose requests start waiting at its limit. Emitted as core events (`alert.service_exited`,
`alert.queueing`); the window turns them into notifications (and a Setting turns the first off).

A service "exits on its own" when the engine reports it died and neither a stop nor a removal follows:
`docker stop`, Berth's own stop and restart, and `docker rm -f` each send their `stop` or `destroy` right
after the `die` (about 0.1 s here); a crash, an OOM kill or an outside `docker kill` send none. So a
`die` is held for GRACE_S and reported only if nothing else came for it meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from app.core.events import Event, EventBus
from app.model import ContainerEvent, Kind

logger = logging.getLogger(__name__)

GRACE_S = 3.0


@dataclass(frozen=True)
class ServiceExited:
    id: str
    agent: str
    name: str  # the service's name (the full container name when that is all there is)
    exit_code: int | None
    oom_killed: bool


@dataclass(frozen=True)
class Queueing:
    agent: str
    waiting: int


class Alerts:
    def __init__(self, events: EventBus, queued: Callable[[str], int], grace_s: float = GRACE_S) -> None:
        self._events = events
        self._queued = queued
        self.grace_s = grace_s
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._oom: set[str] = set()
        self._waiting: dict[str, int] = {}
        self._unsubscribe = [
            events.subscribe(self._on_container, "container.event"),
            events.subscribe(self._on_queue, "admission.queued"),
        ]

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()

    def _on_container(self, event: Event) -> None:
        ev = event.data
        if not isinstance(ev, ContainerEvent) or ev.kind != str(Kind.SERVICE):
            return
        if ev.action == "oom":
            self._oom.add(ev.id)
        elif ev.action == "die":
            self._cancel(ev.id)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._pending[ev.id] = loop.call_later(self.grace_s, self._report, ev)
        elif ev.action in ("stop", "destroy"):  # a stop or a removal: the die was expected
            self._cancel(ev.id)
            self._oom.discard(ev.id)

    def _cancel(self, cid: str) -> None:
        handle = self._pending.pop(cid, None)
        if handle is not None:
            handle.cancel()

    def _report(self, ev: ContainerEvent) -> None:
        self._pending.pop(ev.id, None)
        oom = ev.id in self._oom
        self._oom.discard(ev.id)
        name = _service_name(ev)
        logger.info("service %s of %s exited by itself (exit code %s%s)", name, ev.agent, ev.exit_code,
                    ", out of memory" if oom else "")  # fmt: skip
        self._events.emit("alert.service_exited", ServiceExited(ev.id, ev.agent or "", name, ev.exit_code, oom))

    def _on_queue(self, event: Event) -> None:
        agent = str(event.data)
        n = self._queued(agent)
        before = self._waiting.get(agent, 0)
        self._waiting[agent] = n
        if n > 0 and before == 0:
            self._events.emit("alert.queueing", Queueing(agent, n))


def _service_name(ev: ContainerEvent) -> str:
    """`berth.<instance>.<agent>.<name>` -> `<name>`."""
    prefix = f".{ev.agent}." if ev.agent else ""
    if prefix and prefix in ev.name:
        return ev.name.split(prefix, 1)[1]
    return ev.name or ev.id[:12]
