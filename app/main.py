"""The one composition root: the core, the RPC server on top, and (for the desktop app) the window.

`serve()` is the headless `berth serve`: a plain asyncio loop, no Qt import anywhere on its path.
`run_desktop()` builds the same core and server and hands them to the window (app.ui imports nothing
from here); Qt is imported lazily, only when the window is asked for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from app.config import Paths
from app.core.application import Application
from app.instance import InstanceLock
from app.runtime import Runtime, setup_logging

logger = logging.getLogger(__name__)


async def _serve(paths: Paths, rpc_port: int | None) -> None:
    runtime = Runtime(Application(paths, rpc_port=rpc_port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before start: a signal once endpoint.json exists stops cleanly
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    print(f"berth: serving {runtime.rpc.url}/rpc and /mcp (data: {paths.data_dir})", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        logger.info("stopping")
        await runtime.stop()


def serve(paths: Paths, rpc_port: int | None = None, *, verbose: bool = False) -> int:
    lock = InstanceLock(paths)  # one server per data dir: a second would fight the first over its containers
    if not lock.acquire():
        print(lock.refusal(), file=sys.stderr)
        return 1
    with lock:
        setup_logging(paths, verbose=verbose)
        asyncio.run(_serve(paths, rpc_port))
    return 0


def run_desktop(paths: Paths, rpc_port: int | None = None, *, verbose: bool = False) -> int:
    """`berth` with no command: the desktop app (its window lives in app.ui, imported only here).

    With no screen to show it on (a server, an SSH session), Berth says so and serves headless instead of
    letting Qt abort.
    """
    if not has_display():
        print(
            "berth: no display here (DISPLAY and WAYLAND_DISPLAY are unset); running headless, as `berth serve`",
            file=sys.stderr,
        )
        return serve(paths, rpc_port, verbose=verbose)
    try:
        from app.ui.desktop import Session  # type: ignore[import-not-found,unused-ignore]
    except ImportError as e:
        print(f"berth: the desktop window cannot load ({e}); running headless, as `berth serve`", file=sys.stderr)
        return serve(paths, rpc_port, verbose=verbose)
    setup_logging(paths, verbose=verbose)
    session = Session(paths)
    if not session.claim():  # another `berth` has this data dir: its window came to the front
        code: int = session.exit_code
        return code
    result: int = session.run(Runtime(Application(paths, rpc_port=rpc_port)))  # the one composition root
    return result


def has_display() -> bool:
    """Whether a window can be shown: always on macOS and Windows; on Linux an X or Wayland display, or a
    Qt platform chosen explicitly (e.g. offscreen)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))
