"""Service containers, exec, logs, stats, events, CPU groups and reconcile against the real engine."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from pathlib import Path

import pytest

from app.engine import Engine
from app.errors import Conflict, EngineUnavailable, NotFound
from app.model import ContainerEvent, CpuGroup, Kind, RunSpec, ServiceSpec
from tests.conftest import BUSYBOX, docker_cli

HTTPD = "mkdir -p /tmp/www && echo hello-from-berth > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"


def service(name: str, command: str | None = "sleep 3600", **kw: object) -> ServiceSpec:
    return ServiceSpec(agent="t", name=name, image=BUSYBOX, command=command, **kw)  # type: ignore[arg-type]


def http_get(url: str, deadline_s: float = 10) -> str:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read().decode()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


async def test_published_port_answers_on_localhost_only(engine: Engine) -> None:
    info = await engine.start_service(service("web", HTTPD, ports=["8080"], network="bridge"))
    assert info.kind == Kind.SERVICE and info.status == "running" and info.full_name == f"berth.{engine.instance}.t.web"
    binding = info.ports["8080/tcp"]
    assert binding.host == "127.0.0.1" and binding.url == f"http://127.0.0.1:{binding.port}"
    body = await asyncio.to_thread(http_get, binding.url)
    assert body == "hello-from-berth\n"
    raw = json.loads(docker_cli("inspect", info.id).stdout)[0]
    assert {b["HostIp"] for b in raw["HostConfig"]["PortBindings"]["8080/tcp"]} == {"127.0.0.1"}
    assert {b["HostIp"] for b in raw["NetworkSettings"]["Ports"]["8080/tcp"]} == {"127.0.0.1"}


async def test_service_name_in_use_is_a_conflict(engine: Engine) -> None:
    await engine.start_service(service("dup"))
    with pytest.raises(Conflict, match="dup"):
        await engine.start_service(service("dup"))


async def test_exec_logs_stop_restart_remove(engine: Engine) -> None:
    info = await engine.start_service(service("worker", "echo started; sleep 0.3; echo oops >&2; exec sleep 3600"))
    r = await engine.exec(info.full_name, "echo $X; cat; exit 3", env={"X": "x-value"}, stdin="piped")
    assert (r.exit_code, r.stdout, r.timed_out) == (3, "x-value\npiped", False)
    for _ in range(50):
        logs, truncated = await engine.logs(info.id)
        if "oops" in logs:
            break
        await asyncio.sleep(0.1)
    assert logs == "started\noops\n" and not truncated
    tail, _ = await engine.logs(info.id, tail=1, timestamps=True)
    assert tail.endswith(" oops\n") and tail[:4].isdigit()
    stopped = await engine.stop(info.id, timeout_s=1)
    assert stopped.status == "exited" and stopped.exit_code is not None
    with pytest.raises(Conflict):
        await engine.exec(info.id, "true")
    restarted = await engine.restart(info.id, timeout_s=1)
    assert restarted.status == "running"
    with pytest.raises(Conflict):
        await engine.remove(info.id)  # running, no force
    await engine.remove(info.id, force=True)
    with pytest.raises(NotFound):
        await engine.inspect(info.id)


async def test_exec_timeout_kills_the_process(engine: Engine) -> None:
    info = await engine.start_service(service("slow"))
    started = time.monotonic()
    r = await engine.exec(info.id, "echo partial; sleep 30", timeout_s=1)
    assert r.timed_out and r.stdout == "partial\n"
    assert time.monotonic() - started < 5
    ps = await engine.exec(info.id, "ps -o args | grep -c '^sleep 30' || true")
    assert ps.stdout.strip() == "0"


async def test_other_instances_containers_are_invisible(engine: Engine) -> None:
    other = Engine("other" + engine.instance)
    try:
        theirs = await other.start_service(service("theirs"))
        assert [c.id for c in await engine.list_containers()] == []
        with pytest.raises(NotFound):
            await engine.inspect(theirs.id)
    finally:
        docker_cli("rm", "-f", other.full_name("t", "theirs"), check=False)
        await other.aclose()


async def test_stats_for_running_containers(engine: Engine) -> None:
    info = await engine.start_service(service("busy", "while :; do :; done", memory=64 * 1024 * 1024))
    await engine.stats([info])  # the first reading: CPU % is measured from here to the next one
    deadline = time.monotonic() + 20
    while True:  # a busy loop shows as CPU use once a reading follows some time after the first
        await asyncio.sleep(0.2)
        s = (await engine.stats(await engine.list_containers()))[info.id]
        if s.cpu_percent > 20:
            break
        assert time.monotonic() < deadline, f"a busy loop showed only {s.cpu_percent:.1f} % CPU"
    assert 0 < s.memory_bytes < 64 * 1024 * 1024 and s.memory_limit_bytes == 64 * 1024 * 1024


async def test_events_follow_this_instance(engine: Engine) -> None:
    events: list[ContainerEvent] = []
    got_destroy = asyncio.Event()

    async def consume(since: float) -> None:
        async for ev in engine.events(since=since):  # replays from `since`: no need to wait for it to open
            events.append(ev)
            if ev.action == "destroy":
                got_destroy.set()

    task = asyncio.create_task(consume(time.time() - 1))
    r = await engine.run_temporary(RunSpec(agent="t", image=BUSYBOX, command="true"))
    await asyncio.wait_for(got_destroy.wait(), 10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert engine.threads() == [] or all("-call" in t.name for t in engine.threads())  # the stream's thread ended
    actions = [e.action for e in events if e.id == r.id and e.action != "attach"]  # the cold run attaches first
    assert actions[:2] == ["create", "start"] and "die" in actions and actions[-1] == "destroy"
    assert all(e.agent == "t" and e.kind == "temporary" for e in events if e.id == r.id)


def _cpu_usage_ns(group: str) -> int:
    return int(Path(f"/sys/fs/cgroup/cpuacct/{group}/cpuacct.usage").read_text())


async def wait_for_cpu_use(group: str, timeout: float = 20) -> None:
    """Until the group's containers are busy (its CPU counter moves by 20 ms in 100 ms)."""
    deadline = time.monotonic() + timeout
    last = _cpu_usage_ns(group)
    while True:
        await asyncio.sleep(0.1)
        now = _cpu_usage_ns(group)
        if now - last > 20_000_000:
            return
        assert time.monotonic() < deadline, "the busy containers never used the CPU"
        last = now


