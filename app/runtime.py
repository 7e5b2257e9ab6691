"""The running core and the transports that serve it, for both front ends (`berth serve` and the window).

`Runtime` is the core plus JSON-RPC at /rpc and MCP at /mcp on one port; `setup_logging` gives every
front end the same log. No Qt here: `app.main` (the one composition root) builds these for `berth serve`
and hands them to the window for `berth`.

The MCP endpoint (app/rpc/mcp.py and the `mcp` SDK under it: pydantic models of the protocol, the SDK's client
and server) is most of what Berth would load before it can answer, about 1.2 s and 35 MiB. It is loaded on the
first request to /mcp instead (`LazyMcp`; that request waits for it, in a worker thread, the loop free), so
`berth serve` answers /health and the window shows without it, and an idle Berth no agent uses over MCP never
holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import logging.handlers
import os
import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

import app.rpc.owner_methods  # noqa: F401  (registers the owner methods the command line uses)
from app.config import Paths
from app.core.application import Application
from app.errors import BerthError
from app.rpc.methods import Dispatcher
from app.rpc.server import RpcServer, json_response

if TYPE_CHECKING:
    from app.rpc.mcp import McpEndpoint

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"  # app.rpc.mcp.PATH, without importing it (checked when it loads)
NOT_SERVING_HINT = "try again; if it keeps failing, tell the person (Berth's log has the details)"  # mcp.DEFAULT_HINT

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


class LazyMcp:
    """`/mcp` as an ASGI app that loads the MCP endpoint on its first request, then hands every request to it.

    The import runs in a worker thread (the event loop, and the window's, keep going); the endpoint is built
    and its session manager started in the loop, once, whichever request comes first. A request that finds
    Berth stopping is answered 503, as the endpoint itself answers then.
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.endpoint: McpEndpoint | None = None
        self._allowed_hosts: set[str] | None = None
        self._loading: asyncio.Task[McpEndpoint] | None = None
        self._stopped = False

    async def start(self, allowed_hosts: set[str]) -> None:
        """Allow exactly `allowed_hosts` (known once the port is); nothing is loaded until /mcp is asked for."""
        self._allowed_hosts = set(allowed_hosts)
        self._stopped = False

    async def load(self) -> McpEndpoint:
        """The started endpoint, loading it first if no request has yet (concurrent callers share one load)."""
        if self.endpoint is not None:
            return self.endpoint
        if self._loading is None:
            self._loading = asyncio.create_task(self._load(), name="berth-mcp-load")
        loading = self._loading
        try:
            return await asyncio.shield(loading)  # a caller that goes does not cancel the others' load
        except Exception:
            if self._loading is loading:
                self._loading = None  # a failed load is tried again by the next request
            raise

    async def _load(self) -> McpEndpoint:
        if self._allowed_hosts is None or self._stopped:
            raise _NotServing()
        mcp = await asyncio.to_thread(importlib.import_module, "app.rpc.mcp")
        if mcp.PATH != MCP_PATH:
            raise RuntimeError(f"app.rpc.mcp serves {mcp.PATH}, mounted at {MCP_PATH}")
        endpoint: McpEndpoint = mcp.McpEndpoint(self.dispatcher)
        if self._stopped:
            raise _NotServing()
        await endpoint.start(self._allowed_hosts)  # the SDK's Host check needs the port
        self.endpoint = endpoint
        return endpoint

    async def stop(self) -> None:
        """End every session (their tool calls are cancelled, their streams closed); a load under way ends first."""
        self._stopped = True
        loading, self._loading = self._loading, None
        if loading is not None:
            with contextlib.suppress(Exception):
                await loading
        endpoint, self.endpoint = self.endpoint, None
        if endpoint is not None:
            await endpoint.stop()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        try:
            endpoint = await self.load()
        except _NotServing:  # as the endpoint answers while it is not serving
            e = BerthError("Berth is starting or stopping; try again", hint=NOT_SERVING_HINT)
            error = {"code": e.code, "message": e.message, "data": e.data()}
            return await json_response({"jsonrpc": "2.0", "id": None, "error": error}, 503)(scope, receive, send)
        await endpoint(scope, receive, send)


class _NotServing(Exception):
    """/mcp was asked for before the server listens or once it is stopping."""


class Runtime:
    """The core plus the transports that serve it: JSON-RPC at /rpc and MCP at /mcp, on one port."""

    def __init__(self, app: Application) -> None:
        self.app = app
        dispatcher = Dispatcher(app)
        self.rpc = RpcServer(dispatcher, port=app.rpc_port)
        self.mcp = LazyMcp(dispatcher)
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
        await self.mcp.start(self.rpc.allowed_hosts())
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
