"""The MCP tools' input schemas say what `/rpc` checks: generated from the methods' `Param`s, and tested against them.

The schema is checked by calling each `Param`'s own `clean` with values taken from the schema (its bounds and
just past them, its choices, its defaults, a value of every JSON type), so a schema that promises more or
less than the API accepts fails here rather than in a client.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import pytest

from app.errors import InvalidParams
from app.rpc.mcp import HOST_WAIT_S, TOOLS, TOOLS_BY_NAME, ToolSpec
from app.rpc.methods import METHODS
from app.rpc.params import Check, Param

# A value of each JSON type, for "a value of a type the schema does not allow is refused".
SAMPLES: dict[str, Any] = {
    "string": "x",
    "integer": 7,
    "number": 7.5,
    "boolean": True,
    "object": {},
    "array": [],
    "null": None,
}
# Strings for checking a `pattern` against the check it states.
PATTERN_PROBES = ["/workspace", "/", "/a b", "web", "db-1.x_y", "a" * 63, "a" * 64, "Web", "-web", "rel/path", "", " "]
PY_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}

TOOL_PARAMS = [pytest.param(tool, p, id=f"{tool.name}.{p.name}") for tool in TOOLS for p in METHODS[tool.method].params]
ADVERTISED = [pytest.param(tool, p, id=f"{tool.name}.{p.name}") for tool in TOOLS for p in tool.params]


def prop(tool: ToolSpec, p: Param) -> dict[str, Any]:
    props: dict[str, dict[str, Any]] = tool.input_schema()["properties"]
    return props[p.name]


def schema_types(schema: dict[str, Any]) -> set[str]:
    if "anyOf" in schema:
        return {s["type"] for s in schema["anyOf"]}
    return {schema["type"]}


def accepts(p: Param, value: Any) -> bool:
    try:
        p.clean(value)
    except InvalidParams:
        return False
    return True


def below(x: float, integer: bool) -> float:
    return x - 1 if integer else math.nextafter(x, -math.inf)


def above(x: float, integer: bool) -> float:
    return x + 1 if integer else math.nextafter(x, math.inf)


def subschemas(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from subschemas(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from subschemas(value)


# -- the catalogue ---------------------------------------------------------------------------------


def test_every_tool_calls_an_agent_method_once() -> None:
    assert len(TOOLS_BY_NAME) == len(TOOLS)
    for tool in TOOLS:
        assert tool.method in METHODS, tool.name
        assert not METHODS[tool.method].owner_only, f"{tool.name} calls an owner-only method"
    assert len({t.method for t in TOOLS}) == len(TOOLS)


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_properties_and_required_are_the_methods_params(tool: ToolSpec) -> None:
    schema = tool.input_schema()
    params = METHODS[tool.method].params
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert list(schema["properties"]) == [p.name for p in params if p.name not in tool.fixed]
    assert schema.get("required", []) == [p.name for p in params if p.required and p.name not in tool.fixed]
    # The tool's own text and defaults only name parameters the method has, and fixes none it shows.
    names = {p.name for p in params}
    assert set(tool.describe) <= names and set(tool.defaults) <= names and set(tool.fixed) <= names
    assert not set(tool.fixed) & (set(tool.describe) | set(tool.defaults))


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_a_call_sends_the_tools_defaults_the_arguments_then_the_fixed_params(tool: ToolSpec) -> None:
    assert tool.arguments(None) == {**tool.defaults, **tool.fixed}
    given = {p.name: object() for p in tool.params}
    assert tool.arguments(given) == {**given, **tool.fixed}


# -- each parameter against its Param --------------------------------------------------------------


@pytest.mark.parametrize(("tool", "p"), TOOL_PARAMS)
def test_every_param_has_a_check_that_states_its_schema(tool: ToolSpec, p: Param) -> None:
    """A check that is not a `Check` would be invisible in the schema: every one says what it enforces."""
    assert p.check is None or isinstance(p.check, Check)
    assert p.description, f"{tool.method} {p.name}: no description"


@pytest.mark.parametrize(("tool", "p"), ADVERTISED)
def test_type_agrees(tool: ToolSpec, p: Param) -> None:
    s = prop(tool, p)
    kinds = p.kind if isinstance(p.kind, tuple) else (p.kind,)
    expected = {PY_TYPES[k] for k in kinds}
    if "number" in expected:
        expected.discard("integer")  # int-or-float is a number
    assert schema_types(s) == expected
    allowed = schema_types(s) | ({"integer"} if "number" in schema_types(s) else set())
    for json_type, sample in SAMPLES.items():
        if json_type == "null":
            # Null is accepted where the Param is nullable, but never advertised (see Param.json_schema).
            assert accepts(p, None) == p.nullable
        elif json_type not in allowed:
            assert not accepts(p, sample), f"{p.name} accepts a {json_type} its schema does not allow"


@pytest.mark.parametrize(("tool", "p"), ADVERTISED)
def test_range_agrees(tool: ToolSpec, p: Param) -> None:
    """The schema's minimum and maximum are accepted, and just outside them is refused; no bound, no limit."""
    s = prop(tool, p)
    if not schema_types(s) & {"integer", "number"}:
        assert "minimum" not in s and "maximum" not in s
        return
    integer = s.get("type") == "integer"
    if "minimum" in s:
        assert accepts(p, s["minimum"]) and not accepts(p, below(s["minimum"], integer)), p.name
    else:
        assert accepts(p, -(10**15)), f"{p.name} has a lower bound its schema does not state"
    if "maximum" in s:
        assert accepts(p, s["maximum"]) and not accepts(p, above(s["maximum"], integer)), p.name
    else:
        assert accepts(p, 10**15), f"{p.name} has an upper bound its schema does not state"


