"""app.host.runner with full (host) access: a real /bin/sh, its process group, caps, timeouts, cancellation."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from app.errors import InvalidParams
from app.host import HostRunner as ShellRunner
from app.host import ShellResult


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def runner() -> ShellRunner:
    return ShellRunner(drain_grace_s=0.3)


async def test_output_exit_code_and_stderr(runner: ShellRunner, tmp_path: Path) -> None:
    result = await runner.run("echo hello; echo oops >&2; exit 3", str(tmp_path), 10)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "hello\n", "oops\n")
    assert not result.timed_out and not result.truncated
    assert result.to_json() == {
        "exit_code": 3,
        "stdout": "hello\n",
        "stderr": "oops\n",
        "timed_out": False,
        "duration_ms": result.duration_ms,
        "truncated": False,
    }
    assert ShellResult.from_json(result.to_json()) == result


async def test_command_is_passed_as_one_argument_and_runs_in_cwd(runner: ShellRunner, tmp_path: Path) -> None:
    result = await runner.run("printf '%s|' \"a  b\" 'c'; pwd; cat", str(tmp_path), 10)  # cat reads /dev/null
    assert result.stdout == f"a  b|c|{tmp_path}\n"
    assert result.exit_code == 0


async def test_each_stream_is_capped_and_the_process_is_not_blocked(runner: ShellRunner, tmp_path: Path) -> None:
    # 3 MiB on each stream through 64 KiB pipes: the command only ends if reading goes on past the cap.
    cmd = "head -c 3145728 /dev/zero | tr '\\0' a; head -c 3145728 /dev/zero | tr '\\0' b >&2; echo end"
    result = await runner.run(cmd, str(tmp_path), 30, output_cap=1000)
    assert result.exit_code == 0 and result.truncated
    assert result.stdout == "a" * 1000
    assert result.stderr == "b" * 1000


async def test_signal_death_reports_128_plus_signal(runner: ShellRunner, tmp_path: Path) -> None:
    result = await runner.run("kill -KILL $$", str(tmp_path), 10)
    assert result.exit_code == 137 and not result.timed_out


async def test_timeout_kills_the_whole_group_including_background_children(runner: ShellRunner, tmp_path: Path) -> None:
    marker = tmp_path / "child-survived"
    start = time.monotonic()
    result = await runner.run(f"(sleep 2; touch {marker}) & echo started; sleep 30", str(tmp_path), 0.5)
    assert time.monotonic() - start < 3
    assert result.timed_out and result.exit_code is None
    assert result.stdout == "started\n"
    await asyncio.sleep(2.5)
    assert not marker.exists()


async def test_background_child_holding_the_pipes_does_not_hang_the_reader(runner: ShellRunner, tmp_path: Path) -> None:
    marker = tmp_path / "child-survived"
    start = time.monotonic()
    result = await runner.run(f"(sleep 2; touch {marker}) & sleep 30 & echo done", str(tmp_path), 60)
    assert time.monotonic() - start < 2
    assert (result.exit_code, result.stdout, result.timed_out) == (0, "done\n", False)
    await asyncio.sleep(2.5)
    assert not marker.exists()


async def test_missing_cwd_is_invalid_params(runner: ShellRunner, tmp_path: Path) -> None:
    with pytest.raises(InvalidParams, match=r"^cwd: "):
        await runner.run("true", str(tmp_path / "nope"), 10)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidParams, match=r"^cwd: "):
        await runner.run("true", str(tmp_path / "file"), 10)


async def test_cancellation_kills_the_process_group(runner: ShellRunner, tmp_path: Path) -> None:
    pid_file, marker = tmp_path / "pid", tmp_path / "still-running"
    task = asyncio.create_task(runner.run(f"echo $$ > {pid_file}; sleep 2; touch {marker}", str(tmp_path), 60))
    deadline = time.monotonic() + 5
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the command never started"
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 2
    while group_alive(pid):  # SIGKILL is delivered and the orphans reaped asynchronously
        assert time.monotonic() < deadline, "a process of the group survived the cancellation"
        await asyncio.sleep(0.02)
    await asyncio.sleep(2.5)
    assert not marker.exists()
