"""Declarative parameter checking for API methods: names, types, ranges; the error names the parameter."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import InvalidParams

REQUIRED: Any = object()


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _is(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, kind)


@dataclass(frozen=True)
class Param:
    """One named parameter: its JSON type(s), default, and an optional check that returns the cleaned value."""

    name: str
    kind: type | tuple[type, ...]
    default: Any = REQUIRED
    check: Callable[[Any], Any] | None = None
    nullable: bool = False

    def clean(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if not any(_is(value, k) for k in kinds):
            raise InvalidParams(f"{self.name}: expected {_type_name(self.kind)}, got {type(value).__name__}")
        if self.check is not None:
            try:
                return self.check(value)
            except InvalidParams:
                raise
            except (ValueError, TypeError) as e:
                raise InvalidParams(f"{self.name}: {e}") from e
        return value


def parse_params(specs: Sequence[Param], params: Any) -> dict[str, Any]:
    """Check a request's params against `specs`; unknown, missing and mistyped ones are InvalidParams."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidParams("params: must be an object with named parameters")
    known = {p.name for p in specs}
    for name in params:
        if name not in known:
            raise InvalidParams(f"{name}: unknown parameter (this method takes: {', '.join(sorted(known)) or 'none'})")
    out: dict[str, Any] = {}
    for p in specs:
        if p.name in params:
            out[p.name] = p.clean(params[p.name])
        elif p.default is REQUIRED:
            raise InvalidParams(f"{p.name}: missing required parameter")
        else:
            out[p.name] = p.default
    return out


# -- reusable checks -----------------------------------------------------------------------------


def in_range(lo: float, hi: float) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if not lo <= v <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g}")
        return v

    return check


def one_of(*choices: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if v not in choices:
            raise ValueError(f"must be one of {', '.join(repr(c) for c in choices)}")
        return v

    return check


def command(v: Any) -> Any:
    if isinstance(v, str):
        if not v.strip():
            raise ValueError("must not be empty")
        if "\0" in v:
            raise ValueError("must not contain NUL characters")
        return v
    if not v or not all(isinstance(a, str) for a in v):
        raise ValueError("must be a non-empty string or a non-empty array of strings")
    if any("\0" in a for a in v):
        raise ValueError("must not contain NUL characters")
    return list(v)


def str_map(v: Any) -> Any:
    for key, value in v.items():
        if not isinstance(value, str):
            raise ValueError(f"value of {key!r} must be a string")
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ValueError(f"{key!r} is not a valid environment variable name")
    return dict(v)


def ports(v: Any) -> Any:
    if len(v) > 32:
        raise ValueError("at most 32 ports")
    for p in v:
        if not isinstance(p, int | str) or isinstance(p, bool):
            raise ValueError('each port must be a number or a string like "5432/tcp"')
    return [str(p) for p in v]


def abs_path(v: Any) -> Any:
    if not v.startswith("/") or "\0" in v:
        raise ValueError("must be an absolute path inside the container")
    return v
