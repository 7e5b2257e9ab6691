"""End-to-end fixtures: `berth serve` as a subprocess on a private data dir, a real engine, real HTTP."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.rpc.client import BerthClient
from tests.conftest import TEST_INSTANCE_PREFIX, remove_instance_containers

ROOT = Path(__file__).resolve().parents[2]


def berth(
    data_dir: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@dataclass
class Server:
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    log: Path | None = None

    def __post_init__(self) -> None:
        """Test instances carry a recognisable id, so CI can clean up after a killed run."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        marker = self.data_dir / "instance-id"
        if not marker.exists():
            marker.write_text(TEST_INSTANCE_PREFIX + secrets.token_hex(5) + "\n")

    @property
    def instance(self) -> str:
        return (self.data_dir / "instance-id").read_text().strip()

    def add_agent(self, name: str, *options: str) -> str:
        out = berth(self.data_dir, "agents", "add", name, *options).stdout
        self.tokens[name] = out.strip().splitlines()[-1]
        return self.tokens[name]

    def client(self, agent: str) -> BerthClient:
        return BerthClient(self.url, self.tokens[agent])

    def owner(self) -> BerthClient:
        data = json.loads((self.data_dir / "tokens.json").read_text())["tokens"]
        return BerthClient(self.url, data[f"{self.instance}:owner"])

    def start(self, timeout: float = 30) -> None:
        endpoint = self.data_dir / "state" / "endpoint.json"
        endpoint.unlink(missing_ok=True)
        self.log = self.data_dir / "serve.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "--data-dir", str(self.data_dir), "serve", "--rpc-port", "0"],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("a"),
            text=True,
            cwd=ROOT,
            env={**os.environ, **self.env},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berth serve exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            try:
                self.url = json.loads(endpoint.read_text())["url"]
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if json.loads(r.read()) == {"ok": True}:
                        return
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        raise RuntimeError("berth serve did not come up: " + self.log.read_text()[-3000:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def raw(
        self, body: Any, *, token: str | None = None, headers: dict[str, str] | None = None, data: bytes | None = None
    ) -> tuple[int, Any]:
        """POST /rpc with full control over the body and headers; returns (HTTP status, parsed JSON or None)."""
        payload = data if data is not None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/rpc", data=payload, method="POST")
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                text = resp.read()
                return resp.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                return e.code, json.loads(text) if text else None
            except ValueError:
                return e.code, text.decode(errors="replace")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A running `berth serve` with agents alice and bob (defaults)."""
    s = Server(tmp_path / "data")
    s.add_agent("alice")
    s.add_agent("bob")
    s.start()
    try:
        yield s
    finally:
        s.stop()
        if (s.data_dir / "instance-id").exists():
            remove_instance_containers(s.instance)
