"""Turning the engine's JSON about containers into `ContainerInfo`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from app.errors import InvalidParams
from app.model import (
    LABEL_AGENT,
    LABEL_CPU_GROUP,
    LABEL_INSTANCE,
    LABEL_KIND,
    LABEL_NAME,
    ContainerDetail,
    ContainerInfo,
    Kind,
    MountInfo,
    NetworkAttachment,
    PortBinding,
)

_EXITED = re.compile(r"Exited \((-?\d+)\)")
_PORT = re.compile(r"^(\d{1,5})(?:/(tcp|udp))?$")


def normalize_port(port: int | str) -> str:
    """`80` -> `80/tcp`; `"5432/tcp"` stays; anything else is InvalidParams."""
    m = _PORT.match(str(port).strip())
    if not m or not 0 < int(m.group(1)) < 65536:
        raise InvalidParams(f'ports: {port!r} is not a container port like 80 or "5432/tcp"')
    return f"{int(m.group(1))}/{m.group(2) or 'tcp'}"


def _kind(labels: dict[str, str]) -> Kind:
    try:
        return Kind(labels.get(LABEL_KIND, "service"))
    except ValueError:
        return Kind.SERVICE


def _short_name(full: str, labels: dict[str, str]) -> str:
    if LABEL_NAME in labels:
        return labels[LABEL_NAME]
    agent = labels.get(LABEL_AGENT, "")
    for prefix in (f"berth.{labels.get(LABEL_INSTANCE, '')}.{agent}.", f"berth-{agent}-"):  # now, and before
        if full.startswith(prefix):
            return full[len(prefix) :]
    return full


def _timestamp(text: str | None) -> str | None:
    if not text or text.startswith("0001-01-01"):
        return None
    return text


def container_from_list(c: dict[str, Any]) -> ContainerInfo:
    labels = c.get("Labels") or {}
    full = (c.get("Names") or ["/"])[0].lstrip("/")
    ports: dict[str, PortBinding] = {}
    for p in c.get("Ports") or []:
        if p.get("PublicPort") and p.get("IP") in ("127.0.0.1", None, ""):
            ports[f"{p['PrivatePort']}/{p.get('Type', 'tcp')}"] = PortBinding("127.0.0.1", int(p["PublicPort"]))
    m = _EXITED.search(c.get("Status") or "")
    return ContainerInfo(
        id=c["Id"],
        name=_short_name(full, labels),
        full_name=full,
        agent=labels.get(LABEL_AGENT, ""),
        kind=_kind(labels),
        status=c.get("State") or "unknown",
        image=c.get("Image") or "",
        created=float(c.get("Created") or 0),
        ports=ports,
        exit_code=int(m.group(1)) if m else None,
        cpu_group=labels.get(LABEL_CPU_GROUP),
        labels=labels,
        network=str((c.get("HostConfig") or {}).get("NetworkMode") or ""),
        command=" ".join(str(c.get("Command") or "").split()),
    )


def container_from_inspect(c: dict[str, Any]) -> ContainerInfo:
    config = c.get("Config") or {}
    labels = config.get("Labels") or {}
    state = c.get("State") or {}
    host = c.get("HostConfig") or {}
    full = str(c.get("Name", "")).lstrip("/")
    ports: dict[str, PortBinding] = {}
    for key, bindings in ((c.get("NetworkSettings") or {}).get("Ports") or {}).items():
        for b in bindings or []:
            if b.get("HostPort") and b.get("HostIp") in ("127.0.0.1", ""):
                ports[key] = PortBinding("127.0.0.1", int(b["HostPort"]))
                break
    status = state.get("Status") or "unknown"
    created = c.get("Created") or ""
    try:
        created_ts = datetime.fromisoformat(created[:26].rstrip("Z") + "+00:00").timestamp() if created else 0.0
    except ValueError:
        created_ts = 0.0
    return ContainerInfo(
        id=c["Id"],
        name=_short_name(full, labels),
        full_name=full,
        agent=labels.get(LABEL_AGENT, ""),
        kind=_kind(labels),
        status=status,
        image=config.get("Image") or "",
        created=created_ts,
        ports=ports,
        exit_code=int(state["ExitCode"]) if status in ("exited", "dead") and "ExitCode" in state else None,
        started_at=_timestamp(state.get("StartedAt")),
        finished_at=_timestamp(state.get("FinishedAt")),
        memory_limit=int(host.get("Memory") or 0) or None,
        cpu_group=host.get("CgroupParent") or labels.get(LABEL_CPU_GROUP),
        labels=labels,
        network=str(host.get("NetworkMode") or ""),
        command=" ".join(_argv(c)),
    )


def _argv(c: dict[str, Any]) -> list[str]:
    """The command a container runs: its path and arguments (the entrypoint, `docker-init` aside)."""
    path = str(c.get("Path") or "")
    args = [str(a) for a in c.get("Args") or []]
    return [path, *args] if path else args


def _env(pairs: list[str] | None) -> tuple[tuple[str, str], ...]:
    out = []
    for item in pairs or []:
        name, _, value = str(item).partition("=")
        out.append((name, value))
    return tuple(out)


def _cpus(host: dict[str, Any]) -> float | None:
    """A container's own CPU quota in CPUs (`--cpus`, or a CFS quota), None where it has none."""
    nano = int(host.get("NanoCpus") or 0)
    if nano > 0:
        return nano / 1e9
    quota, period = int(host.get("CpuQuota") or 0), int(host.get("CpuPeriod") or 0)
    if quota > 0:
        return quota / (period or 100_000)
    return None


