"""Typed errors shared by every layer, each with its JSON-RPC code from API.md.

Environment problems the person can fix carry a `hint` that says what to do; bugs are not
modelled here: anything that is not a `BerthError` is an internal error (-32603).
"""

from __future__ import annotations

from typing import Any

# JSON-RPC 2.0 standard codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class BerthError(Exception):
    """Base of the errors an API caller may see; `code` and `kind` follow API.md."""

    code: int = INTERNAL_ERROR
    kind: str = "internal"

    def __init__(self, message: str, *, hint: str | None = None, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.extra = data

    def data(self) -> dict[str, Any]:
        """The JSON-RPC `error.data` object: at least `{"kind": ...}`."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.hint:
            out["hint"] = self.hint
        out.update(self.extra)
        return out

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ParseError(BerthError):
    code, kind = PARSE_ERROR, "parse_error"


class InvalidRequest(BerthError):
    code, kind = INVALID_REQUEST, "invalid_request"


class MethodNotFound(BerthError):
    code, kind = METHOD_NOT_FOUND, "method_not_found"


class InvalidParams(BerthError):
    code, kind = INVALID_PARAMS, "invalid_params"


class Unauthorized(BerthError):
    code, kind = -32001, "unauthorized"


class Forbidden(BerthError):
    code, kind = -32002, "forbidden"


class LimitReached(BerthError):
    code, kind = -32003, "limit_reached"


class NotFound(BerthError):
    code, kind = -32004, "not_found"


class Denied(BerthError):
    code, kind = -32005, "denied"


class Timeout(BerthError):
    code, kind = -32006, "timeout"


class EngineUnavailable(BerthError):
    code, kind = -32007, "engine_unavailable"


class NetworkUnavailable(BerthError):
    """The engine answers but cannot make an agent's network: a fault of the engine, not of the request."""

    code, kind = -32007, "engine_unavailable"


class ImageUnavailable(BerthError):
    code, kind = -32008, "image_unavailable"

    def __init__(self, image: str, message: str | None = None, *, hint: str | None = None) -> None:
        super().__init__(
            message or f"image {image!r} is not on this machine and could not be pulled",
            hint=hint or f"build or load it locally (e.g. `docker pull {image}` where a registry is reachable)",
            image=image,
        )
        self.image = image


class Conflict(BerthError):
    code, kind = -32009, "conflict"


class StorageFull(BerthError):
    """The disk holding Berth's data or the engine's storage is full."""

    code, kind = INTERNAL_ERROR, "storage_full"
