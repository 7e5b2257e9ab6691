"""The engine interface (`app.engine.backend.Backend`) covers what the rest of Berth asks of the engine.

mypy checks that the Docker facade implements `Backend`; this checks the other side: every `<x>.engine.NAME`
in app/core, app/rpc and app/ui is a member of `Backend`, so a second backend that implements the interface
is enough for the core, and a new use of the engine shows up here until the interface says it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from app.engine.backend import CpuQuotaMechanism, EngineSet, WarmPoolControl

APP = Path(__file__).resolve().parents[2] / "app"


def _uses(*path: str) -> dict[str, set[str]]:
    """NAME -> the files where `<something>.<path...>.NAME` occurs, e.g. `self._app.engine.NAME` for ("engine",)."""
    uses: dict[str, set[str]] = {}
    for layer in ("core", "rpc", "ui"):
        for file in sorted((APP / layer).rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text(), str(file))):
                if not isinstance(node, ast.Attribute):
                    continue
                value: ast.expr = node.value
                for part in reversed(path):
                    if not (isinstance(value, ast.Attribute) and value.attr == part):
                        break
                    value = value.value
                else:
                    uses.setdefault(node.attr, set()).add(str(file.relative_to(APP)))
    return uses


def _members(protocol: type) -> set[str]:
    return {name for klass in protocol.__mro__ for name in vars(klass) if not name.startswith("_")}


def _missing(uses: dict[str, set[str]], protocol: type) -> dict[str, list[str]]:
    return {name: sorted(files) for name, files in uses.items() if name not in _members(protocol)}


def test_everything_the_core_uses_of_the_engine_is_in_the_interface() -> None:
    uses = _uses("engine")
    assert {"run_temporary", "get", "list_containers", "pool"} <= set(uses)  # the scan finds the known uses
    assert not _missing(uses, EngineSet), "used of the engine but not in app/engine/backend.py's EngineSet"


def test_the_pool_and_cpu_parts_the_core_uses_are_in_the_interface() -> None:
    pool, cpu = _uses("engine", "pool"), _uses("cpu_groups")
    assert "drain" in pool and "mechanism" in cpu
    assert not _missing(pool, WarmPoolControl)
    assert not _missing(cpu, CpuQuotaMechanism)
