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
from app.rpc.methods import Dispatcher

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

STR: dict[str, Any] = {"type": "string"}
COMMAND: dict[str, Any] = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
    "description": "A string run by /bin/sh -c (pipes, &&, redirects work), or an array of strings run as argv.",
}
IMAGE: dict[str, Any] = {
    "type": "string",
    "description": "Container image, e.g. 'python:3.12'. Omit to use Berth's default image (has Python 3).",
}
ENV: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "Environment variables, name -> value.",
}
STDIN: dict[str, Any] = {"type": "string", "description": "Text fed to the command's standard input."}
CONTAINER_ID: dict[str, Any] = {
    "type": "string",
    "description": "The container's id or name (as returned by start_service or list_containers).",
}
WS_PATH: dict[str, Any] = {
    "type": "string",
    "description": "Path relative to your workspace (the folder mounted at /workspace), e.g. 'src/main.py'.",
}
ENCODING: dict[str, Any] = {
    "type": "string",
    "enum": ["utf-8", "base64"],
    "default": "utf-8",
    "description": "'utf-8' for text, 'base64' for binary content.",
}


def _timeout(default: float, maximum: float, what: str) -> dict[str, Any]:
    return {"type": "number", "minimum": 0.1, "maximum": maximum, "default": default, "description": what}


def _network(default: str) -> dict[str, Any]:
    return {
        "type": "string",
        "enum": ["none", "bridge"],
        "description": "'none' (no network) or 'bridge': your own network (internet, if the person allows it, "
        f"and your services by their names; other agents' containers are never reachable). Default: {default}.",
    }


