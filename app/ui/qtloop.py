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

A second fault, at close: qasync's loop keeps every `call_later` as a Qt timer of a parentless QObject
and only flags it as stopped when the loop closes, so timers of cancelled handles (an expiry due in
ten minutes, a keep-alive) stay registered. The loop is garbage in a reference cycle; when Python's
collector happens to run on a worker thread, the QObject dies there, Qt cannot unregister its timers
from another thread, and the next one to fire calls into freed memory: a segfault, at random, in
whatever runs next (seen in the UI tests). `close()` here kills those timers and deletes the QObject
on the loop's own thread.

A third, from the same root: Qt delivers a timer whenever anything processes events, also while the
asyncio loop is not running (pytest-qt processes events between test phases; a modal dialog of a
plain Qt app would too). qasync then runs the callback with no running loop, and `create_task` or a
Queue fails inside it. Here a callback that comes due while the loop is not running waits, in order,
for the loop's next run.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable
from typing import Any, TypeVar

import qasync
import shiboken6
from PySide6.QtCore import QObject, QTimerEvent

T = TypeVar("T")


class _Timers(QObject):
    """The loop's scheduled callbacks as Qt timers (in place of qasync's): each runs only while its loop runs."""

    def __init__(self, loop: QtLoop) -> None:
        super().__init__()
        self._loop = weakref.ref(loop)
        self._handles: dict[int, asyncio.Handle] = {}
        self._due: list[asyncio.Handle] = []  # came due while the loop was not running

    def add_callback(self, handle: asyncio.Handle, delay: float = 0) -> asyncio.Handle:
        timer_id = self.startTimer(int(max(0.0, delay) * 1000))
        self._handles[timer_id] = handle
        return handle

    def timerEvent(self, event: QTimerEvent) -> None:
        timer_id = event.timerId()
        self.killTimer(timer_id)
        handle = self._handles.pop(timer_id, None)
        loop = self._loop()
        if handle is None or handle.cancelled() or loop is None or loop.is_closed():
            return
        if not loop.is_running():
            self._due.append(handle)
            return
        handle._run()

    def resume(self) -> None:
        """The loop runs again: what came due meanwhile runs first, in the order it came due."""
        due, self._due = self._due, []
        for handle in due:
            self.add_callback(handle, 0)

    def stop(self) -> None:
        for timer_id in list(self._handles):
            self.killTimer(timer_id)
        self._handles.clear()
        self._due.clear()

    def set_debug(self, enabled: bool) -> None:
        pass  # qasync's debug timing needs its own timer; asyncio's debug mode still works


class QtLoop(qasync.QEventLoop):  # type: ignore[misc]
    _timer: _Timers

    def __init__(self, app: Any = None) -> None:
        super().__init__(app)
        qasync_timer, self._timer = self._timer, _Timers(self)
        shiboken6.delete(qasync_timer)  # never used: nothing is registered on it yet

    def run_forever(self) -> None:
        self._timer.resume()
        super().run_forever()

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

    def close(self) -> None:
        """Close, and take the loop's Qt timers down with it, here on its own thread (see the module doc)."""
        timer = self._timer
        super().close()  # stops (kills) every timer
        if shiboken6.isValid(timer):
            shiboken6.delete(timer)
