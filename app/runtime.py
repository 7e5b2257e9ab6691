"""The running core and the transports that serve it, for both front ends (`berth serve` and the window).

`Runtime` is the core plus JSON-RPC at /rpc and MCP at /mcp on one port; `setup_logging` gives every
front end the same log. No Qt here: `app.main` (the one composition root) builds these for `berth serve`
and hands them to the window for `berth`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import logging.handlers
import os
import sys

import app.rpc.owner_methods  # noqa: F401  (registers the owner methods the command line uses)
from app.config import Paths
from app.core.application import Application
from app.rpc.mcp import PATH as MCP_PATH
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
    for noisy in ("urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Runtime:
    """The core plus the transports that serve it: JSON-RPC at /rpc and MCP at /mcp, on one port."""

    def __init__(self, app: Application) -> None:
        self.app = app
        dispatcher = Dispatcher(app)
        self.rpc = RpcServer(dispatcher, port=app.rpc_port)
        self.mcp = McpEndpoint(dispatcher)
        self.rpc.mount(MCP_PATH, self.mcp)

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
