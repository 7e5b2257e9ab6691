"""The MCP endpoint: `/mcp` on the RPC server's port, Model Context Protocol over Streamable HTTP.

The protocol is the official `mcp` SDK's (low-level `Server` + `StreamableHTTPSessionManager`);
each tool is one API method called through the same `Dispatcher` as `/rpc`, so a capability has one
implementation and two transports. Errors become tool results with `isError` and the message (and
hint) that `/rpc` would answer.

Who is calling: the aiohttp handler authenticates the bearer token before the SDK sees the request
and puts the `Principal` into that request's ASGI scope. The SDK runs tool handlers in the session's
own task (started at `initialize`), so a contextvar set per HTTP request would not reach them;
instead each handler reads the principal from `ctx.request`, the HTTP request that carried the
`tools/call`. The scope's `user` also names the agent, and the SDK refuses (404, as if unknown) a
session id presented with a credential other than the one that opened the session: agent B cannot
use agent A's session.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
from aiohttp import web
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from app import __version__
from app.core.agents import Principal
from app.core.tokens import hash_token
from app.errors import BerthError, Forbidden, Unauthorized
from app.rpc.asgi import serve_asgi
from app.rpc.methods import METHODS, Dispatcher
from app.rpc.params import Param

logger = logging.getLogger(__name__)

PATH = "/mcp"
PRINCIPAL_KEY = "berth.principal"
MAX_BODY = 8 * 1024 * 1024
HOST_WAIT_S = 30  # run_host_command / check_host_command wait this long by default (API default: 0)

INSTRUCTIONS = (
    "Berth runs your commands in Docker containers on this machine, with CPU/memory limits set by the person. "
    "Your workspace folder is mounted at /workspace in every container you start, so files persist between runs "
    "and can be read or written directly with read_file/write_file/list_files. Use run_command for one-off "
    "commands, start_service for long-running processes (servers, databases), and run_host_command only when "
    "something must run on the host itself: the person approves each such command."
)


# -- tools ---------------------------------------------------------------------------------------
#
# Each tool's input schema is generated from its API method's `Param`s (app/rpc/methods.py): the names,
# types, ranges, choices, defaults and descriptions that `/rpc` checks, so the two cannot drift. What is
# written here is only what MCP adds: a tool's name, title and description, its hints, where a list result
# goes, and the few places a tool's wording or default differs from the method's.


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
    read_only: bool = False
    destructive: bool = False
    open_world: bool = False  # may reach beyond Berth: the network, or the host itself

    @property
    def params(self) -> tuple[Param, ...]:
        """The method's parameters that the caller may pass (all but the fixed ones)."""
        return tuple(p for p in METHODS[self.method].params if p.name not in self.fixed)

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
        """The method's params for a call with the tool's `given` arguments: its defaults, then them, then fixed."""
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

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "run_command",
        "containers.run",
        "Run a command in a temporary container",
        "Run a command in a fresh, temporary container and return its exit code, stdout and stderr. The container "
        "is removed when the command ends or times out, so use it for one-off work: running scripts, tests, "
        "builds. Your workspace is mounted at /workspace (the default working directory): files you write there "
        "persist. No network unless you ask for network='bridge'. If you are at your container limit, the call "
        "may wait for a free slot.",
        destructive=True,
        open_world=True,
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
        defaults={"wait_s": HOST_WAIT_S},
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
        defaults={"wait_s": HOST_WAIT_S},
        read_only=True,
    ),
)
TOOLS_BY_NAME = {t.name: t for t in TOOLS}


def _text(value: Any) -> list[types.ContentBlock]:
    return [types.TextContent(text=json.dumps(value, ensure_ascii=False))]


def error_result(e: BerthError) -> types.CallToolResult:
    """A tool error: the same message (and hint) as /rpc's error, plus its code and data for programs."""
    text = f"{e.message}\nWhat to do: {e.hint}" if e.hint else e.message
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        structured_content={"error": {"code": e.code, "message": e.message, "data": e.data()}},
        is_error=True,
    )


def _error_body(e: BerthError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": None, "error": {"code": e.code, "message": e.message, "data": e.data()}}


def principal_of(ctx: ServerRequestContext[Any, Any]) -> Principal:
    """The principal the aiohttp handler authenticated for the HTTP request carrying this message."""
    scope = getattr(ctx.request, "scope", None)
    principal = scope.get(PRINCIPAL_KEY) if isinstance(scope, dict) else None
    if not isinstance(principal, Principal):
        raise Unauthorized("missing or unknown token")
    return principal


class McpEndpoint:
    """`/mcp` on an aiohttp application, served by the SDK's session manager once `start()` has run."""

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

    def mount(self, app: web.Application) -> None:
        for method in ("POST", "GET", "DELETE"):
            app.router.add_route(method, PATH, self._handle)

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

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
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
            headers = {"WWW-Authenticate": 'Bearer realm="berth"'} if status == 401 else None
            return web.json_response(_error_body(e), status=status, headers=headers)
        manager = self._manager
        if manager is None:
            return web.json_response(_error_body(BerthError("Berth is starting or stopping; try again")), status=503)
        assert token is not None
        # The SDK binds each session to this identity and answers 404 to a session id presented by anyone else.
        user = AuthenticatedUser(
            AccessToken(token=hash_token(token), client_id=principal.name, scopes=[], subject=hash_token(token))
        )
        return await serve_asgi(request, manager.handle_request, {"user": user, PRINCIPAL_KEY: principal})

    # -- MCP handlers ----------------------------------------------------------------------------

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[t.tool() for t in TOOLS])

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        spec = TOOLS_BY_NAME.get(params.name)
        if spec is None:
            return types.CallToolResult(
                content=[types.TextContent(text=f"unknown tool {params.name!r} (see tools/list)")], is_error=True
            )
        try:
            principal = principal_of(ctx)
            result = await self.dispatcher.call(principal, spec.method, spec.arguments(params.arguments))
        except BerthError as e:
            return error_result(e)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("internal error in MCP tool %s", spec.name)
            return types.CallToolResult(
                content=[types.TextContent(text="internal error (the log has the details)")], is_error=True
            )
        structured = {spec.list_key: result} if spec.list_key else result
        return types.CallToolResult(content=_text(result), structured_content=structured)
