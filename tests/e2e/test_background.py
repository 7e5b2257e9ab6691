"""Background runs (API.md "Background runs"): containers.run with background, containers.wait, containers.cancel.

Over the real RPC port with `berth serve`, and in-process against an `Application` where a test needs the core
itself (results kept for a limited time, the history, what is left after stop).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Paths
from app.core.application import Application
from app.core.background import BackgroundRuns
from app.errors import Forbidden, LimitReached, NotFound
from tests.conftest import BUSYBOX, docker_cli, remove_instance_containers, wait_for
from tests.e2e.conftest import Server, berth

RESULT_KEYS = {"id", "exit_code", "stdout", "stderr", "timed_out", "oom_killed", "duration_ms", "truncated"}


def containers(instance: str) -> list[str]:
    """Every container of the instance: temporary runs, and warm pooled ones (a pooled run keeps that kind)."""
    return docker_cli("ps", "-aq", "--filter", f"label=berth.instance={instance}").stdout.split()


def gone(container_id: str) -> bool:
    return docker_cli("ps", "-aq", "--no-trunc", "--filter", f"id={container_id}").stdout.strip() == ""


def test_start_returns_at_once_and_wait_gives_the_blocking_result(server: Server) -> None:
    alice = server.client("alice")
    started = time.monotonic()
    job = alice.start("echo out; echo err >&2; sleep 2; exit 3", image=BUSYBOX, env=["GREETING=hi"])
    assert time.monotonic() - started < 2
    assert set(job) == {"run_id", "status"} and job["status"] == "running"
    running = alice.wait(job["run_id"], wait_s=0)
    assert running["status"] == "running" and running["run_id"] == job["run_id"]
    assert {"stdout_so_far", "stderr_so_far"} <= set(running)
    done = alice.wait(job["run_id"], wait_s=30)
    assert done["status"] == "done" and done["run_id"] == job["run_id"]
    # The same fields as a blocking containers.run, plus run_id and status.
    assert set(done) == RESULT_KEYS | {"run_id", "status"}
    assert (done["exit_code"], done["stdout"], done["stderr"], done["timed_out"]) == (3, "out\n", "err\n", False)
    blocking = alice.run("echo out; echo err >&2; exit 3", image=BUSYBOX)
    assert set(blocking) == RESULT_KEYS
    # The result stays: asking again gives it again, with wait_s 0 too.
    assert alice.wait(job["run_id"], wait_s=0) == done
    # The container is gone, as after a blocking run.
    wait_for(lambda: gone(done["id"]), "the run's container to be removed")
    # Both forms of env reach the command.
    r = alice.wait(alice.start("echo $A-$B", image=BUSYBOX, env={"A": "1"} | {"B": "2"})["run_id"], wait_s=30)
    assert r["stdout"] == "1-2\n"
    r = alice.wait(alice.start("echo $A-$B", image=BUSYBOX, env=["A=x=y", "B="])["run_id"], wait_s=30)
    assert r["stdout"] == "x=y-\n"


def test_another_agents_run_is_not_found(server: Server) -> None:
    """Attack: agent bob asks for, and tries to cancel, agent alice's run by its id."""
    alice, bob = server.client("alice"), server.client("bob")
    job = alice.start("sleep 5; echo secret", image=BUSYBOX)
    for call in (lambda: bob.wait(job["run_id"], wait_s=0), lambda: bob.cancel(job["run_id"])):
        with pytest.raises(NotFound) as e:
            call()
        assert e.value.code == -32004 and "secret" not in str(e.value)
    with pytest.raises(NotFound):
        alice.wait("run-0000000000000000")
    assert alice.wait(job["run_id"], wait_s=0)["status"] == "running"  # bob's cancel did nothing
    status, reply = server.raw(
        {"jsonrpc": "2.0", "id": 1, "method": "containers.wait", "params": {"run_id": job["run_id"]}},
        token=server.tokens["bob"],
    )
    assert status == 200 and reply["error"]["code"] == -32004 and reply["error"]["data"]["kind"] == "not_found"
    alice.cancel(job["run_id"])


