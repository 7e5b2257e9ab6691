"""One temporary run (`echo hi` in berth/busybox) on each engine path, side by side: the runner, docker exec
into a pooled container, the cold path, and `docker run --rm --network none` for comparison.

No RPC here: this is the engine's own cost (`Engine.run_temporary`), the floor under `bench/temp_run.py`.
The paths are alternated in one loop, with a pause after each round for the pool to refill and remove.
Ends with `name: value` lines (p50 and p95 of each, and each path's ratio to `docker run`).

    .venv/bin/python -m bench.engine_paths [-n 20]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.engine import Engine
from app.model import PoolConfig, RunSpec
from bench.common import BUSYBOX, docker_run_once, percentile, summary

SPEC = RunSpec(agent="bench", image=BUSYBOX, command=["echo", "hi"])


async def one(engine: Engine, *, warm: bool) -> float:
    if warm:
        await engine.pool.warm(SPEC)
    t = time.perf_counter()
    r = await engine.run_temporary(SPEC)
    elapsed = (time.perf_counter() - t) * 1000
    assert r.stdout == "hi\n", r
    return elapsed


async def main(n: int) -> dict[str, list[float]]:
    tag = secrets.token_hex(4)
    engines = {
        "runner": Engine(f"bench-runner-{tag}", pool=PoolConfig(max_idle=2)),
        "exec": Engine(f"bench-exec-{tag}", pool=PoolConfig(max_idle=2, runner=False)),
        "cold": Engine(f"bench-cold-{tag}", pool=PoolConfig(enabled=False)),
    }
    if not engines["runner"].runner.usable:
        print(f"note: {engines['runner'].runner.why_not}; the runner row is the exec path")
    ways: dict[str, Callable[[], Awaitable[float]]] = {
        "runner": lambda: one(engines["runner"], warm=True),
        "exec": lambda: one(engines["exec"], warm=True),
        "cold": lambda: one(engines["cold"], warm=False),
        "docker": lambda: asyncio.to_thread(docker_run_once),
    }
    times: dict[str, list[float]] = {k: [] for k in ways}
    try:
        for i in range(n + 3):
            for name, way in ways.items():
                ms = await way()
                if i >= 3:  # warm-up rounds are not counted
                    times[name].append(ms)
                await asyncio.sleep(0.3)  # refills and removals happen here, not during the next path's run
    finally:
        for e in engines.values():
            await e.aclose()
    return times


def report(times: dict[str, list[float]]) -> None:
    for name, values in times.items():
        print(summary(f"engine {name}", values))
    docker = percentile(times["docker"], 50)
    for name, values in times.items():
        print(f"engine_{name}_p50_ms: {percentile(values, 50):.1f}")
        print(f"engine_{name}_p95_ms: {percentile(values, 95):.1f}")
    for name in ("runner", "exec", "cold"):
        print(f"engine_{name}_ratio: {percentile(times[name], 50) / docker:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20, help="runs of each (default 20)")
    report(asyncio.run(main(parser.parse_args().n)))
