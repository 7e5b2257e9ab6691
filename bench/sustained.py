"""Sustained load: several agents each running as many temporary runs at once as their limit allows.

`--agents` agents (default 3) with `--limit` containers each (default 4) run `--runs` temporary runs in
all (default 150; the review used 600) of `echo hi` in berth/busybox, every agent keeping its limit
busy. Measured three ways in one run, on the same machine: Berth with its default settings (warm pool
on), Berth with the pool off, and `docker run --rm --network none` at the same total concurrency.
Prints runs/s and latency percentiles for each, the pool's hit rate, and ends with

    sustained_ratio: <Berth (default settings) runs/s over docker run --rm runs/s>

    .venv/bin/python -m bench.sustained [--agents 3] [--limit 4] [--runs 150]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rpc.client import BerthClient
from bench.common import BUSYBOX, ROOT, percentile


class Server:
    """`berth serve` on a data dir of its own, with `agents` agents allowed `limit` containers each."""

    def __init__(self, data_dir: Path, agents: int, limit: int, pool: bool) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, "BERTH_POOL": "1" if pool else "0"}
        self.env.pop("BERTH_DATA_DIR", None)
        self.cmd = [sys.executable, "-m", "app", "--data-dir", str(data_dir)]
        self.tokens: list[str] = []
        for i in range(agents):
            out = subprocess.run(
                [*self.cmd, "agents", "add", f"load{i}", "--max-containers", str(limit), "--no-network"],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
                env=self.env,
            )
            self.tokens.append(out.stdout.strip().splitlines()[-1])
        self.proc = subprocess.Popen([*self.cmd, "serve", "--rpc-port", "0"], stderr=subprocess.DEVNULL, env=self.env)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.url = json.loads((data_dir / "state" / "endpoint.json").read_text())["url"]
                urllib.request.urlopen(self.url + "/health", timeout=1).close()
                break
            except (OSError, ValueError, KeyError):
                if time.monotonic() > deadline:
                    raise SystemExit("berth serve did not come up") from None
                time.sleep(0.1)

    def pool_stats(self) -> tuple[int, int]:
        """(hits, misses) of the warm pool, from the log line berth serve writes at exit."""
        log = self.data_dir / "logs" / "berth.log"
        for line in reversed(log.read_text().splitlines() if log.exists() else []):
            m = re.search(r"warm pool: (\d+) hits, (\d+) misses", line)
            if m:
                return int(m.group(1)), int(m.group(2))
        return 0, 0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def berth_load(server: Server, limit: int, runs: int) -> tuple[float, list[float]]:
    """Every agent keeps `limit` runs going until `runs` are done in all; (wall seconds, latencies in ms)."""
    remaining = [runs]
    lock = threading.Lock()
    latencies: list[float] = []

    def worker(token: str) -> None:
        client = BerthClient(server.url, token)
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            t = time.perf_counter()
            out = client.run(["echo", "hi"], image=BUSYBOX)
            assert out["stdout"] == "hi\n", out
            with lock:
                latencies.append((time.perf_counter() - t) * 1000)

    threads = [threading.Thread(target=worker, args=(tok,)) for tok in server.tokens for _ in range(limit)]
    started = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - started, latencies


def docker_load(concurrency: int, runs: int) -> tuple[float, list[float]]:
    argv = ["docker", "run", "--rm", "--network", "none", BUSYBOX, "echo", "hi"]
    latencies: list[float] = []

    def one(_: int) -> None:
        t = time.perf_counter()
        out = subprocess.run(argv, capture_output=True, check=True)
        assert out.stdout.strip() == b"hi"
        latencies.append((time.perf_counter() - t) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(runs)))
    return time.perf_counter() - started, latencies


def report(label: str, runs: int, wall: float, latencies: list[float]) -> float:
    rate = runs / wall
    print(
        f"{label:<24} {runs} runs in {wall:6.1f} s = {rate:5.2f} runs/s  "
        f"p50 {percentile(latencies, 50):6.0f} ms  p95 {percentile(latencies, 95):6.0f} ms"
    )
    return rate


def main(agents: int, limit: int, runs: int) -> None:
    concurrency = agents * limit
    print(f"{agents} agents x {limit} at once = {concurrency} concurrent runs of `echo hi`, {runs} runs each way")
    rates: dict[str, float] = {}
    hit_rate = 0.0
    with tempfile.TemporaryDirectory(prefix="berth-bench-sustained-") as tmp:
        for label, pool in (("berth (default, pool on)", True), ("berth (pool off)", False)):
            server = Server(Path(tmp) / ("pool" if pool else "cold"), agents, limit, pool)
            try:
                berth_load(server, limit, concurrency)  # warm-up: the pool learns the keys
                wall, lat = berth_load(server, limit, runs)
            finally:
                server.stop()
            rates[label] = report(label, runs, wall, lat)
            if pool:
                hits, misses = server.pool_stats()
                hit_rate = hits / (hits + misses) if hits + misses else 0.0
                print(f"{'':<24} warm pool: {hits} hits, {misses} misses ({hit_rate:.0%}, warm-up included)")
        docker_load(concurrency, concurrency)  # warm-up
        wall, lat = docker_load(concurrency, runs)
        rates["docker"] = report("docker run --rm", runs, wall, lat)
    print(f"pool_on_over_off: {rates['berth (default, pool on)'] / rates['berth (pool off)']:.2f}")
    print(f"pool_hit_rate: {hit_rate:.2f}")
    print(f"sustained_ratio: {rates['berth (default, pool on)'] / rates['docker']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--runs", type=int, default=150)
    args = parser.parse_args()
    main(args.agents, args.limit, args.runs)
