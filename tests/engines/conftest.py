"""A second Docker engine on this machine, standing in for a remote one (issue #18, "Testing on one machine").

`start_second_engine()` makes, in a private folder: a CA, a server certificate for `IP:127.0.0.1` and a client
certificate (`clientAuth`), all with `openssl`; a bridge interface of its own; and a dockerd that listens only on
`tcp://127.0.0.1:PORT` with `--tlsverify`, with its own data-root, exec-root and pidfile, `--iptables=false` and an
address pool apart from the first engine's. It copies `berth/busybox:latest` in (`docker save | docker load`).
Leaving the context manager removes everything it made: the engine's containers and networks, the dockerd (and
the containerd it started), the bridge interfaces, two firewall rules, the mounts under its folders, the folders.
A test process killed outright takes its dockerd with it (PR_SET_PDEATHSIG); the next session sweeps the rest.

Never `--bridge none`: a dockerd started so deletes the host's `docker0`, and the first engine's bridge networking
stays broken until that engine restarts. The bridge and the address pool are chosen where nothing else on the
machine has addresses, so two of these engines (or a leftover of a killed run) never share a subnet.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import ipaddress
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.tls
import pytest
import requests.exceptions

from tests.conftest import BUSYBOX, missing_part

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# Slot k: the bridge gets 172.31.(250+k).1/24, the engine's own networks come from 10.(213+k).0.0/16 in /24s.
# Slot 0 is the recipe of issue #18 word for word; the others are for a second engine started at the same time.
SLOTS = 4
# Ports below the kernel's ephemeral range: no outgoing connection of another test is ever given one, so the port
# found free here is still free when dockerd binds it a moment later.
PORT_RANGE = (20000, 32000)
API_VERSION = "1.41"
PREFIX = "berthb-"  # of the bridge interface, the exec-root and the folder of each second engine
ROOT_DIR = "/var/tmp"
LOCK_FILE = "/var/tmp/berth-second-engine.lock"
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class SecondEngine:
    """Where the second engine answers and the files a client needs to be let in."""

    host: str  # tcp://127.0.0.1:PORT (the form DOCKER_HOST and `berth engines add --host` take)
    ca: Path
    cert: Path  # the client's certificate (extendedKeyUsage = clientAuth) ...
    key: Path  # ... and its key
    cert_dir: Path  # ca.pem, cert.pem and key.pem together: DOCKER_CERT_PATH for the docker CLI
    bridge: str
    bridge_address: str  # the bridge's own address, e.g. 172.31.250.1/24
    address_pool: str  # e.g. 10.213.0.0/16
    pid: int
    root: Path  # certificates, data-root, pidfile, log
    exec_root: Path

    @property
    def base_url(self) -> str:
        return self.host.replace("tcp://", "https://", 1)

    def tls(self) -> docker.tls.TLSConfig:
        return docker.tls.TLSConfig(client_cert=(str(self.cert), str(self.key)), ca_cert=str(self.ca), verify=True)

    def client(self, timeout: int = 30) -> docker.DockerClient:
        """A docker SDK client that verifies the engine's certificate and shows its own."""
        return tls_client(self.base_url, self.tls(), timeout)

    def cli_env(self) -> dict[str, str]:
        """The environment that points the docker CLI at this engine."""
        return {
            **os.environ,
            "DOCKER_HOST": self.host,
            "DOCKER_TLS_VERIFY": "1",
            "DOCKER_CERT_PATH": str(self.cert_dir),
        }


def tls_client(base_url: str, tls: docker.tls.TLSConfig | None, timeout: int = 30) -> docker.DockerClient:
    """A docker SDK client for an engine over TCP that trusts exactly `tls`, whatever the environment says.

    requests puts `$REQUESTS_CA_BUNDLE` (or `$CURL_CA_BUNDLE`) before the CA the SDK was given: with either set,
    as on this machine, the engine's own CA is ignored and the handshake fails "unable to get local issuer
    certificate". `trust_env = False` stops that, so the SDK must not ask for the engine's version before it is
    set: the API version is given (the one of the dockerd these tests start; Debian 12's 20.10 speaks 1.41)."""
    client = docker.DockerClient(base_url=base_url, tls=tls or False, timeout=timeout, version=API_VERSION)
    client.api.trust_env = False
    return client


def _run(*argv: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60, **kw)


NEWKEY = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"  # P-256: made at once, unlike RSA


