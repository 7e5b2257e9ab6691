"""Connection limits for the local HTTP server: slow or idle sockets are closed, open connections are capped.

uvicorn (like most servers meant to sit behind a proxy) reads request heads with no deadline, so a local
process could hold any number of sockets open by sending a byte a second. Each connection's protocol is
wrapped here:
- an idle connection (no request under way) is closed after `idle_s`;
- once the first bytes of a request arrive, its head must be complete within `head_s`;
- the server's guards read bodies with their own deadline (`body_s`, see server.py);
- past `max_connections` open at once, a new connection is closed at once (the ones open keep going).
A request under way (a long `wait_s`, an MCP event stream) is never cut: deadlines apply between requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

IDLE_S = 60.0
HEAD_S = 10.0
BODY_S = 30.0
MAX_CONNECTIONS = 256


class _RateLimitedLog:
    """At most one line per `every_s` for a kind of refusal, with the count of those not logged."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -1e9) < self.every_s:
            self._skipped[kind] = self._skipped.get(kind, 0) + 1
            return
        skipped = self._skipped.pop(kind, 0)
        self._last[kind] = now
        suffix = f" (and {skipped} more like it in the last {self.every_s:.0f} s)" if skipped else ""
        logger.warning(message + suffix, *args)


REFUSALS = _RateLimitedLog()


class _MalformedRequests(logging.Filter):
    """uvicorn logs each malformed HTTP request; a refused request is one short line here, rate-limited: a
    hostile local process must not be able to flood the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith("Invalid HTTP request"):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        reason = str(exc or message).strip().splitlines()[0][:120]
        REFUSALS.warning("malformed", "refused a malformed HTTP request: %s", reason)
        return False


def quiet_malformed_requests() -> None:
    """Install the filter on uvicorn's logger (once)."""
    server_logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _MalformedRequests) for f in server_logger.filters):
        server_logger.addFilter(_MalformedRequests())


class ConnectionGuard:
    """Counts the server's open connections and keeps their deadlines."""

    def __init__(
        self,
        *,
        idle_s: float = IDLE_S,
        head_s: float = HEAD_S,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.idle_s = idle_s
        self.head_s = head_s
        self.max_connections = max_connections
        self.open: set[_Guarded] = set()
        self._by_peer: dict[tuple[str, int], _Guarded] = {}

    def factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """Wrap a protocol factory (uvicorn's) so that each connection is guarded."""
        return lambda: _Guarded(self, make())

    # -- called by the server's middleware, with the ASGI scope's `client` (host, port) --------

    def request_started(self, client: Any) -> None:
        guarded = self._by_peer.get(_peer(client))
        if guarded is not None:
            guarded.busy()

    def request_finished(self, client: Any) -> None:
        guarded = self._by_peer.get(_peer(client))
        if guarded is not None:
            guarded.idle()


def _peer(address: Any) -> tuple[str, int]:
    """A connection's far end as (host, port): on loopback, one connection's own."""
    if isinstance(address, list | tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return "", 0


class _Guarded(asyncio.Protocol):
    """A protocol that passes everything to uvicorn's and closes the connection at its deadlines."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._peer = ("", 0)
        self._timer: asyncio.TimerHandle | None = None
        self._requests = 0  # under way
        self._receiving = False  # bytes of a request head have come, the request has not started
        self._connected = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        guard = self._guard
        if len(guard.open) >= guard.max_connections:
            REFUSALS.warning("connections", "refused a connection: %d are open already", len(guard.open))
            transport.abort()
            return
        guard.open.add(self)
        self._peer = _peer(transport.get_extra_info("peername"))
        guard._by_peer[self._peer] = self
        self._connected = True
        self._inner.connection_made(transport)
        self._arm(guard.idle_s, "idle")

    def data_received(self, data: bytes) -> None:
        if self._requests == 0 and not self._receiving:
            self._receiving = True
            self._arm(self._guard.head_s, "a request head that never completed")
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        guard = self._guard
        guard.open.discard(self)
        if guard._by_peer.get(self._peer) is self:
            del guard._by_peer[self._peer]
        if self._connected:  # a refused connection never reached uvicorn
            self._inner.connection_lost(exc)

    # -- deadlines -------------------------------------------------------------------------------

    def busy(self) -> None:
        self._requests += 1
        self._receiving = False
        self._cancel()

    def idle(self) -> None:
        self._requests = max(0, self._requests - 1)
        if self._requests == 0:
            self._arm(self._guard.idle_s, "idle")

    def _arm(self, seconds: float, why: str) -> None:
        self._cancel()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._expired, why, seconds)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self, why: str, seconds: float) -> None:
        self._timer = None
        if self._requests or self._transport is None:
            return
        if why != "idle":
            REFUSALS.warning("slow", "closed a connection after %.0f s: %s", seconds, why)
        self._transport.close()
