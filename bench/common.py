"""Helpers shared by the benchmarks: percentiles, the `docker run --rm` baseline, printing."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

BUSYBOX = "berth/busybox:latest"
PYTHON = "berth/python:3"
ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def docker_run_once(image: str = BUSYBOX, *command: str) -> float:
    """One `docker run --rm --network none IMAGE echo hi`, in milliseconds."""
    argv = ["docker", "run", "--rm", "--network", "none", image, *(command or ("echo", "hi"))]
    t = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    elapsed = (time.perf_counter() - t) * 1000
    assert out.stdout.strip() in ("hi", "2"), out.stdout
    return elapsed


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def summary(name: str, values: list[float]) -> str:
    return (
        f"{name:<28} n={len(values):<3} p50={percentile(values, 50):7.1f} ms  p95={percentile(values, 95):7.1f} ms"
        f"  mean={statistics.fmean(values):7.1f} ms"
    )


class BerthServer:
    """`berth serve` as a subprocess on its own data dir, with one agent (`bench`) allowed 50 containers."""

    def __init__(self, data_dir: Path, *, pool: bool = True, settings: dict[str, object] | None = None) -> None:
        self.data_dir = data_dir
        if settings:
            data_dir.mkdir(parents=True, exist_ok=True)
            (data_dir / "settings.json").write_text(json.dumps(settings))
        self.env = {**os.environ, "BERTH_POOL": "1" if pool else "0"}
        self.env.pop("BERTH_DATA_DIR", None)
        self.berth = [sys.executable, "-m", "app", "--data-dir", str(data_dir)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.token = ""

    def start(self) -> BerthServer:
        out = subprocess.run(
            [*self.berth, "agents", "add", "bench", "--max-containers", "50", "--no-network"],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env=self.env,
        )
        self.token = out.stdout.strip().splitlines()[-1]
        self.proc = subprocess.Popen(
            [*self.berth, "serve", "--rpc-port", "0"], stderr=subprocess.DEVNULL, cwd=ROOT, env=self.env
        )
        endpoint = self.data_dir / "state" / "endpoint.json"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.url = json.loads(endpoint.read_text())["url"]
                urllib.request.urlopen(self.url + "/health", timeout=1).close()
                return self
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        self.stop()
        raise SystemExit("berth serve did not come up")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)
        self.proc = None


def docker_runs_at_once(n: int, image: str = BUSYBOX) -> float:
    """Wall time (ms) of `n` concurrent `docker run --rm --network none IMAGE echo hi`."""
    argv = ["docker", "run", "--rm", "--network", "none", image, "echo", "hi"]
    t = time.perf_counter()
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(n)]
    outs = [p.communicate()[0] for p in procs]
    elapsed = (time.perf_counter() - t) * 1000
    assert all(o.strip() == b"hi" for o in outs), outs
    return elapsed
