"""The API's methods (API.md), independent of any transport.

`Dispatcher.call(principal, method, params)` checks the parameters, checks who may call, and calls
the core. The JSON-RPC server and the MCP endpoint are two transports over this one layer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app import __version__
from app.core.agents import Principal
from app.errors import BerthError, Forbidden, MethodNotFound
from app.model import SERVICE_NAME_RE, Agent
from app.rpc.params import Param, abs_path, check, command, env_vars, in_range, one_of, parse_params, ports

if TYPE_CHECKING:
    from app.core.application import Application

logger = logging.getLogger(__name__)

Handler = Callable[["Application", Principal, dict[str, Any]], Awaitable[Any]]


@check(pattern=SERVICE_NAME_RE.pattern)
def service_name(v: Any) -> Any:
    if not SERVICE_NAME_RE.fullmatch(v):
        raise ValueError("must match [a-z0-9][a-z0-9_.-]{0,62}")
    return v


# Parameters several methods share. A description is written for the agent that calls the method: the MCP
# tool schemas show it (app/rpc/mcp.py), so it says what to pass, not how Berth implements it.

RUN_COMMAND = Param(
    "command",
    (str, list),
    check=command,
    description="A string run by /bin/sh -c (pipes, &&, redirects work), or an array of strings run as argv.",
)
IMAGE = Param(
    "image",
    str,
    None,
    nullable=True,
    description="Container image, e.g. 'python:3.12'. Omit to use Berth's default image (has Python 3).",
)
TIMEOUT = Param(
    "timeout_s",
    (int, float),
    60,
    in_range(0.1, 3600),
    description="Seconds before the command is killed (timed_out: true).",
)
ENV = Param(
    "env",
    (dict, list),
    None,
    env_vars,
    nullable=True,
    description="Environment variables as 'NAME=value' strings, e.g. ['DEBUG=1', 'MODE=fast'].",
)
WORKDIR = Param("workdir", str, "/workspace", abs_path, description="Absolute working directory.")
STDIN = Param("stdin", str, None, nullable=True, description="Text fed to the command's standard input.")
ID = Param("id", str, description="The container's id or name (as returned when it was started or listed).")
PATH = Param(
    "path",
    str,
    description="Path relative to your workspace (the folder mounted at /workspace), e.g. 'src/main.py'.",
)
ENCODING = Param(
    "encoding",
    str,
    "utf-8",
    one_of("utf-8", "base64"),
    description="'utf-8' for text, 'base64' for binary content.",
)
STOP_TIMEOUT = Param(
    "timeout_s",
    (int, float),
    10,
    in_range(0, 600),
    description="Seconds to wait for a clean exit before killing it.",
)
REQUEST_ID = Param("request_id", str, description="The request_id that shell.request returned.")
RUN_ID = Param("run_id", str, description="The run_id that starting the run returned.")


def network(default: str) -> Param:
    """`network`, whose default (None: the core decides) the description spells out for each method."""
    return Param(
        "network",
        str,
        None,
        one_of("none", "bridge"),
        nullable=True,
        description="'none' (no network) or 'bridge': your own network (internet, if the person allows it, "
        f"and your services by their names; other agents' containers are never reachable). Default: {default}.",
    )


@dataclass(frozen=True)
class Method:
    name: str
    handler: Handler
    params: tuple[Param, ...] = ()
    owner_only: bool = False


METHODS: dict[str, Method] = {}


def method(name: str, *params: Param, owner_only: bool = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        METHODS[name] = Method(name, fn, params, owner_only)
        return fn

    return register


def _agent(p: Principal) -> Agent:
    if p.agent is None:
        raise Forbidden("this method needs an agent token, not the owner token")
    return p.agent


class Dispatcher:
    """Authenticates tokens and calls methods on behalf of a principal."""

    def __init__(self, app: Application) -> None:
        self.app = app

    async def authenticate(self, token: str | None) -> Principal:
        return await asyncio.to_thread(self.app.agents.authenticate, token)

    async def call(self, principal: Principal, name: str, params: Any) -> Any:
        m = METHODS.get(name)
        if m is None:
            raise MethodNotFound(f"method not found: {name}")
        if m.owner_only and not principal.is_owner:
            raise Forbidden(f"{name} needs the owner token (it is for the person, not for agents)")
        args = parse_params(m.params, params)
        return await m.handler(self.app, principal, args)


# -- system --------------------------------------------------------------------------------------


@method("system.info")
async def system_info(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    # An agent is told of its own engine (API.md "Engines"); the owner of the local one.
    backend = app.engine.get(app.engine.engine_name(p.agent.name)) if p.agent is not None else app.engine.local
    engine = await backend.info()
    out: dict[str, Any] = {"version": __version__, "engine": engine.to_json(), "agent": None}
    if not engine.available:
        out["engine"]["hint"] = engine.hint
    if app.vault.warning:
        out["keyring"] = {"backend": app.vault.backend, "warning": app.vault.warning}
    out["cpu_quota"] = {"mechanism": backend.cpu_groups.mechanism, "reason": backend.cpu_groups.reason}
    out["host_sandbox"] = (await app.host.check_sandbox()).to_json()
    if p.agent is not None:
        usage = await app.containers.usage(p.agent) if engine.available else app.containers.usage_offline(p.agent)
        out["agent"] = {"name": p.agent.name, "limits": p.agent.limits.to_json(), "usage": usage}
    return out


# -- containers ----------------------------------------------------------------------------------


@method(
    "containers.run",
    RUN_COMMAND,
    IMAGE,
    ENV,
    WORKDIR,
    TIMEOUT,
    network("'none'"),
    STDIN,
    Param(
        "background",
        bool,
        False,
        description="Return at once with a run_id instead of waiting; then containers.wait for the result.",
    ),
)
async def containers_run(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    agent = _agent(p)
    if a.pop("background"):
        run = await app.background.start(agent, **a)
        return {"run_id": run.id, "status": "running"}
    return (await app.background.run(agent, **a)).to_json()


@method(
    "containers.wait",
    RUN_ID,
    Param(
        "wait_s",
        (int, float),
        0,
        in_range(0, 600),
        description="Seconds to wait for the run to end; if it is still running then, you get its output so far.",
    ),
)
async def containers_wait(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    return await app.background.wait(_agent(p), a["run_id"], a["wait_s"])


@method("containers.cancel", RUN_ID)
async def containers_cancel(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    return await app.background.cancel(_agent(p), a["run_id"])


@method(
    "services.start",
    Param(
        "name",
        str,
        check=service_name,
        description="A name for the service, unique among your containers (lower-case, digits, _ . -).",
    ),
    IMAGE,
    Param(
        "command",
        (str, list),
        None,
        command,
        nullable=True,
        description="What to run (a string for /bin/sh -c, or an argv array); omit to use the image's default command.",
    ),
    ENV,
    WORKDIR,
    Param(
        "ports",
        list,
        None,
        ports,
        nullable=True,
        description="Container ports to publish on 127.0.0.1, e.g. [8000] or ['5432/tcp'].",
    ),
    network("'bridge' if the person allows you network, else 'none'"),
)
async def services_start(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    info = await app.containers.start_service(_agent(p), **a)
    return {"id": info.id, "name": info.name, "status": info.status, "ports": info.to_json()["ports"]}


@method(
    "containers.exec",
    ID,
    RUN_COMMAND,
    ENV,
    Param(
        "workdir",
        str,
        None,
        abs_path,
        nullable=True,
        description="Absolute working directory (default: the container's).",
    ),
    TIMEOUT,
    STDIN,
)
async def containers_exec(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    ref = a.pop("id")
    return (await app.containers.exec(_agent(p), ref, **a)).to_json()


@method("containers.list", Param("all", bool, True, description="Include stopped containers."))
async def containers_list(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    return [c.to_json() for c in await app.containers.list(_agent(p), all=a["all"])]


@method("containers.inspect", ID)
async def containers_inspect(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    agent = _agent(p)
    info, stats = await app.containers.inspect(agent, a["id"])
    return {
        **info.to_json(),
        "exit_code": info.exit_code,
        "started_at": info.started_at,
        "finished_at": info.finished_at,
        "limits": {"memory": info.memory_limit, "cpus": agent.limits.cpus, "cpu_group": info.cpu_group},
        "stats": stats.to_json() if stats else None,
    }


@method(
    "containers.logs",
    ID,
    Param(
        "tail",
        int,
        None,
        in_range(0, 10_000_000),
        nullable=True,
        description="Only the last N lines (default: all).",
    ),
    Param(
        "since", (int, float), None, in_range(0, 1e11), nullable=True, description="Only lines after this Unix time."
    ),
    Param("timestamps", bool, False, description="Prefix each line with its time."),
)
async def containers_logs(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    ref = a.pop("id")
    logs, truncated = await app.containers.logs(_agent(p), ref, **a)
    return {"logs": logs, "truncated": truncated}


@method("containers.stop", ID, STOP_TIMEOUT)
async def containers_stop(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    return (await app.containers.stop(_agent(p), a["id"], a["timeout_s"])).to_json()


@method("containers.restart", ID, STOP_TIMEOUT)
async def containers_restart(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    return (await app.containers.restart(_agent(p), a["id"], a["timeout_s"])).to_json()


@method("containers.remove", ID, Param("force", bool, False, description="Remove even if running."))
async def containers_remove(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    await app.containers.remove(_agent(p), a["id"], force=a["force"])
    return {"removed": True}


# -- workspace -----------------------------------------------------------------------------------


@method(
    "workspace.list",
    Param("path", str, ".", description="Folder relative to your workspace (default: its top)."),
)
async def workspace_list(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    await _bring_home(app, _agent(p).name)
    return await asyncio.to_thread(app.workspaces.list, _agent(p).name, a["path"])


async def _bring_home(app: Application, agent: str) -> None:
    """On an engine that cannot see the workspace folder, what the agent's services wrote there comes home
    before a read (API.md "Engines"). An engine that does not answer leaves the local files as they are."""
    try:
        await app.engine.sync_workspace(agent)
    except BerthError as e:
        logger.warning("could not bring %s's workspace home before a read: %s", agent, e)


@method("workspace.read", PATH, ENCODING)
async def workspace_read(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    await _bring_home(app, _agent(p).name)
    return await asyncio.to_thread(app.workspaces.read, _agent(p).name, a["path"], a["encoding"])


@method("workspace.write", PATH, Param("content", str, description="The file's new content."), ENCODING)
async def workspace_write(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    return await asyncio.to_thread(app.workspaces.write, _agent(p).name, a["path"], a["content"], a["encoding"])


@method("workspace.delete", PATH)
async def workspace_delete(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    return await asyncio.to_thread(app.workspaces.delete, _agent(p).name, a["path"])


# -- host shell ----------------------------------------------------------------------------------


@method(
    "shell.request",
    Param("command", str, description="The command, exactly as it will run under /bin/sh -c."),
    Param(
        "cwd",
        str,
        None,
        nullable=True,
        description="Absolute working directory on the host: your workspace or a folder inside it, or a host "
        "folder the person granted you (default: your workspace).",
    ),
    Param(
        "access",
        str,
        "sandbox",
        one_of("sandbox", "host"),
        description="'sandbox' (default): read-only file system except cwd, no network. 'host': full access as "
        "the person, only if they approve it.",
    ),
    Param(
        "timeout_s",
        (int, float),
        300,
        in_range(1, 3600),
        description="Seconds the command may run once approved.",
    ),
    Param(
        "wait_s",
        (int, float),
        0,
        in_range(0, 600),
        description="Seconds this call waits for the decision and the run.",
    ),
)
async def shell_request(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    agent = _agent(p)
    req = await app.approvals.request(agent.name, a["command"], a["cwd"], a["timeout_s"], a["wait_s"], a["access"])
    return req.to_json()


@method(
    "shell.status",
    REQUEST_ID,
    Param(
        "wait_s",
        (int, float),
        0,
        in_range(0, 600),
        description="Seconds to wait for the command to be decided and finish.",
    ),
)
async def shell_status(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    return (await app.approvals.status(_agent(p).name, a["request_id"], a["wait_s"])).to_json()


# -- owner ---------------------------------------------------------------------------------------


@method("agents.list", owner_only=True)
async def agents_list(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    agents = await asyncio.to_thread(app.agents.list)
    out = []
    for agent in agents:
        if app.engine_available:
            usage = await app.containers.usage(agent)
        else:
            usage = app.containers.usage_offline(agent) | {"cpus_in_use": None}
        out.append(
            {
                "name": agent.name,
                "limits": agent.limits.to_json(),
                "usage": usage,
                "enabled": agent.enabled,
                "host_folders": list(agent.host_folders),
                "images": list(agent.images),
                "engine": agent.engine,
            }
        )
    return out


@method(
    "approvals.list",
    Param(
        "status",
        str,
        "pending",
        one_of("pending", "running", "done", "denied", "expired"),
        nullable=True,
        description="Only requests in this state; null for all.",
    ),
    owner_only=True,
)
async def approvals_list(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    listed = await asyncio.to_thread(app.approvals.list, a["status"])
    return [r.to_owner_json() | {"risks": [x.to_json() for x in r.risks]} for r in listed]


@method(
    "approvals.decide",
    Param("request_id", str, description="The request to decide."),
    Param("decision", str, check=one_of("approve", "deny"), description="'approve' or 'deny'."),
    Param(
        "access",
        str,
        None,
        one_of("sandbox", "host"),
        nullable=True,
        description="Run it with this access: lowers, never raises, what the agent asked for.",
    ),
    Param(
        "trust",
        str,
        None,
        nullable=True,
        description="A pattern to add to the agent's trusted patterns first; it must match the command.",
    ),
    owner_only=True,
)
async def approvals_decide(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    req = await app.approvals.decide(a["request_id"], a["decision"], a["trust"], access=a["access"])
    return req.to_owner_json() | req.to_json()
