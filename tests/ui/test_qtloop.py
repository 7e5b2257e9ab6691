"""The Qt-driven asyncio loop: a callback pending when `run_until_complete` ends runs at the next run,
inside a running loop, never in between (qasync's own loop ran it with no running loop, which broke
the engine's event stream of the desktop, and made the UI tests fail about one run in two)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from app.ui.qtloop import QtLoop


def test_a_callback_left_pending_at_the_end_of_a_run_waits_for_the_next_run(qapp: QApplication) -> None:
    loop = QtLoop(qapp)
    seen: list[object] = []

    async def schedule_late() -> None:
        # Scheduled behind the run's own stop callback, so it is still pending when the run ends.
        here = asyncio.get_running_loop()
        here.call_soon(here.call_soon, lambda: seen.append(asyncio._get_running_loop()))

    async def nothing() -> None:
        pass

    try:
        loop.run_until_complete(schedule_late())
        assert seen == []  # not run between two runs, where no loop is running
        loop.run_until_complete(nothing())
        assert seen == [loop]  # run by the next run, with its loop running
    finally:
        loop.close()


def test_a_task_woken_at_the_end_of_a_run_keeps_its_loop(qapp: QApplication) -> None:
    """The failure seen in the desktop: the engine's event thread wakes a task waiting on an asyncio.Queue
    just as a run ends; the task's next `get()` must still find its loop running."""
    loop = QtLoop(qapp)
    got: list[str] = []
    errors: list[BaseException] = []

    async def consumer(queue: asyncio.Queue[str]) -> None:
        try:
            while len(got) < 2:
                got.append(await queue.get())
        except BaseException as e:
            errors.append(e)
            raise

    async def start() -> tuple[asyncio.Task[None], asyncio.Queue[str]]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        task = asyncio.ensure_future(consumer(queue))
        await asyncio.sleep(0)
        here = asyncio.get_running_loop()
        here.call_soon(queue.put_nowait, "a")  # the wake-up it causes lands after the run's stop callback
        return task, queue

    async def finish(task: asyncio.Task[None], queue: asyncio.Queue[str]) -> None:
        queue.put_nowait("b")
        await asyncio.wait_for(task, 5)

    try:
        task, queue = loop.run_until_complete(start())
        loop.run_until_complete(finish(task, queue))
        assert errors == []
        assert got == ["a", "b"]
    finally:
        loop.close()


def test_qt_processing_events_between_runs_does_not_run_the_loops_callbacks(qapp: QApplication) -> None:
    """pytest-qt (or a plain Qt modal) processes events while the asyncio loop is not running; qasync ran the
    loop's callbacks then, with no running loop: `create_task` failed inside them (a coroutine "never awaited")."""
    loop = QtLoop(qapp)
    seen: list[object] = []

    async def schedule() -> None:
        here = asyncio.get_running_loop()
        here.call_soon(here.call_soon, lambda: seen.append(asyncio._get_running_loop()))

    async def nothing() -> None:
        await asyncio.sleep(0)

    try:
        loop.run_until_complete(schedule())
        for _ in range(5):
            qapp.processEvents()
        assert seen == []
        loop.run_until_complete(nothing())
        assert seen == [loop]
    finally:
        loop.close()


def test_a_closed_loop_collected_on_another_thread_leaves_no_timer_behind() -> None:
    """qasync's closed loop kept its Qt timers; collected by Python's GC on a worker thread, its QObject died
    there, Qt could not unregister the timers ("Timers cannot be stopped from another thread") and the next
    one to fire crashed the process (a segfault seen at random in the UI tests). QtLoop.close() kills them."""
    probe = Path(__file__).with_name("loop_gc_probe.py")
    ours = subprocess.run([sys.executable, str(probe), "qtloop"], capture_output=True, text=True, timeout=60)
    assert ours.returncode == 0 and "survived" in ours.stdout, ours.stderr[-2000:]
    assert "Timers cannot be stopped from another thread" not in ours.stderr
    stock = subprocess.run([sys.executable, str(probe), "qasync"], capture_output=True, text=True, timeout=60)
    assert "Timers cannot be stopped from another thread" in stock.stderr  # the fault is real with qasync's loop
