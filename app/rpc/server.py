"""JSON-RPC 2.0 over HTTP on 127.0.0.1 (API.md), on aiohttp in the app's one event loop.

Order of checks for `POST /rpc`: Host and Origin (a web page must never reach this port: DNS
rebinding, CSRF) -> size -> token -> JSON -> envelope -> method and params. Internal errors are
logged with their traceback and answered -32603 without it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from typing import Any

from aiohttp import web

from app.core.agents import Principal
from app.errors import (
    INTERNAL_ERROR,
    BerthError,
    InvalidRequest,
    ParseError,
)
from app.rpc.guard import BODY_S, REFUSALS, ConnectionGuard, quiet_malformed_requests
from app.rpc.methods import Dispatcher

logger = logging.getLogger(__name__)

MAX_BODY = 8 * 1024 * 1024
MAX_BATCH = 50


def _error(id_: Any, code: int, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


def _from_exc(id_: Any, e: BerthError) -> dict[str, Any]:
    return _error(id_, e.code, e.message, e.data())


def _json_response(body: Any, status: int = 200) -> web.Response:
    try:
        data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
    except (UnicodeEncodeError, ValueError):  # text that is not Unicode (a lone surrogate): escape it all
        data = json.dumps(body, ensure_ascii=True, default=str).encode()
    return web.Response(body=data, status=status, content_type="application/json")


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


class RpcServer:
    """Serves `/rpc` and `/health`; other transports (MCP) can be added to `self.web`."""

    def __init__(self, dispatcher: Dispatcher, host: str = "127.0.0.1", port: int = 7450) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the RPC server binds to the loopback interface only")
        self.dispatcher = dispatcher
        self.host = host
        self.port = port
        self.web = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard])
        self.web.router.add_post("/rpc", self._rpc)
        self.web.router.add_get("/health", self._health)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self.guard = ConnectionGuard()
        quiet_malformed_requests()
        self.body_s = BODY_S

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        # At shutdown, in-flight requests get a second, then are cancelled (their temporary containers go).
        self._runner = web.AppRunner(self.web, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        # Every connection goes through the guard (deadlines, a cap on open connections): guard.py.
        self._listener = await asyncio.get_running_loop().create_server(
            self.guard.factory(server), self.host, self.port, reuse_address=True
        )
        if self.port == 0:
            self.port = int(self._listener.sockets[0].getsockname()[1])
        logger.info("JSON-RPC listening on %s/rpc", self.url)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()  # no new connections; the runner then ends the open ones
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- guards ----------------------------------------------------------------------------------

    def allowed_hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}", f"[::1]:{self.port}"}

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.guard.request_started(request.transport)  # no connection deadline while a request is under way
        try:
            return await self._checked(request, handler)
        finally:
            self.guard.request_finished(request.transport)

    async def _checked(self, request: web.Request, handler: Any) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        if host not in self.allowed_hosts():
            REFUSALS.warning("host", "refused a request with Host %r", host)
            return web.json_response({"error": f"Host {host!r} is not allowed"}, status=403)
        origin = request.headers.get("Origin")
        if origin is not None and origin != "null":
            REFUSALS.warning("origin", "refused a request from a browser origin %r", origin)
            return web.json_response({"error": "browser origins may not call Berth"}, status=403)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.json_response({"error": "request body over 8 MiB"}, status=413)
        try:
            result: web.StreamResponse = await handler(request)
        except (web.HTTPException, asyncio.CancelledError):
            raise
        except Exception:  # a bug: said as a JSON-RPC internal error, never an HTML 500 with a traceback
            logger.exception("internal error serving %s", request.path)
            if request.path != "/rpc":
                raise
            return _json_response(
                _error(None, INTERNAL_ERROR, "internal error (the log has the details)", {"kind": "internal"})
            )
        return result

    # -- handlers --------------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _rpc(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        try:
            principal = await self.dispatcher.authenticate(token)
        except BerthError as e:
            return _json_response(_from_exc(None, e), status=401 if e.code == -32001 else 403)
        try:
            raw = await asyncio.wait_for(request.read(), self.body_s)
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "request body over 8 MiB"}, status=413)
        except TimeoutError:
            REFUSALS.warning("slow", "refused a request whose body did not arrive within %.0f s", self.body_s)
            return web.json_response({"error": f"the request body did not arrive within {self.body_s:g} s"}, status=408)
        try:
            body = parse_body(raw)
        except ParseError as e:
            return _json_response(_from_exc(None, e))
        if isinstance(body, list):
            if not body:
                return _json_response(_from_exc(None, InvalidRequest("invalid request: empty batch")))
            if len(body) > MAX_BATCH:
                return _json_response(
                    _from_exc(None, InvalidRequest(f"invalid request: a batch may hold at most {MAX_BATCH} entries"))
                )
            replies = await asyncio.gather(*(self._one(principal, entry) for entry in body))
            out = [r for r in replies if r is not None]
            return _json_response(out) if out else web.Response(status=204)
        reply = await self._one(principal, body)
        return _json_response(reply) if reply is not None else web.Response(status=204)

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
