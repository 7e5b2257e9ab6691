"""How Berth creates a container: its names, its labels, and the safe defaults of DESIGN.md.

Everything here is a pure function of the spec (no engine, no threads), so the rules can be read in
one place and tested without Docker: no network unless asked, all capabilities dropped,
no-new-privileges, a pids limit, an init process, memory without extra swap, the agent's CPU group,
the host user's UID:GID, only the workspace mounted (never the Docker socket), never privileged,
published ports on 127.0.0.1 only, and a restart policy for services only. One more mount exists,
for pooled containers only: their runner's own folder, read-only (see `runner.py`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from docker.types import EndpointConfig, HostConfig, NetworkingConfig

from app.engine.info import normalize_port
from app.errors import InvalidParams
from app.model import (
    LABEL_AGENT,
    LABEL_CPU_GROUP,
    LABEL_INSTANCE,
    LABEL_KIND,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_POOL_AGENT,
    ContainerSpec,
    Kind,
    ServiceSpec,
)

# PID 1 of a pooled container (under `init`): idles until a run execs its command, then goes with the container.
IDLE_COMMAND = ["sleep", "2147483647"]
WORKSPACE = "/workspace"
RUNNER_MOUNT = "/.berth"  # a pooled container's runner folder (app.engine.runner), read-only


def argv_of(command: str | list[str]) -> list[str]:
    """A string runs through `/bin/sh -c`; a list is the argv itself."""
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    if not command or not all(isinstance(a, str) for a in command):
        raise InvalidParams("command must be a non-empty string or a non-empty array of strings")
    return list(command)


def host_user() -> str:
    return f"{os.getuid()}:{os.getgid()}"


def labels(instance: str, agent: str, kind: Kind, name: str) -> dict[str, str]:
    """Berth's labels on a container (API.md). A pooled container is nobody's until a run takes it: it carries
    the agent under its own label, so it is never among the agent's containers."""
    return {
        LABEL_MANAGED: "true",
        LABEL_INSTANCE: instance,
        LABEL_POOL_AGENT if kind == Kind.POOL else LABEL_AGENT: agent,
        LABEL_KIND: str(kind),
        LABEL_NAME: name,
    }


def full_name(instance: str, agent: str, name: str) -> str:
    """The engine-wide container name: `berth.<instance>.<agent>.<name>`. Neither an instance id nor an
    agent name holds a dot, so no two (instance, agent, name) ever share one (`team`/`b-web` and
    `team-b`/`web` used to)."""
    return f"berth.{instance}.{agent}.{name}"


def network_name(instance: str, agent: str) -> str:
    """The agent's own network on this engine (API.md "Agent networks")."""
    return f"berth.{instance}.{agent}"


def network_labels(instance: str, agent: str) -> dict[str, str]:
    return {LABEL_MANAGED: "true", LABEL_INSTANCE: instance, LABEL_AGENT: agent}


def published_ports(spec: ServiceSpec) -> list[str]:
    """A service's ports, normalized ("80/tcp"); publishing needs a network (they bind to 127.0.0.1 only)."""
    ports = [normalize_port(p) for p in spec.ports]
    if ports and spec.network == "none":
        raise InvalidParams("ports: publishing ports needs network 'bridge'")
    return ports


def host_config_kwargs(
    spec: ContainerSpec,
    *,
    network: str,
    kind: Kind,
    ports: Sequence[str] = (),
    cpu: Mapping[str, Any] | None = None,
    runner_dir: str | None = None,
) -> dict[str, Any]:
    """The keyword arguments of the SDK's `create_host_config`: the safe defaults and the agent's limits.
    `cpu` is what `CpuGroups.host_config` chose for the spec's CPU group (a cgroup parent or a quota).
    `runner_dir`: a pooled container's own runner folder, mounted read-only (never into any other kind)."""
    host_kwargs: dict[str, Any] = {
        "network_mode": network,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": spec.pids_limit,
        "init": True,
    }
    if kind == Kind.SERVICE:  # "runs until stopped or removed": also across a restart of the engine
        host_kwargs["restart_policy"] = {"Name": "unless-stopped"}
    if spec.memory:
        host_kwargs.update(mem_limit=spec.memory, memswap_limit=spec.memory)
    host_kwargs.update(cpu or {})
    binds: dict[str, dict[str, str]] = {}
    if spec.workspace:
        binds[spec.workspace] = {"bind": WORKSPACE, "mode": "rw"}
    if runner_dir is not None:
        if kind != Kind.POOL:
            raise ValueError("only a pooled container has a runner folder")
        binds[runner_dir] = {"bind": RUNNER_MOUNT, "mode": "ro"}
    if binds:
        host_kwargs["binds"] = binds
    if ports:
        host_kwargs["port_bindings"] = {p: ("127.0.0.1", None) for p in ports}
    return host_kwargs


def create_kwargs(
    spec: ContainerSpec,
    *,
    instance: str,
    kind: Kind,
    name: str,
    command: list[str] | None,
    api_version: str,
    ports: Sequence[str] = (),
    stdin_open: bool = False,
    cpu: Mapping[str, Any] | None = None,
    runner_dir: str | None = None,
) -> dict[str, Any]:
    """The keyword arguments of the SDK's `create_container(spec.image, ...)`, exactly as they go to the engine.

    `ports` are normalized container ports ("80/tcp"); `api_version` is the engine's, which the SDK's
    host and endpoint configs need to know what they may send.
    """
    network = network_name(instance, spec.agent) if spec.network == "bridge" else spec.network
    host_kwargs = host_config_kwargs(spec, network=network, kind=kind, ports=ports, cpu=cpu, runner_dir=runner_dir)
    all_labels = {**spec.labels, **labels(instance, spec.agent, kind, name)}
    if "cgroup_parent" in host_kwargs:
        all_labels[LABEL_CPU_GROUP] = host_kwargs["cgroup_parent"]
    kwargs: dict[str, Any] = {
        "command": command,
        "name": full_name(instance, spec.agent, name),
        "environment": spec.env,
        "working_dir": spec.workdir or WORKSPACE,
        "user": spec.user or host_user(),
        "labels": all_labels,
        "stdin_open": stdin_open,
        "ports": [tuple(p.split("/")) if p.endswith("/udp") else int(p.split("/")[0]) for p in ports] or None,
        "host_config": HostConfig(version=api_version, **host_kwargs),
    }
    if spec.network == "bridge" and kind == Kind.SERVICE:  # found by its name from the agent's containers
        kwargs["networking_config"] = NetworkingConfig(
            {network: EndpointConfig(api_version, aliases=[name])}  # type: ignore[arg-type]
        )
    return kwargs
