"""Plain-Python events the core publishes; the UI (and tests) subscribe. No Qt here.

Subscribers are called on the event loop's thread, synchronously, in the order they subscribed;
one that raises is logged and does not stop the others.
"""

from __future__ import annotations

import logging
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

    def subscribe(self, callback: Subscriber, prefix: str = "") -> Callable[[], None]:
        """Call `callback` for every event whose topic starts with `prefix`; returns an unsubscribe function."""
        entry = (prefix, callback)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return unsubscribe

    def emit(self, topic: str, data: Any = None) -> None:
        event = Event(topic, data)
        for prefix, callback in list(self._subscribers):
            if topic.startswith(prefix):
                try:
                    callback(event)
                except Exception:
                    logger.exception("event subscriber failed on %s", topic)