@dataclass(frozen=True)
class ToolSpec:
    """One MCP tool: which API method it calls, how a model should use it, and its arguments' schema."""

    name: str
    method: str
    title: str
    description: str
    properties: dict[str, Any] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)  # where a model needs a default other than the API's
    list_key: str | None = None  # structured content must be an object: a list result goes under this key
    read_only: bool = False
    destructive: bool = False
    open_world: bool = False  # may reach beyond Berth: the network, or the host itself

    def tool(self) -> types.Tool:
        schema: dict[str, Any] = {"type": "object", "properties": self.properties, "additionalProperties": False}
        if self.required:
            schema["required"] = list(self.required)
        return types.Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=schema,
            annotations=types.ToolAnnotations(
                title=self.title,
                read_only_hint=self.read_only,
                destructive_hint=self.destructive if not self.read_only else None,
                open_world_hint=self.open_world,
            ),
        )


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
        {
            "command": COMMAND,
            "image": IMAGE,
            "env": ENV,
            "workdir": {"type": "string", "default": "/workspace", "description": "Absolute working directory."},
            "timeout_s": _timeout(60, 3600, "Seconds before the command is killed (timed_out: true)."),
            "network": _network("'none'"),
            "stdin": STDIN,
        },
        ("command",),
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
        {
            "name": {
                "type": "string",
                "pattern": "^[a-z0-9][a-z0-9_.-]{0,62}$",
                "description": "A name for the service, unique among your containers (lower-case, digits, _ . -).",
            },
            "image": IMAGE,
            "command": {**COMMAND, "description": "What to run; omit to use the image's default command."},
            "env": ENV,
            "workdir": {"type": "string", "default": "/workspace", "description": "Absolute working directory."},
            "ports": {
                "type": "array",
                "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "description": "Container ports to publish on 127.0.0.1, e.g. [8000] or ['5432/tcp'].",
            },
            "network": _network("'bridge' if the person allows you network, else 'none'"),
        },
        ("name",),
        open_world=True,
    ),
    ToolSpec(
        "exec_in_service",
        "containers.exec",
        "Run a command in a running service",
        "Run a command inside one of your running containers (started with start_service) and return its exit "
        "code, stdout and stderr.",
        {
            "id": CONTAINER_ID,
            "command": COMMAND,
            "env": ENV,
            "workdir": {"type": "string", "description": "Absolute working directory (default: the container's)."},
            "timeout_s": _timeout(60, 3600, "Seconds before the command is killed (timed_out: true)."),
            "stdin": STDIN,
        },
        ("id", "command"),
        destructive=True,
        open_world=True,
    ),
    ToolSpec(
        "list_containers",
        "containers.list",
        "List your containers",
        "List your containers (services and temporary runs in progress) with their id, name, kind, status, image "
        "and published ports.",
        {"all": {"type": "boolean", "default": True, "description": "Include stopped containers."}},
        list_key="containers",
        read_only=True,
    ),
    ToolSpec(
        "container_logs",
        "containers.logs",
        "Read a container's logs",
        "Read the output (stdout and stderr) a container has written, e.g. a service's log.",
        {
            "id": CONTAINER_ID,
            "tail": {"type": "integer", "minimum": 0, "description": "Only the last N lines (default: all)."},
            "since": {"type": "number", "minimum": 0, "description": "Only lines after this Unix time."},
            "timestamps": {"type": "boolean", "default": False, "description": "Prefix each line with its time."},
        },
        ("id",),
        read_only=True,
    ),
    ToolSpec(
        "stop_container",
        "containers.stop",
        "Stop a container",
        "Stop one of your running containers (it can be inspected or removed afterwards).",
        {"id": CONTAINER_ID, "timeout_s": _timeout(10, 600, "Seconds to wait for a clean exit before killing it.")},
        ("id",),
        destructive=True,
    ),
    ToolSpec(
        "remove_container",
        "containers.remove",
        "Remove a container",
        "Remove one of your containers. A running one needs force=true. Your workspace files are not touched.",
        {"id": CONTAINER_ID, "force": {"type": "boolean", "default": False, "description": "Remove even if running."}},
        ("id",),
        destructive=True,
    ),
    ToolSpec(
        "read_file",
        "workspace.read",
        "Read a workspace file",
        "Read a file from your workspace (the folder mounted at /workspace in your containers).",
        {"path": WS_PATH, "encoding": ENCODING},
        ("path",),
        read_only=True,
    ),
    ToolSpec(
        "write_file",
        "workspace.write",
        "Write a workspace file",
        "Create or overwrite a file in your workspace (parent folders are created). Your containers see it under "
        "/workspace.",
        {
            "path": WS_PATH,
            "content": {"type": "string", "description": "The file's new content."},
            "encoding": ENCODING,
        },
        ("path", "content"),
        destructive=True,
    ),
    ToolSpec(
        "list_files",
        "workspace.list",
        "List workspace files",
        "List the files and folders directly inside a folder of your workspace (not recursive), with their type, "
        "size and modification time. Paths in the result are relative to the workspace.",
        {"path": {**WS_PATH, "default": ".", "description": "Folder relative to your workspace (default: its top)."}},
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
        {
            "command": {"type": "string", "description": "The command, exactly as it will run under /bin/sh -c."},
            "cwd": {
                "type": "string",
                "description": "Absolute working directory on the host: your workspace or a folder inside it, or "
                "a host folder the person granted you (default: your workspace).",
            },
            "access": {
                "type": "string",
                "enum": ["sandbox", "host"],
                "default": "sandbox",
                "description": "'sandbox' (default): read-only file system except cwd, no network. 'host': full "
                "access as the person, only if they approve it.",
            },
            "timeout_s": {
                "type": "number",
                "minimum": 1,
                "maximum": 3600,
                "default": 300,
                "description": "Seconds the command may run once approved.",
            },
            "wait_s": {
                "type": "number",
                "minimum": 0,
                "maximum": 600,
                "default": HOST_WAIT_S,
                "description": "Seconds this call waits for the decision and the run.",
            },
        },
        ("command",),
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
        {
            "request_id": {"type": "string", "description": "The request_id returned by run_host_command."},
            "wait_s": {
                "type": "number",
                "minimum": 0,
                "maximum": 600,
                "default": HOST_WAIT_S,
                "description": "Seconds to wait for the command to be decided and finish.",
            },
        },
        ("request_id",),
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
            args = {**spec.defaults, **(params.arguments or {})}
            result = await self.dispatcher.call(principal, spec.method, args)
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
