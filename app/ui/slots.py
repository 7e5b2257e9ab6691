"""`@async_slot`: qasync's `asyncSlot` with a type mypy can follow (the handler runs as an asyncio task)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import qasync

F = TypeVar("F", bound=Callable[..., Any])


def async_slot(*types: type) -> Callable[[F], F]:
    """Decorate an `async def` handler: Qt calls it as a slot, it runs as a task on the qasync loop."""
    return cast(Callable[[F], F], qasync.asyncSlot(*types))
