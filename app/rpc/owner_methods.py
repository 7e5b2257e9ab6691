"""Owner methods the command line uses while Berth runs: agents and trusted patterns, through the core.

`berth agents ...` and `berth trust ...` call these over the running app's port with the owner token, so
the change goes through the same core as the window's (and the window shows it at once). With no Berth
running they act on the data folder directly (app/cli.py). Agents never reach these: owner token only.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from app.core.agents import Principal
from app.model import FILES_LOCAL, FILES_SYNC, LOCAL_ENGINE, EngineConfig, Limits
from app.rpc.methods import method
from app.rpc.params import Param, check, in_range, one_of

if TYPE_CHECKING:
    from app.core.application import Application

ACCESS = Param("access", str, "sandbox", one_of("sandbox", "host"), description="sandbox, or host for full access.")
NAME = Param("name", str, description="The agent's name.")


@check(items={"type": "string"}, maxItems=64)
def folder_list(v: Any) -> Any:
    if not all(isinstance(f, str) and f and "\0" not in f for f in v):
        raise ValueError("must be a list of folder paths")
    return list(v)


def _agent_json(agent: Any) -> dict[str, Any]:
    return {
        "name": agent.name,
        "limits": agent.limits.to_json(),
        "enabled": agent.enabled,
        "host_folders": list(agent.host_folders),
        "images": list(agent.images),
        "engine": agent.engine,
    }


LIMITS = (
    Param("cpus", (int, float), None, in_range(0.01, 1024), nullable=True, description="CPU quota, all together."),
    Param("memory", int, None, in_range(6 * 1024 * 1024, 1 << 50), nullable=True, description="Bytes per container."),
    Param("max_containers", int, None, in_range(1, 1000), nullable=True, description="Containers at once."),
    Param("at_limit", str, None, one_of("queue", "reject"), nullable=True, description="queue or reject."),
    Param("queue_timeout_s", (int, float), None, in_range(0, 86400), nullable=True, description="Queue wait."),
    Param("network", bool, None, nullable=True, description="Whether the agent may use network."),
)


ENGINE = Param("engine", str, None, nullable=True, description="The engine its containers run on (default: local).")


@method("agents.add", NAME, *LIMITS, ENGINE, owner_only=True)
async def agents_add(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    given = {k: a[k] for k in ("cpus", "memory", "max_containers", "at_limit", "queue_timeout_s", "network")}
    limits = Limits(**{k: v for k, v in given.items() if v is not None})
    agent, token = await app.owner.add_agent(a["name"], limits, engine=a["engine"] or LOCAL_ENGINE)
    return _agent_json(agent) | {"token": token}


@method(
    "agents.set",
    NAME,
    *LIMITS,
    Param("enabled", bool, None, nullable=True, description="Enable or disable the agent."),
    Param("host_folders", list, None, folder_list, nullable=True, description="The host folders it may use."),
    Param("images", list, None, folder_list, nullable=True, description="Image patterns it may have pulled."),
    ENGINE,
    owner_only=True,
)
async def agents_set(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    name, owner = a["name"], app.owner
    changes = {k: a[k] for k in ("cpus", "memory", "max_containers", "at_limit", "queue_timeout_s", "network")}
    changes = {k: v for k, v in changes.items() if v is not None}
    agent = await owner.set_limits(name, **changes) if changes else await asyncio.to_thread(app.agents.get, name)
    if a["enabled"] is not None:
        agent = await owner.set_enabled(name, a["enabled"])
    if a["host_folders"] is not None:
        agent = await owner.set_host_folders(name, a["host_folders"])
    if a["images"] is not None:
        agent = await owner.set_images(name, a["images"])
    if a["engine"] is not None:
        agent = await owner.set_engine(name, a["engine"])
    return _agent_json(agent)


@method(
    "agents.remove",
    NAME,
    Param("containers", bool, True, description="Also remove its containers (services included)."),
    Param("workspace", bool, False, description="Also delete its workspace folder."),
    owner_only=True,
)
async def agents_remove(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    failed = await app.owner.remove_agent(a["name"], containers=a["containers"], workspace=a["workspace"])
    return {"removed": True, "containers_not_removed": failed}


@method("agents.rotate_token", NAME, owner_only=True)
async def agents_rotate_token(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    return {"token": await app.owner.rotate_token(a["name"])}


@method("trust.list", owner_only=True)
async def trust_list(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    return [t.to_json() for t in await asyncio.to_thread(app.approvals.list_patterns)]


@method(
    "trust.add",
    Param("pattern", str, description="A command with * wildcards over whole words."),
    Param("agent", str, None, nullable=True, description="Only for this agent (default: every agent)."),
    ACCESS,
    owner_only=True,
)
async def trust_add(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    trusted = await asyncio.to_thread(
        lambda: app.approvals.add_pattern(a["pattern"], a["agent"], actor="you", access=a["access"])
    )
    return trusted.to_json()


@method("trust.remove", Param("id", int, description="The pattern's id."), owner_only=True)
async def trust_remove(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    await asyncio.to_thread(lambda: app.approvals.remove_pattern(a["id"], actor="you"))
    return {"removed": True}


@method("engines.list", owner_only=True)
async def engines_list(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    return await app.owner.engines()


@method(
    "engines.add",
    Param("name", str, description="The engine's name in Berth."),
    Param("host", str, None, nullable=True, description="tcp://HOST:PORT (with TLS), ssh://USER@HOST or unix://PATH."),
    Param("context", str, None, nullable=True, description="Or a Docker context's name."),
    Param("tls_ca", str, None, nullable=True, description="The CA certificate that signed the engine's."),
    Param("tls_cert", str, None, nullable=True, description="Berth's client certificate."),
    Param("tls_key", str, None, nullable=True, description="Its key."),
    Param("files", str, None, one_of(FILES_LOCAL, FILES_SYNC), nullable=True, description="local or sync."),
    owner_only=True,
)
async def engines_add(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    host = a["host"]
    files = a["files"] or (FILES_LOCAL if host and host.startswith("unix://") else FILES_SYNC)
    config = EngineConfig(
        name=a["name"],
        host=host,
        context=a["context"],
        tls_ca=a["tls_ca"],
        tls_cert=a["tls_cert"],
        tls_key=a["tls_key"],
        files=files,
    )
    return await app.owner.add_engine(config)


@method("engines.remove", Param("name", str, description="The engine's name."), owner_only=True)
async def engines_remove(app: Application, p: Principal, a: dict[str, Any]) -> Any:
    await app.owner.remove_engine(a["name"])
    return {"removed": True}
