"""What went wrong when the engine could not start a container: the caller's fault, or the engine's.

A container that will not start is the caller's problem only when what the caller chose is wrong (a
program that is not in the image, a working folder that cannot be used); a fault of the engine itself
(its networking, its storage, its cgroups, a daemon error) is never "invalid params": it is -32007
(the engine cannot provide it) or an internal error, with the engine's own words and what to do.
The table of texts below comes from what Docker 20.10 (this project's engine) answers.
"""

from __future__ import annotations

import re

import docker.errors

from app.errors import BerthError, Conflict, InvalidParams, NetworkUnavailable, StorageFull

# (pattern in the engine's explanation, what it means) -- first match wins.
_CALLER = (
    (re.compile(r'exec: "([^"]*)": executable file not found'), "the program {0!r} is not in the image"),
    (re.compile(r'exec: "([^"]*)": permission denied'), "{0!r} is not a program that can be run (permission denied)"),
    (re.compile(r'exec: "([^"]*)": is a directory'), "{0!r} is a directory, not a program"),
    (re.compile(r"chdir to cwd \(\"([^\"]*)\"\)"), "the working directory {0!r} cannot be used in the image"),
)
_NETWORK = re.compile(
    r"could not find bridge|failed to create endpoint|network \S+ not found|failed to set up container networking"
    r"|driver failed programming|no available IPv4 addresses|could not find an available, non-overlapping",
    re.IGNORECASE,
)
_STORAGE = re.compile(r"no space left on device|disk quota exceeded", re.IGNORECASE)
_PORT = re.compile(r"port is already allocated|address already in use", re.IGNORECASE)


class EngineFault(BerthError):
    """The engine refused for a reason of its own (not the caller's, not an outage): said in its words."""

    code, kind = -32603, "engine_error"


def explanation_of(error: BaseException) -> str:
    """The engine's words, from a docker APIError or a Berth error that was translated from one."""
    for e in (error, error.__cause__):
        if isinstance(e, docker.errors.APIError):
            return str(e.explanation or e)
    return str(getattr(error, "message", "") or error)


def start_fault(error: BaseException, what: str = "the container") -> BerthError:
    """Classify a failed start (or create) of `what` by its cause."""
    text = explanation_of(error)
    for pattern, meaning in _CALLER:
        m = pattern.search(text)
        if m:
            return InvalidParams(
                f"command: {meaning.format(*m.groups())}",
                hint="check the command, the image and the working directory",
                engine=text,
            )
    if _STORAGE.search(text):
        return StorageFull(
            f"{what} could not start: the engine's disk is full ({text})",
            hint="free some space (docker system prune removes unused images)",
        )
    if _NETWORK.search(text):
        return NetworkUnavailable(
            f"{what} could not start: the engine could not give it a network ({text})",
            hint="the engine's networking is broken or full: restart the engine, or remove unused networks "
            "(docker network prune); a run with network 'none' still works",
        )
    if _PORT.search(text):
        return Conflict(
            f"{what} could not start: a port it needs is taken ({text})",
            hint="start it again (Berth asks for a free port each time), or stop what holds the port",
        )
    if isinstance(error, BerthError) and not isinstance(error, InvalidParams | EngineFault):
        return error  # already a typed cause (the engine is down, the container is gone...)
    return EngineFault(
        f"{what} could not start: the engine said: {text}",
        hint="look at the engine's log (journalctl -u docker, or dockerd's own log) for the cause",
    )
