"""`berth` with no command: the desktop app on a qasync loop (Qt's loop runs asyncio, the RPC server too).

`run()` shows the window first, then starts the core and the RPC server, so the person sees Berth
at once even while the engine is slow or down. Closing the window (or Ctrl+Q, SIGINT, SIGTERM)
stops the RPC server, lets in-flight temporary containers be removed, and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.config import Paths
from app.core.application import Application
from app.errors import BerthError
from app.model import EngineInfo
from app.runtime import Runtime
from app.ui import crash
from app.ui.bridge import CoreBridge
from app.ui.container_feed import ContainerFeed
from app.ui.container_model import ContainerTableModel
from app.ui.container_panel import ContainerPanel
from app.ui.history_view import HistoryView
from app.ui.main_window import MainWindow
from app.ui.qtloop import QtLoop
from app.ui.resources import icon, style_sheet
from app.ui.single_instance import SingleInstance
from app.ui.slots import async_slot
from app.ui.tasks import WINDOW_TASKS, TaskSet
from app.ui.wiring import DesktopWiring, WindowViews

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0


def process_age_ms() -> float | None:
    """Milliseconds since this process started (Linux /proc), for the startup figure."""
    try:
        start_ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])  # noqa: SIM115
        uptime = float(open("/proc/uptime").read().split()[0])  # noqa: SIM115
        return (uptime - start_ticks / os.sysconf("SC_CLK_TCK")) * 1000
    except (OSError, ValueError, IndexError):
        return None


class Desktop(QObject):
    """The window and its helpers around one Application (and, for the real app, its RPC server)."""

    def __init__(self, app: Application, runtime: Runtime | None = None) -> None:
        super().__init__()
        self.app = app
        self.runtime = runtime
        self.bridge = CoreBridge(app.events, self)
        self.model = ContainerTableModel(self)
        self.feed = ContainerFeed(app, self.bridge, self.model, self)
        self.panel = ContainerPanel(app, self.feed)
        views = WindowViews(app, self.rpc_url, self.bridge)
        self.history = HistoryView(app)
        self.window = MainWindow(
            self.panel,
            views.queue,
            views.agents,
            str(app.paths.state_dir / "window.ini"),
            history=self.history,
            notices=[views.banner],
        )
        self._quit = asyncio.Event()
        self._started = False

        self.bridge.engineChanged.connect(self.window.set_engine)
        self.bridge.otherEngineChanged.connect(self.window.set_other_engine)
        self.feed.runningCountChanged.connect(self.window.set_running)
        self.feed.error.connect(self.window.show_message)
        self.window.banner.retryRequested.connect(self.retry)
        self.window.banner.startRequested.connect(self.start_engine)
        self.bridge.engineChanged.connect(self._plan_engine_start)
        self.window.quitRequested.connect(self.quit)
        self.history.message.connect(self.window.show_message)
        self.bridge.runFinished.connect(lambda _id: self.history.on_run_finished())
        # Part 2: Approval Queue, Agent Settings, Settings, tray and notifications (app/ui/wiring.py).
        self.wiring = DesktopWiring(self, views)

    def rpc_url(self) -> str | None:
        """Where agents reach this Berth (None before the server listens, or with no server)."""
        return self.runtime.rpc.url if self.runtime is not None and self._started else None

    # -- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the core (and RPC server) and begin following containers."""
        if self.runtime is not None:
            await self.runtime.start()
            self.window.set_rpc(self.runtime.rpc.url)
        else:
            await self.app.start()
            self.window.set_rpc(None, "no RPC server in this window")
        self._started = True
        self.feed.start()
        self.wiring.start()

    async def stop(self) -> None:
        """Stop the window's work (cancel and await every task it started), then the server and the core.

        When this returns nothing of this desktop runs any more (`running_parts()` is empty), so its loop
        can close without leaving work for the next one.
        """
        self.wiring.stop()
        self.feed.stop()
        windows = list(self.panel.logs_windows)
        for w in windows:
            w.close()
        self.panel.hide_details()
        self.history.stop()
        self.bridge.close()
        self.window.save_state()
        await asyncio.gather(*(tasks.aclose() for tasks in self._task_sets(windows)))
        if self._started:
            if self.runtime is not None:
                await self.runtime.stop()
            else:
                await self.app.stop()
            self._started = False

    def _task_sets(self, windows: list[Any] | None = None) -> list[TaskSet]:
        views = [self.feed.tasks, self.wiring.queue.tasks, self.wiring.agents.tasks, WINDOW_TASKS]
        for w in windows if windows is not None else list(self.panel.logs_windows):
            views += [w.tasks, w.view.tasks]
        views += [t for t in [*self.panel.task_sets(), *self.history.task_sets()] if all(t is not v for v in views)]
        return views

    def running_parts(self) -> list[str]:
        """What of this desktop still runs: the window's tasks and the core's (see `Application.running_parts`)."""
        parts = [f"window task {t.get_name()} ({t.get_coro()!r})" for s in self._task_sets() for t in s.pending()]
        return parts + self.app.running_parts()

    def quit(self) -> None:
        self._quit.set()

    async def main(self) -> int:
        self.window.show()
        age = process_age_ms()
        logger.info("window shown %s", f"{age:.0f} ms after the process started" if age is not None else "")
        self._install_signals()
        try:
            await self.start()
        except SystemExit as e:  # the RPC port is taken: say so in a dialog, not only on stderr
            logger.error("%s", e)
            await self._fatal(str(e.code) if e.code else "Berth could not start.")
            return 1
        await self._quit.wait()
        self.window.hide()
        logger.info("stopping")
        try:
            await asyncio.wait_for(self.stop(), STOP_TIMEOUT_S)
        except TimeoutError:
            logger.warning("stopping took more than %.0f s; exiting anyway", STOP_TIMEOUT_S)
        return 0

    async def _fatal(self, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Critical, "Berth cannot start", text.removeprefix("berth: "))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def finished(_result: int) -> None:
            if not done.done():
                done.set_result(None)

        box.finished.connect(finished)
        box.open()
        await done

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.quit)
            except (NotImplementedError, RuntimeError, ValueError):
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(self.quit))
        # Let Python run its signal handlers while Qt sleeps in its own loop.
        timer = QTimer(self)
        timer.timeout.connect(lambda: None)
        timer.start(500)

    # -- engine --------------------------------------------------------------------------------------

    @async_slot()
    async def retry(self) -> None:
        """Check the engine now; the core reconnects by itself, this only makes it sooner (if it can)."""
        banner = self.window.banner
        banner.set_checking(True)
        try:
            if await self.app.owner.reconnect():
                self.window.show_message("The Docker engine answers again.")
                return
            info = await self.app.owner.engine_info()
            banner.show_engine(info)
            self.window.show_message(f"Still no Docker engine at {info.endpoint}.")
        except Exception as e:
            logger.exception("checking the engine failed")
            self.window.show_message(f"Could not check the engine: {e}")
        finally:
            banner.set_checking(False)

    def _plan_engine_start(self, info: EngineInfo) -> None:
        """While the engine is down, Start Docker shows what it would run here (or why it cannot)."""
        if not info.available:
            self.window.banner.set_start_plan(self.app.owner.engine_start_plan())

    @async_slot()
    async def start_engine(self) -> None:
        """Start Docker as the core planned it for this machine; a failure stays in the banner."""
        banner = self.window.banner
        banner.set_starting(True)
        try:
            result = await self.app.owner.start_engine()
            banner.show_start_result(result)
            self.window.show_message(result.message if result.ok else f"Could not start Docker: {result.message}")
        except BerthError as e:
            banner.show_start_failure(e.message, hint=e.hint or "")
        except Exception as e:
            logger.exception("starting the engine failed")
            banner.show_start_failure(f"internal error ({e!r})", hint="see Berth's log")
        finally:
            banner.set_starting(False)


