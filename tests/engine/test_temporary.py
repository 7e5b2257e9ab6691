"""Temporary containers against the real engine: output, exit codes, caps, timeouts, cleanup.

Every test runs three times: cold (create, attach, start, wait), and from the warm pool, once over the
runner's socket and once by exec into a container made ahead of time. `run` warms the pool for the
spec first and checks the run was served the way its parameter says, so all paths are held to the
same results."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.engine import Engine
from app.errors import ImageUnavailable
from app.model import MiB, PoolConfig, RunResult, RunSpec
from tests.conftest import BUSYBOX, PYTHON, docker_cli, missing_part


@pytest.fixture(params=["cold", "exec", "runner"])
async def engine(request: pytest.FixtureRequest, instance: str) -> AsyncIterator[Engine]:
    path = request.param
    e = Engine(instance, pool=PoolConfig(enabled=path != "cold", max_idle=4, runner=path == "runner"))
    if path == "runner" and not e.runner.usable:
        missing_part(f"the runner path: {e.runner.why_not}")
    yield e
    await e.aclose()


async def run(engine: Engine, s: RunSpec, **kw: Any) -> RunResult:
    """Run `s`; with the pool on, from a warm container, by the runner or by exec as the engine is set (checked)."""
    if not engine.pool.enabled:
        return await engine.run_temporary(s, **kw)
    await engine.pool.warm(s)
    hits, by_runner = engine.pool.hits, engine.runner.runs
    r = await engine.run_temporary(s, **kw)
    assert engine.pool.hits == hits + 1, "the run was not served from the pool"
    assert engine.runner.runs == by_runner + engine.runner.usable, "the run did not take the expected path"
    return r


async def leftovers(engine: Engine, instance: str) -> list[str]:
    """This instance's containers once pending removals are done and the pool has been emptied."""
    await engine.drain_cleanups()
    await engine.pool.close()
    return containers_of(instance)


def spec(command: str | list[str], **kw: object) -> RunSpec:
    return RunSpec(agent="t", image=BUSYBOX, command=command, **kw)  # type: ignore[arg-type]


def containers_of(instance: str) -> list[str]:
    return docker_cli("ps", "-aq", "--filter", f"label=berth.instance={instance}").stdout.split()


async def test_output_and_exit_code_come_back_exactly(engine: Engine) -> None:
    r = await run(engine, spec("printf 'out\\n'; printf 'err\\n' >&2; exit 7"))
    assert (r.exit_code, r.stdout, r.stderr) == (7, "out\n", "err\n")
    assert not r.timed_out and not r.truncated and not r.oom_killed
    assert r.duration_ms > 0


async def test_argv_command_env_workdir_and_stdin(engine: Engine) -> None:
    r = await run(
        engine,
        spec(
            ["sh", "-c", 'echo "$GREETING" $(pwd); cat'],
            env={"GREETING": "hi there"},
            workdir="/tmp",
            stdin="from stdin\n",
        ),
    )
    assert r.exit_code == 0
    assert r.stdout == "hi there /tmp\nfrom stdin\n"


async def test_argv_is_not_split_by_a_shell(engine: Engine) -> None:
    r = await run(engine, spec(["echo", "a;b", "$HOME"]))
    assert r.stdout == "a;b $HOME\n"


async def test_output_is_capped_at_one_mib_and_says_so(engine: Engine) -> None:
    r = await run(engine, spec("head -c 3000000 /dev/zero | tr '\\0' a; echo small >&2"))
    assert r.exit_code == 0
    assert len(r.stdout) == 1 * MiB and set(r.stdout) == {"a"}
    assert r.stderr == "small\n"
    assert r.truncated


async def test_timeout_kills_and_removes(engine: Engine, instance: str) -> None:
    started = time.monotonic()
    r = await run(engine, spec("echo before; sleep 30", timeout_s=1))
    elapsed = time.monotonic() - started
    assert r.timed_out
    assert r.stdout == "before\n"
    assert elapsed < 5, f"took {elapsed:.1f}s"
    assert await leftovers(engine, instance) == []


async def test_cancelling_the_caller_leaves_no_container(engine: Engine, instance: str) -> None:
    seen: list[str] = []
    task = asyncio.create_task(run(engine, spec("sleep 30"), on_created=seen.append))
    while not seen:
        await asyncio.sleep(0.02)
    assert seen[0] in docker_cli("ps", "-aq", "--no-trunc").stdout.split()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await leftovers(engine, instance) == []


async def test_cancelling_during_create_leaves_no_container(engine: Engine, instance: str) -> None:
    """The attack on cleanup: cancel before the create call returns, so the id is not known yet."""
    for _ in range(5):
        if engine.pool.enabled:
            await engine.pool.warm(spec("sleep 30"))
        task = asyncio.create_task(engine.run_temporary(spec("sleep 30")))
        await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await leftovers(engine, instance) == []


