"""The MCP tools' input schemas say what `/rpc` checks: generated from the methods' `Param`s, and tested against them.

The schema is checked by calling each `Param`'s own `clean` with values taken from the schema (its bounds and
just past them, its choices, its defaults, a value of every JSON type), so a schema that promises more or
less than the API accepts fails here rather than in a client. Also here: every schema converts to OpenAI's
strict form with openai-agents' own code, and the shape of results and errors (sizes, hints).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import pytest
from agents.mcp import MCPServerStreamableHttp, MCPUtil

from app import errors
from app.errors import InvalidParams
from app.rpc.mcp import (
    HINTS,
    PREVIEW_CHARS,
    TEXT_COPY_MAX,
    TOOLS,
    TOOLS_BY_NAME,
    WAIT_S,
    ToolSpec,
    error_result,
    tool_result,
)
from app.rpc.methods import ENV, METHODS
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

TOOL_PARAMS = [
    pytest.param(tool, p, id=f"{tool.name}.{p.name}")
    for tool in TOOLS
    for p in (*METHODS[tool.method].params, *tool.wait_params)
]
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


def test_every_tool_calls_an_agent_method_and_no_two_tools_make_the_same_call() -> None:
    assert len(TOOLS_BY_NAME) == len(TOOLS)
    for tool in TOOLS:
        assert tool.method in METHODS, tool.name
        assert not METHODS[tool.method].owner_only, f"{tool.name} calls an owner-only method"
    calls = {(t.method, tuple(sorted(t.fixed.items())), t.then_wait) for t in TOOLS}
    assert len(calls) == len(TOOLS)


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_properties_and_required_are_the_methods_params(tool: ToolSpec) -> None:
    schema = tool.input_schema()
    params = (*METHODS[tool.method].params, *tool.wait_params)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert list(schema["properties"]) == [p.name for p in params if p.name not in tool.fixed]
    assert schema.get("required", []) == [p.name for p in params if p.required and p.name not in tool.fixed]
    # The tool's own text and defaults only name parameters the method has, and fixes none it shows.
    names = {p.name for p in params}
    assert set(tool.describe) <= names and set(tool.defaults) <= names and set(tool.fixed) <= names
    assert not set(tool.fixed) & (set(tool.describe) | set(tool.defaults))


def test_an_argument_the_tool_does_not_take_is_refused_by_its_own_names() -> None:
    """`background` is containers.run's, but run_command sets it itself: naming it is an unknown argument."""
    run = TOOLS_BY_NAME["run_command"]
    for name in ("background", "colour"):
        with pytest.raises(InvalidParams, match=f"^{name}: unknown argument") as e:
            run.arguments({"command": "true", name: True})
        assert "wait_s" in e.value.message and "background" not in e.value.message.split("takes:")[1]


def test_run_command_starts_a_run_and_waits_on_it() -> None:
    """run_command is containers.run in the background plus containers.wait's wait_s; start_command does not wait."""
    run, start = TOOLS_BY_NAME["run_command"], TOOLS_BY_NAME["start_command"]
    assert run.fixed == start.fixed == {"background": True}
    assert [p.name for p in run.wait_params] == ["wait_s"] and start.wait_params == ()
    assert "background" not in run.input_schema()["properties"]
    assert run.input_schema()["properties"]["wait_s"]["default"] == WAIT_S
    assert "wait_s" not in start.input_schema()["properties"]


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
    if p.name == "env":
        # The one parameter whose schema shows fewer forms than it takes: the list, which strict mode accepts,
        # not the map {"NAME": "value"} (see params.env_vars); both work.
        assert schema_types(s) == {"array"} and expected == {"object", "array"}
    else:
        assert schema_types(s) == expected
    allowed = expected | ({"integer"} if "number" in expected else set())
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
        # OpenAI's strict mode rejects a map (additionalProperties with a schema), and so an object of any kind.
        assert s.get("type") != "object" and "additionalProperties" not in s, s


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_every_schema_converts_to_openai_strict_mode(tool: ToolSpec) -> None:
    """What openai-agents does with `convert_schemas_to_strict`: its own conversion, which falls back to a
    non-strict tool (and logs it) when a schema cannot be made strict."""
    server = MCPServerStreamableHttp(params={"url": "http://127.0.0.1:9/mcp"}, name="berth")
    function_tool = MCPUtil.to_function_tool(tool.tool(), server, convert_schemas_to_strict=True)
    assert function_tool.strict_json_schema, f"{tool.name} is not strict"
    strict = function_tool.params_json_schema
    assert strict["additionalProperties"] is False and set(strict["required"]) == set(strict["properties"])


def test_env_takes_a_map_or_a_list_of_name_value_strings() -> None:
    assert ENV.clean({"A": "1", "B": ""}) == {"A": "1", "B": ""}
    assert ENV.clean(["A=1", "B=x=y", "C=", "A=2"]) == {"A": "2", "B": "x=y", "C": ""}  # the later A wins
    assert ENV.clean([]) == {} and ENV.clean(None) is None
    for bad in (["A"], ["=1"], [1], ["A\0=1"], ["A=\0"], {"A": 1}, {"": "x"}, {"A=B": "x"}, "A=1"):
        with pytest.raises(InvalidParams, match="env"):
            ENV.clean(bad)
    pattern = ENV.json_schema()["items"]["pattern"]
    for item in ("A=1", "B=", "x=y=z"):
        assert re.search(pattern, item) and ENV.clean([item])
    for item in ("A", "=1", ""):
        assert not re.search(pattern, item)


