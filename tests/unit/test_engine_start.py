"""Start Docker (app/core/engine_start.py): the command chosen for each kind of machine, and the action.

Nothing here starts anything: the facts are made up and the runner is a fake.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from app.core.engine_start import EngineStarter, StartFacts, failure_hint, plan_start
from app.errors import BerthError
from app.host import ShellResult

SYSTEM = "unix:///var/run/docker.sock"


def facts(
    endpoint: str = SYSTEM,
    *,
    platform: str = "linux",
    euid: int | None = 0,
    programs: Sequence[str] = ("systemctl", "service"),
    systemd: bool = True,
    runtime_dir: str = "/run/user/1000",
    home: str = "/home/ann",
) -> StartFacts:
    return StartFacts(platform, euid, frozenset(programs), endpoint, systemd, runtime_dir, home)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (facts(), ("systemctl", "start", "docker")),
        (facts(""), ("systemctl", "start", "docker")),  # no endpoint set: the default socket
        (facts("unix:///run/docker.sock"), ("systemctl", "start", "docker")),
        (facts(euid=1000, programs=("systemctl", "pkexec")), ("pkexec", "systemctl", "start", "docker")),
        (facts(systemd=False), ("service", "docker", "start")),
        (
            facts("unix:///run/user/1000/docker.sock", euid=1000, programs=("systemctl", "pkexec")),
            ("systemctl", "--user", "start", "docker"),
        ),
        (
            facts("unix:///run/user/1000/docker.sock", euid=1000, runtime_dir=""),  # found by /run/user/<euid>
            ("systemctl", "--user", "start", "docker"),
        ),
        (
            facts("unix:///home/ann/.docker/desktop/docker.sock", euid=1000),
            ("systemctl", "--user", "start", "docker-desktop"),
        ),
        (facts(platform="darwin", programs=("open",)), ("open", "-a", "Docker")),
        (
            facts("unix:///Users/ann/.docker/run/docker.sock", platform="darwin", programs=("open",)),
            ("open", "-a", "Docker"),
        ),
        (
            facts("unix:///Users/ann/.colima/default/docker.sock", platform="darwin", programs=("open", "colima")),
            ("colima", "start"),
        ),
    ],
)
def test_the_command_that_starts_the_engine(case: StartFacts, expected: tuple[str, ...]) -> None:
    plan = plan_start(case)
    assert plan.possible
    assert plan.argv == expected
    assert " ".join(expected) in plan.reason  # the tooltip says what the button runs


@pytest.mark.parametrize(
    ("case", "says"),
    [
        (facts("tcp://10.0.0.5:2376"), "start it where it runs"),
        (facts("ssh://ann@build-box"), "Change engine"),
        (facts("tcp://127.0.0.1:1"), "tcp://127.0.0.1:1"),
        (facts(euid=1000, programs=("systemctl",)), "sudo systemctl start docker"),  # no pkexec
        (facts(euid=1000, systemd=False), "sudo service docker start"),
        (facts(systemd=False, programs=()), "dockerd"),  # root, no service manager at all
        (facts("unix:///run/user/1000/docker.sock", euid=1000, systemd=False), "dockerd-rootless.sh"),
        (facts("unix:///srv/other/engine.sock"), "/srv/other/engine.sock"),  # a socket no known service provides
        (facts(platform="darwin", programs=()), "Applications"),
        (facts("unix:///Users/ann/.colima/default/docker.sock", platform="darwin", programs=("open",)), "colima start"),
        (facts("npipe:////./pipe/docker_engine", platform="win32", euid=None, programs=()), "Start menu"),
        (facts(platform="freebsd14"), "freebsd14"),
    ],
)
def test_where_it_cannot_the_plan_says_why_and_what_to_do(case: StartFacts, says: str) -> None:
    plan = plan_start(case)
    assert not plan.possible
    assert plan.argv == ()
    assert says in plan.reason


class Recorder:
    """The starter's injected parts: a fake runner, the audit, the reconnect."""

    def __init__(self, result: ShellResult | Exception, answers: bool = True) -> None:
        self.result = result
        self.answers = answers
        self.ran: list[tuple[str, ...]] = []
        self.audited: list[tuple[str, ...]] = []
        self.reconnects = 0

    async def run(self, argv: Sequence[str], timeout_s: float) -> ShellResult:
        self.ran.append(tuple(argv))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    async def audit(self, argv: Sequence[str]) -> None:
        self.audited.append(tuple(argv))

    async def reconnect(self) -> bool:
        self.reconnects += 1
        return self.answers

    def starter(self, case: StartFacts | None = None) -> EngineStarter:
        return EngineStarter(
            SYSTEM, run=self.run, audit=self.audit, reconnect=self.reconnect, facts=case or facts(), settle_s=0.3
        )


async def test_start_runs_the_command_audited_then_reconnects() -> None:
    rec = Recorder(ShellResult(0, "", ""))
    result = await rec.starter().start()
    assert rec.audited == rec.ran == [("systemctl", "start", "docker")]
    assert rec.reconnects == 1
    assert result.ok and result.answered
    assert "answers" in result.message


async def test_started_but_not_answering_yet_is_not_a_failure() -> None:
    rec = Recorder(ShellResult(0, "", ""), answers=False)
    result = await rec.starter().start()
    assert result.ok and not result.answered
    assert rec.reconnects >= 2  # tried again while the engine comes up
    assert "connects by itself" in result.message


async def test_a_failed_command_gives_its_stderr_tail_and_what_to_do() -> None:
    stderr = "\n".join(f"line {i}" for i in range(20)) + "\nJob for docker.service failed because the control process"
    rec = Recorder(ShellResult(1, "", stderr))
    result = await rec.starter().start()
    assert not result.ok and not result.answered
    assert rec.reconnects == 0
    assert result.message == "`systemctl start docker` failed (exit 1)"
    assert result.output.endswith("Job for docker.service failed because the control process")
    assert "line 0" not in result.output  # only the tail
    assert "journalctl -u docker" in result.hint


async def test_a_command_that_cannot_run_or_hangs_is_told() -> None:
    result = await Recorder(OSError("No such file or directory")).starter().start()
    assert not result.ok and "could not run" in result.message and "No such file" in result.output
    result = await Recorder(ShellResult(None, "", "", timed_out=True)).starter().start()
    assert not result.ok and "did not finish" in result.message


async def test_nothing_runs_where_the_plan_has_no_command() -> None:
    rec = Recorder(ShellResult(0, "", ""))
    with pytest.raises(BerthError) as err:
        await rec.starter(facts("tcp://10.0.0.5:2376")).start()
    assert "start it where it runs" in (err.value.hint or "")
    assert rec.ran == rec.audited == []


def test_pkexec_dismissed_says_so() -> None:
    assert "password was not given" in failure_hint(("pkexec", "systemctl", "start", "docker"), 126)
    assert "Applications" in failure_hint(("open", "-a", "Docker"), 1)