def test_cancel_stops_the_run_and_removes_its_container(server: Server) -> None:
    alice = server.client("alice")
    job = alice.start("sleep 120", image=BUSYBOX)  # alice's first run: a container of its own, which she can list

    def running() -> list[str]:
        return [c["id"] for c in alice.list() if c["kind"] == "temporary" and c["status"] == "running"]

    wait_for(running, "the run's container to run", timeout=30)
    [cid] = running()
    started = time.monotonic()
    r = alice.cancel(job["run_id"])
    assert time.monotonic() - started < 10
    assert r["status"] == "cancelled" and r["run_id"] == job["run_id"]
    assert r["exit_code"] is None and not r["timed_out"] and set(r) == RESULT_KEYS | {"run_id", "status"}
    assert r["id"] == cid
    wait_for(lambda: gone(cid), "the cancelled run's container to be removed")
    # The result says cancelled from now on; cancelling again changes nothing.
    assert alice.wait(job["run_id"], wait_s=0) == r
    assert alice.cancel(job["run_id"]) == r
    # A run that has ended keeps its result when cancelled.
    done = alice.wait(alice.start("echo ok", image=BUSYBOX)["run_id"], wait_s=30)
    assert alice.cancel(done["run_id"]) == done


def test_timeout_output_caps_and_history_as_a_blocking_run(server: Server) -> None:
    alice = server.client("alice")
    timed = alice.wait(alice.start("echo before; sleep 30", image=BUSYBOX, timeout_s=1)["run_id"], wait_s=30)
    assert timed["status"] == "done" and timed["timed_out"] and timed["exit_code"] == 137
    big = alice.wait(alice.start("head -c 1200000 /dev/zero", image=BUSYBOX)["run_id"], wait_s=60)
    assert len(big["stdout"]) == 1024 * 1024 and big["truncated"]


def test_what_is_refused_at_once_is_the_start_calls_error(server: Server) -> None:
    berth(server.data_dir, "agents", "set", "bob", "--no-network", "--max-containers", "1", "--at-limit", "reject")
    bob = server.client("bob")
    with pytest.raises(Forbidden):
        bob.start("true", image=BUSYBOX, network="bridge")
    first = bob.start("sleep 60", image=BUSYBOX)
    with pytest.raises(LimitReached):
        bob.start("true", image=BUSYBOX)
    bob.cancel(first["run_id"])
    with pytest.raises(Exception) as e:
        bob.start("true", image="berth/no-such-image:0")
    assert e.value.code in (-32602, -32008)  # not allowed to be pulled, or not there


def test_a_queued_run_is_running_until_a_slot_frees(server: Server) -> None:
    berth(server.data_dir, "agents", "set", "alice", "--max-containers", "1", "--at-limit", "queue")
    alice = server.client("alice")
    first = alice.start("sleep 2; echo first", image=BUSYBOX)
    second = alice.start("echo second", image=BUSYBOX)  # waits in alice's queue: still "running" to her
    assert alice.wait(second["run_id"], wait_s=0)["status"] == "running"
    assert alice.info()["agent"]["usage"]["queued"] == 1
    assert alice.wait(second["run_id"], wait_s=60)["stdout"] == "second\n"
    assert alice.wait(first["run_id"], wait_s=0)["stdout"] == "first\n"


@pytest.fixture
def cold_server(tmp_path: Path) -> Iterator[Server]:
    """`berth serve` with no warm pool: every run has a container of its own, whose log shows its output."""
    s = Server(tmp_path / "data", env={"BERTH_POOL": "0"})
    s.add_agent("alice")
    s.start()
    try:
        yield s
    finally:
        s.stop()
        remove_instance_containers(s.instance)


def test_output_so_far_of_a_run_in_its_own_container(cold_server: Server) -> None:
    """The container's log while the run goes on, stdout and stderr apart."""
    _shows_output_so_far(cold_server)


