"""Temporary runs of `echo hi` in berth/busybox through the JSON-RPC port vs `docker run --rm --network none`.

Two `berth serve` processes run side by side, one with the warm pool (BERTH_POOL=1) and one without
(BERTH_POOL=0); the three ways are alternated in one loop so all see the same machine load. Ends with
`name: value` lines; `rpc_temp_run_ratio` is the pooled p50 over the `docker run` p50 (lower is better).

    .venv/bin/python bench/temp_run.py [-n 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rpc.client import BerthClient
from bench.common import BUSYBOX, BerthServer, docker_run_once, percentile, summary, timed


def main(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
        pooled = BerthServer(Path(tmp) / "pool", pool=True).start()
        cold = BerthServer(Path(tmp) / "cold", pool=False).start()
        try:
            runs = {
                "pool": lambda c=BerthClient(pooled.url, pooled.token): c.run(["echo", "hi"], image=BUSYBOX),
                "cold": lambda c=BerthClient(cold.url, cold.token): c.run(["echo", "hi"], image=BUSYBOX),
            }
            for _ in range(3):  # warm-up: caches, and the pool learns the key
                for fn in runs.values():
                    assert fn()["stdout"] == "hi\n"
                docker_run_once()
            times: dict[str, list[float]] = {"pool": [], "cold": [], "docker": []}
            for _ in range(n):
                # Cold, docker, then pooled, then a pause (an agent's think time) in which the pool refills
                # and removes: that engine work then slows neither of the others.
                times["cold"].append(timed(runs["cold"]))
                times["docker"].append(docker_run_once())
                times["pool"].append(timed(runs["pool"]))
                time.sleep(0.5)
        finally:
            pooled.stop()
            cold.stop()
    print(summary("berth RPC run, pool on", times["pool"]))
    print(summary("berth RPC run, pool off", times["cold"]))
    print(summary("docker run --rm", times["docker"]))
    for name in ("pool", "cold", "docker"):
        print(f"rpc_temp_run_{name}_p50_ms: {percentile(times[name], 50):.1f}")
        print(f"rpc_temp_run_{name}_p95_ms: {percentile(times[name], 95):.1f}")
    docker_p50 = percentile(times["docker"], 50)
    print(f"rpc_temp_run_ratio_pool_off: {percentile(times['cold'], 50) / docker_p50:.2f}")
    print(f"rpc_temp_run_ratio: {percentile(times['pool'], 50) / docker_p50:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=40, help="runs of each (default 40)")
    main(parser.parse_args().n)
