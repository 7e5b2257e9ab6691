"""A temporary run through the agent client and JSON-RPC (`berth serve` as a subprocess) vs `docker run --rm`.

Both run `echo hi` in berth/busybox with no network, alternated in one run. Ends with
`rpc_temp_run_ratio: X` (client p50 / CLI p50; lower is better).

    .venv/bin/python bench/rpc_run.py [-n 30]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.rpc.client import BerthClient  # noqa: E402
from bench.common import BUSYBOX, docker_run_once, percentile, summary, timed  # noqa: E402


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    berth = [sys.executable, "-m", "app", "--data-dir", str(data_dir)]
    token = (
        subprocess.run(
            [*berth, "agents", "add", "bench", "--max-containers", "50"],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    proc = subprocess.Popen([*berth, "serve", "--rpc-port", "0"], stderr=subprocess.DEVNULL, cwd=ROOT)
    endpoint = data_dir / "state" / "endpoint.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            url = json.loads(endpoint.read_text())["url"]
            urllib.request.urlopen(url + "/health", timeout=1).close()
            return proc, url, token
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("berth serve did not come up")


def main(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
        proc, url, token = start_server(Path(tmp))
        try:
            client = BerthClient(url, token)
            run = lambda: client.run(["echo", "hi"], image=BUSYBOX)  # noqa: E731
            for _ in range(3):
                run()
                docker_run_once()
            rpc: list[float] = []
            cli: list[float] = []
            for _ in range(n):
                rpc.append(timed(run))
                cli.append(docker_run_once())
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    print(summary("berth JSON-RPC run", rpc))
    print(summary("docker run --rm", cli))
    print(f"rpc_p50_ms: {percentile(rpc, 50):.1f}")
    print(f"docker_run_p50_ms: {percentile(cli, 50):.1f}")
    print(f"rpc_temp_run_ratio: {percentile(rpc, 50) / percentile(cli, 50):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=30, help="runs of each (default 30)")
    os.environ.pop("BERTH_DATA_DIR", None)
    main(parser.parse_args().n)
