"""Admission control and CPU quota over the real RPC port and engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.errors import LimitReached
from tests.conftest import BUSYBOX, docker_cli, wait_for
from tests.e2e.conftest import Server, berth


class AliveWatcher:
    """Samples how many of an agent's containers are running, every 50 ms, in a thread."""

    def __init__(self, instance: str, agent: str) -> None:
        self.filters = ["--filter", f"label=berth.instance={instance}", "--filter", f"label=berth.agent={agent}"]
        self.max_seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            n = len(docker_cli("ps", "-q", *self.filters, check=False).stdout.split())
            self.max_seen = max(self.max_seen, n)
            time.sleep(0.05)

    def __enter__(self) -> AliveWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def burst(n: int, fn: Callable[[int], object]) -> list[object]:
    """Run fn(0..n-1) all at once; return each result or the exception it raised."""
    barrier = threading.Barrier(n)

    def one(i: int) -> object:
        barrier.wait()
        try:
            return fn(i)
        except Exception as e:
            return e

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_reject_policy_under_50_concurrent_requests(server: Server) -> None:
    berth(server.data_dir, "agents", "set", "alice", "--max-containers", "3", "--at-limit", "reject")
    c = server.client("alice")
    with AliveWatcher(server.instance, "alice") as w:
        results = burst(50, lambda i: c.run("sleep 1; echo ok", image=BUSYBOX))
    ok = [r for r in results if isinstance(r, dict)]
    rejected = [r for r in results if isinstance(r, LimitReached)]
    assert len(ok) + len(rejected) == 50, [r for r in results if not isinstance(r, dict | LimitReached)]
    assert len(ok) >= 3 and rejected, (len(ok), len(rejected))
    assert all(r["stdout"] == "ok\n" for r in ok)
    assert all(e.code == -32003 for e in rejected)
    assert w.max_seen <= 3, w.max_seen
    _assert_nothing_left(server)


def test_queue_policy_under_50_concurrent_requests(server: Server) -> None:
    berth(
        server.data_dir,
        "agents",
        "set",
        "alice",
        "--max-containers",
        "3",
        "--at-limit",
        "queue",
        "--queue-timeout",
        "300",
    )
    c = server.client("alice")
    with AliveWatcher(server.instance, "alice") as w:
        results = burst(50, lambda i: c.run(f"sleep 0.2; echo {i}", image=BUSYBOX))
    assert [r["stdout"] for r in results] == [f"{i}\n" for i in range(50)]  # type: ignore[index]
    assert w.max_seen <= 3, w.max_seen
    assert server.client("alice").info()["agent"]["usage"]["containers"] == 0
    _assert_nothing_left(server)


def test_queued_requests_time_out_with_limit_reached(server: Server) -> None:
    berth(server.data_dir, "agents", "set", "alice", "--max-containers", "1", "--queue-timeout", "1")
    c = server.client("alice")
    c.start_service("hog", image=BUSYBOX, command="sleep 300")  # holds the only slot
    started = time.monotonic()
    results = burst(5, lambda i: c.run("true", image=BUSYBOX))
    assert all(isinstance(r, LimitReached) and "waited" in str(r) for r in results), results
    assert time.monotonic() - started < 15
    # Stopping the service frees its slot.
    c.stop("hog", timeout_s=0)
    assert c.run("echo free", image=BUSYBOX)["stdout"] == "free\n"


def test_a_queued_request_whose_client_goes_away_leaves_the_queue(server: Server) -> None:
    """The client hangs up while queued: its place must not block the next caller."""
    import socket

    berth(server.data_dir, "agents", "set", "alice", "--max-containers", "1", "--queue-timeout", "30")
    c = server.client("alice")
    c.start_service("hog", image=BUSYBOX, command="sleep 300")
    host, port = server.url.removeprefix("http://").split(":")
    import json

    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "containers.run",
            "params": {"command": "echo ghost > /workspace/ghost.txt", "image": BUSYBOX},
        }
    ).encode()
    s = socket.create_connection((host, int(port)))
    s.sendall(
        f"POST /rpc HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {server.tokens['alice']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    wait_for(lambda: c.info()["agent"]["usage"]["queued"] == 1, "the request to be queued")
    s.close()
    wait_for(lambda: c.info()["agent"]["usage"]["queued"] == 0, "the hung-up request to leave the queue")
    c.stop("hog", timeout_s=0)
    assert c.run("echo next", image=BUSYBOX)["stdout"] == "next\n"
    assert not (server.data_dir / "workspaces" / "alice" / "ghost.txt").exists()


def test_services_count_and_stopped_ones_do_not(server: Server) -> None:
    berth(server.data_dir, "agents", "set", "alice", "--max-containers", "2", "--at-limit", "reject")
    c = server.client("alice")
    c.start_service("a", image=BUSYBOX, command="sleep 300")
    c.start_service("b", image=BUSYBOX, command="sleep 300")
    with pytest.raises(LimitReached):
        c.start_service("c", image=BUSYBOX, command="sleep 300")
    with pytest.raises(LimitReached):
        c.run("true", image=BUSYBOX)
    c.stop("a", timeout_s=0)
    c.start_service("c", image=BUSYBOX, command="sleep 300")
    with pytest.raises(LimitReached):
        c.restart("a", timeout_s=0)  # a restart is admitted like a new container
    # A service stopped outside Berth (docker stop) frees its slot too (the engine's event stream tells Berth).
    docker_cli("stop", "-t", "0", c.inspect("c")["id"])
    wait_for(lambda: c.inspect("c")["status"] != "running", "the service to stop")
    deadline = time.monotonic() + 10
    while True:
        try:
            c.restart("a", timeout_s=0)
            break
        except LimitReached:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def _cpu_seconds(group: str) -> float:
    return int(Path(f"/sys/fs/cgroup/cpuacct/{group}/cpuacct.usage").read_text()) / 1e9


def test_agent_cpu_quota_holds_for_all_its_containers(server: Server) -> None:
    berth(server.data_dir, "agents", "set", "alice", "--cpus", "0.5")
    c = server.client("alice")
    if c.info().get("cpu_quota", {}).get("mechanism") != "parent":
        pytest.skip("the engine here does not allow a shared CPU group")
    c.start_service("busy1", image=BUSYBOX, command="while :; do :; done")
    c.start_service("busy2", image=BUSYBOX, command="while :; do :; done")
    group = c.inspect("busy1")["limits"]["cpu_group"].strip("/")
    last = _cpu_seconds(group)
    wait_for(lambda: _cpu_seconds(group) - last > 0.2, "the busy containers to use the CPU")
    u0, t0 = _cpu_seconds(group), time.monotonic()
    time.sleep(3)
    used = (_cpu_seconds(group) - u0) / (time.monotonic() - t0)
    assert 0.3 < used <= 0.6, f"{used:.2f} CPU used by two busy containers under a 0.5 quota"


def _assert_nothing_left(server: Server) -> None:
    deadline = time.monotonic() + 10
    while True:
        left = docker_cli(
            "ps", "-aq", "--filter", f"label=berth.instance={server.instance}", "--filter", "label=berth.kind=temporary"
        ).stdout.split()
        if not left:
            return
        assert time.monotonic() < deadline, f"temporary containers left behind: {left}"
        time.sleep(0.2)