def make_qapp() -> QApplication:
    os.environ.setdefault("QT_API", "pyside6")
    existing = QApplication.instance()
    qapp = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0]])
    qapp.setApplicationName("berth")
    qapp.setApplicationDisplayName("Berth")
    qapp.setOrganizationName("Berth")
    qapp.setDesktopFileName("io.github.berth.Berth")
    qapp.setWindowIcon(icon("berth"))
    qapp.setStyleSheet(style_sheet())
    qapp.setQuitOnLastWindowClosed(False)
    return qapp


class Session:
    """The Qt side of `berth`, claimed before the core is built: the QApplication and the single-instance guard
    (a second `berth` on this data dir raises the first one's window and builds nothing)."""

    def __init__(self, paths: Paths) -> None:
        self.started = time.monotonic()
        self.paths = paths
        self.qapp = make_qapp()
        self.guard = SingleInstance(paths)

    def claim(self) -> bool:
        return self.guard.claim()

    @property
    def exit_code(self) -> int:
        return self.guard.exit_code

    def run(self, runtime: Runtime) -> int:
        """Show the window over the core and server that `app.main` built, until the person quits."""
        crash.install(self.paths.log_dir / "berth.log")
        loop = QtLoop(self.qapp)
        asyncio.set_event_loop(loop)
        desktop = Desktop(runtime.app, runtime)
        logger.debug("window built in %.0f ms", (time.monotonic() - self.started) * 1000)
        try:
            code: int = loop.run_until_complete(desktop.main())
            return code
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            asyncio.set_event_loop(None)
