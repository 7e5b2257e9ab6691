"""The MCP endpoint: `/mcp` on the RPC server's port, Model Context Protocol over Streamable HTTP.

The protocol is the official `mcp` SDK's (low-level `Server` + `StreamableHTTPSessionManager`);
each tool is one API method called through the same `Dispatcher` as `/rpc`, so a capability has one
implementation and two transports (run_command is two: it starts a background run, then waits on it).
What MCP adds is made for clients as they are: waits that end within a 5 s client timeout, results whose
one full copy fits a 1 MiB event, and one shape for every error (`isError`, the message and "What to do:"
as text, the JSON-RPC error with a hint as structured content).

Who is calling: the endpoint (an ASGI app on the server's router) authenticates the bearer token before
the SDK sees the request and puts the `Principal` into that request's ASGI scope. The SDK runs tool
handlers in the session's own task (started at `initialize`), so a contextvar set per HTTP request would not reach them;
instead each handler reads the principal from `ctx.request`, the HTTP request that carried the
`tools/call`. The scope's `user` also names the agent, and the SDK refuses (404, as if unknown) a
session id presented with a credential other than the one that opened the session: agent B cannot
use agent A's session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers

from app import __version__
from app.core.agents import Principal
from app.core.tokens import hash_token
from app.errors import BerthError, Forbidden, InvalidParams, MethodNotFound, Unauthorized
from app.rpc.methods import METHODS, Dispatcher
from app.rpc.params import Param, parse_params
from app.rpc.server import json_response

logger = logging.getLogger(__name__)

PATH = "/mcp"
PRINCIPAL_KEY = "berth.principal"
MAX_BODY = 8 * 1024 * 1024
# The tools that can wait (run_command, wait_command, run_host_command, check_host_command) wait this long by
# default, so their answer reaches a client that gives up on a call after 5 s; what has not finished by then
# comes back with its id and the tool to call next. (The API's own defaults: containers.run blocks, the waits 0.)
WAIT_S = 3
# A result's JSON text is repeated in full as the text block up to this size. Above it the text block is a
# summary (sizes, the ends of long fields) and the structured content is the one full copy, so one SSE event
# of 1 MiB (what the SDK's client and fastmcp accept) carries at least 900 KB of output.
TEXT_COPY_MAX = 256 * 1024
PREVIEW_CHARS = 1000  # how much of the end of each long field a summary shows

INSTRUCTIONS = (
    "Berth runs your commands in Docker containers on this machine, with CPU/memory limits set by the person. "
    "Your workspace folder is mounted at /workspace in every container you start, so files persist between runs "
    "and can be read or written directly with read_file/write_file/list_files. Use run_command for commands: "
    "one that takes longer than a few seconds keeps running in the background and you get a run_id to pass to "
    "wait_command (start_command starts one without waiting at all). Use start_service for long-running "
    "processes (servers, databases), and run_host_command only when something must run on the host itself: the "
    "person approves each such command."
)

# What to do when an error carries no hint of its own: every tool error ends with a "What to do:" line.
HINTS = {
    "invalid_params": "correct the argument the message names and call again (the tool's input schema says what "
    "each argument accepts)",
    "not_found": "check the id or path: list_containers lists your containers and list_files your files; a run_id "
    "is kept for an hour after its run ends",
    "method_not_found": "call tools/list for the tools Berth has",
    "unauthorized": "send the agent's token as 'Authorization: Bearer <token>' (`berth agents add NAME` prints it)",
    "forbidden": "this needs the person's permission: ask them to change it in Berth's Agent Settings",
    "limit_reached": "wait for one of your containers to finish, or stop a service, then call again",
    "denied": "the person did not allow it: do not try it again without asking them",
    "timeout": "call again with a longer wait_s, or check on it later",
    "engine_unavailable": "the Docker engine is not answering: ask the person to start it, then call again",
    "image_unavailable": "use an image that is on this machine, or omit image for Berth's default",
    "conflict": "check the container's name and state with list_containers, then call again",
}
DEFAULT_HINT = "try again; if it keeps failing, tell the person (Berth's log has the details)"


# -- tools ---------------------------------------------------------------------------------------
#
# Each tool's input schema is generated from its API method's `Param`s (app/rpc/methods.py): the names,
# types, ranges, choices, defaults and descriptions that `/rpc` checks, so the two cannot drift. What is
# written here is only what MCP adds: a tool's name, title and description, its hints, where a list result
# goes, and the few places a tool's wording or default differs from the method's.


@dataclass(frozen=True)
class FollowUp:
    """What a result that is not final says to do next (under `next`): call `tool` with the result's `key`."""

    tool: str
    key: str
    statuses: tuple[str, ...]
    also: str = ""

    def text(self, result: Mapping[str, Any]) -> str | None:
        status = result.get("status")
        if status not in self.statuses or not result.get(self.key):
            return None
        return (
            f"Not finished yet (status {status!r}). Call {self.tool} with {self.key} {result[self.key]!r} for the "
            f"result: each call waits up to wait_s seconds (default {WAIT_S}){self.also}."
        )