async def test_thirty_runs_leave_nothing_behind(engine: Engine, instance: str) -> None:
    """Back to back, as an agent loop does: with the pool on, some runs find a warm container and some do not."""
    for i in range(30):
        r = await engine.run_temporary(spec(f"echo {i}"))
        assert r.stdout == f"{i}\n"
    await leftovers(engine, instance)
    out = docker_cli(
        "ps", "-a", "--filter", "label=berth.managed=true", "--filter", f"label=berth.instance={instance}", "-q"
    ).stdout
    assert out.strip() == ""


async def test_memory_hog_is_oom_killed(engine: Engine) -> None:
    r = await run(
        engine,
        RunSpec(agent="t", image=PYTHON, command=["python3", "-c", "x = b'x' * (200 * 1024 * 1024)"], memory=32 * MiB),
    )
    assert r.oom_killed
    assert r.exit_code == 137


async def test_network_none_has_no_network(engine: Engine) -> None:
    r = await run(engine, spec("wget -T 3 -q -O- http://1.1.1.1/ ; echo rc=$?; ip link 2>/dev/null | grep -c eth0"))
    assert "rc=0" not in r.stdout
    assert r.stdout.strip().endswith("0")  # no eth0 inside: network_mode=none


async def test_unknown_image_is_image_unavailable_naming_it(engine: Engine) -> None:
    progress: list[str] = []
    with pytest.raises(ImageUnavailable) as info:
        await engine.run_temporary(
            RunSpec(agent="t", image="berth/does-not-exist:1", command="true"), progress=progress.append
        )
    assert info.value.image == "berth/does-not-exist:1"
    assert "berth/does-not-exist:1" in str(info.value)
    assert progress and "pulling" in progress[0]


async def test_safe_defaults_are_applied(engine: Engine, instance: str, tmp_path: object) -> None:
    """The container must not be able to reach the host: no caps, no socket, not privileged, only the workspace."""
    seen: list[str] = []
    task = asyncio.create_task(run(engine, spec("sleep 5", workspace=str(tmp_path)), on_created=seen.append))
    while not seen:
        await asyncio.sleep(0.05)
    import json

    info = json.loads(docker_cli("inspect", seen[0]).stdout)[0]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    host = info["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Privileged"] is False
    assert host["Init"] is True
    assert host["PidsLimit"] == 256
    assert host["NetworkMode"] == "none"
    assert host["Memory"] == host["MemorySwap"] == 512 * MiB
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    if engine.runner.usable:  # its own runner folder, read-only, and already gone from the host
        runner = mounts.pop("/.berth")
        assert runner["RW"] is False and not os.path.exists(runner["Source"])
    assert list(mounts) == ["/workspace"]
    assert not any("docker.sock" in (m.get("Source") or "") for m in info["Mounts"])
    assert info["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
    labels = info["Config"]["Labels"]
    assert labels["berth.managed"] == "true" and labels["berth.instance"] == instance
    if engine.pool.enabled:
        assert labels["berth.kind"] == "pool" and labels["berth.pool.agent"] == "t" and "berth.agent" not in labels
    else:
        assert labels["berth.kind"] == "temporary" and labels["berth.agent"] == "t"
    assert info["Name"].startswith(f"/berth.{labels['berth.instance']}.t.")


async def test_stdin_and_output_flow_at_once(engine: Engine) -> None:
    """Megabytes in while megabytes come out: no path may send all of stdin before it reads (a deadlock)."""
    r = await run(engine, spec("cat; echo done >&2", stdin="x" * 3_000_000, timeout_s=30))
    assert (r.exit_code, r.stderr, r.timed_out) == (0, "done\n", False)
    assert len(r.stdout) == 1 * MiB and r.truncated


async def test_the_environment_is_the_images_plus_the_runs(engine: Engine) -> None:
    r = await run(engine, spec("env", env={"X": "1", "PATH": "/bin:/usr/bin"}))
    env = dict(line.split("=", 1) for line in r.stdout.splitlines())
    assert set(env) == {"HOME", "HOSTNAME", "PATH", "PWD", "SHLVL", "X"}
    assert (env["X"], env["PATH"], env["PWD"]) == ("1", "/bin:/usr/bin", "/workspace")


async def test_output_so_far_while_the_run_goes_on(engine: Engine) -> None:
    """What a background run shows before it ends (Engine.output_so_far), stdout and stderr apart."""
    seen: list[str] = []
    task = asyncio.create_task(run(engine, spec("echo first; echo oops >&2; sleep 30"), on_created=seen.append))
    deadline = time.monotonic() + 20
    while not seen or await engine.output_so_far(seen[0]) != ("first\n", "oops\n"):
        assert time.monotonic() < deadline, "the output so far never showed"
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
