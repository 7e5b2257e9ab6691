"""The MCP endpoint (`/mcp`) with the `mcp` SDK's own Streamable HTTP client against `berth serve`.

Each tool is the same API method as over `/rpc`: the results are compared through both transports.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from app.rpc.client import BerthClient
from app.rpc.mcp import HINTS, TOOLS, TOOLS_BY_NAME, WAIT_S, McpEndpoint
from tests.conftest import BUSYBOX, docker_cli
from tests.e2e.conftest import Server, berth

TOOL_NAMES = {
    "run_command",
    "start_command",
    "wait_command",
    "cancel_command",
    "start_service",
    "exec_in_service",
    "list_containers",
    "container_logs",
    "stop_container",
    "remove_container",
    "read_file",
    "write_file",
    "list_files",
    "run_host_command",
    "check_host_command",
}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}


@asynccontextmanager
async def mcp_session(server: Server, token: str) -> AsyncIterator[ClientSession]:
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
        streamable_http_client(server.url + "/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> Any:
    """Call a tool that must succeed; its result is the JSON text of the API method's result."""
    r = await session.call_tool(tool, arguments)
    text = r.content[0].text if isinstance(r.content[0], types.TextContent) else ""
    assert not r.is_error, f"{tool} failed: {text}"
    return json.loads(text)