RUN_FOLLOW_UP = FollowUp("wait_command", "run_id", ("running",), "; cancel_command stops the run")
HOST_FOLLOW_UP = FollowUp("check_host_command", "request_id", ("pending", "running"))
WAIT_METHOD, CANCEL_METHOD = "containers.wait", "containers.cancel"


@dataclass(frozen=True)
class ToolSpec:
    """One MCP tool: which API method it calls and how a model should use it; its schema comes from the method."""

    name: str
    method: str
    title: str
    description: str
    # Per-parameter text where the tool's wording differs from the Param's (it can name other tools).
    describe: Mapping[str, str] = field(default_factory=dict)
    # Where a model needs a default other than the API's; the schema shows it and calls use it.
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # Parameters the tool sets itself: not in its schema, always sent with these values.
    fixed: Mapping[str, Any] = field(default_factory=dict)
    list_key: str | None = None  # structured content must be an object: a list result goes under this key
    # The method starts a background run that the tool then waits on (containers.wait) for up to `wait_s`: its
    # schema has containers.wait's parameters too (but run_id, which the start gives).
    then_wait: bool = False
    follow_up: FollowUp | None = None  # what a result that is not final says to call next
    read_only: bool = False
    destructive: bool = False
    open_world: bool = False  # may reach beyond Berth: the network, or the host itself

    @property
    def params(self) -> tuple[Param, ...]:
        """The parameters the caller may pass: the method's (but the fixed ones), then the wait's."""
        own = tuple(p for p in METHODS[self.method].params if p.name not in self.fixed)
        return own + self.wait_params

    @property
    def wait_params(self) -> tuple[Param, ...]:
        """containers.wait's parameters that a `then_wait` tool takes (all but run_id)."""
        if not self.then_wait:
            return ()
        own = {p.name for p in METHODS[self.method].params}
        return tuple(p for p in METHODS[WAIT_METHOD].params if p.name != "run_id" and p.name not in own)

    def input_schema(self) -> dict[str, Any]:
        """The tool's arguments as JSON Schema, generated from the method's `Param`s."""
        properties: dict[str, Any] = {}
        for p in self.params:
            schema = p.json_schema()
            if p.name in self.defaults:
                schema["default"] = self.defaults[p.name]
            if p.name in self.describe:
                schema["description"] = self.describe[p.name]
            properties[p.name] = schema
        schema = {"type": "object", "properties": properties, "additionalProperties": False}
        required = [p.name for p in self.params if p.required]
        if required:
            schema["required"] = required
        return schema

    def arguments(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The method's params for a call with the tool's `given` arguments: its defaults, then them, then fixed.
        An argument the tool does not take is InvalidParams naming the tool's own (the method may take more)."""
        names = [p.name for p in self.params]
        for name in given or {}:
            if name not in names:
                raise InvalidParams(f"{name}: unknown argument (this tool takes: {', '.join(names) or 'none'})")
        return {**self.defaults, **(given or {}), **self.fixed}

    def tool(self) -> types.Tool:
        return types.Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=self.input_schema(),
            annotations=types.ToolAnnotations(
                title=self.title,
                read_only_hint=self.read_only,
                destructive_hint=self.destructive if not self.read_only else None,
                open_world_hint=self.open_world,
            ),
        )


CONTAINER_ID = "The container's id or name (as returned by start_service or list_containers)."