def _openssl(command: str, **paths: Path) -> None:
    """`openssl COMMAND`, its {name} fields filled in with `paths` (quoted)."""
    _run("openssl", *shlex.split(command.format(**{k: shlex.quote(str(v)) for k, v in paths.items()})))


def make_certificates(d: Path) -> None:
    """A CA, a server certificate for IP:127.0.0.1 (serverAuth) and a client certificate (clientAuth).

    Files: ca.pem, ca-key.pem, server-cert.pem, server-key.pem, and client/{ca,cert,key}.pem (DOCKER_CERT_PATH)."""
    client = d / "client"
    client.mkdir(parents=True)
    ca, ca_key = d / "ca.pem", d / "ca-key.pem"
    _openssl(f"req -x509 {NEWKEY} -keyout {{key}} -out {{ca}} -days 2 -subj '/CN=berth test CA'", key=ca_key, ca=ca)
    for subject, key, cert, ext in (
        ("127.0.0.1", d / "server-key.pem", d / "server-cert.pem", "subjectAltName=IP:127.0.0.1\n"
         "extendedKeyUsage=serverAuth"),
        ("berth test client", client / "key.pem", client / "cert.pem", "extendedKeyUsage=clientAuth"),
    ):  # fmt: skip
        csr, extfile = d / "request.csr", d / "extensions.cnf"
        extfile.write_text(ext + "\n")
        _openssl(f"req {NEWKEY} -keyout {{key}} -out {{csr}} -subj '/CN={subject}'", key=key, csr=csr)
        _openssl(
            "x509 -req -in {csr} -CA {ca} -CAkey {ca_key} -CAcreateserial -out {cert} -days 2 -extfile {ext}",
            csr=csr, ca=ca, ca_key=ca_key, cert=cert, ext=extfile,
        )  # fmt: skip
        csr.unlink()
        extfile.unlink()
    shutil.copy(ca, client / "ca.pem")
    for key in (ca_key, d / "server-key.pem", client / "key.pem"):
        key.chmod(0o600)


def _networks_in_use() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the host has an address or a route in (the first engine's bridges among them)."""
    nets: list[ipaddress.IPv4Network] = []
    for entry in json.loads(_run("ip", "-j", "-4", "addr", "show").stdout):
        for a in entry.get("addr_info", []):
            nets.append(ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}").network)
    for route in json.loads(_run("ip", "-j", "-4", "route", "show", "table", "all").stdout):
        dst = route.get("dst", "")
        if dst and dst != "default" and "/" in dst:
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv4Network(dst, strict=False))
    return nets


@dataclass(frozen=True)
class Slot:
    bridge_address: str  # 172.31.(250+k).1/24
    pool: str  # 10.(213+k).0.0/16

    @property
    def networks(self) -> list[str]:
        return [str(ipaddress.IPv4Interface(self.bridge_address).network), self.pool]


def _claim_slot(bridge: str, record: Path) -> Slot:
    """Make the bridge interface with the first slot nothing on the machine uses (under a lock, so two of these
    fixtures starting at once never take the same one), and note the slot in `record` for `sweep_leftovers`."""
    with open(LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        used = _networks_in_use()
        for k in range(SLOTS):
            slot = Slot(f"172.31.{250 + k}.1/24", f"10.{213 + k}.0.0/16")
            wanted = [ipaddress.IPv4Network(n) for n in slot.networks]
            if not any(n.overlaps(w) for n in used for w in wanted):
                break
        else:
            raise RuntimeError(f"no free address slot for a second engine: all {SLOTS} are in use")
        record.write_text(json.dumps({"bridge": bridge, "bridge_address": slot.bridge_address, "pool": slot.pool}))
        _run("ip", "link", "add", bridge, "type", "bridge")
        _run("ip", "addr", "add", slot.bridge_address, "dev", bridge)
        _run("ip", "link", "set", bridge, "up")
    return slot


def _forward_rules(slot: Slot) -> list[list[str]]:
    """The first engine's dockerd sets the FORWARD policy to DROP, and with `br_netfilter` loaded
    (`net.bridge.bridge-nf-call-iptables = 1`) even frames between two containers on one bridge go through that
    chain: the containers of an engine started with `--iptables=false` cannot reach each other. These rules let
    through frames bridged within the second engine's own networks, nothing routed between them and nothing else."""
    return [
        ["FORWARD", "-s", n, "-d", n, "-m", "physdev", "--physdev-is-bridged", "-j", "ACCEPT"] for n in slot.networks
    ]


def _allow_bridged(slot: Slot) -> list[list[str]]:
    if shutil.which("iptables") is None:
        return []
    rules = _forward_rules(slot)
    for rule in rules:
        _run("iptables", "-I", *rule)
    return rules


def _free_port() -> int:
    for _ in range(200):
        port = PORT_RANGE[0] + secrets.randbelow(PORT_RANGE[1] - PORT_RANGE[0])
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORT_RANGE}")