async def test_cpu_group_caps_two_busy_containers_together(engine: Engine) -> None:
    await engine.info()
    if engine.cpu_groups.mechanism != "parent":
        pytest.skip(f"the shared cgroup parent is not available here: {engine.cpu_groups.reason}")
    group = CpuGroup("agent-t", 0.5)
    a = await engine.start_service(service("busy1", "while :; do :; done", cpu_group=group))
    await engine.start_service(service("busy2", "while :; do :; done", cpu_group=group))
    parent = a.cpu_group or ""
    assert parent == f"/berth-{engine.instance}-agent-t"
    await wait_for_cpu_use(parent.strip("/"))
    u0, t0 = _cpu_usage_ns(parent.strip("/")), time.monotonic()
    await asyncio.sleep(3)
    u1, t1 = _cpu_usage_ns(parent.strip("/")), time.monotonic()
    used = (u1 - u0) / 1e9 / (t1 - t0)
    assert 0.3 < used <= 0.6, f"two busy containers used {used:.2f} CPU under a 0.5 quota"


async def test_reconcile_removes_leftover_temporaries_and_keeps_services(engine: Engine, instance: str) -> None:
    svc = await engine.start_service(service("keep"))
    # A crash left this temporary container behind: made directly with the CLI and Berth's labels.
    leftover = docker_cli(
        "run",
        "-d",
        "--label",
        "berth.managed=true",
        "--label",
        f"berth.instance={instance}",
        "--label",
        "berth.kind=temporary",
        "--label",
        "berth.agent=t",
        BUSYBOX,
        "sleep",
        "3600",
    ).stdout.strip()
    removed = await engine.reconcile()
    assert removed == [leftover]
    assert [c.id for c in await engine.list_containers()] == [svc.id]


async def test_workspace_files_belong_to_the_host_user(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "input.txt").write_text("from host")
    marker = Path("/tmp") / f"berth-host-marker-{engine.instance}"
    marker.write_text("secret")
    try:
        r = await engine.run_temporary(
            RunSpec(
                agent="t",
                image=BUSYBOX,
                workspace=str(tmp_path),
                command=f"cat input.txt; echo out > result.txt; ls /tmp/{marker.name} 2>&1; "
                "ls /var/run/docker.sock 2>&1",
            )
        )
    finally:
        marker.unlink()
    assert r.stdout.startswith("from host")
    assert "No such file" in r.stdout.split("\n", 1)[1]
    assert r.stdout.count("No such file") == 2
    out = tmp_path / "result.txt"
    assert out.read_text() == "out\n"
    assert (out.stat().st_uid, out.stat().st_gid) == (os.getuid(), os.getgid())


async def test_workspace_owner_for_a_non_root_user(engine: Engine, tmp_path: Path) -> None:
    """Files are owned by whatever UID:GID the container runs as (the host user's by default)."""
    tmp_path.chmod(0o777)
    await engine.run_temporary(
        RunSpec(agent="t", image=BUSYBOX, workspace=str(tmp_path), user="12345:12345", command="echo x > owned.txt")
    )
    st = (tmp_path / "owned.txt").stat()
    assert (st.st_uid, st.st_gid) == (12345, 12345)


async def test_unreachable_engine_fails_fast_with_a_hint() -> None:
    e = Engine("down", endpoint="tcp://127.0.0.1:1")
    try:
        started = time.monotonic()
        info = await e.info()
        assert not info.available and info.hint and "127.0.0.1:1" in info.hint
        with pytest.raises(EngineUnavailable) as exc:
            await e.run_temporary(RunSpec(agent="t", image=BUSYBOX, command="true"))
        assert exc.value.hint and "DOCKER_HOST" in exc.value.hint
        with pytest.raises(EngineUnavailable):
            await e.list_containers()
        assert time.monotonic() - started < 5
    finally:
        await e.aclose()


async def test_reconcile_on_reconnect_keeps_runs_in_flight(engine: Engine, instance: str) -> None:
    """The engine's event stream dropped and Berth reconciles: its own running temporaries must survive."""
    created = asyncio.Event()
    task = asyncio.create_task(
        engine.run_temporary(
            RunSpec(agent="t", image=BUSYBOX, command="sleep 1; echo survived"), on_created=lambda _cid: created.set()
        )
    )
    await asyncio.wait_for(created.wait(), 30)
    assert await engine.reconcile() == []
    r = await task
    assert r.stdout == "survived\n"