RUN_ID = "The run_id that run_command or start_command returned."

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "run_command",
        "containers.run",
        "Run a command in a temporary container",
        "Run a command in a fresh, temporary container and return its exit code, stdout and stderr. The container "
        "is removed when the command ends or times out, so use it for one-off work: running scripts, tests, "
        "builds. Your workspace is mounted at /workspace (the default working directory): files you write there "
        "persist. No network unless you ask for network='bridge'. If the command has not finished within wait_s "
        "seconds, it keeps running in the background and the result has status 'running', a run_id and the "
        "output so far: call wait_command with the run_id for its result (or cancel_command to stop it). "
        "timeout_s still limits how long the command may run. If you are at your container limit, the command "
        "waits for a free slot.",
        describe={
            "wait_s": f"Seconds to wait for the command to finish (default {WAIT_S}, which suits clients that give "
            "up on a call after 5 s); after that it keeps running and you get its run_id for wait_command."
        },
        defaults={"wait_s": WAIT_S},
        fixed={"background": True},
        then_wait=True,
        follow_up=RUN_FOLLOW_UP,
        destructive=True,
        open_world=True,
    ),
    ToolSpec(
        "start_command",
        "containers.run",
        "Start a command in the background",
        "Start a command in a fresh, temporary container (as run_command does) and return at once with its run_id, "
        "without waiting for it: for builds, test suites and other long jobs. Call wait_command with the run_id "
        "for its result and output so far, or cancel_command to stop it. The container is removed when the "
        "command ends, times out (timeout_s) or is cancelled; the result is kept for an hour.",
        fixed={"background": True},
        follow_up=RUN_FOLLOW_UP,
        destructive=True,
        open_world=True,
    ),
    ToolSpec(
        "wait_command",
        "containers.wait",
        "Wait for a background command",
        "Wait up to wait_s seconds for a command started with start_command (or still running after run_command) "
        "and return its result: status 'done' with exit_code, stdout and stderr, or 'cancelled'. If it is still "
        "running then, status is 'running' with stdout_so_far: call wait_command again.",
        describe={
            "run_id": RUN_ID,
            "wait_s": f"Seconds to wait for the command to finish (default {WAIT_S}, which suits clients that give "
            "up on a call after 5 s).",
        },
        defaults={"wait_s": WAIT_S},
        follow_up=RUN_FOLLOW_UP,
        read_only=True,
    ),
    ToolSpec(
        "cancel_command",
        "containers.cancel",
        "Cancel a background command",
        "Stop a command started with start_command or run_command: its container is killed and removed. The "
        "result has status 'cancelled' and the output so far; a command that had already ended keeps its result.",
        describe={"run_id": RUN_ID},
        destructive=True,
    ),
    ToolSpec(
        "start_service",
        "services.start",
        "Start a long-running service container",
        "Start a container that keeps running (a web server, a database, a watcher) under a name you choose. "
        "It runs until you stop or remove it. Container ports listed in 'ports' are published on 127.0.0.1; "
        "the result gives each one's host URL. On network 'bridge' your other containers reach it by its name "
        "(e.g. http://web:8080 or postgres://db:5432): a web app and its database find each other that way. "
        "Use exec_in_service to run commands in it and container_logs to read its output.",
        open_world=True,
    ),
    ToolSpec(
        "exec_in_service",
        "containers.exec",
        "Run a command in a running service",
        "Run a command inside one of your running containers (started with start_service) and return its exit "
        "code, stdout and stderr.",
        describe={"id": CONTAINER_ID},
        destructive=True,
        open_world=True,
    ),
    ToolSpec(
        "list_containers",
        "containers.list",
        "List your containers",
        "List your containers (services and temporary runs in progress) with their id, name, kind, status, image "
        "and published ports.",
        list_key="containers",
        read_only=True,
    ),
    ToolSpec(
        "container_logs",
        "containers.logs",
        "Read a container's logs",
        "Read the output (stdout and stderr) a container has written, e.g. a service's log.",
        describe={"id": CONTAINER_ID},
        read_only=True,
    ),
    ToolSpec(
        "stop_container",
        "containers.stop",
        "Stop a container",
        "Stop one of your running containers (it can be inspected or removed afterwards).",
        describe={"id": CONTAINER_ID},
        destructive=True,
    ),
    ToolSpec(
        "remove_container",
        "containers.remove",
        "Remove a container",
        "Remove one of your containers. A running one needs force=true. Your workspace files are not touched.",
        describe={"id": CONTAINER_ID},
        destructive=True,
    ),
    ToolSpec(
        "read_file",
        "workspace.read",
        "Read a workspace file",
        "Read a file from your workspace (the folder mounted at /workspace in your containers).",
        read_only=True,
    ),
    ToolSpec(
        "write_file",
        "workspace.write",
        "Write a workspace file",
        "Create or overwrite a file in your workspace (parent folders are created). Your containers see it under "
        "/workspace.",
        destructive=True,
    ),
    ToolSpec(
        "list_files",
        "workspace.list",
        "List workspace files",
        "List the files and folders directly inside a folder of your workspace (not recursive), with their type, "
        "size and modification time. Paths in the result are relative to the workspace.",
        list_key="entries",
        read_only=True,
    ),
    ToolSpec(
        "run_host_command",
        "shell.request",
        "Run a command on the host (needs approval)",
        "Ask to run a shell command on the host machine itself, outside any container, e.g. git or a tool that is "
        "only installed there. Prefer run_command when a container will do. By default it runs in a sandbox: it "
        "reads the host's files, writes only its working folder, has no network and cannot see secrets; ask for "
        "access 'host' only when it truly needs more (the person must approve full access). cwd must be your "
        "workspace or a host folder the person granted you. The person approves or denies each "
        "command unless it matches a pattern they trust. The call waits up to wait_s seconds: if the command has "
        "finished, the result holds its output (status 'done'); if the person has not decided yet, status is "
        "'pending' with a request_id: call check_host_command with it later. Status 'denied' or 'expired' means "
        "the command did not run.",
        defaults={"wait_s": WAIT_S},
        follow_up=HOST_FOLLOW_UP,
        destructive=True,
        open_world=True,
    ),
    ToolSpec(
        "check_host_command",
        "shell.status",
        "Check a host command",
        "Check on a host command asked for with run_host_command: its status ('pending', 'running', 'done', "
        "'denied', 'expired') and, once done, its exit code and output. Waits up to wait_s seconds for a change.",
        describe={"request_id": "The request_id returned by run_host_command."},
        defaults={"wait_s": WAIT_S},
        follow_up=HOST_FOLLOW_UP,
        read_only=True,
    ),
)
TOOLS_BY_NAME = {t.name: t for t in TOOLS}


