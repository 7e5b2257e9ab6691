"""The words of the notifications that are not about approvals (app/core/alerts.py's events)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.config import Settings
from app.core.alerts import Queueing, ServiceExited
from app.core.display import display_text


def alert_text(topic: str, data: Any) -> tuple[str, str, str, Callable[[Settings], bool]] | None:
    """(key, title, body, whether the person's Settings want it) for an alert event, None for an unknown one."""
    if topic == "alert.service_exited" and isinstance(data, ServiceExited):
        name, agent = display_text(data.name), display_text(data.agent)
        if data.oom_killed:
            title = f"Service {name} was killed: out of memory"
            body = f"{agent}'s service used all of its memory cap (exit code {data.exit_code})."
        else:
            title = f"Service {name} stopped unexpectedly"
            body = f"{agent}'s service exited with code {data.exit_code}; nobody stopped it."
        body += "\nIts logs are in the Container Panel (Enter on its row)."
        return f"service:{data.id}", title, body, lambda s: bool(s.notify_service_exits)
    if topic == "alert.queueing" and isinstance(data, Queueing):
        agent = display_text(data.agent)
        title = f"{agent} is at its container limit"
        body = f"{data.waiting} request{'s' if data.waiting != 1 else ''} waiting for a free slot."
        body += "\nRaise its limit in Agents, or stop one of its containers."
        return f"queue:{data.agent}", title, body, lambda s: bool(s.notifications)
    return None
