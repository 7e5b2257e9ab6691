"""Starting Berth processes for the packaging tests: a source checkout (`python -m app`) or the bundle."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import TEST_INSTANCE_PREFIX

ROOT = Path(__file__).resolve().parents[2]
SOURCE = (sys.executable, "-m", "app")


def berth_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """An environment for a Berth child: its own data dir (with a test instance id), offscreen Qt."""
    data_dir.mkdir(parents=True, exist_ok=True)
    instance_file = data_dir / "instance-id"
    if not instance_file.exists():  # its containers carry a test instance label (cleaned up in CI)
        instance_file.write_text(TEST_INSTANCE_PREFIX + secrets.token_hex(5) + "\n")
    env = dict(os.environ)
    env.pop("BERTH_RESOURCES", None)
    env.update(BERTH_DATA_DIR=str(data_dir), QT_QPA_PLATFORM="offscreen", QT_API="pyside6", BERTH_POOL="0")
    env.update(extra)
    return env


def run(cmd: Sequence[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


class Running:
    """A Berth that serves (headless or with its window) until stopped; stderr goes to a file."""

    def __init__(self, cmd: Sequence[str], data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.log = data_dir.parent / f"{data_dir.name}-{secrets.token_hex(3)}.stderr"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(list(cmd), env=env, cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT)

    @property
    def endpoint_file(self) -> Path:
        return self.data_dir / "state" / "endpoint.json"

    def endpoint(self) -> dict[str, object] | None:
        try:
            data = json.loads(self.endpoint_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def wait_serving(self, timeout: float = 60) -> dict[str, object]:
        """Until its endpoint.json names this process (it listens then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ep = self.endpoint()
            if ep is not None and ep.get("pid") == self.proc.pid:
                return ep
            if self.proc.poll() is not None:
                raise AssertionError(f"berth exited with {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"berth did not start serving in {timeout} s:\n{self.output()}")

    def wait_output(self, text: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in berth's output after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self._out.close()
        return code
