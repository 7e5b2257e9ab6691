"""A blocking engine stream (events, a log follow) read in a thread of its own, as an async iterator.

The stream gets a docker client of its own (it would otherwise hold one of the shared pool's
connections for ever). The iterator always ends cleanly: when the consumer stops (break, cancel,
`aclose`), the stream and its client are closed, which wakes the thread, and the thread is joined
before the iterator returns, so nothing of it is left to call into a loop that has gone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any, TypeVar

from app.engine.connection import Connection

logger = logging.getLogger(__name__)

T = TypeVar("T")
JOIN_TIMEOUT_S = 5.0

_END = object()


class _Handle:
    """What the thread opened, so that the loop's side can close it; closing before it opened is remembered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._objects: list[Any] = []

    @property
    def closed(self) -> bool:
        return self._closed

    def keep(self, obj: Any) -> bool:
        """Remember `obj` to close later; False (and `obj` closed now) if the consumer has already gone."""
        with self._lock:
            if not self._closed:
                self._objects.append(obj)
                return True
        _close_quietly(obj)
        return False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            objects, self._objects = self._objects, []
        for obj in reversed(objects):
            _close_quietly(obj)


def _close_quietly(obj: Any) -> None:
    try:
        obj.close()
    except Exception:
        logger.debug("closing %r failed", obj, exc_info=True)


async def follow(
    conn: Connection,
    what: str,
    open_stream: Callable[[Any], Iterable[Any]],
    convert: Callable[[Any], T | None],
) -> AsyncGenerator[T, None]:
    """Yield `convert(item)` for each item of `open_stream(client)` (None results are skipped).

    An engine that goes away ends the iterator with the translated error (e.g. `EngineUnavailable`).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    handle = _Handle()

    def post(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:
            pass  # the loop is closed: nobody is listening any more

    def pump() -> None:
        try:
            client = conn.new_client(timeout=None, pool_size=1)
            if not handle.keep(client):
                return
            stream = open_stream(client)
            if not handle.keep(stream):
                return
            for raw in stream:
                if handle.closed:
                    return
                item = convert(raw)
                if item is not None:
                    post(item)
        except BaseException as e:
            if not handle.closed:
                post(conn.translate(e, what=what))
        finally:
            post(_END)

    thread = conn.start_thread(pump, what)
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        handle.close()
        await asyncio.to_thread(thread.join, JOIN_TIMEOUT_S)
        if thread.is_alive():
            logger.warning("the %s thread did not end within %.0f s", what, JOIN_TIMEOUT_S)
