"""Plain-Python events the core publishes; the UI (and tests) subscribe. No Qt here.

Subscribers are called on the event loop's thread, synchronously, in the order they subscribed;
one that raises is logged and does not stop the others. An event emitted from a worker thread (core
code run through `asyncio.to_thread`) is handed over to the loop's thread first.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """`topic` names what happened (e.g. "approval.pending"); `data` carries the object concerned."""

    topic: str
    data: Any = None


Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[tuple[str, Subscriber]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop whose thread delivers events (set by the application when it starts)."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def subscribe(self, callback: Subscriber, prefix: str = "") -> Callable[[], None]:
        """Call `callback` for every event whose topic starts with `prefix`; returns an unsubscribe function."""
        entry = (prefix, callback)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return unsubscribe

    def emit(self, topic: str, data: Any = None) -> None:
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread and not loop.is_closed():
            loop.call_soon_threadsafe(self._deliver, Event(topic, data))
            return
        self._deliver(Event(topic, data))

    def _deliver(self, event: Event) -> None:
        topic = event.topic
        for prefix, callback in list(self._subscribers):
            if topic.startswith(prefix):
                try:
                    callback(event)
                except Exception:
                    logger.exception("event subscriber failed on %s", topic)
