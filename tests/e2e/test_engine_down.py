"""The engine goes away under a running `berth serve` and comes back: Berth says so, then works again.

This stops and starts the machine's real dockerd (as scripts/ensure-docker starts it), which stops
every container on it, so it only runs where that is wanted: in CI (CI=true) or with
BERTH_TEST_RESTART_ENGINE=1, as root, with a dockerd that is not managed by systemd.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.errors import BerthError, EngineUnavailable
from tests.conftest import BUSYBOX, docker_cli, wait_for
from tests.e2e.conftest import ROOT, Server


def _dockerd_pid() -> int | None:
    out = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def _systemd_managed() -> bool:
    return (
        shutil.which("systemctl") is not None
        and subprocess.run(["systemctl", "is-active", "--quiet", "docker"], capture_output=True).returncode == 0
    )


@pytest.fixture
def restartable_engine() -> None:
    if not (os.environ.get("CI") == "true" or os.environ.get("BERTH_TEST_RESTART_ENGINE") == "1"):
        pytest.skip("restarts the machine's Docker engine: runs in CI, or with BERTH_TEST_RESTART_ENGINE=1")
    if os.getuid() != 0 or _dockerd_pid() is None or _systemd_managed() or os.environ.get("DOCKER_HOST"):
        pytest.skip("needs root and a dockerd started by scripts/ensure-docker (not systemd, no DOCKER_HOST)")


def _stop_engine() -> None:
    pid = _dockerd_pid()
    assert pid is not None
    os.kill(pid, 15)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, "dockerd did not stop"
        time.sleep(0.2)


def _ensure_engine() -> None:
    subprocess.run([str(ROOT / "scripts" / "ensure-docker")], check=True, timeout=120)


@pytest.mark.slow
def test_engine_stopped_and_started_under_a_running_berth(server: Server, restartable_engine: None) -> None:
    """Every fault while the engine is away is -32007 with a hint -- cold runs, runs that would have used a warm
    container, exec, logs, services -- promptly; the same berth serve works again once the engine is back, and
    a service that was running runs again (and counts against the agent's limit)."""
    alice = server.client("alice")
    assert alice.run("echo before", image=BUSYBOX)["stdout"] == "before\n"
    alice.run("true", image=BUSYBOX)  # now a warm container waits for the next run (the pool is on)
    svc = alice.start_service("db", image=BUSYBOX, command="sleep 3600")
    _stop_engine()
    try:
        calls = [
            lambda: alice.run("echo during", image=BUSYBOX),
            lambda: alice.run("echo during", image=BUSYBOX),
            lambda: alice.exec("db", "true"),
            lambda: alice.logs("db"),
            lambda: alice.list(),
            lambda: alice.start_service("web", image=BUSYBOX, command="sleep 1"),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(BerthError) as e:
                call()
            assert e.value.code == -32007, e.value  # never -32603 "internal error"
            assert e.value.hint and "docker" in e.value.hint.lower()
            assert time.monotonic() - started < 5, "the answer must come promptly"
        info = alice.info()
        assert info["engine"]["available"] is False and info["engine"]["hint"]
    finally:
        _ensure_engine()
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
    wait_for(lambda: alice.inspect(svc["id"])["status"] == "running", "the service to come back", timeout=30)
    try:
        wait_for(lambda: alice.info()["agent"]["usage"]["containers"] == 1, "the service to count again")
    except AssertionError:  # what Berth counted and said, for whoever reads the failure
        print("usage:", alice.info()["agent"]["usage"], "containers:", alice.list())
        print((server.data_dir / "serve.log").read_text()[-6000:])
        raise
    assert "Traceback" not in (server.data_dir / "serve.log").read_text()


@pytest.mark.slow
def test_an_engine_restart_during_a_load_of_100_runs(server: Server, restartable_engine: None) -> None:
    """Chaos: the engine is restarted (SIGTERM, then scripts/ensure-docker at once, while the old dockerd is still
    stopping) in the middle of a load at concurrency 4 (at least 100 runs). Every failure is -32007; runs
    succeed again within 5 s of the engine answering; no container is left behind."""
    alice = server.client("alice")
    outcomes: list[tuple[float, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(w: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = alice.run(f"echo {w}-{i}", image=BUSYBOX, timeout_s=60)
                outcome = "ok" if r["stdout"] == f"{w}-{i}\n" else f"wrong output {r!r}"
            except BerthError as e:
                outcome = f"error {e.code}"
                time.sleep(0.05)  # as a client would: not a hot loop while the engine is away
            with lock:
                outcomes.append((time.monotonic(), outcome))

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(worker, w) for w in range(4)]
        wait_for(lambda: len(outcomes) >= 15, "the load to get going", timeout=120)
        pid = _dockerd_pid()
        assert pid is not None
        os.kill(pid, 15)
        _ensure_engine()  # right away: it must wait for the dying dockerd and start a new one
        back = time.monotonic()
        wait_for(
            lambda: len([o for t, o in outcomes if t > back + 5]) >= 10 and len(outcomes) >= 100,
            "runs after the engine came back",
            timeout=300,
        )
        stop.set()
        for f in futures:
            f.result(timeout=120)
    kinds = {o for _, o in outcomes}
    assert kinds <= {"ok", "error -32007"}, "\n".join(sorted(kinds))
    assert "error -32007" in kinds  # the outage was seen
    later = [o for t, o in outcomes if t > back + 5]
    assert all(o == "ok" for o in later), later
    mine = f"label=berth.instance={server.instance}"
    wait_for(
        lambda: docker_cli("ps", "-aq", "--filter", mine, "--filter", "label=berth.kind=temporary").stdout == "",
        "no temporary container left",
        timeout=20,
    )
