"""Start-up: what `berth serve` loads before it answers, and the MCP endpoint loaded on its first request."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from app.runtime import MCP_PATH, LazyMcp

ROOT = Path(__file__).resolve().parents[2]
HOSTS = {"127.0.0.1:7450", "localhost:7450"}


def test_the_serve_path_loads_neither_the_mcp_sdk_nor_qt() -> None:
    """Everything `berth serve` imports before /health answers: no MCP SDK (loaded by the first /mcp request)
    and no Qt."""
    code = (
        "import sys, app.cli, app.main, app.runtime\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'mcp_types', 'PySide6')"
        " or m == 'app.rpc.mcp'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_the_lazy_mount_is_the_endpoints_path() -> None:
    import app.rpc.mcp

    assert app.rpc.mcp.PATH == MCP_PATH


async def status_of(app: LazyMcp) -> tuple[int, dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/mcp", "query_string": b"", "headers": []}
    await app(scope, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])


async def test_concurrent_first_requests_share_one_load_and_stop_ends_it() -> None:
    lazy = LazyMcp(dispatcher=None)  # type: ignore[arg-type]  # no tool is called
    status, body = await status_of(lazy)  # before the server listens: nothing is loaded
    assert status == 503 and body["error"]["data"]["hint"] and lazy.endpoint is None
    await lazy.start(HOSTS)
    first, second = await asyncio.gather(lazy.load(), lazy.load())
    assert first is second is lazy.endpoint and first._manager is not None
    assert await lazy.load() is first
    await lazy.stop()
    assert lazy.endpoint is None and first._manager is None
    status, body = await status_of(lazy)  # stopping: answered as the endpoint answers then
    assert status == 503 and "starting or stopping" in body["error"]["message"]
