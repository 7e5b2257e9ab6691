"""Start-up: how soon `berth serve` answers, how soon the window shows, and what an idle window holds.

Each sample, alternated in one loop so all see the same machine load:
- `docker run --rm --network none busybox true` (the baseline every bench is compared with);
- `serve_ready_ms`: `berth serve` on a data dir with one agent, from spawning it to GET /health answering 200;
  then `mcp_first_request_ms`: the first MCP `initialize` it answers (the MCP endpoint loads on that request);
- `startup_ms` and `idle_rss_mib`: the real `berth` window (offscreen), from process start to the window
  shown, and its resident memory after 10 s idle with no containers (bench/panel.py's `measure_startup`).

The children run as an installed Berth does, with the bytecode of its sources cached (in a temporary folder,
after one warm-up start): without the cache, every start compiles app/ again (`--no-bytecode-cache`).
Ends with `name: value` lines (p50s, the p95s named so), the last `serve_ready_ms`.

    .venv/bin/python -m bench.startup [-n 10] [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BUSYBOX, ROOT, percentile, summary
from bench.panel import measure_startup

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
}


def docker_run_true() -> float:
    """One `docker run --rm --network none busybox true`, in milliseconds (tried again, up to twice, if the
    engine refused it: a shared test machine's engine may be restarting)."""
    for attempt in range(3):
        t = time.perf_counter()
        out = subprocess.run(["docker", "run", "--rm", "--network", "none", BUSYBOX, "true"], capture_output=True)
        elapsed = (time.perf_counter() - t) * 1000
        if out.returncode == 0:
            return elapsed
        print(f"docker run failed ({out.stderr.decode().strip()[:200]}); trying again", file=sys.stderr)
        time.sleep(2 + 3 * attempt)
    raise SystemExit("docker run --rm failed three times: is the engine up?")


def berth_argv(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "app", "--data-dir", str(data_dir), *args]


def serve_ready(data_dir: Path, token: str) -> tuple[float, float]:
    """Spawn `berth serve`: ms until GET /health answers 200, then ms for the first MCP `initialize`."""
    endpoint = data_dir / "state" / "endpoint.json"
    endpoint.unlink(missing_ok=True)
    t = time.perf_counter()
    proc = subprocess.Popen(
        berth_argv(data_dir, "serve", "--rpc-port", "0"), cwd=ROOT, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    try:
        url = ""
        deadline = time.monotonic() + 30
        while True:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("berth serve did not come up")
            try:
                url = url or json.loads(endpoint.read_text())["url"]
                with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (OSError, ValueError, KeyError):
                time.sleep(0.005)
        ready = (time.perf_counter() - t) * 1000
        req = urllib.request.Request(
            url + "/mcp",
            data=json.dumps(INITIALIZE).encode(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
        )
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        first_mcp = (time.perf_counter() - t) * 1000
        assert b'"serverInfo"' in body, body[:300]
        return ready, first_mcp
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10, help="samples of each (default 10)")
    parser.add_argument("--no-bytecode-cache", action="store_true", help="compile app/ at every start")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="berth-bench-startup-"))
    data_dir = tmp / "data"
    os.environ.pop("BERTH_DATA_DIR", None)
    if args.no_bytecode_cache:
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    instance = ""
    try:
        out = subprocess.run(
            berth_argv(data_dir, "agents", "add", "bench", "--no-network"),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        token = out.stdout.strip().splitlines()[-1]
        instance = (data_dir / "instance-id").read_text().strip()
        serve_ready(data_dir, token)  # warm-up: the bytecode cache, the engine's caches, the page cache
        docker_run_true()
        times: dict[str, list[float]] = {"docker": [], "serve": [], "mcp": [], "window": [], "rss": []}
        for _ in range(args.n):
            times["docker"].append(docker_run_true())
            ready, first_mcp = serve_ready(data_dir, token)
            times["serve"].append(ready)
            times["mcp"].append(first_mcp)
            times["docker"].append(docker_run_true())
            startup, rss = measure_startup(data_dir)
            times["window"].append(startup)
            times["rss"].append(rss)
    finally:
        if instance:
            ids = subprocess.run(
                ["docker", "ps", "-aq", "--filter", f"label=berth.instance={instance}"], capture_output=True, text=True
            ).stdout.split()
            if ids:
                subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    cache = "off (app/ compiled at every start)" if args.no_bytecode_cache else "on"
    print(f"samples: {args.n} of each; bytecode cache {cache}")
    print(summary("docker run --rm true", times["docker"]))
    print(summary("berth serve to /health", times["serve"]))
    print(summary("first /mcp initialize", times["mcp"]))
    print(summary("berth to window shown", times["window"]))
    rss = times["rss"]
    print(
        f"{'idle window RSS':<28} n={len(rss):<3} p50={percentile(rss, 50):7.1f} MiB p95={percentile(rss, 95):7.1f} MiB"
    )
    docker_p50 = percentile(times["docker"], 50)
    print(f"docker_run_ms: {docker_p50:.0f}")
    print(f"startup_p95_ms: {percentile(times['window'], 95):.0f}")
    print(f"startup_ratio: {percentile(times['window'], 50) / docker_p50:.2f}")
    print(f"startup_ms: {percentile(times['window'], 50):.0f}")
    print(f"idle_rss_mib: {percentile(rss, 50):.0f}")
    print(f"mcp_first_request_ms: {percentile(times['mcp'], 50):.0f}")
    print(f"serve_ready_p95_ms: {percentile(times['serve'], 95):.0f}")
    print(f"serve_ready_ratio: {percentile(times['serve'], 50) / docker_p50:.2f}")
    print(f"serve_ready_ms: {percentile(times['serve'], 50):.0f}")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # bench.panel imported PySide6, whose finalization can crash after the figures are out
