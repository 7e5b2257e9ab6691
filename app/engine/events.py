"""The engine's event stream for this Berth's containers, as an async iterator."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from app.engine.connection import Connection
from app.engine.follow import follow
from app.model import LABEL_AGENT, LABEL_INSTANCE, LABEL_KIND, ContainerEvent


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
        name=str(attrs.get("name") or ""),
    )


def watch_events(conn: Connection, instance: str, since: float | None = None) -> AsyncGenerator[ContainerEvent, None]:
    """Events of containers labelled with this instance, until the consumer stops (close it: `aclosing`).

    With `since` (unix time) the engine first replays what happened from then on, so nothing is missed
    between that moment and the stream being open. An engine that goes away ends the iterator with
    `EngineUnavailable`; the caller decides whether to retry.
    """
    filters = {"type": "container", "label": f"{LABEL_INSTANCE}={instance}"}
    return follow(conn, "events", lambda client: client.events(decode=True, filters=filters, since=since), _to_event)