@pytest.mark.parametrize(("tool", "p"), ADVERTISED)
def test_choices_agree(tool: ToolSpec, p: Param) -> None:
    s = prop(tool, p)
    if "enum" not in s:
        return
    for choice in s["enum"]:
        assert accepts(p, choice), (p.name, choice)
    assert not accepts(p, "not-" + "-".join(s["enum"])), f"{p.name} accepts a value outside its enum"


@pytest.mark.parametrize(("tool", "p"), ADVERTISED)
def test_array_and_pattern_limits_agree(tool: ToolSpec, p: Param) -> None:
    s = prop(tool, p)
    if "maxItems" in s:
        item = "80"
        assert accepts(p, [item] * s["maxItems"]) and not accepts(p, [item] * (s["maxItems"] + 1)), p.name
    for alt in s.get("anyOf", []):
        if alt.get("minItems") == 1:
            assert not accepts(p, []) and accepts(p, ["x"]), p.name
    if "pattern" in s:
        # A value the check accepts must match the pattern (a client that validates would refuse it otherwise);
        # the check may refuse more than the pattern can say (NUL characters).
        matched = [v for v in PATTERN_PROBES if re.search(s["pattern"], v)]
        assert matched and len(matched) < len(PATTERN_PROBES), "the probes do not exercise the pattern"
        for v in PATTERN_PROBES:
            if accepts(p, v):
                assert v in matched, f"{p.name}: the check accepts {v!r}, the schema's pattern does not"
            if v not in matched:
                assert not accepts(p, v), f"{p.name}: the pattern refuses {v!r}, the check accepts it"


@pytest.mark.parametrize(("tool", "p"), ADVERTISED)
def test_default_agrees(tool: ToolSpec, p: Param) -> None:
    """The schema's default is the tool's own (where it has one) or the API's, and is a valid value."""
    s = prop(tool, p)
    if p.required:
        assert "default" not in s
        return
    if p.name in tool.defaults:
        assert s["default"] == tool.defaults[p.name]
    elif p.default is None:
        # "Omitted" means the method decides (the description says what): no default to show.
        assert "default" not in s and p.nullable
        return
    else:
        assert s["default"] == p.default
    assert p.clean(s["default"]) == s["default"]


@pytest.mark.parametrize(("tool", "p"), ADVERTISED)
def test_description_is_the_params_unless_the_tool_words_it(tool: ToolSpec, p: Param) -> None:
    assert prop(tool, p)["description"] == tool.describe.get(p.name, p.description)


# -- what clients need -----------------------------------------------------------------------------


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_schemas_suit_the_clients_we_know(tool: ToolSpec) -> None:
    schema = tool.input_schema()
    for s in subschemas(schema["properties"]):
        # Gemini rejects a type array (["string", "null"]) and an array without items: every request fails.
        assert not isinstance(s.get("type"), list), s
        if s.get("type") == "array":
            assert "items" in s, s
    # OpenAI's strict mode rejects a map (additionalProperties with a schema). `env` is the one map, kept as the
    # API defines it (see params.str_map); a new one should be a conscious choice, so this lists them.
    maps = {name for name, s in schema["properties"].items() if isinstance(s.get("additionalProperties"), dict)}
    assert maps <= {"env"}


def test_the_schema_is_a_fresh_copy() -> None:
    """Changing one listed schema must not change the next (the checks' keywords are shared)."""
    tool = TOOLS_BY_NAME["run_command"]
    tool.input_schema()["properties"]["command"]["anyOf"][1]["items"]["type"] = "integer"
    assert tool.input_schema()["properties"]["command"]["anyOf"][1]["items"] == {"type": "string"}


def test_the_drift_that_was_found_stays_fixed() -> None:
    """The hand-written catalogue had drifted from /rpc; these are the places, now generated."""
    props = {t.name: t.input_schema()["properties"] for t in TOOLS}
    assert props["stop_container"]["timeout_s"]["minimum"] == 0  # was 0.1; /rpc accepts 0..600
    assert props["container_logs"]["tail"]["maximum"] == 10_000_000  # was unbounded
    assert props["container_logs"]["since"]["maximum"] == 10**11  # was unbounded
    assert props["start_service"]["ports"]["maxItems"] == 32  # was unbounded
    assert props["run_command"]["workdir"]["pattern"] == "^/"  # absolute, as the check requires
    # The MCP-only default for the host tools, which the API defaults to 0.
    assert props["run_host_command"]["wait_s"]["default"] == HOST_WAIT_S == 30
    assert props["check_host_command"]["wait_s"]["default"] == HOST_WAIT_S
    assert TOOLS_BY_NAME["run_host_command"].arguments({"command": "ls"}) == {"command": "ls", "wait_s": 30}
    assert TOOLS_BY_NAME["run_host_command"].arguments({"command": "ls", "wait_s": 0})["wait_s"] == 0
