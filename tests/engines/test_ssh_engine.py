"""An engine reached over `ssh://` (issue #18): `berth engines add s --host ssh://ALIAS` works for real.

Berth reaches an ssh:// engine with the docker SDK's `use_ssh_client=True`: the system `ssh` client runs
`docker system dial-stdio` on the far side, with the person's keys, known_hosts and ~/.ssh/config. Here the far
side is a private `sshd` on 127.0.0.1 (a free port, its own host key, key-only login for root with a fresh client
key, all in a temp folder). Its authorized_keys line sets DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH
(`PermitUserEnvironment yes`), so `docker system dial-stdio` over there reaches the SECOND engine of
tests/engines/conftest.py, not the local one (Berth would refuse that as the local engine reached another way).

**This test edits /root/.ssh/config**: OpenSSH reads the config of the real user (from the password database;
$HOME is not used), and the SDK runs plain `ssh -- ALIAS ...`, so the port, key and known_hosts can reach it only
there. It appends one uniquely named block, `Host berth-ssh-test-<random>`, between marker comments, and removes
exactly that block when the test ends, however it ends; if the file (or ~/.ssh) did not exist before, it is
deleted (created 0600, the folder 0700). Nothing else in the file is touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import missing_part
from tests.e2e.conftest import Server, berth
from tests.engines.conftest import (
    SecondEngine,
    _die_with_parent,
    _free_port,
    containers_on,
    local_containers,
    remove_instance,
)

pytestmark = pytest.mark.engine

SSHD = "/usr/sbin/sshd"  # not on a non-root PATH on Debian; sshd must be started by its absolute path anyway
SSH_DIR = Path("/root/.ssh")
SSH_CONFIG = SSH_DIR / "config"
CONFIG_LOCK = "/var/tmp/berth-ssh-config.lock"  # two of these tests editing the config at once take turns
START_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class SshHost:
    alias: str  # the Host name in /root/.ssh/config: ssh://ALIAS
    port: int
    root: Path


def _sshd_path() -> str:
    found = shutil.which("sshd") or (SSHD if os.access(SSHD, os.X_OK) else None)
    if found is None:
        missing_part("sshd (openssh-server) is missing")
    for tool in ("ssh", "ssh-keygen", "docker"):
        if shutil.which(tool) is None:
            missing_part(f"{tool} is missing")
    return os.path.abspath(found)


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def _sshd_config(root: Path, port: int) -> Path:
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {root / 'host_key'}\n"
        f"PidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "PermitUserEnvironment yes\n"
        # The temp folder sits in world-writable /tmp, which strict modes refuse for authorized_keys.
        "StrictModes no\n"
        "AllowTcpForwarding no\n"
        "X11Forwarding no\n"
        "LogLevel VERBOSE\n"
    )
    return config


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited ({proc.returncode}): {log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"sshd did not listen in {START_TIMEOUT_S} s: {log.read_text()[-3000:]}")
        time.sleep(0.05)


@contextlib.contextmanager
def _config_block(alias: str, body: str) -> Iterator[None]:
    """Append `Host ALIAS` + `body` to /root/.ssh/config between markers; remove exactly that block afterwards."""
    begin, end = f"# {alias} begin (a Berth test; removed when it ends)\n", f"# {alias} end\n"
    block = f"{begin}Host {alias}\n{body}{end}"
    with open(CONFIG_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        made_dir = not SSH_DIR.exists()
        made_file = not SSH_CONFIG.exists()
        SSH_DIR.mkdir(mode=0o700, exist_ok=True)
        if made_file:
            fd = os.open(SSH_CONFIG, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        text = SSH_CONFIG.read_text()
        with SSH_CONFIG.open("a") as f:
            f.write(("\n" if text and not text.endswith("\n") else "") + block)
    try:
        yield
    finally:
        with open(CONFIG_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if SSH_CONFIG.exists():
                text = SSH_CONFIG.read_text()
                start = text.find(begin)
                stop = text.find(end, start) if start >= 0 else -1
                if start >= 0 and stop >= 0:
                    text = text[:start] + text[stop + len(end) :]
                if made_file and not text.strip():
                    SSH_CONFIG.unlink()
                else:
                    SSH_CONFIG.write_text(text)
            if made_dir:
                with contextlib.suppress(OSError):
                    SSH_DIR.rmdir()  # only if empty: ssh may have added something of its own


def _ssh(alias: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "--", alias, command], capture_output=True, text=True, timeout=30
    )


@contextlib.contextmanager
def start_sshd(engine: SecondEngine) -> Iterator[SshHost]:
    sshd = _sshd_path()
    if os.geteuid() != 0:
        missing_part("the ssh engine test logs in as root and edits /root/.ssh/config: it needs root")
    alias = f"berth-ssh-test-{secrets.token_hex(4)}"
    root = Path(tempfile.mkdtemp(prefix=f"{alias}-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        root.chmod(0o700)
        host_pub = _keygen(root / "host_key")
        client_pub = _keygen(root / "client_key")
        env = (
            f'environment="DOCKER_HOST={engine.host}",environment="DOCKER_TLS_VERIFY=1",'
            f'environment="DOCKER_CERT_PATH={engine.cert_dir}"'
        )
        (root / "authorized_keys").write_text(f"{env} {client_pub}\n")
        port = _free_port()
        (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
        config = _sshd_config(root, port)
        log = root / "sshd.log"
        proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
            preexec_fn=_die_with_parent,
        )
        _wait_for_port(proc, port, log)
        body = (
            "    HostName 127.0.0.1\n"
            f"    Port {port}\n"
            "    User root\n"
            f"    IdentityFile {root / 'client_key'}\n"
            "    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {root / 'known_hosts'}\n"
            "    StrictHostKeyChecking yes\n"
            "    BatchMode yes\n"
        )
        with _config_block(alias, body):
            # An earlier `Host *` in the person's config would win over this block (first value wins): say so.
            resolved = subprocess.run(["ssh", "-G", alias], capture_output=True, text=True, check=True).stdout
            assert f"\nport {port}\n" in f"\n{resolved}", f"/root/.ssh/config gives {alias} another port:\n{resolved}"
            yield SshHost(alias=alias, port=port, root=root)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def ssh_host(second_engine: SecondEngine) -> Iterator[SshHost]:
    with start_sshd(second_engine) as host:
        # The far side's docker CLI honours the environment from authorized_keys: it talks to the second engine
        # (its data-root is the second engine's), over TLS with that engine's certificates.
        r = _ssh(host.alias, "docker info --format '{{.DockerRootDir}}'")
        assert r.returncode == 0, f"ssh {host.alias} docker info: {r.stderr}\n{(host.root / 'sshd.log').read_text()}"
        assert r.stdout.strip() == str(second_engine.root / "data"), r.stdout
        yield host


@pytest.fixture
def ssh_server(tmp_path: Path, second_engine: SecondEngine, ssh_host: SshHost) -> Iterator[Server]:
    s = Server(tmp_path / "data")
    s.start()
    try:
        yield s
    finally:
        s.stop()
        remove_instance(second_engine, s.instance)


def test_an_engine_over_ssh_runs_an_agents_containers_there(
    ssh_server: Server, ssh_host: SshHost, second_engine: SecondEngine
) -> None:
    s = ssh_server
    added = berth(
        s.data_dir, "engines", "add", "s", "--host", f"ssh://{ssh_host.alias}", "--files", "sync", check=False
    )
    assert added.returncode == 0 and "engine s: Docker" in added.stdout, added.stdout + added.stderr
    s.add_agent("carol", "--engine", "s")
    carol = s.client("carol")

    r = carol.call("containers.run", command=["echo", "hi"])
    assert r["exit_code"] == 0 and r["stdout"] == "hi\n", r
    # Standard input reaches the run and ends (end of file through ssh's pipe), so `wc` finishes.
    r = carol.call("containers.run", command=["wc", "-c"], stdin="abc", timeout_s=60)
    assert r["exit_code"] == 0 and r["stdout"].strip() == "3" and not r["timed_out"], r

    # Its containers run on the second engine (reached through sshd), not here.
    carol.call("services.start", name="nap", image="berth/busybox:latest", command=["sleep", "300"])
    there, here = containers_on(second_engine, s.instance), local_containers(s.instance)
    assert any(n.endswith(".carol.nap") for n in there), there
    assert not any(".carol." in n for n in here), here

    engines = {e["name"]: e for e in s.owner().call("engines.list")}
    assert engines["s"]["available"], engines["s"]
    assert engines["s"]["endpoint"] == f"ssh://{ssh_host.alias}", engines["s"]
    assert engines["s"]["containers"] >= 1 and engines["s"]["agents"] == ["carol"], engines["s"]
