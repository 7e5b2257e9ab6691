"""Third-party MCP clients driving `/mcp` on a real `berth serve`: fastmcp and openai-agents (the test extras).

What these clients do that the SDK's own client in test_mcp.py does not show: fastmcp's handshake-era mode
answers every call with one server-sent event and refuses one over 1 MiB; openai-agents converts tool schemas
to OpenAI's strict form and gives a call 5 s; both raise a refused token as an error of their own. The
snippets in docs/mcp.md marked "tested" are run here as they are written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from agents import Agent
from agents.mcp import MCPServerStreamableHttp
from agents.run_context import RunContextWrapper
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from mcp.shared.exceptions import MCPError

from app.rpc.mcp import TOOLS, WAIT_S
from tests.conftest import BUSYBOX
from tests.e2e.conftest import ROOT, Server

DOCS = ROOT / "docs" / "mcp.md"
CLIENT_TIMEOUT_S = 5  # what openai-agents gives a call by default, and what many clients give


def doc_snippet(name: str) -> str:
    """The python block that follows `<!-- tested: NAME ...-->` in docs/mcp.md."""
    found = re.search(rf"<!-- tested: {re.escape(name)}\b.*?-->\s*```python\n(.*?)```", DOCS.read_text(), re.S)
    assert found, f"no tested {name} snippet in {DOCS}"
    return found.group(1)


def fastmcp_client(
    server: Server, token: str | None, *, mode: str = "auto", seen: dict[str, str] | None = None
) -> Client[Any]:
    """A fastmcp client with a 5 s timeout per call; `seen` maps each JSON-RPC method it sent to the content type
    of the answer."""

    async def record(response: httpx2.Response) -> None:
        if seen is not None and response.request.method == "POST":
            sent = json.loads(response.request.content or b"{}")
            seen[sent.get("method", "?")] = response.headers.get("content-type", "")

    def factory(**kwargs: Any) -> httpx2.AsyncClient:
        kwargs.setdefault("timeout", httpx2.Timeout(30.0, read=300.0))
        return httpx2.AsyncClient(**kwargs, event_hooks={"response": [record]})

    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    transport = StreamableHttpTransport(server.url + "/mcp", headers=headers, httpx_client_factory=factory)
    return Client(transport, mode=mode, timeout=CLIENT_TIMEOUT_S)


@asynccontextmanager
async def agents_server(server: Server, token: str | None) -> AsyncIterator[MCPServerStreamableHttp]:
    """openai-agents' Streamable HTTP server with its defaults: a call may take 5 s."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with MCPServerStreamableHttp(
        name="berth",
        params={"url": server.url + "/mcp", "headers": headers},
        client_session_timeout_seconds=CLIENT_TIMEOUT_S,
        use_structured_content=True,
    ) as mcp:
        yield mcp


def check_error_shape(result: types.CallToolResult, code: int, kind: str) -> dict[str, Any]:
    assert result.is_error
    [block] = result.content
    assert isinstance(block, types.TextContent)
    error = (result.structured_content or {})["error"]
    assert (error["code"], error["data"]["kind"]) == (code, kind) and error["data"]["hint"]
    assert block.text == f"{error['message']}\nWhat to do: {error['data']['hint']}"
    return dict(error)


# -- the documented snippets -------------------------------------------------------------------------


def test_the_fastmcp_snippet_in_the_docs_runs(server: Server, tmp_path: Path) -> None:
    script = tmp_path / "fastmcp_snippet.py"
    script.write_text(doc_snippet("fastmcp"))
    env = {**os.environ, "BERTH_URL": server.url, "BERTH_TOKEN": server.tokens["alice"]}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "42\nbuilt\n"


async def test_the_openai_agents_snippet_makes_every_tool_strict(server: Server, monkeypatch: Any) -> None:
    monkeypatch.setenv("BERTH_URL", server.url)
    monkeypatch.setenv("BERTH_TOKEN", server.tokens["alice"])
    snippet: dict[str, Any] = {}
    exec(compile(doc_snippet("openai-agents"), "docs/mcp.md", "exec"), snippet)  # its main() needs a model: not run
    async with snippet["berth_server"]() as berth:
        agent: Agent[Any] = snippet["coding_agent"](berth)
        tools = await agent.get_mcp_tools(RunContextWrapper(context=None))
        assert {t.name for t in tools} == {t.name for t in TOOLS}
        not_strict = [t.name for t in tools if not t.strict_json_schema]
        assert not_strict == [], f"openai-agents could not make these strict: {not_strict}"
        env_schema = next(t for t in tools if t.name == "run_command").params_json_schema["properties"]["env"]
        assert env_schema["type"] == "array"
        # A call as the model makes it in strict mode: every argument given (empty image: the default one).
        r = await berth.call_tool(
            "run_command",
            {
                "command": "echo $GREETING",
                "image": "",
                "env": ["GREETING=hello"],
                "workdir": "/workspace",
                "timeout_s": 60,
                "network": "none",
                "stdin": "",
                "wait_s": WAIT_S,
            },
        )
        assert not r.is_error and r.structured_content is not None
        assert r.structured_content["stdout"] == "hello\n"


