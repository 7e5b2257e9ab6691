"""JSON-RPC 2.0 over HTTP on 127.0.0.1 (API.md): one Starlette app for `/rpc`, `/health` and `/mcp`, served
by uvicorn's HTTP protocol in the app's one event loop (the MCP SDK's own hosting: its ASGI app runs as
written, with no bridge).

Order of checks for every request (`Guards`, an ASGI middleware): Host and Origin (a web page must never reach
this port: DNS rebinding, CSRF) -> size (Content-Length, then the body as it arrives) and the body's deadline.
Then, for `POST /rpc`: token -> JSON -> envelope -> method and params. Internal errors are logged with their
traceback and answered -32603 without it, never an HTML 500.

uvicorn is driven here rather than through `uvicorn.Server.serve()`, which would install its own signal
handlers and own the loop's shutdown: each connection's protocol is wrapped by `ConnectionGuard` (guard.py:
deadlines, a cap on open connections, a cap on a request head's size), and `stop()` gives requests under way
a second before cancelling them (a cancelled blocking run removes its container). The HTTP parser is h11,
whose cap on an incomplete request head (16 KiB) bounds what a slow local client can make Berth hold.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from uvicorn.server import ServerState

from app.core.agents import Principal
from app.errors import (
    INTERNAL_ERROR,
    BerthError,
    InvalidRequest,
    ParseError,
)
from app.rpc.guard import BODY_S, IDLE_S, REFUSALS, ConnectionGuard, quiet_malformed_requests
from app.rpc.methods import Dispatcher

logger = logging.getLogger(__name__)

MAX_BODY = 8 * 1024 * 1024
MAX_BATCH = 50
STOP_GRACE_S = 1.0  # requests under way at stop get this long, then are cancelled

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _error(id_: Any, code: int, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


def _from_exc(id_: Any, e: BerthError) -> dict[str, Any]:
    return _error(id_, e.code, e.message, e.data())


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    try:
        data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
    except (UnicodeEncodeError, ValueError):  # text that is not Unicode (a lone surrogate): escape it all
        data = json.dumps(body, ensure_ascii=True, default=str).encode()
    return Response(data, status_code=status, media_type="application/json", headers=headers)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_body(raw: bytes) -> Any:
    """The request body as JSON, strictly: UTF-8 only, no NaN/Infinity, finite numbers, no lone surrogates,
    nesting within Python's limits. Any failure is a ParseError (-32700), never an exception of another kind."""
    try:
        text = raw.decode("utf-8")
        body = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
        if _SURROGATE_ESCAPE.search(text):  # rare: only then check the strings are real Unicode text
            json.dumps(body, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise ParseError("parse error: the JSON is nested too deeply") from None
    except UnicodeEncodeError:
        raise ParseError("parse error: a string holds a lone surrogate (\\ud800-\\udfff), which is not text") from None
    except UnicodeDecodeError as e:
        raise ParseError(f"parse error: the body is not UTF-8 (byte {e.start})") from None
    except ValueError as e:
        raise ParseError(f"parse error: {str(e)[:200]}") from None
    return body


class _BodyRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Guards:
    """The checks every request passes before any handler runs, and the body's size cap and deadline.

    A pure ASGI middleware (no buffering), so MCP's event streams go out as they are sent.
    """

    def __init__(self, app: ASGIApp, server: RpcServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        server = self.server
        server.guard.request_started(scope.get("client"))  # no connection deadline while a request is under way
        try:
            await self._checked(scope, receive, send)
        finally:
            server.guard.request_finished(scope.get("client"))

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if host not in self.server.allowed_hosts():
            REFUSALS.warning("host", "refused a request with Host %r", host)
            return await json_response({"error": f"Host {host!r} is not allowed"}, 403)(scope, receive, send)
        origin = headers.get("origin")
        if origin is not None and origin != "null":
            REFUSALS.warning("origin", "refused a request from a browser origin %r", origin)
            return await json_response({"error": "browser origins may not call Berth"}, 403)(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.server.body_s
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            await _discard_body(receive, deadline)
            return await json_response({"error": "request body over 8 MiB"}, 413)(scope, receive, send)
        received = 0
        body_done = False

        async def guarded_receive() -> Message:
            # The body must arrive within body_s and stay within MAX_BODY; after it, receive() is the server's
            # own (it reports http.disconnect when the client goes).
            nonlocal received, body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                REFUSALS.warning(
                    "slow", "refused a request whose body did not arrive within %.0f s", self.server.body_s
                )
                raise _BodyRefused(408, f"the request body did not arrive within {self.server.body_s:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY:
                    raise _BodyRefused(413, "request body over 8 MiB")
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracked_send)
        except _BodyRefused as e:
            if not started:
                if e.status == 413:
                    await _discard_body(receive, deadline)
                await json_response({"error": e.message}, e.status)(scope, receive, send)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: said as a JSON-RPC internal error, never an HTML 500 with a traceback
            logger.exception("internal error serving %s", scope.get("path"))
            if not started:
                body = _error(None, INTERNAL_ERROR, "internal error (the log has the details)", {"kind": "internal"})
                await json_response(body, 200 if scope.get("path") == "/rpc" else 500)(scope, receive, send)


async def _discard_body(receive: Receive, deadline: float, limit: int = 8 * MAX_BODY) -> None:
    """Read and drop the rest of a refused body (within the deadline and `limit` bytes), so that a client
    still sending it reads the answer rather than a reset connection."""
    loop = asyncio.get_running_loop()
    dropped = 0
    try:
        while dropped < limit:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            dropped += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
    except TimeoutError:
        return


async def _read_body(request: Request) -> bytes:
    chunks = [chunk async for chunk in request.stream()]
    return b"".join(chunks)


async def _disconnected(receive: Receive) -> None:
    """Returns once the client has gone (uvicorn's receive() says so after the body has been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class RpcServer:
    """Serves `/rpc` and `/health`; other ASGI apps (MCP) are `mount`ed on the same port before `start`."""

    def __init__(self, dispatcher: Dispatcher, host: str = "127.0.0.1", port: int = 7450) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the RPC server binds to the loopback interface only")
        self.dispatcher = dispatcher
        self.host = host
        self.port = port
        self.guard = ConnectionGuard()
        self.body_s = BODY_S
        self._routes: list[Route] = [
            Route("/rpc", self._rpc, methods=["POST"]),
            Route("/health", self._health, methods=["GET"]),
        ]
        self._listener: asyncio.Server | None = None
        self._state: ServerState | None = None
        quiet_malformed_requests()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def mount(self, path: str, app: ASGIApp) -> None:
        """Serve `app` (an ASGI app: every method) at `path`, behind the same guards."""
        self._routes.append(Route(path, app))

    def asgi(self) -> ASGIApp:
        """The whole HTTP surface as one ASGI app: Starlette's router behind the guards (not `Starlette()`, whose
        error middleware would answer a bug with an HTML page before the guards could say it as JSON-RPC)."""
        return Guards(Router(routes=list(self._routes)), self)

    async def start(self) -> None:
        config = uvicorn.Config(
            self.asgi(),
            host=self.host,
            port=self.port,
            http="h11",
            ws="none",
            lifespan="off",
            interface="asgi3",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            date_header=False,
            timeout_keep_alive=int(IDLE_S),
        )
        config.load()
        state = ServerState()

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(config=config, server_state=state, app_state={})  # type: ignore[call-arg]

        # Every connection goes through the guard (deadlines, a cap on open connections): guard.py.
        self._listener = await asyncio.get_running_loop().create_server(
            self.guard.factory(protocol), self.host, self.port, reuse_address=True
        )
        self._state = state
        if self.port == 0:
            self.port = int(self._listener.sockets[0].getsockname()[1])
        logger.info("JSON-RPC listening on %s/rpc", self.url)

    async def stop(self) -> None:
        """No new connections; requests under way get STOP_GRACE_S, then are cancelled and awaited."""
        listener, state = self._listener, self._state
        self._listener = self._state = None
        if listener is None or state is None:
            return
        listener.close()
        for connection in list(state.connections):
            connection.shutdown()  # idle ones close now; busy ones close after their response
        tasks = set(state.tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        for connection in list(state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()

    # -- guards ----------------------------------------------------------------------------------

    def allowed_hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}", f"[::1]:{self.port}"}

    # -- handlers --------------------------------------------------------------------------------

    async def _health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def _rpc(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        try:
            principal = await self.dispatcher.authenticate(token)
        except BerthError as e:
            return json_response(_from_exc(None, e), status=401 if e.code == -32001 else 403)
        raw = await _read_body(request)
        # A caller that goes away cancels its request (a blocking run's container is removed): the answer
        # races the client's disconnect.
        answer = asyncio.ensure_future(self._answer(principal, raw))
        gone = asyncio.ensure_future(_disconnected(request.receive))
        try:
            await asyncio.wait({answer, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not answer.done():
                answer.cancel()
                await asyncio.gather(answer, return_exceptions=True)
        if answer.cancelled():
            return Response(status_code=499)  # nobody reads it: the client has gone
        return answer.result()

    async def _answer(self, principal: Principal, raw: bytes) -> Response:
        try:
            body = parse_body(raw)
        except ParseError as e:
            return json_response(_from_exc(None, e))
        if isinstance(body, list):
            if not body:
                return json_response(_from_exc(None, InvalidRequest("invalid request: empty batch")))
            if len(body) > MAX_BATCH:
                return json_response(
                    _from_exc(None, InvalidRequest(f"invalid request: a batch may hold at most {MAX_BATCH} entries"))
                )
            replies = await asyncio.gather(*(self._one(principal, entry) for entry in body))
            out = [r for r in replies if r is not None]
            return json_response(out) if out else Response(status_code=204)
        reply = await self._one(principal, body)
        return json_response(reply) if reply is not None else Response(status_code=204)

    async def _one(self, principal: Principal, req: Any) -> dict[str, Any] | None:
        """Handle one request object; None for a notification (no reply)."""
        if not isinstance(req, dict):
            return _from_exc(None, InvalidRequest("invalid request: expected an object"))
        id_ = req.get("id")
        is_notification = "id" not in req
        if not isinstance(id_, str | int | float | type(None)) or isinstance(id_, bool):
            return _from_exc(None, InvalidRequest("invalid request: id must be a string, number or null"))
        if req.get("jsonrpc") != "2.0":
            return _from_exc(id_, InvalidRequest('invalid request: "jsonrpc" must be "2.0"'))
        name = req.get("method")
        if not isinstance(name, str):
            return _from_exc(id_, InvalidRequest('invalid request: "method" must be a string'))
        unknown = set(req) - {"jsonrpc", "id", "method", "params"}
        if unknown:
            return _from_exc(id_, InvalidRequest(f"invalid request: unknown member {sorted(unknown)[0]!r}"))
        try:
            result = await self.dispatcher.call(principal, name, req.get("params"))
        except BerthError as e:
            if is_notification:
                return None
            return _from_exc(id_, e)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("internal error in %s", name)
            if is_notification:
                return None
            return _error(id_, INTERNAL_ERROR, "internal error (the log has the details)", {"kind": "internal"})
        if is_notification:
            return None
        return {"jsonrpc": "2.0", "id": id_, "result": result}
