"""An engine named by a Docker context (issue #18): `berth engines add c --context NAME` works for real.

A context is made with the docker CLI, as a person would (`docker context create NAME --docker host=...,ca=...,
cert=...,key=...`), for the second engine of tests/engines/conftest.py (TLS on 127.0.0.1). The docker CLI and the
docker SDK both keep contexts under $DOCKER_CONFIG: it points at a temporary folder here, for the CLI and for the
`berth serve` under test, so the person's own ~/.docker is never read or written.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Server, berth
from tests.engines.conftest import SecondEngine, remove_instance

pytestmark = pytest.mark.engine


@pytest.fixture
def context_server(tmp_path: Path, second_engine: SecondEngine) -> Iterator[tuple[Server, dict[str, str]]]:
    env = {"DOCKER_CONFIG": str(tmp_path / "docker-config")}
    e = second_engine
    docker_spec = f"host={e.host},ca={e.ca},cert={e.cert},key={e.key}"
    subprocess.run(
        ["docker", "context", "create", "berth-test-ctx", "--docker", docker_spec],
        check=True,
        capture_output=True,
        env={**os.environ, **env},
        timeout=30,
    )
    s = Server(tmp_path / "data", env=env)
    s.add_agent("dora")
    s.start()
    try:
        yield s, env
    finally:
        s.stop()
        remove_instance(e, s.instance)


def test_an_engine_named_by_a_docker_context(context_server: tuple[Server, dict[str, str]]) -> None:
    s, env = context_server
    out = berth(s.data_dir, "engines", "add", "c", "--context", "berth-test-ctx", env=env)
    assert "engine c: Docker" in out.stdout and "context:berth-test-ctx" in out.stdout, out.stdout + out.stderr
    berth(s.data_dir, "agents", "set", "dora", "--engine", "c", env=env)
    dora = s.client("dora")
    r = dora.call("containers.run", command=["sh", "-c", "echo via the context > /workspace/ctx.txt; echo ok"])
    assert r["stdout"] == "ok\n", r
    assert dora.call("workspace.read", path="ctx.txt")["content"] == "via the context\n"
    engines = {e["name"]: e for e in s.owner().call("engines.list")}
    assert engines["c"]["available"] and engines["c"]["endpoint"] == "context:berth-test-ctx"

    # A context that does not exist is refused with what to do.
    out = berth(s.data_dir, "engines", "add", "d", "--context", "no-such-context", env=env, check=False)
    assert out.returncode == 1 and "no-such-context" in out.stderr, out.stderr