def tool_result(spec: ToolSpec, value: Any) -> types.CallToolResult:
    """A tool's result: the method's result (with `next` when it is not final) as structured content, and as
    JSON text too unless that is over `TEXT_COPY_MAX`: then the text is a summary, the structured content the
    one full copy."""
    if spec.follow_up is not None and isinstance(value, dict) and (after := spec.follow_up.text(value)):
        value = {**value, "next": after}
    text = json.dumps(value, ensure_ascii=False)
    size = len(text.encode())
    if size > TEXT_COPY_MAX:
        text = summary(value, size)
    structured = {spec.list_key: value} if spec.list_key else value
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=structured)


def summary(value: Any, size: int) -> str:
    """A large result in a few lines: each field, with the size and the end of the long ones."""
    lines = [f"The result is {size:,} bytes of JSON; all of it is in this tool result's structured content."]

    def describe(key: str, v: Any) -> None:
        if isinstance(v, dict):
            for k, item in v.items():
                describe(f"{key}.{k}" if key else k, item)
        elif isinstance(v, list):
            lines.append(f"{key or 'result'}: {len(v):,} entries")
        elif isinstance(v, str) and len(v) > PREVIEW_CHARS:
            lines.append(f"{key}: {len(v.encode()):,} bytes, ending with:\n{v[-PREVIEW_CHARS:]}")
        else:
            lines.append(f"{key}: {json.dumps(v, ensure_ascii=False)}")

    describe("", value)
    lines.append(
        "What to do: read the structured content for all of it, or have the command write its output to a file "
        "in /workspace and read that in parts with read_file."
    )
    return "\n".join(lines)


def error_result(e: BerthError) -> types.CallToolResult:
    """A tool error, one shape for every failure: the message and a "What to do:" line as text; the JSON-RPC
    code, message and data (with `kind` and `hint`) as structured content."""
    data = error_data(e)
    return types.CallToolResult(
        content=[types.TextContent(text=f"{e.message}\nWhat to do: {data['hint']}")],
        structured_content={"error": {"code": e.code, "message": e.message, "data": data}},
        is_error=True,
    )


def error_data(e: BerthError) -> dict[str, Any]:
    """/rpc's `error.data`, with a hint for every kind of error (the error's own, where it has one)."""
    return {**e.data(), "hint": e.hint or HINTS.get(e.kind, DEFAULT_HINT)}


