"""Serve one aiohttp request with an ASGI application (the MCP SDK's Streamable HTTP transport).

Why not aiohttp-asgi: its `receive()` never reports `http.disconnect`, and the SDK's disconnect
listener then spins and hangs the whole event loop on the first SSE response (TESTING.md). Here the
first `receive()` returns the whole body (aiohttp has already bounded its size) and later ones wait
until the response is finished or the client's connection closes, then return `http.disconnect`.
Responses go out through `web.StreamResponse`, so SSE events reach the client as they are sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DISCONNECT_POLL_S = 0.25

_detached: set[asyncio.Task[None]] = set()  # apps still finishing after their client went away


def _detached_done(task: asyncio.Task[None]) -> None:
    _detached.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("the ASGI app failed after its client went away", exc_info=task.exception())


def _scope(request: web.Request, extra: dict[str, Any]) -> Scope:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    headers = [(k.lower(), v) for k, v in request.raw_headers]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode("latin-1"),
        "query_string": request.query_string.encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
        "server": tuple(sock[:2]) if isinstance(sock, tuple) else None,
        "state": {},
        **extra,
    }


async def serve_asgi(request: web.Request, app: ASGIApp, extra_scope: dict[str, Any]) -> web.StreamResponse:
    """Run `app` for `request`; `extra_scope` adds keys to the ASGI scope (e.g. who is calling)."""
    body = await request.read()
    scope = _scope(request, extra_scope)
    response: web.StreamResponse | None = None
    body_sent = False
    finished = asyncio.Event()

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        while not finished.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            try:
                await asyncio.wait_for(finished.wait(), DISCONNECT_POLL_S)
            except TimeoutError:
                pass
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal response
        kind = message["type"]
        if kind == "http.response.start":
            response = web.StreamResponse(status=int(message["status"]))
            for name, value in message.get("headers", []):
                key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
                val = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                response.headers.add(key, val)
            return
        if kind != "http.response.body":
            return
        if response is None:
            raise RuntimeError("ASGI app sent a body before http.response.start")
        if finished.is_set():
            return
        try:
            if not response.prepared:
                await response.prepare(request)
            chunk = message.get("body", b"")
            if chunk:
                await response.write(chunk)
            if not message.get("more_body", False):
                await response.write_eof()
                finished.set()
        except ConnectionResetError:
            # The client has gone (an MCP client closes an SSE stream once it has its answer). Like uvicorn, drop
            # what is still sent; the next receive() reports http.disconnect.
            finished.set()

    # aiohttp cancels a handler whose client has gone. An ASGI app expects what uvicorn does instead: receive()
    # says http.disconnect and the app ends by itself. (Cancelling the MCP SDK while it answers `initialize`
    # makes it discard the new session, and MCP clients hang up as soon as they have read their answer.)
    async def run() -> None:
        await app(scope, receive, send)

    task = asyncio.create_task(run())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        finished.set()
        _detached.add(task)
        task.add_done_callback(_detached_done)
        raise
    finally:
        finished.set()
    if response is None:
        logger.error("the ASGI app answered %s %s with no response", request.method, request.path)
        return web.json_response({"error": "internal error (the log has the details)"}, status=500)
    if not response.prepared:
        await response.prepare(request)
    return response
