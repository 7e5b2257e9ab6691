"""The warm pool through `berth serve`: the run tests on every path (pooled with the runner, pooled by exec, cold),
single use, hiding, and crash cleanup."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.engine.runner import default_base
from tests.conftest import BUSYBOX, docker_cli, remove_instance_containers
from tests.e2e import test_api
from tests.e2e.conftest import Server

PATHS = {"runner": {"BERTH_POOL": "1"}, "exec": {"BERTH_POOL": "1", "BERTH_RUNNER": "0"}, "cold": {"BERTH_POOL": "0"}}


def _server(tmp_path: Path, env: dict[str, str]) -> Iterator[Server]:
    s = Server(tmp_path / "data", env=env)
    s.add_agent("alice")
    s.start()
    try:
        yield s
    finally:
        s.stop()
        if (s.data_dir / "instance-id").exists():
            remove_instance_containers(s.instance)


@pytest.fixture(params=list(PATHS))
def either(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    yield from _server(tmp_path, PATHS[request.param])


@pytest.fixture
def pooled(tmp_path: Path) -> Iterator[Server]:
    yield from _server(tmp_path, PATHS["runner"])


def of_kind(server: Server, kind: str, *, running: bool = False) -> list[str]:
    return docker_cli(
        "ps",
        "-q" if running else "-aq",
        "--no-trunc",
        "--filter",
        f"label=berth.instance={server.instance}",
        "--filter",
        f"label=berth.kind={kind}",
    ).stdout.split()


def wait_for(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_the_run_tests_pass_on_every_path(either: Server) -> None:
    test_api.test_history_keeps_the_full_output(either)  # first: it expects the only run in the history
    test_api.test_containers_run(either)
    test_api.test_containers_run_errors(either)


def test_a_pooled_run_leaves_nothing_for_the_next(pooled: Server) -> None:
    c = pooled.client("alice")
    c.run("true", image=BUSYBOX)  # the pool learns that alice runs busybox
    wait_for(lambda: len(of_kind(pooled, "pool", running=True)) == 2)
    ready = set(of_kind(pooled, "pool"))
    first = c.run("echo secret > /tmp/left; echo secret > ~/left; echo written", image=BUSYBOX)
    assert first["stdout"] == "written\n" and first["id"] in ready, "the run should have been served warm"
    for _ in range(3):  # warm (the other ready one) or cold: never the first one's container
        later = c.run("cat /tmp/left ~/left 2>&1", image=BUSYBOX)
        assert later["id"] != first["id"] and "secret" not in later["stdout"]
    wait_for(lambda: first["id"] not in of_kind(pooled, "pool"))
    # Pooled containers are nobody's: the agent's list does not show them, nor its usage count them.
    assert c.list() == []
    assert c.info()["agent"]["usage"]["containers"] == 0


def test_pooled_containers_go_at_exit(pooled: Server) -> None:
    pooled.client("alice").run("true", image=BUSYBOX)
    wait_for(lambda: len(of_kind(pooled, "pool")) == 2)
    assert pooled.stop() == 0
    assert of_kind(pooled, "pool") == []


def test_a_crash_with_a_full_pool_leaves_nothing_after_the_next_start(pooled: Server) -> None:
    c = pooled.client("alice")
    c.run("true", image=BUSYBOX)
    c.run(["python3", "-c", "print(1)"])
    wait_for(lambda: len(of_kind(pooled, "pool", running=True)) == 4)
    pooled.stop(signal.SIGKILL)  # nothing is cleaned up
    left = of_kind(pooled, "pool")
    assert len(left) == 4
    # Each runner saw its connection close: it ended, and its container with it (no process keeps running).
    wait_for(lambda: of_kind(pooled, "pool", running=True) == [])
    pooled.start()
    assert of_kind(pooled, "pool") == [] and of_kind(pooled, "temporary") == []
    assert list(default_base().glob(f"berth-{pooled.instance}-*")) == []  # no runner folder either
    assert pooled.client("alice").run("echo back", image=BUSYBOX)["stdout"] == "back\n"
