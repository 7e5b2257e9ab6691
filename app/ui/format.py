"""Plain text formatting for the views: sizes, ages, percentages, statuses (no Qt, easy to test)."""

from __future__ import annotations

import time

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


def size(n: int | None) -> str:
    """`1536` -> `1.5 KiB`; None -> empty."""
    if n is None:
        return ""
    if n >= GiB:
        return f"{n / GiB:.1f} GiB" if n < 10 * GiB else f"{n / GiB:.0f} GiB"
    if n >= MiB:
        return f"{n / MiB:.1f} MiB" if n < 10 * MiB else f"{n / MiB:.0f} MiB"
    if n >= KiB:
        return f"{n / KiB:.0f} KiB"
    return f"{n} B"


def memory(used: int | None, limit: int | None) -> str:
    if used is None:
        return ""
    return f"{size(used)} / {size(limit)}" if limit else size(used)


def percent(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f} %" if value < 100 else f"{value:.0f} %"


def age(since: float, now: float | None = None) -> str:
    """Seconds since `since` as `12 s`, `5 min`, `3 h`, `2 d`."""
    if not since:
        return ""
    delta = max(0.0, (now if now is not None else time.time()) - since)
    if delta < 60:
        return f"{int(delta)} s"
    if delta < 3600:
        return f"{int(delta // 60)} min"
    if delta < 86400:
        return f"{int(delta // 3600)} h"
    return f"{int(delta // 86400)} d"


def duration_ms(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def status(state: str, exit_code: int | None, stopped: bool = False) -> str:
    """The engine's state in the person's words: `running`, `stopped`, `exited (1)`."""
    if state == "exited":
        if stopped or exit_code in (137, 143):
            return "stopped"
        return f"exited ({exit_code})" if exit_code is not None else "exited"
    return state