# -- large results --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_900_kb_of_output_through_fastmcp(server: Server, mode: str) -> None:
    """In the handshake era ("legacy") the answer is one server-sent event, which the client caps at 1 MiB."""
    seen: dict[str, str] = {}
    client = fastmcp_client(server, server.tokens["alice"], mode=mode, seen=seen)
    assert client.transport.max_sse_event_size == 1024 * 1024  # type: ignore[attr-defined]
    async with client:
        assert (client.initialize_result is not None) == (mode == "legacy")
        seen.clear()
        r = await client.call_tool(
            "run_command", {"command": "head -c 900000 /dev/zero | tr '\\0' a", "image": BUSYBOX, "wait_s": 30}
        )
    if mode == "legacy":
        assert seen["tools/call"].startswith("text/event-stream"), seen
    assert not r.is_error and r.structured_content is not None
    assert r.structured_content["stdout"] == "a" * 900_000 and r.structured_content["status"] == "done"
    [block] = r.content
    assert isinstance(block, types.TextContent) and len(block.text) < 4000
    assert "stdout: 900,000 bytes" in block.text and "structured content" in block.text


# -- a background run through clients that give a call 5 s --------------------------------------------


async def test_a_10_s_command_through_openai_agents_with_a_5_s_timeout(server: Server) -> None:
    async with agents_server(server, server.tokens["alice"]) as berth:
        started = time.monotonic()
        job = await berth.call_tool("start_command", {"command": "sleep 10; echo finished", "image": BUSYBOX})
        assert job.structured_content is not None and job.structured_content["status"] == "running"
        answers = []
        while True:
            before = time.monotonic()
            r = await berth.call_tool("wait_command", {"run_id": job.structured_content["run_id"]})
            assert time.monotonic() - before < CLIENT_TIMEOUT_S
            assert r.structured_content is not None
            answers.append(r.structured_content["status"])
            if answers[-1] != "running":
                break
            assert "wait_command" in r.structured_content["next"]
        assert answers[-1] == "done" and answers.count("running") >= 2, answers
        assert r.structured_content["stdout"] == "finished\n" and time.monotonic() - started >= 10


async def test_a_10_s_command_through_fastmcp_with_a_5_s_timeout(server: Server) -> None:
    async with fastmcp_client(server, server.tokens["alice"], mode="legacy") as berth:
        before = time.monotonic()
        r = await berth.call_tool("run_command", {"command": "sleep 10; echo finished", "image": BUSYBOX})
        assert time.monotonic() - before < CLIENT_TIMEOUT_S
        assert r.structured_content is not None and r.structured_content["status"] == "running"
        run_id = r.structured_content["run_id"]
        statuses = ["running"]
        while statuses[-1] == "running":
            before = time.monotonic()
            r = await berth.call_tool("wait_command", {"run_id": run_id})
            assert time.monotonic() - before < CLIENT_TIMEOUT_S
            assert r.structured_content is not None
            statuses.append(r.structured_content["status"])
        assert statuses[-1] == "done" and statuses.count("running") >= 3, statuses
        assert r.structured_content["stdout"] == "finished\n"


# -- errors ---------------------------------------------------------------------------------------------


async def test_errors_have_one_shape_in_both_clients(server: Server) -> None:
    token = server.tokens["alice"]
    async with fastmcp_client(server, token, mode="legacy") as fm, agents_server(server, token) as oa:
        for call in (
            lambda name, args: fm.call_tool(name, args, raise_on_error=False),
            lambda name, args: oa.call_tool(name, args),
        ):
            check_error_shape(await call("no_such_tool", {}), -32601, "method_not_found")
            error = check_error_shape(
                await call("run_command", {"command": "true", "timeout_s": 99999}), -32602, "invalid_params"
            )
            assert error["message"].startswith("timeout_s:")
            check_error_shape(await call("wait_command", {"run_id": "run-nope"}), -32004, "not_found")


@pytest.mark.parametrize("token", ["not-a-token", None], ids=["wrong", "missing"])
async def test_a_bad_token_is_the_same_error_in_both_clients(server: Server, token: str | None) -> None:
    """No tool result without a session: the client raises the JSON-RPC error of the HTTP 401 answer."""
    with pytest.raises(MCPError) as fm:
        async with fastmcp_client(server, token, mode="legacy") as client:
            await client.list_tools()
    with pytest.raises(BaseException) as oa:
        async with agents_server(server, token) as berth:
            await berth.list_tools()
    found = oa.value
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    assert isinstance(found, MCPError)
    for e in (fm.value, found):
        assert e.error.code == -32001 and e.error.data["kind"] == "unauthorized" and e.error.data["hint"]
    assert json.dumps(fm.value.error.data) == json.dumps(found.error.data)
