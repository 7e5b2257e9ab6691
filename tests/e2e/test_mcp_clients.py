"""Third-party MCP clients driving `/mcp` on a real `berth serve`: fastmcp, openai-agents and pydantic-ai (the
test extras).

What these clients do that the SDK's own client in test_mcp.py does not show: fastmcp's handshake-era mode
answers every call with one server-sent event and refuses one over 1 MiB; openai-agents converts tool schemas
to OpenAI's strict form and gives a call 5 s; pydantic-ai hands the model the structured content, and a tool
error as a retry; all raise a refused token as an error. The snippets in docs/mcp.md marked "tested" are run
here as they are written. langchain-mcp-adapters is not here: no release of it works with mcp 2 (docs/mcp.md
says why).
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
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

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


async def test_the_pydantic_ai_snippet_runs_an_agent_with_berths_tools(server: Server, monkeypatch: Any) -> None:
    """The snippet's agent, with a scripted model in place of an LLM: it calls run_command, then a tool that fails."""
    monkeypatch.setenv("BERTH_URL", server.url)
    monkeypatch.setenv("BERTH_TOKEN", server.tokens["alice"])
    snippet: dict[str, Any] = {}
    exec(compile(doc_snippet("pydantic-ai"), "docs/mcp.md", "exec"), snippet)  # its main() needs a model: not run
    seen: list[Any] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(messages[-1].parts[-1])
        if len(seen) == 1:
            assert {t.name for t in info.function_tools} == {t.name for t in TOOLS}
            return ModelResponse(parts=[ToolCallPart("run_command", {"command": "echo hi", "image": BUSYBOX})])
        if len(seen) == 2:
            return ModelResponse(parts=[ToolCallPart("wait_command", {"run_id": "run-nope"})])
        return ModelResponse(parts=[TextPart("done")])

    berth: MCPToolset[Any] = snippet["berth_toolset"]()
    agent: PydanticAgent[Any, str] = snippet["coding_agent"](berth, FunctionModel(model))
    async with agent:
        assert berth.is_running
        assert {t.name for t in await berth.list_tools()} == {t.name for t in TOOLS}
        direct = await berth.direct_call_tool("run_command", {"command": "echo hi", "image": BUSYBOX})
        assert direct["stdout"] == "hi\n" and direct["exit_code"] == 0 and direct["status"] == "done"
        result = await agent.run("Say hi in a container.")
    assert result.output == "done" and not berth.is_running
    ran, failed = seen[1], seen[2]
    assert isinstance(ran, ToolReturnPart) and ran.tool_name == "run_command"
    assert ran.content["stdout"] == "hi\n" and ran.content["exit_code"] == 0  # the structured content
    # The tool error reaches the model as a retry: the structured error, its hint included.
    assert isinstance(failed, ToolReturnPart) and failed.tool_name == "wait_command"
    assert failed.outcome == "retried"
    assert isinstance(failed.content, str)
    error = json.loads(failed.content)["error"]
    assert (error["code"], error["data"]["kind"]) == (-32004, "not_found") and error["data"]["hint"]
    assert "run-nope" in error["message"]


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
async def test_a_bad_token_is_the_same_error_in_every_client(
    server: Server, token: str | None, monkeypatch: Any
) -> None:
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
    # pydantic-ai as docs/mcp.md builds it: entering the agent connects, and fails.
    monkeypatch.setenv("BERTH_URL", server.url)
    monkeypatch.setenv("BERTH_TOKEN", token or "")
    snippet: dict[str, Any] = {}
    exec(compile(doc_snippet("pydantic-ai"), "docs/mcp.md", "exec"), snippet)
    # The snippet always sends the header; with no token, the library's own toolset without one.
    toolset = MCPToolset(server.url + "/mcp", id="berth") if token is None else snippet["berth_toolset"]()
    agent: PydanticAgent[Any, str] = snippet["coding_agent"](toolset, FunctionModel(lambda *_: ModelResponse([])))
    with pytest.raises(MCPError) as pa:
        async with agent:
            pass
    assert not toolset.is_running
    for e in (fm.value, found, pa.value):
        assert e.error.code == -32001 and e.error.data["kind"] == "unauthorized" and e.error.data["hint"]
        assert json.dumps(e.error.data) == json.dumps(fm.value.error.data)
