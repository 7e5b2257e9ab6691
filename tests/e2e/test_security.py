"""Attacks on the RPC port and between agents. Each test says the attack it tries."""

from __future__ import annotations

import json
import socket

import pytest

from app.errors import NotFound
from tests.conftest import BUSYBOX
from tests.e2e.conftest import Server


def test_agent_cannot_touch_another_agents_containers(server: Server) -> None:
    """Attack: bob knows (or guesses) alice's container id and name and tries every container method on it."""
    alice, bob = server.client("alice"), server.client("bob")
    svc = alice.start_service("private", image=BUSYBOX, command="sleep 300")
    assert bob.list() == []
    for ref in (svc["id"], svc["id"][:12], "private", f"berth.{server.instance}.alice.private", "berth-alice-private"):
        for call in (
            lambda r: bob.inspect(r),
            lambda r: bob.exec(r, "true"),
            lambda r: bob.logs(r),
            lambda r: bob.stop(r),
            lambda r: bob.restart(r),
            lambda r: bob.remove(r, force=True),
        ):
            with pytest.raises(NotFound) as e:
                call(ref)
            assert e.value.code == -32004
    assert alice.inspect("private")["status"] == "running"


def test_agent_cannot_read_another_agents_workspace(server: Server) -> None:
    """Attack: bob climbs out of his workspace into alice's, by relative and absolute paths."""
    alice, bob = server.client("alice"), server.client("bob")
    alice.write("secret.txt", "alice's")
    with pytest.raises(NotFound):
        bob.read("secret.txt")
    for path in ("../alice/secret.txt", str(server.data_dir / "workspaces" / "alice" / "secret.txt")):
        with pytest.raises(Exception) as e:
            bob.read(path)
        assert getattr(e.value, "code", None) == -32602


def test_owner_and_agent_roles(server: Server) -> None:
    """Attack: an agent calls the owner's methods; the owner token is not an agent."""
    from app.errors import Forbidden

    with pytest.raises(Forbidden):
        server.client("alice").agents()
    assert {a["name"] for a in server.owner().agents()} == {"alice", "bob"}
    with pytest.raises(Forbidden):
        server.owner().run("true")


def _rpc(method: str = "system.info", id_: object = 1, **extra: object) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": {}, **extra}