def _wait_until_it_answers(proc: subprocess.Popen[bytes], engine: SecondEngine, log: Path) -> None:
    """Until the engine answers a ping through TLS; fail at once, with its log, if dockerd exits instead."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the second dockerd exited ({proc.returncode}); its log:\n{log.read_text()[-3000:]}")
        try:
            client = engine.client(timeout=5)
            try:
                if client.ping():
                    return
            finally:
                client.close()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            pass  # not listening yet
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the second dockerd did not answer in {START_TIMEOUT_S} s; its log:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.1)


def _mounts_under(*roots: Path) -> list[str]:
    """Mount points under `roots`, deepest first (dockerd leaves some behind when it dies)."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def _empty_engine(engine: SecondEngine) -> None:
    """Remove the engine's containers and its own networks (their bridge interfaces would outlive the dockerd)."""
    client = engine.client(timeout=30)
    try:
        for c in client.containers.list(all=True):
            c.remove(force=True)
        for n in client.networks.list():
            if n.name not in ("bridge", "host", "none"):
                n.remove()
    finally:
        client.close()


def _links_in(networks: list[str]) -> list[str]:
    """Interfaces with an address in one of `networks`: the bridge and every network bridge of one engine."""
    nets = [ipaddress.IPv4Network(n) for n in networks]
    links = []
    for entry in json.loads(_run("ip", "-j", "-4", "addr", "show").stdout):
        for a in entry.get("addr_info", []):
            if any(ipaddress.IPv4Address(a["local"]) in n for n in nets):
                links.append(entry["ifname"])
    return links


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()  # dockerd stops its containers and the containerd it started, then exits
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT_S)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, however it dies (pytest-timeout's `os._exit`
    too), so a killed run never leaves a dockerd behind."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def start_second_engine() -> Iterator[SecondEngine]:
    """Start a second engine (see the module's docstring); everything it made is gone when the block ends."""
    name = f"{PREFIX}{secrets.token_hex(3)}"  # an interface name: at most 15 characters
    root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=ROOT_DIR))
    exec_root = Path("/var/run") / name
    proc: subprocess.Popen[bytes] | None = None
    engine: SecondEngine | None = None
    slot: Slot | None = None
    rules: list[list[str]] = []
    try:
        certs = root / "certs"
        make_certificates(certs)
        slot = _claim_slot(name, root / "slot.json")
        rules = _allow_bridged(slot)
        port = _free_port()
        log = root / "dockerd.log"
        argv = [
            "dockerd",
            "--data-root", str(root / "data"),
            "--exec-root", str(exec_root),
            "--pidfile", str(root / "dockerd.pid"),
            "-H", f"tcp://127.0.0.1:{port}",
            "--tlsverify",
            "--tlscacert", str(certs / "ca.pem"),
            "--tlscert", str(certs / "server-cert.pem"),
            "--tlskey", str(certs / "server-key.pem"),
            "--bridge", name,  # never "none" (see the module's docstring)
            "--iptables=false",
            "--default-address-pool", f"base={slot.pool},size=24",
            "--storage-driver=overlay2",
        ]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
            )
        engine = SecondEngine(
            host=f"tcp://127.0.0.1:{port}",
            ca=certs / "ca.pem",
            cert=certs / "client" / "cert.pem",
            key=certs / "client" / "key.pem",
            cert_dir=certs / "client",
            bridge=name,
            bridge_address=slot.bridge_address,
            address_pool=slot.pool,
            pid=proc.pid,
            root=root,
            exec_root=exec_root,
        )
        _wait_until_it_answers(proc, engine, log)
        _copy_image(BUSYBOX, engine)
        yield engine
    except BaseException:
        for e in _tear_down(proc, engine, slot, rules, root, exec_root):  # the failure that brought us here counts
            logger.warning("tearing down the second engine after a failure: %s", e)
        raise
    errors = _tear_down(proc, engine, slot, rules, root, exec_root)
    if errors:
        raise errors[0]


