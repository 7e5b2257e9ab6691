"""The connection to the Docker engine: lazy clients, worker threads, and error translation.

Every blocking docker SDK call goes through `Connection.call`, which runs it in the engine's own
thread pool (never on the event loop's thread) and turns the SDK's exceptions into Berth's typed
errors, so a dead engine is `EngineUnavailable` with a hint, never a hang or a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import importlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import docker.tls
import requests.exceptions

from app.errors import BerthError, Conflict, EngineUnavailable, InvalidParams, NotFound, StorageFull

logger = logging.getLogger(__name__)
T = TypeVar("T")

MIN_API_VERSION = "1.24"  # what the SDK needs to ask an engine which version it speaks
# Requests to the engine that are not waits: a stuck engine must not hang Berth for ever.
REQUEST_TIMEOUT_S = 60


def endpoint_from_env(explicit: str | None = None) -> str:
    return explicit or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def engine_hint(endpoint: str, detail: str = "", *, engine: str = "local") -> str:
    """What the person can do about an engine that does not answer at `endpoint`."""
    low = detail.lower()
    if engine != "local":
        if "certificate" in low or "ssl" in low or "tls" in low:
            return f"engine {engine!r} refused Berth's TLS certificate or its own is not trusted: check the files given"
        return (
            f"engine {engine!r} does not answer at {endpoint}: start it or check the network; agents on other "
            "engines go on"
        )
    if "permission denied" in low:
        return "you may not use the Docker socket: add yourself to the docker group (sudo usermod -aG docker $USER)"
    if endpoint.startswith("unix://"):
        return (
            f"no Docker engine answers at {endpoint}: start Docker (Docker Desktop, `sudo systemctl start docker`, "
            "or scripts/ensure-docker in Berth's source tree)"
        )
    return f"no Docker engine answers at {endpoint}: start that engine, or unset DOCKER_HOST to use the local one"


def _is_connection_problem(e: BaseException) -> bool:
    if isinstance(e, requests.exceptions.ConnectionError | ConnectionError | FileNotFoundError):
        return True
    if isinstance(e, docker.errors.DockerException) and not isinstance(e, docker.errors.APIError):
        text = str(e)
        return any(s in text for s in ("Connection", "connect", "FileNotFoundError", "No such file", "refused"))
    return False


_ssh_lock = threading.Lock()
_ssh_ready = False


def _shell_out_ssh_ready() -> None:
    """Make the docker SDK's ssh:// transport work through the system `ssh` client (`use_ssh_client=True`).

    Faults of the SDK (7.x) worked around here, once per process:
    - its ssh transport imports paramiko at its top although the shell-out path never uses it, so without
      paramiko every ssh:// client failed "Install paramiko package to enable ssh:// support": the module is
      loaded with an empty stand-in for paramiko (only while importing it, only when the real one is missing);
    - it turns ssh://HOST into ssh://HOST:22 and runs `ssh -p 22`, which overrides the Port of ~/.ssh/config: the
      port goes to ssh only when it is not 22, so ssh's own configuration decides (then 22, ssh's default);
    - its socket over ssh's pipes raised BrokenPipeError on close once ssh had ended (Berth took that for an
      unreachable engine), ignored `shutdown` (a run's stdin never ended; a reader could not be woken), could not
      close a stream (events, log follows: their threads and ssh processes stayed), and its `recv(n)` waited for
      all n bytes."""
    global _ssh_ready
    with _ssh_lock:
        if _ssh_ready:
            return
        try:
            sshconn = importlib.import_module("docker.transport.sshconn")
        except ImportError:  # paramiko is missing
            stand_in = sys.modules.setdefault("paramiko", types.ModuleType("paramiko"))
            try:
                sshconn = importlib.import_module("docker.transport.sshconn")
            finally:
                if sys.modules.get("paramiko") is stand_in:
                    del sys.modules["paramiko"]

        socket_base: Any = sshconn.SSHSocket
        adapter_base: Any = sshconn.SSHHTTPAdapter

        class SystemSSHSocket(socket_base):  # type: ignore[misc]
            """The pipes of one `ssh ... docker system dial-stdio`, behaving as a socket where Berth needs it."""

            def connect(self, **kwargs: Any) -> None:
                super().connect(**kwargs)
                # The SDK closes a stream (events, a log follow) through the `_sock` of the response's file: here
                # that is ssh's output pipe, and without this the close failed and the reading thread never woke.
                self.proc.stdout.raw._sock = self

            def recv(self, n: int) -> bytes:  # what has come, as a socket gives it (read() waits for all n bytes)
                return self.proc.stdout.read1(n) if self.proc else b""

            def shutdown(self, how: int) -> None:
                """SHUT_WR: end of file to the far side (a run's stdin ends); SHUT_RD(WR): wake a reader."""
                if self.proc is None:
                    return
                if how in (socket.SHUT_WR, socket.SHUT_RDWR):
                    with contextlib.suppress(OSError):
                        self.proc.stdin.close()
                if how in (socket.SHUT_RD, socket.SHUT_RDWR) and self.proc.poll() is None:
                    self.proc.terminate()

            def close(self) -> None:
                """The SDK's close writes to ssh first and raised BrokenPipeError (taken for an unreachable engine)
                when ssh had ended already; and it left the process unreaped."""
                if self.proc is None:
                    return
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()
                if self.proc.poll() is None:
                    self.proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(5)
                with contextlib.suppress(OSError):
                    self.proc.stdout.close()

        setattr(sshconn, "SSHSocket", SystemSSHSocket)  # noqa: B010 (what its connections are made of)

        class SystemSSHAdapter(adapter_base):  # type: ignore[misc]
            ssh_host: str

            def __init__(self, base_url: str, *args: Any, **kwargs: Any) -> None:
                super().__init__(base_url, *args, **kwargs)
                if self.ssh_host.endswith(":22"):
                    self.ssh_host = self.ssh_host[: -len(":22")]

        api_client = importlib.import_module("docker.api.client")
        setattr(api_client, "SSHHTTPAdapter", SystemSSHAdapter)  # noqa: B010 (absent from the SDK's stubs)
        _ssh_ready = True


def _on_loop_thread() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@dataclass(frozen=True)
class Access:
    """How to reach an engine other than the local one: TLS files for tcp://, or a Docker context's name.

    `ssh://` endpoints go through the system's `ssh` client (the person's keys, agent, known_hosts and
    ~/.ssh/config, as the docker CLI does), not paramiko: nothing more to install, nothing new to trust."""

    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    context: str | None = None


def docker_config_dir() -> Path:
    """Where the docker CLI keeps its configuration and contexts: $DOCKER_CONFIG, else ~/.docker."""
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def read_context(name: str) -> tuple[str, docker.tls.TLSConfig | None]:
    """A Docker context's engine address and TLS files, read as the docker CLI stores them
    (`contexts/meta/<sha256 of the name>/meta.json`, `contexts/tls/<same>/docker/{ca,cert,key}.pem`). Not through
    the SDK's ContextAPI: it finds the contexts folder only where a config.json exists beside it, and a person
    who made contexts but never logged in to a registry has none."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    contexts = docker_config_dir() / "contexts"
    try:
        meta = json.loads((contexts / "meta" / digest / "meta.json").read_text())
    except FileNotFoundError:
        raise EngineUnavailable(
            f"there is no Docker context named {name!r} (looked in {contexts})",
            hint="`docker context ls` lists them",
        ) from None
    except (OSError, ValueError) as e:
        raise EngineUnavailable(f"Docker context {name!r} cannot be read: {e}") from e
    endpoint = (meta.get("Endpoints") or {}).get("docker") or {}
    host = str(endpoint.get("Host") or "")
    if not host:
        raise EngineUnavailable(f"Docker context {name!r} names no Docker engine", hint="`docker context inspect`")
    tls_dir = contexts / "tls" / digest / "docker"
    ca, cert, key = (tls_dir / f for f in ("ca.pem", "cert.pem", "key.pem"))
    if not (ca.is_file() or cert.is_file()):
        return host, None
    verify: bool | str = False if endpoint.get("SkipTLSVerify") else (str(ca) if ca.is_file() else True)
    client_cert = (str(cert), str(key)) if cert.is_file() and key.is_file() else None
    return host, docker.tls.TLSConfig(client_cert=client_cert, ca_cert=str(ca) if ca.is_file() else None, verify=verify)


def resolve(endpoint: str | None, access: Access | None) -> tuple[str, docker.tls.TLSConfig | None]:
    """The base URL and TLS settings a client needs. A context is read now (it may have changed since it was
    added); a missing context or certificate file is an EngineUnavailable that says which."""
    if access is not None and access.context:
        return read_context(access.context)
    url = endpoint_from_env(endpoint)
    if access is None or not (access.tls_ca or access.tls_cert or access.tls_key):
        return url, None
    for path in (access.tls_ca, access.tls_cert, access.tls_key):
        if path and not os.path.isfile(path):
            raise EngineUnavailable(f"the TLS file {path} is missing", hint="add the engine again with the right files")
    cert = (access.tls_cert, access.tls_key) if access.tls_cert and access.tls_key else None
    return url, docker.tls.TLSConfig(client_cert=cert, ca_cert=access.tls_ca, verify=access.tls_ca or False)


class Connection:
    """Owns the docker clients and the worker threads that use them."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        max_workers: int = 48,
        name: str = "engine",
        access: Access | None = None,
        engine: str = "local",
    ) -> None:
        self.engine = engine  # its name in Berth: named in every "not reachable" error
        self.endpoint = (
            endpoint_from_env(endpoint) if access is None or not access.context else f"context:{access.context}"
        )
        self._base_url = endpoint
        self._access = access
        self._api_version: str | None = None  # of a TLS engine, asked once (see new_client)
        self.name = name  # the prefix of every thread this connection starts (see `threads()`)
        self._max_workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"{name}-call")
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()
        self._streams: set[threading.Thread] = set()

    # -- clients ---------------------------------------------------------------------------------

    def new_client(self, *, timeout: int | None = REQUEST_TIMEOUT_S, pool_size: int = 2) -> docker.DockerClient:
        """A client of its own, for long-lived streams (events, log follows) that would hold a pooled connection."""
        url, tls = resolve(self._base_url, self._access)
        if tls is None:
            if url.startswith("ssh://"):
                _shell_out_ssh_ready()
            return docker.DockerClient(
                base_url=url,
                timeout=timeout,  # type: ignore[arg-type]
                max_pool_size=pool_size,
                use_ssh_client=url.startswith("ssh://"),
            )
        # Over TLS, requests would put $REQUESTS_CA_BUNDLE (set on many machines) before the engine's own CA and
        # fail the handshake: the clients ignore the environment. So the SDK must not ask for the API version
        # before that is set: it is asked here once, then given.
        if self._api_version is None:
            probe = docker.APIClient(base_url=url, tls=tls, version=MIN_API_VERSION, timeout=REQUEST_TIMEOUT_S)
            probe.trust_env = False
            try:
                self._api_version = str(probe.version(api_version=False)["ApiVersion"])
            finally:
                probe.close()
        client = docker.DockerClient(
            base_url=url,
            timeout=timeout,  # type: ignore[arg-type]
            max_pool_size=pool_size,
            tls=tls,
            version=self._api_version,
        )
        client.api.trust_env = False
        return client

    def client(self) -> docker.DockerClient:
        """The shared client (blocking: call from a worker thread). Created on first use, again after a failure.

        Refused on a thread that runs an asyncio loop: making a client asks the engine for its version, and any
        call blocks; on the loop's thread that would freeze Berth (and its errors would go untranslated)."""
        if _on_loop_thread():
            raise RuntimeError("the docker client was used on the event loop's thread: go through Connection.call")
        with self._lock:
            if self._client is None:
                self._client = self.new_client(pool_size=self._max_workers)
            return self._client

    def reset(self) -> None:
        """Forget the shared client so the next call reconnects (the engine may have restarted)."""
        with self._lock:
            client, self._client = self._client, None
            self._api_version = None
        if client is not None:
            try:
                client.close()
            except Exception:
                logger.debug("closing the docker client failed", exc_info=True)

    @property
    def api(self) -> docker.APIClient:
        return self.client().api

    # -- threads ---------------------------------------------------------------------------------

    def start_thread(self, target: Callable[[], None], what: str) -> threading.Thread:
        """A daemon thread for a long-lived stream (events, a log follow, stats), joined by `aclose()`."""
        thread = threading.Thread(target=target, daemon=True, name=f"{self.name}-{what}")
        with self._lock:
            self._streams = {t for t in self._streams if t.is_alive()}
            self._streams.add(thread)
        thread.start()
        return thread

    def threads(self) -> list[threading.Thread]:
        """Threads of this connection still alive: worker threads and stream threads."""
        prefix = f"{self.name}-"
        return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]

    # -- calls -----------------------------------------------------------------------------------

    def translate(self, e: BaseException, *, what: str = "") -> BaseException:
        """Map an SDK exception to a Berth error (or return it unchanged if it is a bug)."""
        if isinstance(e, BerthError):
            return e
        if _is_connection_problem(e):
            self.reset()
            what = "the Docker engine" if self.engine == "local" else f"engine {self.engine!r}"
            return EngineUnavailable(
                f"{what} is not reachable ({self.endpoint})",
                hint=engine_hint(self.endpoint, str(e), engine=self.engine),
                engine=self.engine,
            )
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            return StorageFull("the disk is full", hint="free some space (docker system prune removes unused images)")
        if isinstance(e, docker.errors.NotFound):
            return NotFound(f"{what or 'object'} not found: {e.explanation or e}")
        if isinstance(e, docker.errors.APIError):
            status = e.status_code
            text = str(e.explanation or e)
            if "no space left on device" in text.lower():
                return StorageFull(
                    "the engine's disk is full", hint="free some space (docker system prune removes unused images)"
                )
            if status == 409:
                return Conflict(text)
            if status == 400:
                return InvalidParams(text)
            if status == 304:
                return Conflict(f"{what or 'container'} is already in that state")
        return e

    def run_sync(self, fn: Callable[..., T], *args: Any, what: str = "", **kwargs: Any) -> T:
        """Call `fn` here (already in a worker thread), translating errors."""
        try:
            return fn(*args, **kwargs)
        except BaseException as e:
            raise self.translate(e, what=what) from e

    async def call(self, fn: Callable[..., T], *args: Any, what: str = "", **kwargs: Any) -> T:
        """Run a blocking SDK call in a worker thread and translate its errors."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(self.run_sync, fn, *args, what=what, **kwargs))

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """Stop taking calls, wait for the worker and stream threads to end (streams must be closed first),
        and close the client. Threads still alive after `timeout_s` are logged, never waited on for ever."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout_s

        def join() -> list[str]:
            for t in self.threads():
                t.join(max(0.0, deadline - time.monotonic()))
            return [t.name for t in self.threads()]

        left = await asyncio.to_thread(join)
        if left:
            logger.warning("engine threads still running after %.0f s: %s", timeout_s, ", ".join(left))
        self.reset()

    def close(self) -> None:
        """Without a loop (a failed start): stop taking calls; running threads end on their own."""
        self.reset()
        self._pool.shutdown(wait=False, cancel_futures=True)
