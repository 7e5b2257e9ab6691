"""The engine goes away under a running `berth serve` and comes back: Berth says so, then works again.

This stops and starts the machine's real dockerd (as scripts/ensure-docker starts it), which stops
every container on it, so it only runs where that is wanted: in CI (CI=true) or with
BERTH_TEST_RESTART_ENGINE=1, as root, with a dockerd that is not managed by systemd.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from app.errors import EngineUnavailable
from tests.conftest import BUSYBOX
from tests.e2e.conftest import ROOT, Server


def _dockerd_pid() -> int | None:
    out = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def _systemd_managed() -> bool:
    return (
        shutil.which("systemctl") is not None
        and subprocess.run(["systemctl", "is-active", "--quiet", "docker"], capture_output=True).returncode == 0
    )


@pytest.mark.slow
def test_engine_stopped_and_started_under_a_running_berth(server: Server) -> None:
    if not (os.environ.get("CI") == "true" or os.environ.get("BERTH_TEST_RESTART_ENGINE") == "1"):
        pytest.skip("restarts the machine's Docker engine: runs in CI, or with BERTH_TEST_RESTART_ENGINE=1")
    if os.getuid() != 0 or _dockerd_pid() is None or _systemd_managed() or os.environ.get("DOCKER_HOST"):
        pytest.skip("needs root and a dockerd started by scripts/ensure-docker (not systemd, no DOCKER_HOST)")
    alice = server.client("alice")
    assert alice.run("echo before", image=BUSYBOX)["stdout"] == "before\n"
    pid = _dockerd_pid()
    assert pid is not None
    os.kill(pid, 15)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, "dockerd did not stop"
        time.sleep(0.2)
    try:
        started = time.monotonic()
        with pytest.raises(EngineUnavailable) as e:
            alice.run("echo during", image=BUSYBOX)
        assert time.monotonic() - started < 5, "the answer must come promptly"
        assert e.value.code == -32007 and e.value.hint and "docker" in e.value.hint.lower()
        info = alice.info()
        assert info["engine"]["available"] is False and info["engine"]["hint"]
    finally:
        subprocess.run([str(ROOT / "scripts" / "ensure-docker")], check=True, timeout=120)
    # The same berth serve notices the engine is back by itself.
    deadline = time.monotonic() + 30
    while True:
        try:
            assert alice.run("echo after", image=BUSYBOX)["stdout"] == "after\n"
            break
        except EngineUnavailable:
            assert time.monotonic() < deadline, "berth serve did not reconnect"
            time.sleep(0.5)
    assert alice.info()["engine"]["available"] is True
