"""`@async_slot`: qasync's `asyncSlot` with a type mypy can follow (the handler runs as an asyncio task).

Each handler's task joins `WINDOW_TASKS`, so that closing the window cancels and awaits it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import qasync

from app.ui.tasks import WINDOW_TASKS

F = TypeVar("F", bound=Callable[..., Any])


def async_slot(*types: type) -> Callable[[F], F]:
    """Decorate an `async def` handler: Qt calls it as a slot, it runs as a task on the qasync loop."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        async def tracked(*args: Any, **kwargs: Any) -> Any:
            task = asyncio.current_task()
            if task is not None:
                WINDOW_TASKS.adopt(task)
            return await fn(*args, **kwargs)

        return cast(F, qasync.asyncSlot(*types)(tracked))

    return decorate