def detail_from_inspect(c: dict[str, Any]) -> ContainerDetail:
    """The detail pane's view of the engine's inspect: the command, times, limits, mounts, networks, env."""
    info = container_from_inspect(c)
    config = c.get("Config") or {}
    state = c.get("State") or {}
    host = c.get("HostConfig") or {}
    mounts = tuple(
        MountInfo(
            type=str(m.get("Type") or ""),
            source=str(m.get("Source") or m.get("Name") or ""),
            destination=str(m.get("Destination") or ""),
            read_only=not m.get("RW", True),
        )
        for m in c.get("Mounts") or []
    )
    networks = tuple(
        NetworkAttachment(
            name=str(name),
            aliases=tuple(str(a) for a in (n or {}).get("Aliases") or [] if not info.id.startswith(str(a))),
            ip=str((n or {}).get("IPAddress") or ""),
        )
        for name, n in sorted(((c.get("NetworkSettings") or {}).get("Networks") or {}).items())
    )
    pids = host.get("PidsLimit")
    return ContainerDetail(
        info=info,
        command=tuple(_argv(c)),
        created_at=_timestamp(c.get("Created")),
        started_at=_timestamp(state.get("StartedAt")),
        finished_at=_timestamp(state.get("FinishedAt")),
        exit_code=int(state["ExitCode"]) if info.status in ("exited", "dead") and "ExitCode" in state else None,
        oom_killed=bool(state.get("OOMKilled")),
        error=str(state.get("Error") or ""),
        restart_count=int(c.get("RestartCount") or 0),
        restart_policy=str((host.get("RestartPolicy") or {}).get("Name") or ""),
        user=str(config.get("User") or ""),
        workdir=str(config.get("WorkingDir") or ""),
        env=_env(config.get("Env")),
        mounts=mounts,
        networks=networks,
        memory_limit=int(host.get("Memory") or 0) or None,
        cpus=_cpus(host),
        cpu_group=host.get("CgroupParent") or None,
        pids_limit=int(pids) if pids and int(pids) > 0 else None,
        cap_drop=tuple(str(x) for x in host.get("CapDrop") or []),
        security_opt=tuple(str(x) for x in host.get("SecurityOpt") or []),
        read_only_root=bool(host.get("ReadonlyRootfs")),
        init=bool(host.get("Init")),
        tty=bool(config.get("Tty")),
    )
