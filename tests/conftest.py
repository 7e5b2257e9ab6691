"""Shared fixtures. Tests under tests/engine and tests/e2e use the real Docker engine and the
locally built images (`make test` builds them); the others never talk to it."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

TEST_INSTANCE_PREFIX = "test-"  # every Berth instance a test makes; see clean_leftovers_in_ci
BUSYBOX = "berth/busybox:latest"
PYTHON = "berth/python:3"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "engine" in parts or "e2e" in parts:
            item.add_marker(pytest.mark.engine)


@pytest.fixture(scope="session", autouse=True)
def clean_leftovers_in_ci() -> None:
    """In CI, remove containers that an earlier, killed test run left behind (their names would collide).

    Only containers of test instances are touched, and only in CI: locally another test run may be going on.
    """
    if os.environ.get("CI") != "true":
        return
    out = docker_cli(
        "ps",
        "-a",
        "--filter",
        "label=berth.managed=true",
        "--format",
        '{{.ID}} {{.Label "berth.instance"}}',
        check=False,
    ).stdout
    stale = [
        line.split()[0]
        for line in out.splitlines()
        if line.split()[1:2] and line.split()[1].startswith(TEST_INSTANCE_PREFIX)
    ]
    if stale:
        docker_cli("rm", "-f", *stale, check=False)
    out = docker_cli(
        "network", "ls", "--filter", "label=berth.managed=true", "--format", '{{.ID}} {{.Label "berth.instance"}}'
    ).stdout
    rows = [line.split() for line in out.splitlines()]
    nets = [row[0] for row in rows if len(row) > 1 and row[1].startswith(TEST_INSTANCE_PREFIX)]
    if nets:
        docker_cli("network", "rm", *nets, check=False)


def missing_part(reason: str) -> NoReturn:
    """A part that `make test` installs is missing: skip when run by hand, fail under CI=true (there the
    set-up must have installed it, so its absence is a set-up bug, never a reason to test less)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; `make test` installs it, so under CI=true this is a set-up bug", pytrace=False)
    pytest.skip(reason)


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 15.0, interval: float = 0.05) -> None:
    """Poll `predicate` (from plain, synchronous tests) until it is true; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(interval)


def docker_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=120)


def remove_instance_containers(instance: str) -> None:
    """Every container of a test instance, then its agent networks (an engine has room for only a few dozen)."""
    ids = docker_cli("ps", "-aq", "--filter", f"label=berth.instance={instance}", check=False).stdout.split()
    if ids:
        docker_cli("rm", "-f", *ids, check=False)
    nets = docker_cli("network", "ls", "-q", "--filter", f"label=berth.instance={instance}", check=False).stdout
    if nets.split():
        docker_cli("network", "rm", *nets.split(), check=False)


@pytest.fixture
def instance() -> Iterator[str]:
    """A fresh Berth instance id; every container it labels is removed after the test."""
    value = TEST_INSTANCE_PREFIX + secrets.token_hex(5)
    yield value
    remove_instance_containers(value)
    for hierarchy in Path("/sys/fs/cgroup").glob(f"*/berth-{value}-*"):
        shutil.rmtree(hierarchy, ignore_errors=True) if not hierarchy.is_dir() else _rmdir_quiet(hierarchy)


def _rmdir_quiet(p: Path) -> None:
    try:
        p.rmdir()
    except OSError:
        pass


@pytest.fixture
async def engine(instance: str) -> AsyncIterator[object]:
    from app.engine import Engine

    e = Engine(instance)
    yield e
    await e.aclose()
