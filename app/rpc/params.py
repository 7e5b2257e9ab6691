"""Declarative parameter checking for API methods: names, types, ranges; the error names the parameter.

Each `Param` also describes itself as JSON Schema (`Param.json_schema`), from the same type, default and
checks that `/rpc` applies, so the MCP tool catalogue (and any docs) are generated, never copied.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.errors import InvalidParams

REQUIRED: Any = object()

JSON_TYPES: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
}


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(JSON_TYPES.get(k, k.__name__) for k in kinds)


def _json_types(kind: type | tuple[type, ...]) -> list[str]:
    """The JSON Schema types of a Python kind; int-or-float is one "number" (an integer is a number)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = [JSON_TYPES[k] for k in kinds]
    if "number" in names:
        names = [n for n in names if n != "integer"]
    return names


@dataclass(frozen=True, eq=False)
class Check:
    """A parameter check (returns the cleaned value, raises ValueError) and the JSON Schema keywords it enforces.

    `schema` is what a generated schema says about the check: `in_range` is minimum/maximum, `one_of` an enum.
    Where JSON Schema cannot say it all (no NUL characters, a command that is not blank), the keywords are the
    part it can; the check stays the one that decides. Every array gets `items`: Gemini rejects one without.
    """

    fn: Callable[[Any], Any]
    schema: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, value: Any) -> Any:
        return self.fn(value)


def check(**schema: Any) -> Callable[[Callable[[Any], Any]], Check]:
    """Make a function a `Check` that enforces `schema`: `@check(pattern="^/")`."""

    def wrap(fn: Callable[[Any], Any]) -> Check:
        return Check(fn, schema)

    return wrap


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
    """One named parameter: its JSON type(s), default, an optional check that returns the cleaned value, and
    a sentence for whoever calls it (the MCP tool schema shows it; API docs may too)."""

    name: str
    kind: type | tuple[type, ...]
    default: Any = REQUIRED
    check: Check | None = None
    nullable: bool = False
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def json_schema(self) -> dict[str, Any]:
        """This parameter as JSON Schema: type(s), the check's keywords, the default (if any), the description.

        `nullable` is not written as a `null` type: a type array such as `["string", "null"]` makes Gemini reject
        the whole tool list (400 on every request), and leaving the parameter out of `required` already says
        it may be omitted. Null is still accepted and means the same as leaving it out.
        """
        types = _json_types(self.kind)
        schema: dict[str, Any] = {"type": types[0]} if len(types) == 1 else {"anyOf": [{"type": t} for t in types]}
        if self.check is not None:
            stated = copy.deepcopy(dict(self.check.schema))  # the caller may change its copy
            if "type" in stated or "anyOf" in stated:
                # The check states the types itself: `env` advertises only the form every client can take.
                schema.pop("type", None)
                schema.pop("anyOf", None)
            schema.update(stated)
        if not self.required and self.default is not None:
            schema["default"] = self.default
        if self.description:
            schema["description"] = self.description
        return schema

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


def _number(x: float) -> float:
    """1e11 as 100000000000 in a schema, 0.1 as 0.1."""
    return int(x) if float(x).is_integer() else x


def in_range(lo: float, hi: float) -> Check:
    @check(minimum=_number(lo), maximum=_number(hi))
    def check_range(v: Any) -> Any:
        if not lo <= v <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g}")
        return v

    return check_range


def one_of(*choices: str) -> Check:
    @check(enum=list(choices))
    def check_choice(v: Any) -> Any:
        if v not in choices:
            raise ValueError(f"must be one of {', '.join(repr(c) for c in choices)}")
        return v

    return check_choice


@check(anyOf=[{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}])
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


# Environment variables: a map {"NAME": "value"}, or a list of "NAME=value" strings (as `docker run -e` takes
# them; a later NAME wins). The schema advertises only the list: OpenAI's strict mode rejects a map (an object
# with `additionalProperties` other than false), so that is the form every MCP client can send.
@check(type="array", items={"type": "string", "pattern": "^[^=]+="})
def env_vars(v: Any) -> Any:
    pairs: list[tuple[Any, Any]] = []
    if isinstance(v, list):
        for item in v:
            if not isinstance(item, str) or "=" not in item:
                raise ValueError(f"each item must be a 'NAME=value' string, not {item!r:.60}")
            name, _, value = item.partition("=")
            pairs.append((name, value))
    else:
        pairs = list(v.items())
    out: dict[str, str] = {}
    for key, value in pairs:
        if not isinstance(value, str):
            raise ValueError(f"value of {key!r} must be a string")
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ValueError(f"{key!r} is not a valid environment variable name")
        out[key] = value
    return out


@check(items={"anyOf": [{"type": "integer"}, {"type": "string"}]}, maxItems=32)
def ports(v: Any) -> Any:
    if len(v) > 32:
        raise ValueError("at most 32 ports")
    for p in v:
        if not isinstance(p, int | str) or isinstance(p, bool):
            raise ValueError('each port must be a number or a string like "5432/tcp"')
    return [str(p) for p in v]


@check(pattern="^/")
def abs_path(v: Any) -> Any:
    if not v.startswith("/") or "\0" in v:
        raise ValueError("must be an absolute path inside the container")
    return v
