"""A container that will not start: the caller's fault or the engine's, from the engine's real answers.

The texts are what Docker 20.10 on this machine kind answered (seen while building this table); the
network one is from the review (a service whose network endpoint could not be made). A fault of the
engine is never -32602 "invalid params".
"""

from __future__ import annotations

import docker.errors
import pytest
import requests

from app.engine.faults import EngineFault, start_fault
from app.errors import Conflict, EngineUnavailable, InvalidParams, NetworkUnavailable, NotFound, StorageFull


def api_error(status: int, text: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError("500 Server Error", response=response, explanation=text)


SHIM = "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: "

TABLE = [
    (400, SHIM + 'exec: "nope-not-a-program": executable file not found in $PATH: unknown', InvalidParams, -32602),
    (400, SHIM + 'exec: "/etc/passwd": permission denied: unknown', InvalidParams, -32602),
    (
        400,
        SHIM + 'chdir to cwd ("/no/such") set in config.json failed: not a directory: unknown',
        InvalidParams,
        -32602,
    ),
    (500, "could not find bridge docker0: route ip+net: no such network interface", NetworkUnavailable, -32007),
    (404, "network no-such-network not found", NetworkUnavailable, -32007),
    (500, "failed to create endpoint berth.x.web on network berth.x.alice: exchange full", NetworkUnavailable, -32007),
    (
        500,
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
        NetworkUnavailable,
        -32007,
    ),
    (500, "mkdir /var/lib/docker/overlay2/abc/merged: no space left on device", StorageFull, -32603),
    (
        500,
        "driver failed programming external connectivity on endpoint x: port is already allocated",
        NetworkUnavailable,
        -32007,
    ),
    (500, "Bind for 127.0.0.1:8080 failed: port is already allocated", Conflict, -32009),
    (500, "unable to find user nosuchuser: no matching entries in passwd file", EngineFault, -32603),
    (
        400,
        SHIM + "error setting cgroup config for procHooks process: failed to write 5000: invalid argument",
        EngineFault,
        -32603,
    ),
]


@pytest.mark.parametrize(("status", "text", "kind", "code"), TABLE)
def test_each_real_answer_gets_its_cause(status: int, text: str, kind: type, code: int) -> None:
    fault = start_fault(api_error(status, text), "the service 'web'")
    assert isinstance(fault, kind), fault
    assert fault.code == code
    assert fault.hint  # says what to do
    if kind is not InvalidParams:
        assert text in fault.message or text in str(fault.data())  # the engine's own words are kept


def test_an_engine_fault_is_never_invalid_params_even_when_the_engine_said_400() -> None:
    translated = InvalidParams("cgroup trouble")  # what Connection.translate made of a 400
    translated.__cause__ = api_error(400, SHIM + "error setting cgroup config: invalid argument")
    assert isinstance(start_fault(translated), EngineFault)


def test_already_typed_causes_stay() -> None:
    gone = NotFound("container x not found: No such container: x")
    assert start_fault(gone) is gone
    down = EngineUnavailable("the Docker engine is not reachable")
    assert start_fault(down) is down
