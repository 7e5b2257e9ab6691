"""The container creation policy (app.engine.policy), checked on the arguments it builds, without an engine.

Each test names the safe default of DESIGN.md it holds: an agent's container that got any of these wrong
would reach the host (capabilities, privileges, the Docker socket, a port on every interface) or
outlive what the person expects.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from app.engine.policy import create_kwargs, published_ports
from app.errors import InvalidParams
from app.model import ContainerSpec, Kind, MiB, RunSpec, ServiceSpec

API_VERSION = "1.41"
INSTANCE = "inst"
KINDS = [Kind.TEMPORARY, Kind.POOL, Kind.SERVICE]


def build(
    spec: ContainerSpec, kind: Kind = Kind.TEMPORARY, name: str = "c", ports: list[str] | None = None, **kw: Any
) -> dict[str, Any]:
    return create_kwargs(
        spec,
        instance=INSTANCE,
        kind=kind,
        name=name,
        command=["true"],
        api_version=API_VERSION,
        ports=ports or [],
        **kw,
    )


def run(**kw: Any) -> RunSpec:
    return RunSpec(agent="a", image="img", command="true", **kw)


@pytest.mark.parametrize("kind", KINDS)
def test_every_container_drops_capabilities_and_privileges(kind: Kind) -> None:
    host = build(run(), kind)["host_config"]
    assert host["CapDrop"] == ["ALL"] and "CapAdd" not in host
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert not host.get("Privileged")
    assert host["Init"] is True
    assert host["PidsLimit"] == 256


def test_the_pids_limit_is_the_specs() -> None:
    assert build(run(pids_limit=32))["host_config"]["PidsLimit"] == 32


def test_memory_cap_comes_without_extra_swap() -> None:
    host = build(run(memory=256 * MiB))["host_config"]
    assert host["Memory"] == host["MemorySwap"] == 256 * MiB


def test_runs_as_the_host_user_unless_told() -> None:
    assert build(run())["user"] == f"{os.getuid()}:{os.getgid()}"
    assert build(run(user="12345:12345"))["user"] == "12345:12345"


@pytest.mark.parametrize("kind", KINDS)
def test_only_the_workspace_is_mounted_never_the_docker_socket(kind: Kind) -> None:
    """An agent with the Docker socket owns the host: nothing but its workspace is ever bound."""
    kw = build(run(workspace="/home/me/ws"), kind)
    assert kw["host_config"]["Binds"] == ["/home/me/ws:/workspace:rw"]
    assert kw["working_dir"] == "/workspace"
    assert not {"Mounts", "VolumesFrom", "Devices"} & set(kw["host_config"])
    assert "docker.sock" not in repr(kw)
    assert "Binds" not in build(run(), kind)["host_config"]  # no workspace: no host path at all


def test_no_network_unless_asked() -> None:
    kw = build(run())
    assert kw["host_config"]["NetworkMode"] == "none"
    assert "networking_config" not in kw and "PortBindings" not in kw["host_config"]


def test_bridge_means_the_agents_own_network() -> None:
    kw = build(run(network="bridge"))
    assert kw["host_config"]["NetworkMode"] == f"berth.{INSTANCE}.a"
    assert "networking_config" not in kw  # a temporary container needs no name on it


def test_a_service_on_the_agents_network_is_found_by_its_name() -> None:
    spec = ServiceSpec(agent="a", image="img", name="web", network="bridge")
    kw = build(spec, Kind.SERVICE, name="web")
    network = f"berth.{INSTANCE}.a"
    assert kw["host_config"]["NetworkMode"] == network
    assert kw["networking_config"] == {"EndpointsConfig": {network: {"Aliases": ["web"]}}}


def test_published_ports_bind_to_localhost_only() -> None:
    """A port on 0.0.0.0 would open an agent's service to the whole network."""
    spec = ServiceSpec(agent="a", image="img", name="web", network="bridge", ports=["8080", "53/udp"])
    ports = published_ports(spec)
    assert ports == ["8080/tcp", "53/udp"]
    kw = build(spec, Kind.SERVICE, name="web", ports=ports)
    bindings = kw["host_config"]["PortBindings"]
    assert set(bindings) == {"8080/tcp", "53/udp"}
    assert all(b == [{"HostIp": "127.0.0.1", "HostPort": ""}] for b in bindings.values())
    assert kw["ports"] == [8080, ("53", "udp")]


def test_ports_need_a_network() -> None:
    with pytest.raises(InvalidParams):
        published_ports(ServiceSpec(agent="a", image="img", name="web", ports=["80"]))


def test_only_services_restart_on_their_own() -> None:
    assert build(run(), Kind.SERVICE)["host_config"]["RestartPolicy"] == {"Name": "unless-stopped"}
    assert "RestartPolicy" not in build(run(), Kind.TEMPORARY)["host_config"]
    assert "RestartPolicy" not in build(run(), Kind.POOL)["host_config"]


def test_names_and_labels_say_whose_it_is() -> None:
    kw = build(run(labels={"berth.kind": "service", "mine": "x"}), Kind.TEMPORARY, name="tmp-1")
    assert kw["name"] == f"berth.{INSTANCE}.a.tmp-1"
    assert kw["labels"] == {
        "mine": "x",
        "berth.managed": "true",
        "berth.instance": INSTANCE,
        "berth.agent": "a",
        "berth.kind": "temporary",  # Berth's own labels win over the spec's
        "berth.name": "tmp-1",
    }


def test_a_pooled_container_is_nobodys_until_a_run_takes_it() -> None:
    labels = build(run(), Kind.POOL, name="pool-1")["labels"]
    assert labels["berth.pool.agent"] == "a" and "berth.agent" not in labels


def test_the_cpu_group_goes_on_the_container_and_its_label() -> None:
    kw = build(run(), cpu={"cgroup_parent": "/berth-inst-a"})
    assert kw["host_config"]["CgroupParent"] == "/berth-inst-a"
    assert kw["labels"]["berth.cpu_group"] == "/berth-inst-a"
    host = build(run(), cpu={"nano_cpus": 500_000_000})["host_config"]
    assert host["NanoCpus"] == 500_000_000 and "berth.cpu_group" not in build(run())["labels"]
