"""Open terminal's argv (app/core/terminal.py): the emulator found the usual way, each given the command its way."""

from __future__ import annotations

import pytest

from app.core.terminal import docker_exec_argv, find_terminal, plan_terminal

CID = "f" * 64


def which_of(*present: str):
    def which(name: str, path: str | None) -> str | None:
        return f"/usr/bin/{name}" if name in present else None

    return which


EXEC = ["/usr/bin/docker", "exec", "-it", CID, "sh", "-c", "command -v bash >/dev/null 2>&1 && exec bash || exec sh"]


@pytest.mark.parametrize(
    ("present", "env", "expected"),
    [
        (("x-terminal-emulator", "xterm", "docker"), {}, ["/usr/bin/x-terminal-emulator", "-e", *EXEC]),
        (("gnome-terminal", "xterm", "docker"), {}, ["/usr/bin/gnome-terminal", "--", *EXEC]),
        (("konsole", "docker"), {}, ["/usr/bin/konsole", "-e", *EXEC]),
        (("xfce4-terminal", "docker"), {}, ["/usr/bin/xfce4-terminal", "-x", *EXEC]),
        (("kitty", "docker"), {}, ["/usr/bin/kitty", *EXEC]),
        (("xterm", "docker"), {}, ["/usr/bin/xterm", "-e", *EXEC]),
        # $TERMINAL is the person's own choice: it goes first, with its arguments.
        (("xterm", "alacritty", "docker"), {"TERMINAL": "alacritty"}, ["/usr/bin/alacritty", "-e", *EXEC]),
        (("xterm", "foot", "docker"), {"TERMINAL": "foot --app-id=berth"}, ["/usr/bin/foot", "--app-id=berth", *EXEC]),
        (("xterm", "docker"), {"TERMINAL": "no-such-terminal"}, ["/usr/bin/xterm", "-e", *EXEC]),
    ],
)
def test_argv_for_the_found_emulator(present: tuple[str, ...], env: dict[str, str], expected: list[str]) -> None:
    plan = plan_terminal(CID, "unix:///var/run/docker.sock", env, which=which_of(*present), platform="linux")
    assert plan.possible and plan.argv == expected


def test_macos_uses_terminal_app_with_the_command_quoted() -> None:
    plan = plan_terminal(CID, "", {}, which=which_of("osascript", "docker"), platform="darwin")
    assert plan.terminal == "Terminal.app" and plan.argv[0] == "/usr/bin/osascript"
    assert f"/usr/bin/docker exec -it {CID} sh -c" in plan.argv[2] and '\\"' not in plan.argv[2].split("sh -c")[0]


def test_no_emulator_or_no_docker_says_why() -> None:
    none = plan_terminal(CID, "", {}, which=which_of("docker"), platform="linux")
    assert not none.possible and "no terminal emulator" in none.reason
    no_docker = plan_terminal(CID, "", {}, which=which_of("xterm"), platform="linux")
    assert not no_docker.possible and "docker command" in no_docker.reason
    assert find_terminal({}, which=which_of(), platform="linux") is None


def test_another_engine_is_named_with_H() -> None:
    assert docker_exec_argv("docker", CID, "tcp://127.0.0.1:2376")[:3] == ["docker", "-H", "tcp://127.0.0.1:2376"]
    assert docker_exec_argv("docker", CID, "unix:///var/run/docker.sock")[1] == "exec"
