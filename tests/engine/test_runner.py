"""The runner: its side of the protocol against a fake runner (no engine), and what a pooled container made
with it lets a run reach, against the real engine. The attacks: a run that forges the runner's frames, a
run that looks for another container's runner socket, a run that tries to leave its user."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.capped import CappedBuffer
from app.engine import Engine
from app.engine import runner as runner_mod
from app.engine.runner import EXIT, HELLO, PROTOCOL, STARTED, STDOUT, Channel, Runner
from app.model import PoolConfig, RunSpec
from tests.conftest import BUSYBOX, docker_cli, missing_part

# -- the protocol, against a fake runner ------------------------------------------------------------


def frame(kind: int, payload: bytes) -> bytes:
    return bytes([kind]) + struct.pack(">I", len(payload)) + payload


async def channel_to(fake: bytes) -> Channel:
    """A channel whose runner is a socket that says hello and then `fake` (whatever the request was)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def send() -> None:
        try:
            theirs.sendall(frame(HELLO, PROTOCOL) + fake)
            theirs.shutdown(socket.SHUT_WR)  # as the runner, it reads on (the request) until Berth hangs up
        except OSError:
            pass  # Berth hung up first (a forged frame ended the run): that is the point

    FAKES.append((asyncio.ensure_future(asyncio.to_thread(send)), theirs))
    return await Channel.open(ours)


FAKES: list[tuple[asyncio.Future[None], socket.socket]] = []


async def run_on(channel: Channel, cap: int = 100, timeout_s: float = 5) -> tuple[runner_mod.Outcome, CappedBuffer]:
    killed: list[bool] = []

    async def kill() -> None:
        killed.append(True)

    out, err = CappedBuffer(cap), CappedBuffer(cap)
    outcome = await channel.run(
        ["x"], {}, "/", timeout_s, cap, None, (out, err), on_started=lambda: None, on_timeout=kill
    )
    channel.close()
    for sender, theirs in FAKES:
        await sender
        theirs.close()
    FAKES.clear()
    assert bool(killed) == (outcome.exit_code is None and outcome.started), "a broken runner's container is killed"
    return outcome, out


async def test_a_well_behaved_runner_is_read_exactly() -> None:
    ch = await channel_to(frame(STARTED, b"") + frame(STDOUT, b"hi\n") + frame(EXIT, struct.pack(">i", 3) + b"\0"))
    outcome, out = await run_on(ch)
    assert (outcome.started, outcome.exit_code, outcome.timed_out, out.text()) == (True, 3, False, "hi\n")


async def test_forged_frames_stay_within_the_caps() -> None:
    """A run that took over its runner's socket can only lie about its own result: a flood is capped, an
    oversized control frame ends the run, and the container is killed."""
    flood = frame(STARTED, b"") + frame(STDOUT, b"a" * 1_000_000) + frame(EXIT, b"\0" * 5000)
    outcome, out = await run_on(await channel_to(flood), cap=100)
    assert out.size == 100 and out.truncated
    assert outcome.exit_code is None and outcome.started


async def test_a_runner_gone_before_the_start_hands_the_run_to_the_cold_path() -> None:
    outcome, _ = await run_on(await channel_to(b""))
    assert not outcome.started and outcome.failure


async def test_a_hello_that_is_not_the_runners_is_refused() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs.sendall(frame(HELLO, b"something else"))
    with pytest.raises(ConnectionError):
        await Channel.open(ours)
    theirs.close()


def test_no_binary_or_a_remote_engine_means_the_exec_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_RUNNER_BIN", "/nonexistent/berth-runner")
    assert "not built" in Runner("x", enabled=True, local=True).why_not
    monkeypatch.delenv("BERTH_RUNNER_BIN")
    if runner_mod.find_binary() is not None:
        assert "not on this machine" in Runner("x", enabled=True, local=False).why_not
    assert "turned off" in Runner("x", enabled=False, local=True).why_not


# -- with the real engine --------------------------------------------------------------------------


@pytest.fixture
async def engine(instance: str) -> AsyncIterator[Engine]:
    e = Engine(instance, pool=PoolConfig(max_idle=4))
    if not e.runner.usable:
        missing_part(f"the runner path: {e.runner.why_not}")
    yield e
    await e.aclose()


def spec(command: str, agent: str = "t", **kw: object) -> RunSpec:
    return RunSpec(agent=agent, image=BUSYBOX, command=command, **kw)  # type: ignore[arg-type]


def pooled(instance: str) -> list[dict[str, object]]:
    ids = docker_cli(
        "ps", "-q", "--filter", f"label=berth.instance={instance}", "--filter", "label=berth.kind=pool"
    ).stdout.split()
    return json.loads(docker_cli("inspect", *ids).stdout) if ids else []


async def test_a_run_finds_no_runner_socket_of_its_own_or_of_any_other_container(engine: Engine, instance: str) -> None:
    """The attack: a run of agent t looks for the runner sockets of the other pooled containers (t's next
    one, agent u's) and of its own, to send them a command or read another run's input."""
    await engine.pool.warm(spec("true"), n=2)
    await engine.pool.warm(spec("true", agent="u"))
    containers = pooled(instance)
    assert len(containers) == 3
    sources = [next(m["Source"] for m in c["Mounts"] if m["Destination"] == "/.berth") for c in containers]  # type: ignore[attr-defined]
    assert len(set(sources)) == 3, "each container has a folder of its own"
    assert not any(os.path.exists(s) for s in sources), "no runner folder is left on the host to reach"
    assert list(Path(engine.runner.base).glob(f"berth-{instance}-*")) == []
    r = await engine.run_temporary(
        spec("ls -A /.berth; find / -xdev -type s 2>/dev/null; touch /.berth/x 2>&1; grep -c berth /proc/mounts")
    )
    assert engine.runner.runs == 1
    lines = r.stdout.splitlines()
    # Nothing listed and no socket anywhere; the folder takes no file (deleted, and read-only); one mount of it.
    assert lines[0].startswith("touch: /.berth/x: ") and lines[1] == "1", r.stdout


async def test_a_run_keeps_the_containers_user_and_gains_nothing(engine: Engine) -> None:
    """The runner starts the command as itself: the container's user, no capabilities, no new privileges."""
    await engine.pool.warm(spec("true"))
    r = await engine.run_temporary(spec("id -u; id -g; grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status"))
    assert engine.runner.runs == 1
    uid, gid, *status = r.stdout.splitlines()
    assert (int(uid), int(gid)) == (os.getuid(), os.getgid())
    assert [line.split()[1] for line in status] == ["0000000000000000", "0000000000000000", "1"]


async def test_a_runner_that_never_answers_leaves_its_container_to_exec(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def silent(self: runner_mod.Folder, cid: str, timeout_s: float = 0) -> Channel:
        raise TimeoutError

    monkeypatch.setattr(runner_mod.Folder, "accept", silent)
    await engine.pool.warm(spec("true"))
    assert not engine.runner.usable and "did not answer" in engine.runner.why_not
    r = await engine.run_temporary(spec("echo by exec"))
    assert r.stdout == "by exec\n" and engine.pool.hits == 1 and engine.runner.runs == 0