# -- results and errors ----------------------------------------------------------------------------


def event_size(result: Any) -> int:
    """The bytes of the JSON-RPC message that carries a tool result (what one SSE event holds)."""
    body = {"jsonrpc": "2.0", "id": 1, "result": result.model_dump(by_alias=True, exclude_none=True)}
    return len(json.dumps(body, ensure_ascii=False).encode())


def test_a_small_result_is_its_json_text_and_its_structured_content() -> None:
    value = {"run_id": "run-1", "status": "done", "exit_code": 0, "stdout": "hi\n", "stderr": ""}
    r = tool_result(TOOLS_BY_NAME["wait_command"], value)
    assert json.loads(r.content[0].text) == value == r.structured_content and not r.is_error
    r = tool_result(TOOLS_BY_NAME["list_files"], [{"path": "a"}])
    assert r.structured_content == {"entries": [{"path": "a"}]} and json.loads(r.content[0].text) == [{"path": "a"}]


LOG_LINE = 'said "hé" at line 0042\n'  # quotes and a newline that JSON escapes, a two-byte character


@pytest.mark.parametrize("output", ["a" * 900_000, "0123456789\n" * 82_000, LOG_LINE * 37_500])
def test_a_large_result_has_one_full_copy_and_fits_a_1_mib_event(output: str) -> None:
    """900 KB of output (one long line, short lines, a log with quotes) in one event under 1 MiB."""
    assert len(output.encode()) >= 900_000
    value = {"run_id": "run-1", "status": "done", "exit_code": 0, "stdout": output, "stderr": "warning\n"}
    r = tool_result(TOOLS_BY_NAME["run_command"], value)
    assert r.structured_content == value  # the one full copy
    text = r.content[0].text
    assert len(text) < 4000 and "structured content" in text and "What to do:" in text
    assert f"stdout: {len(output.encode()):,} bytes" in text and output[-PREVIEW_CHARS:] in text  # its end
    assert "stderr: " in text and "exit_code: 0" in text
    assert event_size(r) <= 1024 * 1024


def test_the_text_copy_stops_at_its_limit() -> None:
    tool = TOOLS_BY_NAME["read_file"]
    under = tool_result(tool, {"content": "x" * (TEXT_COPY_MAX - 100)})
    assert json.loads(under.content[0].text) == under.structured_content
    over = tool_result(tool, {"content": "x" * TEXT_COPY_MAX})
    assert over.content[0].text.startswith("The result is") and over.structured_content == {
        "content": "x" * TEXT_COPY_MAX
    }


def test_a_result_that_is_not_final_says_what_to_call_next() -> None:
    r = tool_result(TOOLS_BY_NAME["run_command"], {"run_id": "run-1", "status": "running", "stdout_so_far": ""})
    assert "wait_command" in r.structured_content["next"] and "run-1" in r.structured_content["next"]
    assert json.loads(r.content[0].text)["next"] == r.structured_content["next"]
    r = tool_result(TOOLS_BY_NAME["run_host_command"], {"request_id": "req-1", "status": "pending", "result": None})
    assert "check_host_command" in r.structured_content["next"]
    for tool, value in [("wait_command", {"run_id": "run-1", "status": "done"}), ("list_files", [])]:
        assert "next" not in json.dumps(tool_result(TOOLS_BY_NAME[tool], value).structured_content)


ERRORS = [
    cls("something went wrong")
    for cls in (
        errors.InvalidParams,
        errors.MethodNotFound,
        errors.Unauthorized,
        errors.Forbidden,
        errors.LimitReached,
        errors.NotFound,
        errors.Denied,
        errors.Timeout,
        errors.EngineUnavailable,
        errors.Conflict,
        errors.BerthError,
        errors.StorageFull,
    )
] + [errors.ImageUnavailable("x:1"), errors.NotFound("no such thing", hint="look elsewhere", extra="kept")]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: f"{e.kind}{'-hint' if e.hint else ''}")
def test_every_error_has_one_shape(error: errors.BerthError) -> None:
    r = error_result(error)
    assert r.is_error
    body = r.structured_content["error"]
    assert body["code"] == error.code and body["message"] == error.message
    assert body["data"]["kind"] == error.kind and body["data"]["hint"]
    assert body["data"]["hint"] == (error.hint or HINTS.get(error.kind, body["data"]["hint"]))
    assert r.content[0].text == f"{error.message}\nWhat to do: {body['data']['hint']}"
    assert {k: v for k, v in body["data"].items() if k != "hint"} == {
        k: v for k, v in error.data().items() if k != "hint"
    }


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
    # The MCP-only default for the tools that wait, which the API defaults to 0 (or, containers.run, blocks):
    # short enough for a client that gives up on a call after 5 s.
    for tool in ("run_command", "wait_command", "run_host_command", "check_host_command"):
        assert props[tool]["wait_s"]["default"] == WAIT_S <= 4
    assert TOOLS_BY_NAME["run_host_command"].arguments({"command": "ls"}) == {"command": "ls", "wait_s": WAIT_S}
    assert TOOLS_BY_NAME["run_host_command"].arguments({"command": "ls", "wait_s": 0})["wait_s"] == 0
