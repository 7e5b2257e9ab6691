"""A small synchronous client for agents (stdlib only, no Qt).

    from app.rpc.client import BerthClient
    berth = BerthClient()                     # BERTH_URL / endpoint.json, BERTH_TOKEN
    r = berth.run("python3 -c 'print(6*7)'")
    print(r["stdout"])
    job = berth.start("make test")           # a background run: returns at once
    r = berth.wait(job["run_id"], wait_s=60)  # status "done" with the result, or "running" with output so far

The URL comes from `url=`, `BERTH_URL`, or the running app's `endpoint.json`; the token from
`token=` or `BERTH_TOKEN`. Errors are raised as the typed errors of `app.errors`.
"""

from __future__ import annotations

import itertools
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from app import errors
from app.config import Paths

_BY_CODE: dict[int, type[errors.BerthError]] = {
    cls.code: cls
    for cls in (
        errors.ParseError,
        errors.InvalidRequest,
        errors.MethodNotFound,
        errors.InvalidParams,
        errors.Unauthorized,
        errors.Forbidden,
        errors.LimitReached,
        errors.NotFound,
        errors.Denied,
        errors.Timeout,
        errors.EngineUnavailable,
        errors.Conflict,
    )
}


class RpcError(errors.BerthError):
    """An error answer whose code has no typed class here (e.g. -32603)."""


def _raise(err: dict[str, Any]) -> None:
    code = int(err.get("code", errors.INTERNAL_ERROR))
    data = dict(err.get("data") or {})
    message = str(err.get("message", "error"))
    hint = data.pop("hint", None)
    data.pop("kind", None)
    if code == errors.ImageUnavailable.code:
        raise errors.ImageUnavailable(str(data.get("image", "")), message, hint=hint)
    cls = _BY_CODE.get(code)
    if cls is None:
        e = RpcError(message, hint=hint, **data)
        e.code = code
        raise e
    raise cls(message, hint=hint, **data)


def find_url(data_dir: str | os.PathLike[str] | None = None) -> str:
    env = os.environ.get("BERTH_URL")
    if env:
        return env.rstrip("/").removesuffix("/rpc")
    path = Paths.resolve(data_dir).endpoint_file
    try:
        return str(json.loads(Path(path).read_text())["url"])
    except (OSError, ValueError, KeyError) as e:
        raise errors.EngineUnavailable(
            "Berth is not running (no endpoint.json)", hint="start it with `berth` or `berth serve`, or set BERTH_URL"
        ) from e


class BerthClient:
    """One method per API method; keyword arguments are the method's parameters."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 3700) -> None:
        self.url = (url or find_url()).rstrip("/").removesuffix("/rpc")
        self.token = token or os.environ.get("BERTH_TOKEN")
        self.timeout = timeout
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}).encode()
        req = urllib.request.Request(self.url + "/rpc", data=body, method="POST")
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                reply = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            try:
                reply = json.loads(e.read())
            except ValueError:
                raise RpcError(f"HTTP {e.code} from Berth: {e.reason}") from e
            if "error" not in reply or not isinstance(reply["error"], dict):
                raise RpcError(f"HTTP {e.code} from Berth: {reply.get('error', e.reason)}") from e
        except urllib.error.URLError as e:
            raise errors.EngineUnavailable(
                f"cannot reach Berth at {self.url} ({e.reason})", hint="is Berth running? start it with `berth serve`"
            ) from e
        if "error" in reply:
            _raise(reply["error"])
        return reply["result"]

    # -- API.md methods --------------------------------------------------------------------------

    def info(self) -> Any:
        return self.call("system.info")

    def run(self, command: str | list[str], **kw: Any) -> Any:
        return self.call("containers.run", command=command, **kw)

    def start(self, command: str | list[str], **kw: Any) -> Any:
        """A background run: `{"run_id", "status": "running"}` at once; then `wait` (or `cancel`) with the run_id."""
        return self.call("containers.run", command=command, background=True, **kw)

    def wait(self, run_id: str, wait_s: float = 0) -> Any:
        """A background run's result once it has ended within `wait_s`, else its status and output so far."""
        return self.call("containers.wait", run_id=run_id, wait_s=wait_s)

    def cancel(self, run_id: str) -> Any:
        return self.call("containers.cancel", run_id=run_id)

    def start_service(self, name: str, **kw: Any) -> Any:
        return self.call("services.start", name=name, **kw)

    def exec(self, id: str, command: str | list[str], **kw: Any) -> Any:
        return self.call("containers.exec", id=id, command=command, **kw)

    def list(self, all: bool = True) -> Any:
        return self.call("containers.list", all=all)

    def inspect(self, id: str) -> Any:
        return self.call("containers.inspect", id=id)

    def logs(self, id: str, **kw: Any) -> Any:
        return self.call("containers.logs", id=id, **kw)

    def stop(self, id: str, **kw: Any) -> Any:
        return self.call("containers.stop", id=id, **kw)

    def restart(self, id: str, **kw: Any) -> Any:
        return self.call("containers.restart", id=id, **kw)

    def remove(self, id: str, force: bool = False) -> Any:
        return self.call("containers.remove", id=id, force=force)

    def ls(self, path: str = ".") -> Any:
        return self.call("workspace.list", path=path)

    def read(self, path: str, encoding: str = "utf-8") -> Any:
        return self.call("workspace.read", path=path, encoding=encoding)

    def write(self, path: str, content: str, encoding: str = "utf-8") -> Any:
        return self.call("workspace.write", path=path, content=content, encoding=encoding)

    def delete(self, path: str) -> Any:
        return self.call("workspace.delete", path=path)

    def shell(self, command: str, **kw: Any) -> Any:
        return self.call("shell.request", command=command, **kw)

    def shell_status(self, request_id: str, wait_s: float = 0) -> Any:
        return self.call("shell.status", request_id=request_id, wait_s=wait_s)

    # -- owner methods ---------------------------------------------------------------------------

    def approvals(self, status: str | None = "pending") -> Any:
        return self.call("approvals.list", status=status)

    def decide(self, request_id: str, decision: str, trust: str | None = None, access: str | None = None) -> Any:
        return self.call("approvals.decide", request_id=request_id, decision=decision, trust=trust, access=access)

    def agents(self) -> Any:
        return self.call("agents.list")
