"""Host commands cannot reach beyond what was approved: the findings of the host-shell review, one by one.

Through `berth serve`, with the real bubblewrap, git and make. Each docstring names the attack. A marker
is a file in a folder outside every folder the command may write (under the home folder, not /tmp, so
that a write would really land on the host); its absence after the run is the proof.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import InvalidParams
from tests.conftest import missing_part
from tests.e2e.conftest import Server, berth


@pytest.fixture(autouse=True)
def tools() -> None:
    for tool, package in (("bwrap", "bubblewrap"), ("git", "git"), ("make", "make")):
        if not shutil.which(tool):
            missing_part(f"{tool} is not installed (apt-get install {package})")


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    folder = Path.home() / ".cache" / f"berth-e2e-{os.getpid()}-{tmp_path.name}"
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def ws(server: Server, agent: str = "alice") -> Path:
    return server.data_dir / "workspaces" / agent


def trust(server: Server, pattern: str, *extra: str) -> None:
    berth(server.data_dir, "trust", "add", pattern, "--agent", "alice", *extra)


def run(server: Server, command: str, **kw: object) -> dict[str, object]:
    r = server.client("alice").shell(command, wait_s=30, **kw)
    assert r["status"] == "done", r  # allowed by the pattern: it ran (in the sandbox)
    return r  # type: ignore[no-any-return]


def git_repo(folder: Path) -> None:
    """What an agent can make in its workspace (its containers write there): a git repository."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null"}
    for argv in (
        ["git", "init", "-q"],
        ["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x"],
    ):
        subprocess.run(argv, cwd=folder, check=True, env=env, capture_output=True)


def test_a_trusted_git_status_cannot_run_the_agents_fsmonitor(server: Server, outside: Path) -> None:
    """Attack (finding 1): trusted `git status` (exact) in a workspace folder whose .git/config the agent
    wrote with `core.fsmonitor = touch MARKER`: git runs it. In the sandbox it cannot write the marker."""
    marker = outside / "fsmonitor-ran"
    repo = ws(server) / "repo"
    git_repo(repo)
    with (repo / ".git" / "config").open("a") as f:
        f.write(f'[core]\n\tfsmonitor = "touch {marker}; false"\n')
    (repo / "file.txt").write_text("x")
    trust(server, "git status")
    r = run(server, "git status", cwd=str(repo))
    assert r["access"] == "sandbox"
    assert not marker.exists()


