"""The JSON-RPC server never answers 500: malformed bodies of every kind get a JSON-RPC error.

Attack: an agent (with a valid token) sends a body nested 100 000 deep, numbers too large for a float,
lone surrogates, NUL, invalid UTF-8, or random bytes, hoping to crash the handler or fill the log with
tracebacks. Every answer must be HTTP 200/204/400 with a JSON-RPC error, and the server must answer
/health afterwards.
"""

from __future__ import annotations

import json
import random
import urllib.request

from tests.e2e.conftest import Server

SEED = 20261201


def bodies() -> list[bytes]:
    rng = random.Random(SEED)
    fixed = [
        b"[" * 100 + b"]" * 100,
        b"[" * 10_000 + b"]" * 10_000,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b'{"jsonrpc":"2.0","id":1,"method":"system.info","params":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b"1e999999",
        b'{"jsonrpc":"2.0","id":1e999,"method":"system.info"}',
        b'{"jsonrpc":"2.0","id":' + b"9" * 5000 + b',"method":"system.info"}',
        b'{"jsonrpc":"2.0","id":NaN,"method":"system.info"}',
        b'{"jsonrpc":"2.0","id":"\\ud800","method":"\\udfff"}',
        b'{"jsonrpc":"2.0","id":1,"method":"shell.request","params":{"command":"\\ud800 ls"}}',
        b'{"jsonrpc":"2.0","id":1,"method":"system.info\\u0000"}',
        b'{"jsonrpc":"2.0","id":1,"method":"workspace.write","params":{"path":"a\\u0000b","content":"x"}}',
        b"\xff\xfe\x00{",
        b'{"jsonrpc":"2.0","id":"\xc3\x28","method":"system.info"}',
        b"",
        b"null",
        b"[]",
        b"[1,2,3]",
        b'{"jsonrpc":"2.0","id":[1],"method":"system.info"}',
        b'{"jsonrpc":"2.0","id":1,"method":"containers.run","params":{"command":{"a":' * 1000 + b"1" + b"}}" * 1000,
    ]
    fragments = [b"{", b"}", b"[", b"]", b'"', b":", b",", b"\\u", b"\\", b"d800", b"1e", b"999", b"null", b"\x00"]
    fragments += [b'"jsonrpc":"2.0"', b'"method":"system.info"', b'"id":', b'"params":', b"\xff", b"\xe2\x80\xae"]
    random_bodies = []
    for _ in range(1000):
        n = rng.randint(1, 40)
        random_bodies.append(b"".join(rng.choice(fragments) for _ in range(n)))
    return fixed + random_bodies


def test_no_body_gets_a_500_and_the_server_answers_after(server: Server) -> None:
    token = server.tokens["alice"]
    statuses: dict[int, int] = {}
    for body in bodies():
        status, reply = server.raw(None, token=token, data=body)
        statuses[status] = statuses.get(status, 0) + 1
        assert status in (200, 204, 400), (status, body[:80], reply)
        if status == 200 and not isinstance(reply, list):
            assert isinstance(reply, dict) and ("error" in reply or "result" in reply), (body[:80], reply)
            if "error" in reply:
                assert reply["error"]["code"] in (-32700, -32600, -32601, -32602, -32004, -32003, -32009)
    with urllib.request.urlopen(server.url + "/health", timeout=5) as r:
        assert json.loads(r.read()) == {"ok": True}
    log = (server.data_dir / "serve.log").read_text()
    assert "Traceback" not in log and "internal error" not in log
    assert statuses.get(200, 0) > 900
