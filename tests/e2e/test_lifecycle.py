"""`berth serve` stopping, crashing and starting again: services stay, temporaries go."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from tests.conftest import BUSYBOX, docker_cli
from tests.e2e.conftest import Server


def _containers(server: Server, kind: str) -> list[str]:
    return docker_cli(
        "ps", "-aq", "--filter", f"label=berth.instance={server.instance}", "--filter", f"label=berth.kind={kind}"
    ).stdout.split()


def _wait_for(predicate, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_service_survives_a_restart_of_berth(server: Server) -> None:
    svc = server.client("alice").start_service("db", image=BUSYBOX, command="sleep 300")
    assert server.stop() == 0  # SIGTERM: a clean stop
    assert docker_cli("inspect", "-f", "{{.State.Running}}", svc["id"]).stdout.strip() == "true"
    server.start()
    listed = server.client("alice").list()
    assert [(c["id"], c["status"]) for c in listed] == [(svc["id"], "running")]
    # It still counts against the agent's limit after the restart.
    assert server.client("alice").info()["agent"]["usage"]["containers"] == 1


def test_temporary_left_by_a_crash_is_removed_at_the_next_start(server: Server) -> None:
    results: list[object] = []
    t = threading.Thread(
        target=lambda: results.append(_swallow(lambda: server.client("alice").run("sleep 120", image=BUSYBOX))),
        daemon=True,
    )
    t.start()
    _wait_for(lambda: len(_containers(server, "temporary")) == 1)
    server.stop(signal.SIGKILL)  # a crash: nothing is cleaned up
    left = _containers(server, "temporary")
    assert len(left) == 1
    server.start()
    assert _containers(server, "temporary") == []
    t.join(5)


def test_sigterm_cancels_in_flight_runs_and_removes_their_containers(server: Server) -> None:
    t = threading.Thread(
        target=lambda: _swallow(lambda: server.client("alice").run("sleep 120", image=BUSYBOX)), daemon=True
    )
    t.start()
    _wait_for(lambda: len(_containers(server, "temporary")) == 1)
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 15
    assert _containers(server, "temporary") == []
    assert not (server.data_dir / "state" / "endpoint.json").exists()


def _swallow(fn):  # type: ignore[no-untyped-def]
    try:
        return fn()
    except Exception as e:
        return e


def _cgroups(server: Server) -> list[str]:
    return sorted(str(p) for p in Path("/sys/fs/cgroup").glob(f"*/berth-{server.instance}-*"))


def _networks(server: Server) -> list[str]:
    return docker_cli("network", "ls", "-q", "--filter", f"label=berth.instance={server.instance}").stdout.split()


def test_a_clean_stop_leaves_no_cgroup_folder_and_no_unused_network(server: Server) -> None:
    """Per-agent CPU groups and agent networks go at a clean exit once nothing uses them; a service keeps its own
    until it is removed, and both are tidied up at the next start."""
    alice = server.client("alice")
    assert alice.run("true", image=BUSYBOX, network="bridge")["exit_code"] == 0
    svc = alice.start_service("keep", image=BUSYBOX, command="sleep 300")
    if alice.info().get("cpu_quota", {}).get("mechanism") == "parent":
        assert _cgroups(server)  # the agent's CPU group exists while it runs
    assert server.stop() == 0
    assert len(_networks(server)) == 1  # the running service still uses alice's network
    docker_cli("rm", "-f", svc["id"])
    server.start()
    assert server.stop() == 0
    assert _cgroups(server) == []
    assert _networks(server) == []


def test_kill_9_during_a_load_leaves_no_temporary_container_after_the_restart(server: Server) -> None:
    """Chaos: berth serve is killed (-9) with runs in flight and queued; 5 s after it starts again no temporary
    container of it is left, and its service is untouched."""
    alice = server.client("alice")
    svc = alice.start_service("keep", image=BUSYBOX, command="sleep 300")
    threads = [
        threading.Thread(target=lambda: _swallow(lambda: alice.run("sleep 30", image=BUSYBOX)), daemon=True)
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    _wait_for(lambda: len(_containers(server, "temporary")) >= 3)  # the service holds 1 of the 4 slots
    server.stop(signal.SIGKILL)
    assert _containers(server, "temporary")  # nothing cleaned up by a killed process
    server.start()
    _wait_for(lambda: _containers(server, "temporary") == [], timeout=5)
    assert docker_cli("inspect", "-f", "{{.State.Running}}", svc["id"]).stdout.strip() == "true"
    assert [c["name"] for c in server.client("alice").list()] == ["keep"]


def test_a_late_create_of_a_killed_berth_is_removed_as_it_appears(server: Server) -> None:
    """A Berth killed in the middle of a create: the engine finishes it after the new Berth's reconcile. The
    running Berth sees a temporary container it did not make and removes it (nobody will ever wait for it)."""
    labels = {
        "berth.managed": "true",
        "berth.instance": server.instance,
        "berth.kind": "temporary",
        "berth.agent": "alice",
    }
    args = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
    # A create that nobody follows up (the Berth that asked is gone). Berth may remove it before `docker create`
    # even returns, so its answer is not checked: only that the container goes.
    docker_cli("create", "--name", f"late-{server.instance}", "--network", "none", *args, BUSYBOX, "sleep", "300",
               check=False)  # fmt: skip
    _wait_for(
        lambda: f"late-{server.instance}" not in docker_cli("ps", "-a", "--format", "{{.Names}}").stdout, timeout=10
    )
    # Its own runs are never taken for leftovers.
    assert server.client("alice").run("echo mine", image=BUSYBOX)["stdout"] == "mine\n"