def test_malformed_requests_get_the_specified_answers(server: Server) -> None:
    tok = server.tokens["alice"]
    # Malformed JSON -> -32700, id null.
    status, body = server.raw(None, token=tok, data=b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert status == 200 and body["error"]["code"] == -32700 and body["id"] is None
    # Wrong jsonrpc version -> -32600 with the id.
    status, body = server.raw({"jsonrpc": "1.0", "id": 5, "method": "system.info"}, token=tok)
    assert body["error"]["code"] == -32600 and body["id"] == 5
    # Missing method -> -32600; unknown method -> -32601.
    assert server.raw({"jsonrpc": "2.0", "id": 6}, token=tok)[1]["error"]["code"] == -32600
    status, body = server.raw(_rpc("no.such", 7), token=tok)
    assert body["error"]["code"] == -32601 and body["id"] == 7
    # Wrong param types and unknown params -> -32602 naming the parameter.
    body = server.raw({"jsonrpc": "2.0", "id": 8, "method": "containers.run", "params": {"command": 5}}, token=tok)[1]
    assert body["error"]["code"] == -32602 and "command" in body["error"]["message"]
    body = server.raw({"jsonrpc": "2.0", "id": 9, "method": "containers.list", "params": {"bogus": 1}}, token=tok)[1]
    assert body["error"]["code"] == -32602 and "bogus" in body["error"]["message"]
    body = server.raw({"jsonrpc": "2.0", "id": 10, "method": "containers.list", "params": {"all": "yes"}}, token=tok)[1]
    assert body["error"]["code"] == -32602 and "all" in body["error"]["message"]
    assert body["error"]["data"]["kind"] == "invalid_params"
    # A 9 MiB body -> HTTP 413.
    status, _ = server.raw(None, token=tok, data=b" " * (9 * 1024 * 1024))
    assert status == 413
    # A 51-entry batch -> -32600; a 50-entry batch is served.
    status, body = server.raw([_rpc(id_=i) for i in range(51)], token=tok)
    assert body["error"]["code"] == -32600
    status, body = server.raw([_rpc(id_=i) for i in range(50)], token=tok)
    assert sorted(r["id"] for r in body) == list(range(50)) and all("result" in r for r in body)
    # Empty batch -> -32600; a batch of junk -> one error per entry.
    assert server.raw([], token=tok)[1]["error"]["code"] == -32600
    body = server.raw([1, "x"], token=tok)[1]
    assert [r["error"]["code"] for r in body] == [-32600, -32600]
    # Notifications get no answer; a batch of notifications answers 204 with no body.
    status, body = server.raw({"jsonrpc": "2.0", "method": "system.info"}, token=tok)
    assert (status, body) == (204, None)
    status, body = server.raw([{"jsonrpc": "2.0", "method": "system.info"}, _rpc(id_="x")], token=tok)
    assert [r["id"] for r in body] == ["x"]
    # Positional params are refused clearly.
    body = server.raw({"jsonrpc": "2.0", "id": 11, "method": "containers.list", "params": [True]}, token=tok)[1]
    assert body["error"]["code"] == -32602
    # The server keeps serving.
    assert server.client("alice").info()["agent"]["name"] == "alice"


def test_tokens_are_checked(server: Server) -> None:
    """Attack: no token, a wrong token, a token of a disabled agent."""
    status, body = server.raw(_rpc())
    assert status == 401 and body["error"]["code"] == -32001
    status, body = server.raw(_rpc(), token="not-a-real-token")
    assert status == 401 and body["error"]["code"] == -32001
    status, body = server.raw(_rpc(), headers={"Authorization": "Basic " + server.tokens["alice"]})
    assert body["error"]["code"] == -32001
    from tests.e2e.conftest import berth

    berth(server.data_dir, "agents", "set", "bob", "--disable")
    status, body = server.raw(_rpc(), token=server.tokens["bob"])
    assert status == 403 and body["error"]["code"] == -32002
    berth(server.data_dir, "agents", "set", "bob", "--enable")
    assert server.raw(_rpc(), token=server.tokens["bob"])[1]["result"]["agent"]["name"] == "bob"


def test_browser_origins_and_foreign_hosts_are_refused(server: Server) -> None:
    """Attack: a web page POSTs to the port (CSRF) or reaches it through a rebinding DNS name."""
    tok = server.tokens["alice"]
    status, _ = server.raw(_rpc(), token=tok, headers={"Origin": "http://evil.example"})
    assert status == 403
    port = server.url.rsplit(":", 1)[1]
    status, _ = server.raw(_rpc(), token=tok, headers={"Host": f"evil.example:{port}"})
    assert status == 403
    status, _ = server.raw(_rpc(), token=tok, headers={"Host": "127.0.0.1:1"})
    assert status == 403
    # `Origin: null` (sandboxed documents, some CLIs) and no Origin are allowed, as API.md says.
    assert server.raw(_rpc(), token=tok, headers={"Origin": "null"})[0] == 200
    # /health answers without a token but still refuses browsers.
    import urllib.request

    req = urllib.request.Request(server.url + "/health", headers={"Origin": "http://evil.example"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 403


def test_server_listens_on_loopback_only(server: Server) -> None:
    """Attack: another machine on the LAN connects to the port."""
    port = int(server.url.rsplit(":", 1)[1])
    import subprocess

    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
    if out.strip():
        assert all(line.split()[3].startswith("127.0.0.1:") for line in out.strip().splitlines()), out
    addrs = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}
    for addr in addrs:
        with pytest.raises(OSError), socket.create_connection((addr, port), timeout=2):
            pass


def test_internal_errors_have_no_traceback(server: Server) -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "containers.exec", "params": {"id": "x" * 5000, "command": "true"}}
    ).encode()
    _status, reply = server.raw(None, token=server.tokens["alice"], data=body)
    assert "Traceback" not in json.dumps(reply)
