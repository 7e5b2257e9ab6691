"""Agent networks on the real engine: services found by name, agents kept apart, names that never collide."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from app.config import Paths
from app.core.application import Application
from app.engine import Engine
from app.errors import Conflict
from app.model import RunSpec, ServiceSpec
from tests.conftest import BUSYBOX, PYTHON, docker_cli, remove_instance_containers

WEB = "mkdir -p /tmp/www && echo hello-from-web > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"


def web(agent: str, name: str = "web") -> ServiceSpec:
    return ServiceSpec(agent=agent, image=BUSYBOX, name=name, command=WEB, network="bridge")


# GET / from HOST:8080 with a plain socket (the static busybox cannot look names up; python3-minimal has no http).
FETCH = """
import socket, sys, time
for attempt in range(int(sys.argv[2])):
    try:
        s = socket.create_connection((sys.argv[1], 8080), timeout=3)
        break
    except OSError as e:
        error = e
        time.sleep(0.1)
else:
    sys.exit(f"cannot connect: {error}")
s.sendall(b"GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
sys.stdout.write(data.split(b"\\r\\n\\r\\n", 1)[1].decode())
"""


def fetch(agent: str, host: str, attempts: int = 1) -> RunSpec:
    """A run of `agent` that fetches http://HOST:8080/."""
    argv = ["python3", "-c", FETCH, host, str(attempts)]
    return RunSpec(agent=agent, image=PYTHON, command=argv, network="bridge", timeout_s=30)


def ip_on(container: str, network: str) -> str:
    raw = json.loads(docker_cli("inspect", container).stdout)[0]
    return str(raw["NetworkSettings"]["Networks"][network]["IPAddress"])


async def wait_serving(engine: Engine, agent: str) -> None:
    r = await engine.run_temporary(fetch(agent, "web", attempts=100))
    assert r.exit_code == 0, r.stderr


async def test_an_agents_run_reaches_its_service_by_name(engine: Engine) -> None:
    await engine.start_service(web("alpha"))
    await wait_serving(engine, "alpha")
    r = await engine.run_temporary(fetch("alpha", "web"))
    assert r.exit_code == 0 and r.stdout == "hello-from-web\n"


async def test_another_agent_reaches_it_neither_by_name_nor_by_ip(engine: Engine) -> None:
    """Attack: agent B's container fetches agent A's service by its name, or by its address on A's network,
    going around the 127.0.0.1-only port publishing."""
    svc = await engine.start_service(web("alpha"))
    await wait_serving(engine, "alpha")
    address = ip_on(svc.id, engine.network_name("alpha"))
    for host in ("web", address):
        r = await engine.run_temporary(fetch("beta", host))
        assert r.exit_code != 0 and "hello-from-web" not in r.stdout, host
    # A network of its own for each agent, labelled; never Docker's default bridge.
    assert await engine.networks() == {"alpha": engine.network_name("alpha"), "beta": engine.network_name("beta")}


async def test_names_never_collide_between_agents(engine: Engine) -> None:
    """Agent `team` with service `b-web` and agent `team-b` with service `web` used to share a container name."""
    one = await engine.start_service(ServiceSpec(agent="team", image=BUSYBOX, name="b-web", command="sleep 300"))
    two = await engine.start_service(ServiceSpec(agent="team-b", image=BUSYBOX, name="web", command="sleep 300"))
    assert one.full_name != two.full_name and (one.name, two.name) == ("b-web", "web")
    with pytest.raises(Conflict):
        await engine.start_service(ServiceSpec(agent="team", image=BUSYBOX, name="b-web", command="sleep 300"))


async def test_two_berths_on_one_engine_each_start_the_same_agent_and_service(engine: Engine) -> None:
    other = Engine("other-" + engine.instance)
    try:
        mine = await engine.start_service(web("x"))
        theirs = await other.start_service(web("x"))
        assert mine.full_name != theirs.full_name
        assert engine.network_name("x") != other.network_name("x")
    finally:
        remove_instance_containers(other.instance)
        await other.prune_networks(set())
        await other.aclose()


async def test_a_restart_finds_the_network_again_and_removing_the_agent_removes_it(engine: Engine) -> None:
    await engine.start_service(web("alpha"))
    again = Engine(engine.instance)  # as after a restart of Berth
    try:
        await again.start_service(web("alpha", "web2"))
        name = engine.network_name("alpha")
        same = docker_cli("network", "ls", "-q", "--filter", f"name=^{name}$").stdout.split()
        assert len(same) == 1
        # Still in use by the agent's services: it stays; once they are gone, pruning removes it.
        assert await again.prune_networks(set()) == []
        ids = docker_cli("ps", "-aq", "--filter", f"label=berth.instance={engine.instance}").stdout.split()
        docker_cli("rm", "-f", *ids)
        assert await again.prune_networks(set()) == ["alpha"]
        assert docker_cli("network", "ls", "-q", "--filter", f"name=^{name}$").stdout.split() == []
    finally:
        await again.aclose()


async def test_removing_an_agent_removes_its_network(instance: str, tmp_path: Path) -> None:
    paths = Paths(tmp_path / "data", tmp_path / "data" / "state", tmp_path / "data" / "logs")
    paths.ensure()
    (paths.data_dir / "instance-id").write_text(instance + "\n")
    app = Application(paths, rpc_port=0)
    await app.start()
    try:
        agent, _ = await asyncio.to_thread(app.agents.add, "short-lived")
        r = await app.containers.run(agent, command="true", image=BUSYBOX, network="bridge")
        assert r.exit_code == 0
        name = app.engine.network_name("short-lived")
        assert docker_cli("network", "ls", "-q", "--filter", f"name=^{name}$").stdout.split()
        await asyncio.to_thread(app.agents.remove, "short-lived")
        deadline = asyncio.get_running_loop().time() + 20
        while docker_cli("network", "ls", "-q", "--filter", f"name=^{name}$").stdout.split():
            assert asyncio.get_running_loop().time() < deadline, "the removed agent's network is still there"
            await asyncio.sleep(0.1)
    finally:
        await app.stop()
