"""The window's own asyncio tasks, kept so that closing the window cancels and awaits every one of them.

A task left running after its loop stops is resumed by whatever loop runs next (qasync delivers every
Qt timer to the running loop): the desktop's `stop()` closes each view's `TaskSet` and `WINDOW_TASKS`,
so nothing of a closed window runs on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

logger = logging.getLogger(__name__)


class Latest:
    """For an async reload that may overlap with another: only the one started last may show what it read.

    Reloads read in a thread and finish in any order; one started before a change (and slow, on a loaded
    machine) would otherwise finish last and put the old data back on screen, with nothing to reload it again.

        mine = self.latest.begin()
        data = await asyncio.to_thread(read)
        if not self.latest.current(mine):
            return
    """

    def __init__(self) -> None:
        self._started = 0

    def begin(self) -> int:
        self._started += 1
        return self._started

    def current(self, ticket: int) -> bool:
        return ticket == self._started


class TaskSet:
    """Tasks started by one view; `on_error` hears about a task that failed (not one cancelled)."""

    def __init__(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_error = on_error

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def adopt(self, task: asyncio.Task[Any]) -> None:
        """Track a task started elsewhere (qasync's slot wrapper)."""
        if task not in self._tasks:
            self._tasks.add(task)
            task.add_done_callback(self._discard)

    def _discard(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        e = task.exception()
        if e is not None:
            if self._on_error is not None:
                self._on_error(e)
            else:
                logger.error("a task of the window failed", exc_info=e)

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Cancel every task and wait until each has ended (also those started while cancelling)."""
        current = asyncio.current_task()
        while True:
            tasks = [t for t in self._tasks if t is not current]
            if not tasks:
                return
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def pending(self) -> list[asyncio.Task[Any]]:
        return [t for t in self._tasks if not t.done()]

    def __len__(self) -> int:
        return len(self._tasks)


# Tasks of `@async_slot` handlers (button clicks and the like) and of dialogs, wherever in the window they started.
WINDOW_TASKS = TaskSet()
