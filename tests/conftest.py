"""Shared fixtures. Tests under tests/engine and tests/e2e use the real Docker engine and the
locally built images (`make test` builds them); the others never talk to it."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

BUSYBOX = "berth/busybox:latest"
PYTHON = "berth/python:3"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "engine" in parts or "e2e" in parts:
            item.add_marker(pytest.mark.engine)


def docker_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=120)


def remove_instance_containers(instance: str) -> None:
    ids = docker_cli("ps", "-aq", "--filter", f"label=berth.instance={instance}", check=False).stdout.split()
    if ids:
        docker_cli("rm", "-f", *ids, check=False)


@pytest.fixture
def instance() -> Iterator[str]:
    """A fresh Berth instance id; every container it labels is removed after the test."""
    value = "t" + secrets.token_hex(5)
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
