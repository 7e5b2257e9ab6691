"""The sandbox for host commands, one test per rule, with the real bubblewrap and a real /bin/sh.

Each test runs a command through `HostRunner(access="sandbox")` and checks on the host what it could
and could not do. `make test` installs bubblewrap; without it these fail under CI=true.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import InvalidParams
from app.host import Folder, HostRunner, ShellResult, bwrap_argv, detect
from tests.conftest import missing_part


@pytest.fixture(autouse=True)
def need_bwrap() -> None:
    if not shutil.which("bwrap"):
        missing_part("bubblewrap is not installed (apt-get install bubblewrap)")
    status = detect()
    assert status.available, status.reason


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A folder outside /tmp's private copy: where a write would really land on the host."""
    folder = Path.home() / ".cache" / f"berth-sandbox-test-{os.getpid()}-{tmp_path.name}"
    folder.mkdir(parents=True)
    yield folder  # type: ignore[misc]
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def cwd(home: Path) -> Path:
    folder = home / "work"
    folder.mkdir()
    return folder


async def sandboxed(command: str, cwd: Path, hidden: list[str] | None = None, timeout: float = 30) -> ShellResult:
    runner = HostRunner(drain_grace_s=0.3, hidden=hidden or [])
    return await runner.run(command, Folder(str(cwd)), timeout, access="sandbox")


async def test_the_working_folder_is_writable(cwd: Path) -> None:
    r = await sandboxed("echo made > made.txt && pwd", cwd)
    assert r.exit_code == 0, r.stderr
    assert (cwd / "made.txt").read_text() == "made\n"
    assert r.stdout == f"{cwd}\n"  # the command sees its folder under its real path


async def test_the_rest_of_the_file_system_is_read_only(cwd: Path, home: Path) -> None:
    """Attack: a trusted `git diff --output=FILE` (or any program) truncating a file outside its folder."""
    victim = home / "victim.txt"
    victim.write_text("keep me\n")
    r = await sandboxed(f"echo gone > {victim}; : > {victim}; rm -f {victim}; touch {home}/new", cwd)
    assert "Read-only file system" in r.stderr
    assert victim.read_text() == "keep me\n" and not (home / "new").exists()


async def test_tmp_is_private_and_empty(cwd: Path, tmp_path: Path) -> None:
    """Attack: reading another program's files in /tmp, or leaving something there for a host process."""
    host_file = tmp_path / "host-secret"
    host_file.write_text("secret")
    r = await sandboxed(f"cat {host_file}; ls -A /tmp; echo left > /tmp/left-behind", cwd)
    assert "secret" not in r.stdout and "No such file" in r.stderr
    assert r.stdout.strip() == ""  # /tmp was empty inside
    assert not Path("/tmp/left-behind").exists()


async def test_hidden_folders_and_files_are_empty(cwd: Path, home: Path) -> None:
    """Attack: a trusted `cat *` reading Berth's tokens file or the person's SSH key (finding 6)."""
    berth_data = home / "berth-data"
    berth_data.mkdir()
    (berth_data / "tokens.json").write_text('{"owner": "OWNER-TOKEN"}')
    ssh = home / ".ssh"
    ssh.mkdir()
    (ssh / "id_ed25519").write_text("PRIVATE KEY")
    netrc = home / ".netrc"
    netrc.write_text("machine x password P")
    hidden = [str(berth_data), str(ssh), str(netrc)]
    r = await sandboxed(f"cat {berth_data}/tokens.json {ssh}/id_ed25519 {netrc}; ls -A {ssh}", cwd, hidden)
    assert "OWNER-TOKEN" not in r.stdout and "PRIVATE KEY" not in r.stdout and "password" not in r.stdout
    assert r.stdout.strip() == ""


async def test_a_hidden_folder_inside_the_working_folder_stays_hidden(home: Path) -> None:
    """A granted folder that holds a secret (a home folder holding ~/.ssh): the secret stays hidden."""
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_rsa").write_text("PRIVATE KEY")
    r = await sandboxed("cat .ssh/id_rsa; echo ok > note.txt", home, [str(home / ".ssh")])
    assert "PRIVATE KEY" not in r.stdout
    assert (home / "note.txt").read_text() == "ok\n"


async def test_a_working_folder_inside_a_hidden_folder_is_reachable(home: Path) -> None:
    """The agent's workspace lives in Berth's data folder, which is hidden: the workspace itself is bound in."""
    data = home / "data"
    workspace = data / "workspaces" / "alice"
    workspace.mkdir(parents=True)
    (data / "tokens.json").write_text("OWNER-TOKEN")
    (data / "workspaces" / "bob").mkdir()
    (data / "workspaces" / "bob" / "secret.txt").write_text("BOB")
    r = await sandboxed("echo mine > mine.txt; cat ../../tokens.json ../bob/secret.txt; ls ..", workspace, [str(data)])
    assert (workspace / "mine.txt").read_text() == "mine\n"
    assert "OWNER-TOKEN" not in r.stdout and "BOB" not in r.stdout
    assert r.stdout.split() == ["alice"]  # nothing of the other workspaces


