"""The second engine that stands in for a remote one works, through TLS only, and leaves the first engine alone.

These prove the fixture (tests/engines/conftest.py) before Berth's own multi-engine tests rely on it: the docker
SDK reaches it with the client certificate, it has the image, runs containers on its own bridge and on a
user-defined network from its own address pool; a process without the key is refused; and once it is gone,
nothing of it is left and the first engine's `docker0` still works.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
import sys
from pathlib import Path

import docker
import docker.errors
import docker.tls
import pytest
import requests.exceptions

from tests.conftest import BUSYBOX, docker_cli, missing_part, wait_for
from tests.engines.conftest import (
    SecondEngine,
    _link_exists,
    _mounts_under,
    make_certificates,
    start_second_engine,
    sweep_leftovers,
    tls_client,
)

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.engine


def _main_engine_bridge_works() -> None:
    """A container on the first engine's default bridge (docker0) runs, and docker0 is there."""
    assert _link_exists("docker0"), "the host's docker0 is gone"
    out = docker_cli("run", "--rm", BUSYBOX, "true", check=False)
    assert out.returncode == 0, f"docker run on the first engine failed: {out.stderr}"


def test_answers_through_tls_and_is_not_the_first_engine(second_engine: SecondEngine) -> None:
    client = second_engine.client()
    try:
        assert client.ping()
        info = client.info()
        assert info["DockerRootDir"] == str(second_engine.root / "data")
        assert info["Driver"] == "overlay2"
    finally:
        client.close()
    main = docker.from_env()
    try:
        assert main.info()["DockerRootDir"] != str(second_engine.root / "data")
    finally:
        main.close()


def test_has_busybox_and_loads_an_image(second_engine: SecondEngine) -> None:
    """The fixture copied berth/busybox in; `images.load` of a `save` from the first engine works too."""
    client = second_engine.client()
    main = docker.from_env()
    tag = f"berth-test/copy:{secrets.token_hex(4)}"
    try:
        assert BUSYBOX in client.images.get(BUSYBOX).tags
        main.images.get(BUSYBOX).tag(tag)
        try:
            data = b"".join(main.images.get(tag).save(named=True))
        finally:
            main.images.remove(tag)
        loaded = client.images.load(data)
        assert any(tag in image.tags for image in loaded)
        client.images.remove(tag)
    finally:
        client.close()
        main.close()


def test_runs_a_container_on_its_own_bridge(second_engine: SecondEngine) -> None:
    client = second_engine.client()
    name = f"berth-test-{secrets.token_hex(4)}"
    try:
        c = client.containers.run(BUSYBOX, ["sh", "-c", "echo hello; sleep 60"], name=name, detach=True, init=True)
        try:
            c.reload()
            address = c.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
            assert ipaddress.IPv4Address(address) in ipaddress.IPv4Interface(second_engine.bridge_address).network
            # On the second engine, not on the first.
            assert docker_cli("ps", "-aq", "--filter", f"name=^{name}$").stdout.strip() == ""
            assert c.exec_run(["echo", "from-exec"]).output == b"from-exec\n"
            assert b"hello" in c.logs()
        finally:
            c.remove(force=True)
    finally:
        client.close()


def test_user_defined_network_from_its_own_pool(second_engine: SecondEngine) -> None:
    """Two containers on a network of the second engine's own address pool reach each other."""
    client = second_engine.client()
    net = client.networks.create(f"berth-test-{secrets.token_hex(4)}", driver="bridge")
    web = None
    try:
        net.reload()
        subnet = ipaddress.IPv4Network(net.attrs["IPAM"]["Config"][0]["Subnet"])
        assert subnet.subnet_of(ipaddress.IPv4Network(second_engine.address_pool))
        serve = "mkdir -p /tmp/www && echo hello-on-b > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"
        web = client.containers.run(BUSYBOX, ["sh", "-c", serve], network=net.name, detach=True, init=True)
        web.reload()
        address = web.attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]
        assert ipaddress.IPv4Address(address) in subnet
        # The client retries inside its container until httpd listens: a condition with a deadline, not a sleep.
        # (nc, not wget: the static busybox's wget crashes.)
        get = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 {address} 8080"
        fetch = (
            f'for i in $(seq 100); do out=$({get}) && [ -n "$out" ] && echo "$out" && exit 0; sleep 0.1; done; exit 1'
        )
        out = client.containers.run(BUSYBOX, ["sh", "-c", fetch], network=net.name, remove=True, init=True)
        assert out.startswith(b"HTTP/1.") and out.rstrip().endswith(b"hello-on-b")
    finally:
        if web is not None:
            web.remove(force=True)
        net.remove()
        client.close()


def test_first_engine_keeps_working_next_to_it(second_engine: SecondEngine) -> None:
    _main_engine_bridge_works()