def test_git_diff_external_and_textconv_cannot_write_outside(server: Server, outside: Path) -> None:
    """Attack (finding 1): `diff.external` in .git/config and a textconv driver in .gitattributes."""
    marker = outside / "diff-ran"
    repo = ws(server) / "repo2"
    git_repo(repo)
    (repo / "a.txt").write_text("one\n")
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null"}
    subprocess.run(["git", "add", "a.txt"], cwd=repo, check=True, env=env)
    subprocess.run(
        ["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "a"], cwd=repo, check=True, env=env
    )
    (repo / "a.txt").write_text("two\n")
    with (repo / ".git" / "config").open("a") as f:
        f.write(f'[diff]\n\texternal = "sh -c \'touch {marker}\'"\n[diff "x"]\n\ttextconv = "touch {marker}; cat"\n')
    (repo / ".gitattributes").write_text("*.txt diff=x\n")
    trust(server, "git diff")
    trust(server, "git log -p")
    run(server, "git diff", cwd=str(repo))
    run(server, "git log -p", cwd=str(repo))
    assert not marker.exists()


def test_git_diff_output_and_no_index_cannot_touch_or_read_files_outside(server: Server, outside: Path) -> None:
    """Attack (finding 2): trusted `git diff *` with `--output=/any/file` (truncates it) and `--no-index
    /dev/null <data dir>/tokens.json` (reads the owner token)."""
    victim = outside / "precious.txt"
    victim.write_text("keep\n")
    repo = ws(server) / "repo3"
    git_repo(repo)
    trust(server, "git diff *")
    run(server, f"git diff --output={victim}", cwd=str(repo))
    assert victim.read_text() == "keep\n"
    tokens = server.data_dir / "tokens.json"
    owner = server.owner().token
    assert tokens.exists() and owner in tokens.read_text()  # the file is there on the host (no keyring here)
    r = run(server, f"git diff --no-index /dev/null {tokens}", cwd=str(repo))
    assert owner not in str(r["result"])


def test_make_eval_and_the_agents_makefile_stay_in_the_sandbox(server: Server, outside: Path) -> None:
    """Attack (findings 3 and 5): trusted `make *` with `--eval=$(shell touch MARKER)` and no Makefile at all,
    and a plain trusted `make` running the Makefile the agent wrote; the queue warns about such programs."""
    marker = outside / "make-ran"
    trust(server, "make *")
    run(server, f"make '--eval=$(shell touch {marker})' -n")
    (ws(server) / "Makefile").write_text(f"all:\n\ttouch {marker}\n")
    run(server, "make")
    assert not marker.exists()
    # Not trusted: it waits, and the person is told that such a program runs what the agent's folder says.
    pending = server.client("alice").shell("npm test && git log")
    assert pending["status"] == "pending"
    listed = next(r for r in server.owner().approvals() if r["request_id"] == pending["request_id"])
    assert any("`git` and `npm` read settings or code from the folder" in w for w in listed["warnings"])


def test_pytest_plugins_and_basetemp_stay_in_the_sandbox(server: Server, outside: Path) -> None:
    """Attack (finding 4): trusted `python -m pytest *` with `-p plugin` (imports the agent's module) and
    `--basetemp=DIR` (pytest deletes DIR)."""
    marker = outside / "plugin-ran"
    keep = outside / "keep"
    keep.mkdir()
    (keep / "file").write_text("x")
    (ws(server) / "evil_plugin.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (ws(server) / "test_ok.py").write_text("def test_ok():\n    pass\n")
    python = Path(sys.executable).name
    trust(server, f"{python} -m pytest *")
    server_path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    assert server_path  # the server's PATH includes this venv (it was started with this interpreter's env)
    run(server, f"{python} -m pytest -q -p evil_plugin -p no:cacheprovider")
    run(server, f"{python} -m pytest -q -p no:cacheprovider --basetemp={keep}")
    assert not marker.exists()
    assert (keep / "file").read_text() == "x"


def test_a_trusted_cat_never_returns_the_owner_token(server: Server) -> None:
    """Attack (finding 6): trusted `cat *` on Berth's tokens file returned the owner token, with which the
    agent could approve its own requests."""
    trust(server, "cat *")
    owner = server.owner().token
    for path in (server.data_dir / "tokens.json", server.data_dir / "berth.sqlite3"):
        r = run(server, f"cat {path}")
        assert owner not in str(r["result"])
    r = run(server, f"cat /proc/{server.proc.pid if server.proc else 1}/environ")
    assert owner not in str(r["result"])


def test_cwd_must_be_the_workspace_or_a_granted_folder(server: Server, outside: Path) -> None:
    """Attack (finding 8): `shell.request` with `cwd` = another agent's workspace, Berth's data folder, or a
    symlink in the own workspace pointing at them."""
    alice = server.client("alice")
    for cwd in (ws(server, "bob"), server.data_dir, server.data_dir / "state", outside, Path("/")):
        with pytest.raises(InvalidParams) as err:
            alice.shell("ls", cwd=str(cwd))
        assert str(ws(server, "alice")) in str(err.value)  # the message names the allowed folders
    (ws(server) / "to-bob").symlink_to(ws(server, "bob"))
    with pytest.raises(InvalidParams):
        alice.shell("ls", cwd=str(ws(server) / "to-bob"))
    # Once the person grants a folder, it is allowed; a folder inside Berth's data can never be granted.
    berth(server.data_dir, "agents", "set", "alice", "--host-folder", str(outside))
    assert alice.shell("ls", cwd=str(outside))["status"] == "pending"
    refused = berth(server.data_dir, "agents", "set", "alice", "--host-folder", str(ws(server, "bob")), check=False)
    assert refused.returncode == 1 and "Berth's own folder" in refused.stderr


def test_approvals_list_escapes_the_folder_and_the_command(server: Server) -> None:
    """Attack (finding 9): a `cwd` with a newline adds a fake line to `berth approvals list`, `ESC[8m` hides
    the real one (terminal escapes), U+202E reverses what follows."""
    odd = ws(server) / "x\n    $ ls -l  (harmless)\x1b[8m\u202e"
    odd.mkdir()
    server.client("alice").shell("rm -rf ~", cwd=str(odd))
    out = berth(server.data_dir, "approvals", "list").stdout
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\n" in out and "\\x1b[8m" in out and "\\u202e" in out
    assert "$ rm -rf ~" in out
    assert sum(line.strip().startswith("$") for line in out.splitlines()) == 1  # the fake line is not a line


def test_look_alike_letters_are_named_in_the_warnings(server: Server) -> None:
    """Attack (finding 10): Cyrillic U+0456 in `git` / `github.com`, fullwidth `rm`: they pass for the real thing."""
    alice = server.client("alice")
    for command, name in (
        ("g\u0456t clone https://g\u0456thub.com/x", "U+0456 CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I"),
        ("\uff52\uff4d -rf build", "U+FF52 FULLWIDTH LATIN SMALL LETTER R"),
    ):
        rid = alice.shell(command)["request_id"]
        listed = next(r for r in server.owner().approvals() if r["request_id"] == rid)
        assert any(name in w for w in listed["warnings"]), listed["warnings"]


def test_full_access_only_from_the_person(server: Server, outside: Path) -> None:
    """An agent asking for full access waits even when a sandboxed pattern matches; the person may lower it to
    the sandbox, or approve it with full access, which really runs on the host."""
    trust(server, "touch *")
    alice = server.client("alice")
    first = outside / "first"
    r = alice.shell(f"touch {first}", access="host", wait_s=1)
    assert r["status"] == "pending" and r["access"] == "host"
    berth(server.data_dir, "approvals", "approve", r["request_id"], "--sandbox")
    done = alice.shell_status(r["request_id"], wait_s=30)
    assert done["access"] == "sandbox" and done["result"]["exit_code"] != 0 and not first.exists()

    second = outside / "second"
    r = alice.shell(f"touch {second}", access="host")
    berth(server.data_dir, "approvals", "approve", r["request_id"], "--full-access")
    done = alice.shell_status(r["request_id"], wait_s=30)
    assert done["access"] == "host" and done["result"]["exit_code"] == 0 and second.exists()

    # A pattern made with full access approves host requests from then on; one without never does.
    berth(server.data_dir, "trust", "add", "true", "--agent", "alice", "--full-access")
    assert alice.shell("true", access="host", wait_s=30)["status"] == "done"
    assert alice.shell(f"touch {outside}/third", access="host")["status"] == "pending"
    # An agent never raises its own access with the person's flags: approving a sandbox request with full
    # access is refused while the sandbox works.
    r = alice.shell("ls /")
    refused = berth(server.data_dir, "approvals", "approve", r["request_id"], "--full-access", check=False)
    assert refused.returncode == 1 and "never gives more than was asked" in refused.stderr


def test_system_info_reports_the_sandbox(server: Server) -> None:
    info = server.client("alice").info()
    assert info["host_sandbox"] == {"available": True, "mechanism": "bubblewrap", "reason": None}


def test_without_a_sandbox_nothing_is_approved_by_a_pattern(tmp_path: Path, outside: Path) -> None:
    """Where no sandbox works (here: bwrap pointed at a missing program), a sandboxed request is never
    auto-approved; approving it needs the person's explicit full access. Fail closed, never open."""
    server = Server(tmp_path / "data", env={"BERTH_BWRAP": "/nonexistent/bwrap"})
    server.add_agent("alice")
    server.start()
    try:
        info = server.client("alice").info()["host_sandbox"]
        assert info["available"] is False and "bubblewrap" in info["reason"]
        trust(server, "touch *")
        marker = outside / "ran"
        r = server.client("alice").shell(f"touch {marker}", wait_s=1)
        assert r["status"] == "pending"
        listed = next(x for x in server.owner().approvals() if x["request_id"] == r["request_id"])
        assert any("No sandbox works here" in w for w in listed["warnings"])
        plain = berth(server.data_dir, "approvals", "approve", r["request_id"], check=False)
        assert plain.returncode == 1 and "full access" in plain.stderr and not marker.exists()
        berth(server.data_dir, "approvals", "approve", r["request_id"], "--full-access")
        done = server.client("alice").shell_status(r["request_id"], wait_s=30)
        assert done["access"] == "host" and marker.exists()
    finally:
        server.stop()


def test_a_sandboxed_command_cannot_reach_berths_own_port(server: Server) -> None:
    """Attack: a sandboxed command calls Berth's RPC port (with a token it found, or to probe it)."""
    port = server.url.rsplit(":", 1)[1]
    probe = f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3)\""
    r = server.client("alice").shell(probe)
    berth(server.data_dir, "approvals", "approve", r["request_id"])
    done = server.client("alice").shell_status(r["request_id"], wait_s=30)
    assert done["access"] == "sandbox" and done["result"]["exit_code"] != 0
    assert "Network is unreachable" in done["result"]["stderr"] or "refused" in done["result"]["stderr"]