def _error_body(e: BerthError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": None, "error": {"code": e.code, "message": e.message, "data": error_data(e)}}


def principal_of(ctx: ServerRequestContext[Any, Any]) -> Principal:
    """The principal the endpoint authenticated for the HTTP request carrying this message."""
    scope = getattr(ctx.request, "scope", None)
    principal = scope.get(PRINCIPAL_KEY) if isinstance(scope, dict) else None
    if not isinstance(principal, Principal):
        raise Unauthorized("missing or unknown token")
    return principal


class McpEndpoint:
    """`/mcp`, an ASGI app (`server.mount(PATH, endpoint)`), served by the SDK's session manager once `start()`
    has run."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.server: Server[Any] = Server(
            "berth",
            version=__version__,
            title="Berth",
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        self._manager: StreamableHTTPSessionManager | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    async def start(self, allowed_hosts: set[str]) -> None:
        """Start the session manager, allowing exactly `allowed_hosts` (known once the port is)."""
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=sorted(allowed_hosts), allowed_origins=[]
        )
        manager = StreamableHTTPSessionManager(self.server, security_settings=security, max_request_body_size=MAX_BODY)
        ready, self._stop = asyncio.Event(), asyncio.Event()
        # The manager's task group must be entered and left in one task: give it a task of its own.
        self._task = asyncio.create_task(self._run(manager, ready, self._stop), name="berth-mcp")
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            self._task.result()  # raises what went wrong
        self._manager = manager
        logger.info("MCP listening on %s", PATH)

    async def _run(self, manager: StreamableHTTPSessionManager, ready: asyncio.Event, stop: asyncio.Event) -> None:
        try:
            async with manager.run():
                ready.set()
                await stop.wait()
        except Exception:
            logger.exception("the MCP session manager failed; /mcp answers 503 from now on")
            raise
        finally:
            self._manager = None

    async def stop(self) -> None:
        """End every session (their tool calls are cancelled, their streams closed)."""
        self._manager = None
        if self._task is not None and self._stop is not None:
            self._stop.set()
            try:
                await self._task
            except Exception:
                logger.exception("the MCP session manager failed while stopping")
            self._task = None

    # -- HTTP ------------------------------------------------------------------------------------

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        headers = Headers(scope=scope)
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        try:
            principal = await self.dispatcher.authenticate(token)
            if principal.is_owner:
                raise Forbidden(
                    "the MCP endpoint is for agents: use an agent's token, not the owner token",
                    hint="make one with `berth agents add NAME` or in Agent Settings",
                )
        except BerthError as e:
            # The same JSON-RPC error body as /rpc answers.
            status = 401 if e.code == Unauthorized.code else 403
            challenge = {"WWW-Authenticate": 'Bearer realm="berth"'} if status == 401 else None
            return await json_response(_error_body(e), status, challenge)(scope, receive, send)
        manager = self._manager
        if manager is None:
            busy = _error_body(BerthError("Berth is starting or stopping; try again"))
            return await json_response(busy, 503)(scope, receive, send)
        assert token is not None
        # The SDK binds each session to this identity and answers 404 to a session id presented by anyone else.
        user = AuthenticatedUser(
            AccessToken(token=hash_token(token), client_id=principal.name, scopes=[], subject=hash_token(token))
        )
        await manager.handle_request({**scope, "user": user, PRINCIPAL_KEY: principal}, receive, send)

    # -- MCP handlers ----------------------------------------------------------------------------

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[t.tool() for t in TOOLS])

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        spec = TOOLS_BY_NAME.get(params.name)
        try:
            if spec is None:
                raise MethodNotFound(
                    f"unknown tool {params.name!r}",
                    hint=f"call one of Berth's tools ({', '.join(TOOLS_BY_NAME)}); tools/list describes them",
                )
            principal = principal_of(ctx)
            result = await self._invoke(principal, spec, spec.arguments(params.arguments))
        except BerthError as e:
            return error_result(e)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("internal error in MCP tool %s", params.name)
            return error_result(BerthError("internal error (the log has the details)"))
        return tool_result(spec, result)

    async def _invoke(self, principal: Principal, spec: ToolSpec, args: dict[str, Any]) -> Any:
        """Call the tool's method; for a `then_wait` tool, start the run and then wait on it."""
        if not spec.then_wait:
            return await self.dispatcher.call(principal, spec.method, args)
        waits = {p.name for p in spec.wait_params}
        wait_args = {k: v for k, v in args.items() if k in waits}
        parse_params(METHODS[WAIT_METHOD].params, {**wait_args, "run_id": ""})  # a bad wait_s starts nothing
        started = await self.dispatcher.call(principal, spec.method, {k: v for k, v in args.items() if k not in waits})
        run_id = started["run_id"]
        try:
            return await self.dispatcher.call(principal, WAIT_METHOD, {**wait_args, "run_id": run_id})
        except asyncio.CancelledError:
            # The caller went before it learned the run_id: nobody could ever ask for this run, so it is
            # stopped, as a blocking run is when its caller goes.
            with anyio.CancelScope(shield=True), contextlib.suppress(BerthError):
                await self.dispatcher.call(principal, CANCEL_METHOD, {"run_id": run_id})
            raise