# -- the attack: a process on this machine that does not hold the client key tries to use the engine -----------
# Whoever reaches a Docker engine's API is root on its machine (a privileged container, the host's / mounted).
# The second engine listens on 127.0.0.1, where every process of every user can connect: only the client
# certificate, signed by the engine's CA, may let one in.


def _refused(engine: SecondEngine, client: docker.DockerClient) -> str:
    """Ping with `client`: it must fail, and the engine must log why it refused. Returns that log line.

    What the client sees of a refused TLS 1.3 handshake depends on timing (the server's alert, or only the
    connection closing), so the proof is the engine's own word, waited for in its log."""
    log = engine.root / "dockerd.log"
    start = log.stat().st_size
    try:
        with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is one
            client.ping()
    finally:
        client.close()
    found: list[str] = []

    def logged() -> bool:
        with log.open("rb") as f:
            f.seek(start)
            found[:] = [ln for ln in f.read().decode(errors="replace").splitlines() if "TLS handshake error" in ln]
        return bool(found)

    wait_for(logged, "the engine to log the refused handshake", timeout=10)
    return found[0]


def test_plain_http_is_refused(second_engine: SecondEngine) -> None:
    client = tls_client(f"http://{second_engine.host.removeprefix('tcp://')}", None, timeout=10)
    try:
        with pytest.raises(docker.errors.APIError) as caught:
            client.ping()
    finally:
        client.close()
    assert caught.value.status_code == 400  # "Client sent an HTTP request to an HTTPS server."


def test_tls_without_a_client_certificate_is_refused(second_engine: SecondEngine) -> None:
    tls = docker.tls.TLSConfig(ca_cert=str(second_engine.ca), verify=True)
    line = _refused(second_engine, tls_client(second_engine.base_url, tls, timeout=10))
    assert "client didn't provide a certificate" in line


def test_a_certificate_from_another_ca_is_refused(second_engine: SecondEngine, tmp_path: Path) -> None:
    """The attacker makes a CA and a clientAuth certificate of their own: the engine trusts only its CA."""
    make_certificates(tmp_path / "mine")
    mine = tmp_path / "mine" / "client"
    tls = docker.tls.TLSConfig(
        client_cert=(str(mine / "cert.pem"), str(mine / "key.pem")), ca_cert=str(second_engine.ca), verify=True
    )
    line = _refused(second_engine, tls_client(second_engine.base_url, tls, timeout=10))
    assert "certificate signed by unknown authority" in line


# -- and it goes without a trace ----------------------------------------------------------------------------------


def test_leaves_nothing_behind_and_docker0_works() -> None:
    """A second engine of its own (next to the session's), with a container and a network in it, then gone."""
    if os.geteuid() != 0:
        missing_part("a second dockerd needs root")
    with start_second_engine() as engine:
        client = engine.client()
        try:
            net = client.networks.create(f"berth-test-{secrets.token_hex(4)}", driver="bridge")
            client.containers.run(BUSYBOX, ["sleep", "300"], network=net.name, detach=True, init=True)
            net.reload()
            net_bridge = f"br-{net.id[:12]}"
            assert _link_exists(net_bridge)
        finally:
            client.close()
        _main_engine_bridge_works()
    with pytest.raises(ProcessLookupError):  # dockerd is gone (and was waited for: no zombie holds its pid)
        os.kill(engine.pid, 0)
    assert not _link_exists(engine.bridge)
    assert not _link_exists(net_bridge)
    assert not engine.root.exists()
    assert not engine.exec_root.exists()
    assert _mounts_under(engine.root, engine.exec_root) == []
    assert engine.address_pool not in _forward_chain()
    _main_engine_bridge_works()


def _forward_chain() -> str:
    return subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True, check=True).stdout


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (this machine's init may not reap an orphan at once)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_killed_run_leaves_no_dockerd_and_the_sweep_removes_the_rest() -> None:
    """A test process killed outright (pytest-timeout ends one with `os._exit`) runs no teardown: its dockerd dies
    with it, and the next session's sweep removes the bridge, the firewall rules and the folders."""
    if os.geteuid() != 0:
        missing_part("a second dockerd needs root")
    code = (
        "import sys\n"
        "from tests.engines.conftest import start_second_engine\n"
        "held = start_second_engine()\n"  # held: a context manager collected at once would tear down at once
        "e = held.__enter__()\n"
        "print(e.root, e.pid, e.bridge, e.address_pool, flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert holder.stdout is not None
        root_s, pid_s, bridge, pool = holder.stdout.readline().split()
    finally:
        holder.kill()
        holder.wait(30)
    root, pid = Path(root_s), int(pid_s)
    wait_for(lambda: _gone(pid), "the orphaned dockerd to die with its parent", timeout=30)
    assert _link_exists(bridge) and root.exists() and pool in _forward_chain()  # what the sweep is for
    sweep_leftovers(only=root)
    assert not _link_exists(bridge)
    assert not root.exists()
    assert pool not in _forward_chain()
    _main_engine_bridge_works()
