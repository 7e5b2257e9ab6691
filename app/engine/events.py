"""The engine's event stream for this Berth's containers, as an async iterator."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from app.engine.connection import Connection
from app.model import LABEL_AGENT, LABEL_INSTANCE, LABEL_KIND, ContainerEvent

logger = logging.getLogger(__name__)

_END = object()


def _to_event(raw: dict[str, Any]) -> ContainerEvent | None:
    if raw.get("Type") != "container":
        return None
    actor = raw.get("Actor", {})
    attrs = actor.get("Attributes", {})
    action = str(raw.get("Action") or raw.get("status") or "")
    action = action.split(":", 1)[0].strip()  # "exec_start: sh -c ..." -> "exec_start"
    exit_code = attrs.get("exitCode")
    return ContainerEvent(
        action=action,
        id=str(actor.get("ID") or raw.get("id") or ""),
        agent=attrs.get(LABEL_AGENT),
        kind=attrs.get(LABEL_KIND),
        time=float(raw.get("timeNano", 0)) / 1e9 or float(raw.get("time", 0)),
        exit_code=int(exit_code) if exit_code is not None else None,
    )


async def watch_events(conn: Connection, instance: str) -> AsyncIterator[ContainerEvent]:
    """Yield events of containers labelled with this instance until the consumer stops.

    The blocking stream runs in a thread with a client of its own (it would otherwise hold one of the
    shared pool's connections for ever). An engine that goes away ends the iterator with
    `EngineUnavailable`; the caller decides whether to retry.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()
    holder: dict[str, Any] = {}

    def pump() -> None:
        try:
            client = conn.new_client(timeout=None, pool_size=1)
            stream = client.events(decode=True, filters={"type": "container", "label": f"{LABEL_INSTANCE}={instance}"})
            holder["stream"], holder["client"] = stream, client
            loop.call_soon_threadsafe(queue.put_nowait, "ready")
            for raw in stream:
                if stop.is_set():
                    break
                ev = _to_event(raw)
                if ev is not None:
                    loop.call_soon_threadsafe(queue.put_nowait, ev)
        except BaseException as e:
            if not stop.is_set():
                err = conn.translate(e, what="event stream")
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, err)
                except RuntimeError:
                    pass  # the loop is closed
        finally:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, _END)
            except RuntimeError:
                pass

    thread = threading.Thread(target=pump, daemon=True, name="engine-events")
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if item == "ready":
                continue
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        stream = holder.get("stream")
        if stream is not None:
            try:
                stream.close()
            except Exception:
                logger.debug("closing the event stream failed", exc_info=True)
        client = holder.get("client")
        if client is not None:
            try:
                client.close()
            except Exception:
                pass
