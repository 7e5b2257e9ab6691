"""Every agent method of API.md over HTTP against `berth serve` and the real engine, errors included."""

from __future__ import annotations

import base64
import time
import urllib.request

import pytest

from app.errors import Conflict, Forbidden, InvalidParams, NotFound, Unauthorized
from tests.conftest import BUSYBOX, docker_cli
from tests.e2e.conftest import Server, berth

HTTPD = "mkdir -p /tmp/www && echo hello > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"


def test_system_info(server: Server) -> None:
    info = server.client("alice").info()
    assert info["engine"]["available"] is True and info["engine"]["version"]
    assert info["agent"]["name"] == "alice"
    assert info["agent"]["limits"] == {
        "cpus": 1.0,
        "memory": 512 * 1024 * 1024,
        "max_containers": 4,
        "at_limit": "queue",
        "queue_timeout_s": 120.0,
        "network": True,
    }
    network = {"name": f"berth.{server.instance}.alice", "services": []}
    assert info["agent"]["usage"] == {"containers": 0, "cpus_in_use": 0.0, "queued": 0, "network": network}
    assert info["version"]


def test_containers_run(server: Server) -> None:
    c = server.client("alice")
    r = c.run("echo out; echo err >&2; exit 3", image=BUSYBOX)
    assert (r["exit_code"], r["stdout"], r["stderr"], r["timed_out"], r["truncated"]) == (
        3,
        "out\n",
        "err\n",
        False,
        False,
    )
    r = c.run(["sh", "-c", "echo $A; cat; pwd"], image=BUSYBOX, env={"A": "1"}, stdin="in\n", workdir="/tmp")
    assert r["stdout"] == "1\nin\n/tmp\n"
    r = c.run("sleep 30", image=BUSYBOX, timeout_s=1)
    assert r["timed_out"] is True
    # The default image is berth/python:3 when it is present.
    assert c.run(["python3", "-c", "print(6*7)"])["stdout"] == "42\n"


def test_containers_run_errors(server: Server) -> None:
    c = server.client("alice")
    with pytest.raises(InvalidParams, match="may not have it pulled") as e:  # the image policy (test_images.py)
        c.run("true", image="berth/nope:0")
    assert e.value.extra["image"] == "berth/nope:0"
    with pytest.raises(InvalidParams, match="command"):
        c.run("", image=BUSYBOX)
    with pytest.raises(InvalidParams, match="timeout_s"):
        c.run("true", image=BUSYBOX, timeout_s=99999)
    with pytest.raises(InvalidParams, match="network"):
        c.run("true", image=BUSYBOX, network="host")


def test_history_keeps_the_full_output(server: Server) -> None:
    c = server.client("alice")
    r = c.run("head -c 1500000 /dev/zero | tr '\\0' x", image=BUSYBOX)
    assert len(r["stdout"]) == 1024 * 1024 and r["truncated"]
    from app.core.store import Store

    store = Store(server.data_dir / "berth.sqlite3")
    try:
        (run,) = store.list_runs("alice")
        assert len(run.stdout) == 1_500_000
    finally:
        store.close()


def test_services_exec_logs_inspect_stop_restart_remove(server: Server) -> None:
    c = server.client("alice")
    svc = c.start_service("web", image=BUSYBOX, command=HTTPD, ports=[8080])
    assert svc["name"] == "web" and svc["status"] == "running"
    url = svc["ports"]["8080/tcp"]["url"]
    assert url.startswith("http://127.0.0.1:")
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                assert resp.read() == b"hello\n"
                break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    with pytest.raises(Conflict):
        c.start_service("web", image=BUSYBOX, command="sleep 100")
    with pytest.raises(InvalidParams, match="name"):
        c.start_service("Bad Name", image=BUSYBOX)

    assert c.exec("web", "echo $X; cat", env={"X": "y"}, stdin="z")["stdout"] == "y\nz"
    assert c.exec(svc["id"], ["sh", "-c", "exit 4"])["exit_code"] == 4

    listed = c.list()
    assert [x["name"] for x in listed] == ["web"] and listed[0]["kind"] == "service"
    assert listed[0]["ports"]["8080/tcp"]["url"] == url

    ins = c.inspect("web")
    assert ins["status"] == "running" and ins["stats"]["memory_limit_bytes"] == 512 * 1024 * 1024
    assert ins["started_at"] and ins["exit_code"] is None

    c.exec("web", "echo to-log > /proc/1/fd/1")
    logs = c.logs("web")
    assert "to-log" in logs["logs"] and logs["truncated"] is False
    assert c.logs("web", tail=1, timestamps=True)["logs"].split(" ", 1)[1] == "to-log\n"

    stopped = c.stop("web", timeout_s=1)
    assert stopped["status"] == "exited"
    assert c.list(all=False) == []
    with pytest.raises(Conflict):
        c.exec("web", "true")
    assert c.restart("web", timeout_s=1)["status"] == "running"
    with pytest.raises(Conflict):
        c.remove("web")
    assert c.remove("web", force=True) == {"removed": True}
    with pytest.raises(NotFound):
        c.inspect("web")


def test_network_off_agent_is_refused_bridge_and_ports(server: Server) -> None:
    berth(server.data_dir, "agents", "set", "bob", "--no-network")
    c = server.client("bob")
    with pytest.raises(Forbidden, match="network"):
        c.run("true", image=BUSYBOX, network="bridge")
    with pytest.raises(Forbidden, match="network"):
        c.start_service("web", image=BUSYBOX, command="sleep 100", ports=[80])
    svc = c.start_service("quiet", image=BUSYBOX, command="sleep 100")
    assert svc["ports"] == {}


def test_workspace_methods(server: Server) -> None:
    c = server.client("alice")
    assert c.write("dir/a.txt", "héllo") == {"size": 6}
    assert c.read("dir/a.txt") == {"content": "héllo", "encoding": "utf-8", "size": 6}
    blob = base64.b64encode(bytes(range(256))).decode()
    c.write("bin.dat", blob, encoding="base64")
    assert c.read("bin.dat", encoding="base64")["content"] == blob
    names = {e["path"]: e["type"] for e in c.ls()}
    assert names == {"dir": "dir", "bin.dat": "file"}
    # The workspace is what containers see at /workspace, both ways.
    assert c.run("cat dir/a.txt; echo made > from-container.txt", image=BUSYBOX)["stdout"] == "héllo"
    assert c.read("from-container.txt")["content"] == "made\n"
    assert c.delete("dir") == {"deleted": True}
    with pytest.raises(NotFound):
        c.read("dir/a.txt")
    for bad in ("../x", "/etc/passwd", "a/../../x"):
        with pytest.raises(InvalidParams, match="path"):
            c.read(bad)


def test_berth_agents_remove_does_what_the_window_does(server: Server) -> None:
    """`berth agents remove` goes through the running core, as the window's Remove does: the agent's containers
    and its network go too, its token stops working, and the audit says who (unless --keep-containers)."""
    bob = server.client("bob")
    svc = bob.start_service("web", image=BUSYBOX, command="sleep 300")
    out = berth(server.data_dir, "agents", "remove", "bob")
    assert "removed agent bob" in out.stdout
    assert docker_cli("ps", "-aq", "--filter", f"id={svc['id']}").stdout.strip() == ""
    with pytest.raises(Unauthorized):
        bob.list()
    mine = f"label=berth.instance={server.instance}"
    nets = docker_cli("network", "ls", "-q", "--filter", mine, "--filter", "label=berth.agent=bob").stdout
    assert nets.strip() == ""