async def call_error(session: ClientSession, tool: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
    """Call a tool that must fail; every failure has one shape: the message and "What to do:" as text, and the
    JSON-RPC error (code, message, data with kind and hint) as structured content."""
    r = await session.call_tool(tool, arguments)
    assert r.is_error, f"{tool} should have failed"
    assert isinstance(r.content[0], types.TextContent) and len(r.content) == 1
    error = r.structured_content["error"]
    assert set(error) == {"code", "message", "data"} and {"kind", "hint"} <= set(error["data"])
    assert r.content[0].text == f"{error['message']}\nWhat to do: {error['data']['hint']}"
    return r.content[0].text, error


def same_error(mcp: dict[str, Any], rpc: dict[str, Any]) -> bool:
    """The MCP tool error is /rpc's, with a hint also where /rpc has none (a default for its kind)."""
    hint = rpc["data"].get("hint") or HINTS[rpc["data"]["kind"]]
    return mcp == {**rpc, "data": {**rpc["data"], "hint": hint}}


def post(
    server: Server, body: Any, *, token: str | None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """A raw POST /mcp (urllib, no SDK): (status, headers with lower-case names, body text)."""
    req = urllib.request.Request(server.url + "/mcp", data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Accept", "application/json, text/event-stream")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


def sse_json(text: str) -> Any:
    """The JSON-RPC message in an SSE (or plain JSON) answer."""
    for line in text.splitlines():
        if line.startswith("data:") and line[5:].strip():
            return json.loads(line[5:])
    return json.loads(text)


async def wait_for(predicate: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_tools_over_mcp(server: Server) -> None:
    async with mcp_session(server, server.tokens["alice"]) as s:
        assert s.server_info is not None and s.server_info.name == "berth"
        tools = (await s.list_tools()).tools
        assert {t.name for t in tools} == TOOL_NAMES == {t.name for t in TOOLS}
        for t in tools:
            assert t.description and len(t.description) > 40
            assert t.input_schema["type"] == "object" and t.input_schema["additionalProperties"] is False
            assert set(t.input_schema.get("required", [])) <= set(t.input_schema["properties"])
            # What clients see is the schema generated from the API's parameter specs (tests/unit/test_mcp_schema.py).
            assert t.input_schema == TOOLS_BY_NAME[t.name].input_schema()

        # A temporary container: output, exit code, stdin.
        r = await call(s, "run_command", command="echo out; echo err >&2; cat; exit 3", image=BUSYBOX, stdin="in\n")
        assert (r["exit_code"], r["stdout"], r["stderr"], r["timed_out"]) == (3, "out\nin\n", "err\n", False)

        # The workspace, shared with containers.
        assert await call(s, "write_file", path="dir/a.txt", content="héllo\n") == {"size": 7}
        r = await call(s, "read_file", path="dir/a.txt")
        assert r["content"] == "héllo\n" and r["encoding"] == "utf-8"
        assert [e["path"] for e in await call(s, "list_files")] == ["dir"]
        assert [e["path"] for e in await call(s, "list_files", path="dir")] == ["dir/a.txt"]
        r = await call(s, "run_command", command="cat dir/a.txt && echo made > made.txt", image=BUSYBOX)
        assert r["stdout"] == "héllo\n"
        assert (await call(s, "read_file", path="made.txt"))["content"] == "made\n"

        # A service: start, logs, exec, stop, remove.
        svc = await call(s, "start_service", name="svc", image=BUSYBOX, command="echo ready; exec sleep 300")
        assert svc["name"] == "svc" and svc["status"] == "running"

        async def logged() -> bool:
            return "ready" in (await call(s, "container_logs", id="svc"))["logs"]

        await wait_for(logged)
        assert (await call(s, "exec_in_service", id="svc", command=["cat", "/workspace/made.txt"]))[
            "stdout"
        ] == "made\n"
        listed = await call(s, "list_containers")
        assert [(c["name"], c["kind"], c["status"]) for c in listed if c["kind"] == "service"] == [
            ("svc", "service", "running")
        ]
        assert (await call(s, "stop_container", id="svc", timeout_s=1))["status"] == "exited"
        assert await call(s, "remove_container", id="svc") == {"removed": True}

        # Errors are tool errors with /rpc's message, hint and code.
        text, err = await call_error(s, "container_logs", id="svc")
        assert err["code"] == -32004 and err["data"]["kind"] == "not_found" and text.startswith(err["message"])
        text, err = await call_error(s, "run_command", command="true", image=BUSYBOX, timeout_s=99999)
        assert err["code"] == -32602 and "timeout_s" in text
        text, err = await call_error(s, "read_file", path="../outside")
        assert err["code"] == -32602
        text, err = await call_error(s, "run_command", command="true", image="berth/nope:0")
        assert err["code"] in (-32602, -32008) and "berth/nope:0" in text  # not allowed to be pulled, or not there
        text, err = await call_error(s, "no_such_tool")
        assert err["code"] == -32601 and err["data"]["kind"] == "method_not_found" and "run_command" in text
        text, err = await call_error(s, "run_command", command="true", env=["NOVALUE"])
        assert err["code"] == -32602 and text.startswith("env: ")


async def test_commands_that_outlast_the_wait_run_on_in_the_background(server: Server) -> None:
    """run_command answers within wait_s (default 3 s, for clients that give up after 5 s); the run goes on."""
    async with mcp_session(server, server.tokens["alice"]) as s:
        started = time.monotonic()
        r = await call(s, "run_command", command="echo begun; sleep 6; echo ended", image=BUSYBOX)
        assert WAIT_S <= time.monotonic() - started < WAIT_S + 1.5
        assert r["status"] == "running" and r["run_id"] and "wait_command" in r["next"] and r["run_id"] in r["next"]
        while r["status"] == "running":
            before = time.monotonic()
            r = await call(s, "wait_command", run_id=r["run_id"])
            assert time.monotonic() - before < WAIT_S + 1.5
        assert (r["status"], r["exit_code"], r["stdout"]) == ("done", 0, "begun\nended\n") and "next" not in r
        # A quick command comes back done in the same call; a longer wait_s waits longer.
        r = await call(s, "run_command", command="echo quick", image=BUSYBOX)
        assert (r["status"], r["stdout"]) == ("done", "quick\n")
        r = await call(s, "run_command", command="sleep 4; echo waited", image=BUSYBOX, wait_s=20)
        assert (r["status"], r["stdout"]) == ("done", "waited\n")
        # start_command returns at once; cancel_command stops it.
        started = time.monotonic()
        job = await call(s, "start_command", command="sleep 60", image=BUSYBOX)
        assert time.monotonic() - started < 2 and job["status"] == "running" and "wait_command" in job["next"]
        assert (await call(s, "wait_command", run_id=job["run_id"], wait_s=0))["status"] == "running"
        r = await call(s, "cancel_command", run_id=job["run_id"])
        assert r["status"] == "cancelled" and r["exit_code"] is None
        # Another agent cannot see or stop it.
        async with mcp_session(server, server.tokens["bob"]) as bob:
            _, err = await call_error(bob, "wait_command", run_id=job["run_id"])
            assert err["code"] == -32004
        # A bad wait_s is refused before anything starts.
        _, err = await call_error(s, "run_command", command="touch /workspace/started", wait_s=601)
        assert err["code"] == -32602 and "wait_s" in err["message"]
        assert not (server.data_dir / "workspaces" / "alice" / "started").exists()


async def test_a_run_whose_caller_left_before_learning_its_id_is_stopped(server: Server) -> None:
    """The client gives up on run_command before the answer (with the run_id) comes: nobody could ever ask for
    that run, so Berth stops it and removes its container."""
    async with mcp_session(server, server.tokens["alice"]) as s:
        with pytest.raises(MCPError):
            await s.call_tool(
                "run_command", {"command": "sleep 120", "image": BUSYBOX, "wait_s": 30}, read_timeout_seconds=2
            )

        async def no_run_left() -> bool:
            out = docker_cli("ps", "-q", "--filter", f"label=berth.instance={server.instance}").stdout
            ids = out.split()
            # Warm pooled containers idle (no process but the idle one); the run's own is gone.
            busy = [i for i in ids if "sleep 120" in docker_cli("top", i, check=False).stdout]
            return not busy

        await wait_for(no_run_left, timeout=20)


async def test_host_command_waits_for_approval(server: Server) -> None:
    async with mcp_session(server, server.tokens["alice"]) as s:
        r = await call(s, "run_host_command", command="echo approved; pwd", wait_s=0.3)
        assert r["status"] == "pending" and r["result"] is None and r["decided_by"] is None
        rid = r["request_id"]
        assert (await call(s, "check_host_command", request_id=rid, wait_s=0))["status"] == "pending"
        listed = (await asyncio.to_thread(berth, server.data_dir, "approvals", "list")).stdout
        assert rid in listed and "agent=alice" in listed
        # The person approves while a check is waiting: the waiting call returns the output.
        check = asyncio.create_task(call(s, "check_host_command", request_id=rid, wait_s=20))
        await asyncio.sleep(0.3)
        assert not check.done()
        await asyncio.to_thread(berth, server.data_dir, "approvals", "approve", rid)
        r = await check
        assert r["status"] == "done" and r["decided_by"] == "user"
        assert r["result"]["exit_code"] == 0 and r["result"]["stdout"].startswith("approved\n")
        assert r["result"]["stdout"].strip().endswith("workspaces/alice")
        # Another agent cannot see it.
        async with mcp_session(server, server.tokens["bob"]) as bob:
            _, err = await call_error(bob, "check_host_command", request_id=rid, wait_s=0)
            assert err["code"] == -32004
        # Stopping Berth with a session (and its GET stream) open is prompt and clean.
        started = time.monotonic()
        assert await asyncio.to_thread(server.stop) == 0
        assert time.monotonic() - started < 10


async def test_results_match_json_rpc(server: Server) -> None:
    """One method layer, two transports: the same calls give the same results."""
    rpc = server.client("alice")
    rpc.write("notes/todo.txt", "one\ntwo\n")
    rpc.start_service("same", image=BUSYBOX, command="echo hello from same; exec sleep 300")
    req = rpc.shell("echo same", wait_s=0)
    berth(server.data_dir, "approvals", "approve", req["request_id"])
    rpc.shell_status(req["request_id"], wait_s=10)
    deadline = time.monotonic() + 15
    while "hello from same" not in rpc.logs("same")["logs"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    async with mcp_session(server, server.tokens["alice"]) as s:
        rid = req["request_id"]
        b64 = {"path": "notes/todo.txt", "encoding": "base64"}
        pairs: list[tuple[str, dict[str, Any], str]] = [
            ("list_containers", {}, "containers.list"),
            ("list_containers", {"all": False}, "containers.list"),
            ("read_file", {"path": "notes/todo.txt"}, "workspace.read"),
            ("read_file", b64, "workspace.read"),
            ("list_files", {}, "workspace.list"),
            ("list_files", {"path": "notes"}, "workspace.list"),
            ("container_logs", {"id": "same"}, "containers.logs"),
            ("container_logs", {"id": "same", "tail": 1, "timestamps": True}, "containers.logs"),
            ("check_host_command", {"request_id": rid, "wait_s": 0}, "shell.status"),
        ]
        for tool, args, method in pairs:
            assert await call(s, tool, **args) == rpc.call(method, **args), tool
        r = await s.call_tool("list_containers", {})
        assert r.structured_content == {"containers": rpc.call("containers.list")}
        r = await s.call_tool("read_file", {"path": "notes/todo.txt"})
        assert r.structured_content == rpc.call("workspace.read", path="notes/todo.txt")
        # Errors: the same message, code and data.
        for tool, args, method in [
            ("read_file", {"path": "missing.txt"}, "workspace.read"),
            ("stop_container", {"id": "nope"}, "containers.stop"),
            ("exec_in_service", {"id": "same", "command": ""}, "containers.exec"),
            ("list_files", {"path": "/etc"}, "workspace.list"),
        ]:
            _, err = await call_error(s, tool, **args)
            status, reply = server.raw(
                {"jsonrpc": "2.0", "id": 1, "method": method, "params": args}, token=server.tokens["alice"]
            )
            assert status == 200 and same_error(err, reply["error"]), tool


async def test_tokens_browsers_and_other_agents_are_refused(server: Server) -> None:
    # The same JSON-RPC error bodies as /rpc.
    status, headers, body = post(server, INITIALIZE, token=None)
    assert status == 401 and "Bearer" in headers["www-authenticate"]
    assert same_error(json.loads(body)["error"], server.raw({}, token=None)[1]["error"])
    status, _, body = post(server, INITIALIZE, token="not-a-token")
    assert status == 401 and same_error(json.loads(body)["error"], server.raw({}, token="not-a-token")[1]["error"])
    status, _, body = post(server, INITIALIZE, token=server.owner().token)
    error = json.loads(body)["error"]
    assert status == 403 and error["data"]["kind"] == "forbidden" and "agent" in error["message"]
    alice = server.tokens["alice"]
    status, _, _ = post(server, INITIALIZE, token=alice, headers={"Origin": "http://evil.example"})
    assert status == 403
    status, _, _ = post(
        server, INITIALIZE, token=alice, headers={"Origin": server.url.replace("127.0.0.1", "localhost")}
    )
    assert status == 403
    status, _, _ = post(server, INITIALIZE, token=alice, headers={"Host": "evil.example"})
    assert status == 403
    # GET and DELETE are guarded the same way.
    for method in ("GET", "DELETE"):
        req = urllib.request.Request(server.url + "/mcp", method=method)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 401
    # The right token, no Origin: the handshake works.
    status, headers, body = post(server, INITIALIZE, token=alice)
    assert status == 200 and sse_json(body)["result"]["serverInfo"]["name"] == "berth"
    # The SDK's client with a wrong token: initialize fails.
    with pytest.raises(ExceptionGroup) as failed:
        async with mcp_session(server, "wrong-token"):
            pass
    assert failed.group_contains(MCPError)
    check_a_session_is_bound_to_its_agent(server)


def check_a_session_is_bound_to_its_agent(server: Server) -> None:
    """Agent B presenting agent A's session id is answered as if the session did not exist."""
    alice, bob = server.tokens["alice"], server.tokens["bob"]
    status, headers, body = post(server, INITIALIZE, token=alice)
    assert status == 200
    sid = {k.lower(): v for k, v in headers.items()}["mcp-session-id"]
    version = {"mcp-session-id": sid, "mcp-protocol-version": "2025-06-18"}
    status, _, _ = post(server, {"jsonrpc": "2.0", "method": "notifications/initialized"}, token=alice, headers=version)
    assert status == 202
    BerthClient(server.url, alice).write("secret.txt", "alice's")
    params = {"name": "read_file", "arguments": {"path": "secret.txt"}}
    read = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}
    # Bob presents Alice's session id with his own token: as if the session did not exist.
    status, _, body = post(server, read, token=bob, headers=version)
    assert status == 404 and "alice's" not in body
    status, _, _ = post(server, read, token=None, headers=version)
    assert status == 401
    # Alice's own session still works, and answers with her file.
    status, _, body = post(server, read, token=alice, headers=version)
    assert status == 200
    reply = sse_json(body)["result"]
    assert reply["isError"] is False and json.loads(reply["content"][0]["text"])["content"] == "alice's"
    # Bob cannot end it either; Alice can.
    for token, expected in ((bob, 404), (alice, 200)):
        headers = {**version, "Authorization": f"Bearer {token}"}
        req = urllib.request.Request(server.url + "/mcp", method="DELETE", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status = resp.status
        except urllib.error.HTTPError as e:
            status = e.code
        assert status == expected
    status, _, _ = post(server, read, token=alice, headers=version)
    assert status == 404


async def test_the_sdks_own_host_and_origin_checks_are_on() -> None:
    """Behind the RPC server's guard, the SDK checks Host and Origin again (defence in depth)."""
    endpoint = McpEndpoint(dispatcher=None)  # type: ignore[arg-type]  # no tool is called
    await endpoint.start({"127.0.0.1:7450", "localhost:7450"})
    try:
        assert endpoint._manager is not None

        async def status(headers: dict[str, str]) -> int:
            sent: list[dict[str, Any]] = []
            body = json.dumps(INITIALIZE).encode()
            scope = {
                "type": "http",
                "method": "POST",
                "path": "/mcp",
                "query_string": b"",
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            assert endpoint._manager is not None
            await endpoint._manager.handle_request(scope, receive, send)
            return int(sent[0]["status"])

        base = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        assert await status({**base, "host": "evil.example:7450"}) == 421
        assert await status({**base, "host": "127.0.0.1:7451"}) == 421
        assert await status({**base, "host": "127.0.0.1:7450", "origin": "http://evil.example"}) == 403
    finally:
        await endpoint.stop()
