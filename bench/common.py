"""Helpers shared by the benchmarks: percentiles, the `docker run --rm` baseline, printing."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable

BUSYBOX = "berth/busybox:latest"


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
