"""The RPC server's connection guard over real sockets: slow and idle connections are closed, the number open
is capped, and a legitimate client is served all along. Deadlines are shortened here (the defaults are
60 s idle, 10 s for a request head, 30 s for a body); a generous bound proves each one works."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.core.agents import Principal
from app.errors import Unauthorized
from app.rpc.guard import ConnectionGuard
from app.rpc.server import RpcServer


class Echo:
    """A dispatcher with one agent token ("t") and one method; the guard is what is under test."""

    async def authenticate(self, token: str | None) -> Principal:
        if token != "t":
            raise Unauthorized("unknown token")
        return Principal(None)

    async def call(self, principal: Principal, name: str, params: Any) -> Any:
        await asyncio.sleep(float((params or {}).get("sleep", 0)))
        return {"method": name}


@pytest.fixture
async def server() -> AsyncIterator[RpcServer]:
    s = RpcServer(Echo(), port=0)  # type: ignore[arg-type]
    s.guard = ConnectionGuard(idle_s=2.0, head_s=1.0, max_connections=20)
    s.body_s = 1.0
    await s.start()
    yield s
    await s.stop()


def _request(port: int, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer t\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def _call(port: int, method: str = "system.info", **params: Any) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_request(port, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    data = await reader.read(65536)
    writer.close()
    return status, data


async def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (recv returns b"" or the connection is reset)."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 4096), max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        if not data:
            return True
    return False


async def test_slow_request_heads_are_closed_and_others_are_served(server: RpcServer) -> None:
    """Attack: 15 sockets send a request head a byte at a time (slowloris) to hold the server's connections."""
    slow = []
    for _ in range(15):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"POST /rpc HTTP/1.1\r\nHo")
        slow.append(sock)
    status, data = await _call(server.port)  # a legitimate client is not held up
    assert status == 200 and b"system.info" in data
    started = time.monotonic()
    results = await asyncio.gather(*(_closed_within(s, 5.0) for s in slow))
    assert all(results), "a slow request head was not closed"
    assert time.monotonic() - started < 5.0
    for s in slow:
        s.close()
    assert len(server.guard.open) <= 1


async def test_a_slow_body_gets_408(server: RpcServer) -> None:
    """Attack: a request whose body never comes (Content-Length says 100, one byte is sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        f"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer t\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
    )
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 5.0)
    assert int(line.split()[1]) == 408
    writer.close()


async def test_an_idle_connection_is_closed_but_a_long_request_is_not(server: RpcServer) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port))
    assert await _closed_within(sock, 6.0)  # idle_s is 2 s here
    sock.close()
    status, data = await _call(server.port, sleep=3.0)  # a request under way outlives the idle deadline
    assert status == 200 and b"system.info" in data


async def test_connections_beyond_the_cap_are_refused_at_once(server: RpcServer) -> None:
    """Attack: one local process opens many more connections than the server keeps open."""
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    await asyncio.sleep(0.2)
    extra = socket.create_connection(("127.0.0.1", server.port))
    assert await _closed_within(extra, 2.0)
    for s in held:
        s.close()
    extra.close()
    await asyncio.sleep(0.2)
    status, _ = await _call(server.port)  # room again once they are gone
    assert status == 200


async def test_malformed_requests_are_one_short_log_line_not_a_traceback_each(
    server: RpcServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Attack: a flood of malformed HTTP requests, each of which the HTTP server would log with a full traceback."""
    caplog.set_level(logging.DEBUG)
    for i in range(200):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header %d\r\n\r\n" % i)
        await writer.drain()
        await reader.read(4096)
        writer.close()
    assert not any(r.exc_info for r in caplog.records)
    refused = [r for r in caplog.records if "malformed HTTP request" in r.getMessage()]
    assert 1 <= len(refused) <= 5
    status, _ = await _call(server.port)
    assert status == 200