def test_output_so_far_of_a_run_served_by_a_warm_container(tmp_path: Path) -> None:
    """A pooled run is an exec, whose output reaches only the engine's stream: the engine hands its buffers out."""
    s = Server(tmp_path / "data", env={"BERTH_POOL": "1"})
    s.add_agent("alice")
    s.start()
    try:
        s.client("alice").run("true", image=BUSYBOX)  # now a warm container waits for the next run
        wait_for(lambda: len(pool_containers(s.instance)) >= 1, "a warm container")
        ready = set(pool_containers(s.instance))
        result = _shows_output_so_far(s)
        assert result["id"] in ready, "the run should have been served by a warm container"
    finally:
        s.stop()
        remove_instance_containers(s.instance)


def pool_containers(instance: str) -> list[str]:
    return docker_cli(
        "ps", "-q", "--no-trunc", "--filter", f"label=berth.instance={instance}", "--filter", "label=berth.kind=pool"
    ).stdout.split()


def _shows_output_so_far(server: Server) -> dict[str, object]:
    alice = server.client("alice")
    job = alice.start("echo first; echo oops >&2; sleep 30; echo never", image=BUSYBOX)
    seen: dict[str, str] = {}

    def shows_both() -> bool:
        seen.update(alice.wait(job["run_id"], wait_s=0.2))
        return seen["stdout_so_far"] == "first\n" and seen["stderr_so_far"] == "oops\n"

    wait_for(shows_both, "the output so far, stdout and stderr apart", timeout=30)
    assert seen["status"] == "running"
    r = alice.cancel(job["run_id"])
    # What the run had written when it was cancelled stays in its result.
    assert r["status"] == "cancelled" and r["stdout"] == "first\n" and r["stderr"] == "oops\n"
    return r


# -- in-process: the core itself ---------------------------------------------------------------------


def _paths(root: Path, instance: str) -> Paths:
    paths = Paths(root, root / "state", root / "logs")
    paths.ensure()
    (root / "instance-id").write_text(instance + "\n")
    return paths


async def test_results_are_kept_for_a_while_then_forgotten(instance: str, tmp_path: Path) -> None:
    app = Application(_paths(tmp_path / "data", instance), rpc_port=0)
    await app.start()
    try:
        agent, _ = await asyncio.to_thread(app.agents.add, "demo")
        runs = BackgroundRuns(app.containers, app.events, keep_s=0.5)
        run = await runs.start(agent, command="echo kept", image=BUSYBOX)
        result = await runs.wait(agent, run.id, 30)
        assert result["status"] == "done" and result["stdout"] == "kept\n"
        # The history of finished runs has it, as it has a blocking run.
        history = await asyncio.to_thread(app.store.list_runs, "demo")
        assert [r.stdout for r in history] == ["kept\n"]
        assert (await runs.wait(agent, run.id, 0)) == result
        await asyncio.sleep(0.6)
        with pytest.raises(NotFound):
            await runs.wait(agent, run.id, 0)
        await runs.close()
    finally:
        await app.stop()


async def test_stop_cancels_background_runs_and_leaves_nothing(instance: str, tmp_path: Path) -> None:
    app = Application(_paths(tmp_path / "data", instance), rpc_port=0)
    await app.start()
    agent, _ = await asyncio.to_thread(app.agents.add, "demo")
    run = await app.background.start(agent, command="sleep 60", image=BUSYBOX)
    blocking = asyncio.ensure_future(app.background.run(agent, command="sleep 60", image=BUSYBOX))
    deadline = time.monotonic() + 30
    while len(containers(instance)) < 2:
        assert time.monotonic() < deadline, "the runs never started"
        await asyncio.sleep(0.05)
    await app.stop()
    assert app.running_parts() == []
    assert run.task.cancelled() and blocking.cancelled()
    assert containers(instance) == []  # both runs' containers (and the warm pool) removed before stop returned
