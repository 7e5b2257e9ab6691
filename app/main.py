"""Composition root: the core, the RPC server on top, and (for the desktop app) the window.

`serve()` is the headless `berth serve`: a plain asyncio loop, no Qt import anywhere on its path.
The desktop app's entry point imports Qt lazily, only when it is asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import logging.handlers
import os
import signal
import sys

from app.config import Paths
from app.core.application import Application
from app.instance import InstanceLock
from app.rpc.mcp import McpEndpoint
from app.rpc.methods import Dispatcher
from app.rpc.server import RpcServer

logger = logging.getLogger(__name__)

NO_AGENTS_HINT = "berth: no agents yet: add one with `berth agents add NAME` (it prints the agent's token)"


def setup_logging(paths: Paths, *, verbose: bool = False) -> None:
    """Log to stderr and to a rotating file in the log folder."""
    paths.ensure()
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    file_handler = logging.handlers.RotatingFileHandler(
        paths.log_dir / "berth.log", maxBytes=5 * 1024 * 1024, backupCount=3, encoding="utf-8"
    )
    file_handler.setFormatter(fmt)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(fmt)
    root.handlers[:] = [file_handler, stderr]
    for noisy in ("urllib3", "docker", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Runtime:
    """The core plus the transports that serve it: JSON-RPC at /rpc and MCP at /mcp, on one port."""

    def __init__(self, app: Application) -> None:
        self.app = app
        dispatcher = Dispatcher(app)
        self.rpc = RpcServer(dispatcher, port=app.rpc_port)
        self.mcp = McpEndpoint(dispatcher)
        self.mcp.mount(self.rpc.web)

    async def start(self) -> None:
        await self.app.start()
        try:
            await self.rpc.start()
        except OSError as e:
            await self.app.stop()
            raise SystemExit(
                f"berth: cannot listen on 127.0.0.1:{self.app.rpc_port} ({e.strerror}); "
                "is another Berth running? Use --rpc-port to pick another port."
            ) from e
        try:
            await self.mcp.start(self.rpc.allowed_hosts())  # the SDK's Host check needs the port
        except BaseException:
            await self.rpc.stop()
            await self.app.stop()
            raise
        write_endpoint(self.app.paths, self.rpc.url)
        if not await asyncio.to_thread(self.app.agents.list):
            print(NO_AGENTS_HINT, file=sys.stderr, flush=True)

    async def stop(self) -> None:
        await self.mcp.stop()  # ends MCP sessions and their open streams, which would hold up the next line
        await self.rpc.stop()  # cancels in-flight requests: their temporary containers are removed
        await self.app.stop()
        remove_endpoint(self.app.paths)


def write_endpoint(paths: Paths, url: str) -> None:
    """`endpoint.json` (0600): how clients find the running Berth."""
    path = paths.endpoint_file
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"url": url, "pid": os.getpid()}) + "\n")
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def remove_endpoint(paths: Paths) -> None:
    with contextlib.suppress(OSError, ValueError):
        if json.loads(paths.endpoint_file.read_text()).get("pid") == os.getpid():
            paths.endpoint_file.unlink()


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
        from app.ui.desktop import run  # type: ignore[import-not-found,unused-ignore]
    except ImportError as e:
        print(f"berth: the desktop window cannot load ({e}); running headless, as `berth serve`", file=sys.stderr)
        return serve(paths, rpc_port, verbose=verbose)
    result: int = run(paths, rpc_port, verbose=verbose)
    return result


def has_display() -> bool:
    """Whether a window can be shown: always on macOS and Windows; on Linux an X or Wayland display, or a
    Qt platform chosen explicitly (e.g. offscreen)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))
