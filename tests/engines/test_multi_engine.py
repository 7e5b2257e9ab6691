"""Berth drives two engines at once (issue #18; API.md "Engines — more than one machine").

A running `berth serve` with the local engine and a second one added through the command line (a dockerd on
127.0.0.1 over TLS that stands in for a remote machine, tests/engines/conftest.py). An agent placed there runs
there and not here; its workspace travels both ways although that engine is told it cannot see this machine's
folders (`--files sync`); the owner sees each container's engine; that engine going away fails only its own
agents, fast, with -32007 naming it, and they work again when it is back, with no restart.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import BerthError
from tests.e2e.conftest import Server, berth
from tests.engines.conftest import SecondEngine, containers_on, local_containers, remove_instance

pytestmark = pytest.mark.engine


@pytest.fixture
def two_engines(tmp_path: Path, second_engine: SecondEngine) -> Iterator[tuple[Server, SecondEngine]]:
    s = Server(tmp_path / "data")
    s.add_agent("alice")
    s.start()
    try:
        added = berth(
            s.data_dir,
            "engines", "add", "b",
            "--host", second_engine.host,
            "--tls-ca", str(second_engine.ca),
            "--tls-cert", str(second_engine.cert),
            "--tls-key", str(second_engine.key),
            "--files", "sync",
        )  # fmt: skip
        assert "engine b: Docker" in added.stdout, added.stdout + added.stderr
        s.add_agent("bob", "--engine", "b")
        yield s, second_engine
    finally:
        s.stop()
        remove_instance(second_engine, s.instance)


def test_an_agent_on_the_second_engine_runs_there_with_its_workspace(two_engines: tuple[Server, SecondEngine]) -> None:
    s, b = two_engines
    bob = s.client("bob")
    bob.call("workspace.write", path="in/hello.txt", content="hello from the host\n")

    r = bob.call(
        "containers.run",
        command=["sh", "-c", "cat /workspace/in/hello.txt; id -u; echo made there > /workspace/out.txt"],
    )
    assert r["exit_code"] == 0, r
    assert r["stdout"].startswith("hello from the host\n"), r
    # It came home: the agent reads what its run wrote, through the API and in the folder.
    assert bob.call("workspace.read", path="out.txt")["content"] == "made there\n"

    # A service of bob's runs on b, not here; the owner sees it with its engine, and engines.list counts it.
    bob.call("services.start", name="web", image="berth/busybox:latest", command=["sleep", "300"])
    on_b, here = containers_on(b, s.instance), local_containers(s.instance)
    assert any(n.endswith(".bob.web") for n in on_b), on_b
    assert not any(".bob." in n for n in here), here
    owner = s.owner()
    engines = {e["name"]: e for e in owner.call("engines.list")}
    assert engines["b"]["available"] and engines["b"]["containers"] >= 1 and engines["b"]["agents"] == ["bob"]
    assert engines["local"]["available"]
    listed = bob.call("containers.list")
    assert [c["engine"] for c in listed if c["name"] == "web"] == ["b"]
    info = bob.call("system.info")
    assert info["engine"]["name"] == "b" and info["engine"]["endpoint"] == b.host

    # The service writes; a read brings it home. The agent writes; the next run sees it.
    bob.call("containers.exec", id="web", command=["sh", "-c", "echo from the service > /workspace/svc.txt"])
    assert bob.call("workspace.read", path="svc.txt")["content"] == "from the service\n"
    bob.call("workspace.delete", path="in/hello.txt")
    r = bob.call("containers.run", command=["sh", "-c", "ls /workspace/in; cat /workspace/svc.txt"])
    assert r["stdout"] == "from the service\n", r

    # alice stays on the local engine.
    r = s.client("alice").call("containers.run", command=["echo", "here"])
    assert r["stdout"] == "here\n"
    assert not any(".alice." in n for n in containers_on(b, s.instance))


def test_a_conflict_keeps_the_local_file_and_the_engines_beside_it(two_engines: tuple[Server, SecondEngine]) -> None:
    """Both sides change one file between syncs: nothing is lost, the local one wins its name."""
    s, _b = two_engines
    bob = s.client("bob")
    bob.call("workspace.write", path="notes.txt", content="v1\n")
    bob.call("services.start", name="svc", image="berth/busybox:latest", command=["sleep", "300"])
    bob.call("containers.exec", id="svc", command=["sh", "-c", "echo engine > /workspace/notes.txt"])
    time.sleep(1.1)  # a different whole second: the quick check compares size and mtime
    (s.data_dir / "workspaces" / "bob" / "notes.txt").write_text("local edit\n")
    assert bob.call("workspace.read", path="notes.txt")["content"] == "local edit\n"
    assert bob.call("workspace.read", path="notes.txt.conflict-b")["content"] == "engine\n"


def test_a_link_made_on_the_engine_never_writes_outside_the_workspace(
    two_engines: tuple[Server, SecondEngine], tmp_path: Path
) -> None:
    """Attack: a run on the remote engine leaves a symbolic link to a folder of the host (and a file through it),
    hoping the copy home follows it and writes there."""
    s, _b = two_engines
    target = tmp_path / "outside"
    target.mkdir()
    bob = s.client("bob")
    r = bob.call(
        "containers.run",
        command=["sh", "-c", f"ln -s {target} /workspace/escape && ln -s /etc/passwd /workspace/pw; echo x"],
    )
    assert r["exit_code"] == 0, r
    bob.call("containers.run", command=["sh", "-c", "mkdir -p /workspace/d && echo owned > /workspace/d/f"])
    assert list(target.iterdir()) == []
    ws = s.data_dir / "workspaces" / "bob"
    assert not (ws / "escape").exists() and not (ws / "pw").is_symlink()
    assert (ws / "d" / "f").read_text() == "owned\n"


def test_an_unreachable_engine_fails_only_its_agents_and_comes_back(two_engines: tuple[Server, SecondEngine]) -> None:
    """b stops answering (its port refuses connections, as a remote machine gone off the network would): bob's
    requests fail at once with -32007 naming b, alice's go on; b answers again and bob works with no restart."""
    s, b = two_engines
    bob, alice = s.client("bob"), s.client("alice")
    assert bob.call("containers.run", command=["true"])["exit_code"] == 0
    port = b.host.rsplit(":", 1)[1]
    rule = ["INPUT", "-i", "lo", "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "tcp-reset"]
    subprocess.run(["iptables", "-I", *rule], check=True)
    try:
        started = time.monotonic()
        with pytest.raises(BerthError) as e:
            bob.call("containers.run", command=["true"])
        took = time.monotonic() - started
        assert e.value.code == -32007, e.value
        assert "'b'" in e.value.message, e.value.message
        assert took < 20, f"bob's request took {took:.1f} s to fail"
        assert alice.call("containers.run", command=["echo", "ok"])["stdout"] == "ok\n"
        listed = s.owner().call("engines.list")
        assert [e["available"] for e in listed if e["name"] == "b"] == [False]
    finally:
        subprocess.run(["iptables", "-D", *rule], check=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            assert bob.call("containers.run", command=["echo", "back"])["stdout"] == "back\n"
            break
        except BerthError as e:
            if time.monotonic() > deadline or e.code != -32007:
                raise
            time.sleep(0.5)


def test_engines_the_command_line_refuses(two_engines: tuple[Server, SecondEngine], tmp_path: Path) -> None:
    s, b = two_engines
    # Removing an engine an agent uses is refused, and says what to do.
    out = berth(s.data_dir, "engines", "remove", "b", check=False)
    assert out.returncode == 1 and "used by bob" in out.stderr, out.stderr
    # A tcp:// engine without TLS is refused (anyone on the network could run containers as root there).
    out = berth(s.data_dir, "engines", "add", "plain", "--host", "tcp://127.0.0.1:2375", check=False)
    assert out.returncode == 1 and "needs TLS" in out.stderr, out.stderr
    # An engine that does not answer is not added.
    out = berth(
        s.data_dir,
        "engines", "add", "nowhere",
        "--host", "tcp://127.0.0.1:9",
        "--tls-ca", str(b.ca), "--tls-cert", str(b.cert), "--tls-key", str(b.key),
        check=False,
    )  # fmt: skip
    assert out.returncode == 1 and "does not answer" in out.stderr, out.stderr
    # The local engine reached another way is refused: its containers would show twice.
    out = berth(s.data_dir, "engines", "add", "again", "--host", "unix:///var/run/docker.sock", check=False)
    assert out.returncode == 1 and "is engine 'local' already" in out.stderr, out.stderr
    # An agent cannot be placed on an engine that does not exist.
    out = berth(s.data_dir, "agents", "set", "alice", "--engine", "nope", check=False)
    assert out.returncode == 1 and "no engine named 'nope'" in out.stderr, out.stderr
    listed = berth(s.data_dir, "engines", "list").stdout
    assert "local" in listed and "b " in listed and "agents: bob" in listed, listed
