"""The asyncio loop that runs on Qt's loop: qasync's `QEventLoop`, with one fault of its `run_until_complete` fixed.

qasync 0.28's `run_until_complete` stops Qt's loop when the future is done, clears asyncio's running loop,
and then processes Qt's pending events "one last time". Callbacks that the loop had scheduled (a task's
next step, a `call_soon_threadsafe` from the engine's event thread) run in that pass with *no running
loop*: `asyncio.Queue.get()` raises "is bound to a different event loop", `asyncio.sleep` raises "no
running event loop", and the task that hit it dies. The desktop app met it at exit; the UI tests, which
call `run_until_complete` once per fixture and test, met it about one run in two (the engine's event
stream failed, and the panel stopped following containers).

Here a stopped loop leaves its pending callbacks queued, as asyncio's own loops do, and runs them the
next time it runs. Every place that makes a Qt-driven asyncio loop (the app, its tests, the screenshot
and benchmark scripts) makes this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import qasync

T = TypeVar("T")


class QtLoop(qasync.QEventLoop):  # type: ignore[misc]
    def run_until_complete(self, future: Awaitable[T]) -> T:
        """Run until `future` is done; callbacks still pending then wait for the next run."""
        if self.is_running():
            raise RuntimeError("Event loop already running")
        task: asyncio.Future[Any] = asyncio.ensure_future(future, loop=self)

        def stop(_fut: asyncio.Future[Any]) -> None:
            self.stop()

        task.add_done_callback(stop)
        try:
            self.run_forever()
        finally:
            task.remove_done_callback(stop)
        if not task.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        result: T = task.result()
        return result
