"""Temporary runs of `echo hi` in berth/busybox: Berth's engine facade vs `docker run --rm --network none`.

The two are alternated in one run so both see the same machine load. Ends with `temp_run_ratio: X`
(facade p50 / CLI p50; lower is better).

    .venv/bin/python bench/temp_run.py [-n 30]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.engine import Engine
from app.model import RunSpec
from bench.common import BUSYBOX, docker_run_once, percentile, summary


async def main(n: int) -> None:
    engine = Engine("bench" + secrets.token_hex(4))
    spec = RunSpec(agent="bench", image=BUSYBOX, command=["echo", "hi"])
    facade: list[float] = []
    cli: list[float] = []
    loop = asyncio.get_running_loop()
    try:
        for _ in range(3):  # warm-up: first runs pay for caches
            await engine.run_temporary(spec)
            await asyncio.to_thread(docker_run_once)
        for _ in range(n):
            t = loop.time()
            r = await engine.run_temporary(spec)
            facade.append((loop.time() - t) * 1000)
            assert r.stdout == "hi\n", r
            cli.append(await asyncio.to_thread(docker_run_once))
        await engine.drain_cleanups()
    finally:
        await engine.aclose()
    print(summary("engine facade", facade))
    print(summary("docker run --rm", cli))
    print(f"temp_run_facade_p50_ms: {percentile(facade, 50):.1f}")
    print(f"temp_run_docker_p50_ms: {percentile(cli, 50):.1f}")
    print(f"temp_run_ratio: {percentile(facade, 50) / percentile(cli, 50):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=30, help="runs of each (default 30)")
    asyncio.run(main(parser.parse_args().n))
