"""20 temporary runs at once through the JSON-RPC port vs 20 `docker run --rm --network none` at once.

`echo hi` in berth/busybox. Rounds alternate between Berth (pool on, as shipped), Berth with the pool
off, and the docker CLI, so all see the same machine load. Ends with `name: value` lines;
`concurrent_ratio` is the median wall time of a Berth round (pool on) over that of a docker round.

    .venv/bin/python bench/concurrent.py [-n 20] [--rounds 5] [--per-key N]

`--per-key N` runs the pooled Berth with `pool_per_key` and `pool_max_idle` set to N (default: the
shipped settings, 2 per key and 8 in all), to show what a pool sized for the burst does.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rpc.client import BerthClient
from bench.common import BUSYBOX, BerthServer, docker_runs_at_once


def berth_runs_at_once(server: BerthServer, n: int, each: list[float] | None = None) -> float:
    """Wall time (ms) of `n` concurrent runs, each from its own thread and HTTP connection; `each` gets every
    run's own time (ms), to tell the runs that found a warm container from those that went cold."""
    barrier = threading.Barrier(n + 1)
    outs: list[str] = []

    def one() -> None:
        client = BerthClient(server.url, server.token)
        barrier.wait()
        t = time.perf_counter()
        outs.append(client.run(["echo", "hi"], image=BUSYBOX)["stdout"])
        if each is not None:
            each.append((time.perf_counter() - t) * 1000)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = (time.perf_counter() - started) * 1000
    assert outs == ["hi\n"] * n, outs
    return elapsed


def pool_hits(data_dir: Path) -> str:
    """The pooled Berth's own count of runs that found a container ready, from its log at exit."""
    found = re.findall(r"warm pool: .*", (data_dir / "logs" / "berth.log").read_text(errors="replace"))
    return found[-1].removeprefix("warm pool: ") if found else "no hit count in the log"


def main(n: int, rounds: int, per_key: int | None) -> None:
    settings: dict[str, object] = {"pool_per_key": per_key, "pool_max_idle": per_key} if per_key else {}
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
        pooled = BerthServer(Path(tmp) / "pool", pool=True, settings=settings).start()
        cold = BerthServer(Path(tmp) / "cold", pool=False).start()
        try:
            berth_runs_at_once(pooled, n)  # warm-up; the pool learns the key
            berth_runs_at_once(cold, n)
            docker_runs_at_once(n)
            walls: dict[str, list[float]] = {"pool": [], "cold": [], "docker": []}
            each: list[list[float]] = []
            for _ in range(rounds):
                time.sleep(1)  # let the previous round's removals and refills finish
                each.append([])
                walls["pool"].append(berth_runs_at_once(pooled, n, each[-1]))
                time.sleep(1)
                walls["cold"].append(berth_runs_at_once(cold, n))
                time.sleep(1)
                walls["docker"].append(docker_runs_at_once(n))
        finally:
            pooled.stop()
            cold.stop()
        hits = pool_hits(pooled.data_dir)
    med = {k: statistics.median(v) for k, v in walls.items()}
    for k, label in (("pool", "berth RPC, pool on"), ("cold", "berth RPC, pool off"), ("docker", "docker run --rm")):
        print(f"{label:<22} {n} at once: median {med[k]:7.0f} ms  (rounds: {', '.join(f'{v:.0f}' for v in walls[k])})")
    for i, times in enumerate(each, 1):
        print(f"pool round {i}: each run " + " ".join(f"{v:.0f}" for v in sorted(times)) + " ms")
    print(f"pool (warm-up round included): {hits}")
    print(f"concurrent_pool_ms: {med['pool']:.0f}")
    print(f"concurrent_cold_ms: {med['cold']:.0f}")
    print(f"concurrent_docker_ms: {med['docker']:.0f}")
    print(f"concurrent_ratio_pool_off: {med['cold'] / med['docker']:.2f}")
    print(f"concurrent_ratio: {med['pool'] / med['docker']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20, help="runs at once (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each (default 5)")
    parser.add_argument("--per-key", type=int, default=None, help="pool size per key and in all (default: shipped)")
    args = parser.parse_args()
    main(args.n, args.rounds, args.per_key)