def _copy_image(image: str, engine: SecondEngine) -> None:
    """`docker save IMAGE | docker load` into the engine, as for an engine with no registry."""
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    try:
        load = subprocess.run(
            ["docker", "load"], stdin=save.stdout, capture_output=True, env=engine.cli_env(), timeout=60
        )
    finally:
        assert save.stdout is not None
        save.stdout.close()
        save.wait(60)
    if save.returncode or load.returncode:
        raise RuntimeError(f"docker save | docker load failed: {load.stderr.decode(errors='replace')}")


def _tear_down(
    proc: subprocess.Popen[bytes] | None,
    engine: SecondEngine | None,
    slot: Slot | None,
    rules: list[list[str]],
    root: Path,
    exec_root: Path,
) -> list[BaseException]:
    """Every step is tried whatever an earlier one did; returns what failed."""
    errors: list[BaseException] = []

    def step(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:
            errors.append(e)

    if proc is not None and engine is not None and proc.poll() is None:
        step(_empty_engine, engine)
    if proc is not None:
        step(_stop, proc)
    step(_remove_traces, root.name.rsplit("-", 1)[0], slot, rules, root, exec_root)
    return errors


def _remove_traces(name: str, slot: Slot | None, rules: list[list[str]], root: Path, exec_root: Path) -> None:
    """What a stopped (or killed) second engine leaves: interfaces, firewall rules, mounts, folders."""
    links = _links_in(slot.networks) if slot is not None else []
    for link in {name, *links}:
        if _link_exists(link):
            _run("ip", "link", "delete", link)
    for rule in rules:
        subprocess.run(["iptables", "-D", *rule], capture_output=True)
    for point in _mounts_under(root, exec_root):
        _run("umount", "-l", point)
    shutil.rmtree(exec_root, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)


def sweep_leftovers(only: Path | None = None) -> None:
    """Remove what a killed test run left (its dockerd died with it): folders of ours older than a minute that no
    running process names. A fixture starting right now is younger than that, and its dockerd names its folder.
    `only`: that folder whatever its age (a test that killed a run itself)."""
    running = " ".join(_cmdlines())
    for root in [only] if only is not None else Path(ROOT_DIR).glob(f"{PREFIX}*-*"):
        if (only is None and time.time() - root.stat().st_mtime < 60) or f"{root}/" in running:
            continue
        name = root.name.rsplit("-", 1)[0]
        slot = None
        with contextlib.suppress(OSError, ValueError, KeyError):
            data = json.loads((root / "slot.json").read_text())
            slot = Slot(data["bridge_address"], data["pool"])
        rules = _forward_rules(slot) if slot is not None and shutil.which("iptables") else []
        logger.warning("removing the leftovers of a second engine of a killed test run: %s", root)
        _remove_traces(name, slot, rules, root, Path("/var/run") / name)


def _cmdlines() -> Iterator[str]:
    for p in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            yield p.read_bytes().replace(b"\0", b" ").decode(errors="replace")


@pytest.fixture(scope="session")
def second_engine() -> Iterator[SecondEngine]:
    """One second engine for the whole session (it takes a few seconds to start): see `start_second_engine`."""
    if os.geteuid() != 0:
        missing_part("a second dockerd needs root")
    for tool in ("dockerd", "docker", "openssl", "ip"):
        if shutil.which(tool) is None:
            missing_part(f"{tool} is missing")
    sweep_leftovers()
    with start_second_engine() as engine:
        yield engine


# -- what Berth's multi-engine tests share ---------------------------------------------------------------


def containers_on(engine: SecondEngine, instance: str) -> list[str]:
    """The names of a Berth instance's containers on the second engine."""
    client = engine.client()
    try:
        return [c.name for c in client.containers.list(all=True, filters={"label": f"berth.instance={instance}"})]
    finally:
        client.close()


def local_containers(instance: str) -> list[str]:
    """The names of a Berth instance's containers on the first (local) engine."""
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=berth.instance={instance}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def remove_instance(engine: SecondEngine, instance: str) -> None:
    """Everything a Berth instance made on the second engine (containers, workspace volumes, networks) and on
    the local one: what a test's Berth leaves when it stops."""
    from tests.conftest import remove_instance_containers

    client = engine.client()
    try:
        for c in client.containers.list(all=True, filters={"label": f"berth.instance={instance}"}):
            c.remove(force=True)
        for v in client.volumes.list(filters={"label": f"berth.sync={instance}"}):
            v.remove(force=True)
        for n in client.networks.list(filters={"label": f"berth.instance={instance}"}):
            n.remove()
    finally:
        client.close()
    remove_instance_containers(instance)