@pytest.fixture
def listener() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    accepted: list[socket.socket] = []

    def accept() -> None:
        try:
            conn, _ = sock.accept()
            accepted.append(conn)
        except OSError:
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    sock.close()
    assert accepted == [], "a sandboxed command reached a port on the host"


async def test_there_is_no_network_not_even_loopback(cwd: Path, listener: int) -> None:
    """Attack: reaching Berth's own RPC port (or any local service) from a sandboxed command."""
    probe = f"import socket; socket.create_connection(('127.0.0.1', {listener}), timeout=3)"
    r = await sandboxed(f'python3 -c "{probe}"', cwd)
    assert r.exit_code != 0 and ("unreachable" in r.stderr or "refused" in r.stderr), r.stderr


async def test_the_environment_is_rebuilt(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack: reading a token, DOCKER_HOST or the SSH agent socket from Berth's environment."""
    monkeypatch.setenv("BERTH_TOKEN", "LEAKED-TOKEN")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/run/user/0/ssh-agent")
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    monkeypatch.setenv("LC_TIME", "C")
    r = await sandboxed("env", cwd)
    names = {line.split("=", 1)[0] for line in r.stdout.splitlines()}
    assert "LEAKED-TOKEN" not in r.stdout
    assert not names & {"BERTH_TOKEN", "SSH_AUTH_SOCK", "DOCKER_HOST", "DBUS_SESSION_BUS_ADDRESS"}
    assert {"PATH", "LC_TIME"} <= names


async def test_no_host_socket_is_reachable_even_as_root(cwd: Path) -> None:
    """Attack: a sandboxed root process unmounting the empty /run to reach the Docker socket, or making a
    user namespace of its own to get the capabilities for it."""
    r = await sandboxed(
        "ls -A /run; umount /run; unshare -Urm true; ls /run/docker.sock /var/run/docker.sock; "
        "grep CapEff /proc/self/status",
        cwd,
    )
    assert "docker.sock" not in r.stdout
    assert "CapEff:\t0000000000000000" in r.stdout


async def test_host_processes_are_invisible(cwd: Path) -> None:
    r = await sandboxed("ls /proc | grep -c '^[0-9]'", cwd)
    assert int(r.stdout.strip()) < 10  # only the sandbox's own few processes


async def test_the_timeout_kills_everything_inside(cwd: Path, home: Path) -> None:
    marker = cwd / "late"
    r = await sandboxed(f"(sleep 2; touch {marker}) & sleep 30", cwd, timeout=1)
    assert r.timed_out and r.exit_code is None
    await asyncio.sleep(2.5)  # longer than the background child would have needed to write its marker
    assert not marker.exists()


async def test_background_children_die_with_the_command(cwd: Path) -> None:
    marker = cwd / "late"
    r = await sandboxed(f"(sleep 1; touch {marker}) & echo started", cwd)
    assert r.exit_code == 0 and r.stdout == "started\n"
    await asyncio.sleep(1.5)
    assert not marker.exists()


async def test_a_working_folder_swapped_for_a_symlink_is_refused(cwd: Path, home: Path) -> None:
    """Attack: between approval and run, the agent replaces a folder of its workspace with a symlink to a
    folder outside it, so that the sandbox would make that folder writable."""
    outside = home / "outside"
    outside.mkdir()
    (cwd / "sub").symlink_to(outside)
    with pytest.raises(InvalidParams, match="symlink"):
        await HostRunner().run("touch pwned", Folder(str(cwd), "sub"), 10, access="sandbox")
    assert not (outside / "pwned").exists()


async def test_a_hidden_folder_inside_a_workspace_inside_a_hidden_folder_stays_hidden(home: Path) -> None:
    """Attack: the person hides a folder of a workspace (or of a folder under /tmp); the workspace is bound back
    on top of Berth's hidden data folder, and with it the folder meant to be hidden."""
    data = home / "data"
    workspace = data / "workspaces" / "demo"
    private = workspace / "private"
    private.mkdir(parents=True)
    (private / "secret.txt").write_text("SECRET")
    r = await sandboxed("cat private/secret.txt; ls -A private", workspace, [str(data), str(private)])
    assert "SECRET" not in r.stdout and "secret.txt" not in r.stdout


def test_the_arguments_hide_before_binding_the_folder_they_hold() -> None:
    """Order matters: a hidden folder holding the working folder is emptied first, then the folder is bound
    into it; every other hidden folder is emptied after the bind, on top of it."""
    argv = bwrap_argv("true", "/srv/data/workspaces/a", 5, hidden=["/srv/data", "/srv/data/workspaces/a/.ssh"])
    bind = argv.index("--bind-fd")
    if os.path.isdir("/srv/data"):
        assert argv.index("/srv/data") < bind
    assert argv[bind : bind + 3] == ["--bind-fd", "5", "/srv/data/workspaces/a"]
    for flag in ("--unshare-all", "--unshare-user", "--disable-userns", "--new-session", "--die-with-parent"):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert "--clearenv" in argv and argv[-3:] == ["/bin/sh", "-c", "true"]
