"""The Container Panel under load: N service containers, the panel open and refreshing for 30 s.

Prints the worst GUI-thread stall (how late a 20 ms timer fired) and its p99, the app's CPU %,
`startup_ms` (process start to window shown, from the real `berth` on the same data dir) and
`idle_rss_mib`. `--containers 50,200,400` measures at each size in turn (the services of the smaller
sizes stay, so the cost's growth shows in one run); `--detail` also measures each size with the detail
pane of one row open (its live graphs redraw on every stats tick). Every container made is removed at
the end, also on errors. Ends with `panel_max_stall_ms: X` (goal < 30 ms, app CPU < 5 %) at 200
containers, or at the largest size when 200 is not measured.

    .venv/bin/python -m bench.panel [--containers 200] [--seconds 30] [--detail] [--no-startup]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QTimer  # noqa: E402

from app.config import Paths  # noqa: E402
from app.core.application import Application  # noqa: E402
from app.model import Agent, Limits  # noqa: E402
from app.ui.desktop import Desktop, make_qapp  # noqa: E402
from app.ui.qtloop import QtLoop  # noqa: E402

BUSYBOX = "berth/busybox:latest"
PROBE_MS = 20


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def start_services(app: Application, agent: Agent, first: int, n: int) -> None:
    """Services svc-<first> .. svc-<n - 1>: a sleep each, no network."""
    gate = asyncio.Semaphore(12)

    async def one(i: int) -> None:
        async with gate:
            await app.containers.start_service(agent, name=f"svc-{i:03d}", image=BUSYBOX, command="sleep 100000",
                                               network="none")  # fmt: skip

    t = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(first, n)))
    print(f"started {n - first} services in {time.monotonic() - t:.1f} s ({n} in all)", flush=True)


async def probe_stalls(desktop: Desktop, seconds: float) -> dict[str, float]:
    """How late a 20 ms timer fires on the GUI thread for `seconds`, and the app's CPU % meanwhile."""
    stalls: list[float] = []
    last = [time.monotonic()]

    def probe() -> None:
        now = time.monotonic()
        stalls.append(max(0.0, (now - last[0]) * 1000 - PROBE_MS))
        last[0] = now

    # The garbage collector's pauses on this thread meanwhile: a full collection over many objects is a stall
    # that no repaint explains.
    gc_pauses: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif info.get("generation") == 2:
            gc_pauses.append((time.perf_counter() - gc_started[0]) * 1000)

    gc.callbacks.append(on_gc)
    timer = QTimer()
    timer.timeout.connect(probe)
    ticks0 = desktop.feed.stats_ticks
    cpu0, wall0 = cpu_seconds(), time.monotonic()
    timer.start(PROBE_MS)
    await asyncio.sleep(seconds)
    timer.stop()
    gc.callbacks.remove(on_gc)
    cpu = (cpu_seconds() - cpu0) / (time.monotonic() - wall0) * 100
    stalls.sort()
    return {
        "gc_full": float(len(gc_pauses)),
        "gc_max_ms": max(gc_pauses, default=0.0),
        "max_stall": stalls[-1],
        "p99_stall": stalls[int(len(stalls) * 0.99)],
        "cpu": cpu,
        "stats_ticks": desktop.feed.stats_ticks - ticks0,
        "samples": len(stalls),
    }


async def measure_panel(paths: Paths, sizes: list[int], seconds: float, detail: bool) -> list[dict[str, float]]:
    """At each size: the panel alone, then (with `detail`) with the detail pane of one row open."""
    app = Application(paths, rpc_port=0)
    desktop = Desktop(app)
    desktop.window.resize(1280, 800)
    desktop.window.show()
    await desktop.start()
    agent, _ = await asyncio.to_thread(
        app.agents.add, "bench", Limits(max_containers=max(sizes) + 10, cpus=2.0, memory=64 * 1024 * 1024)
    )
    results: list[dict[str, float]] = []
    try:
        running = 0
        for n in sizes:
            await start_services(app, agent, running, n)
            running = n
            await asyncio.sleep(3)  # let the panel settle after the burst of events
            rows = [r for r in desktop.model.rows() if r.running]
            assert len(rows) >= n, "the panel does not show every container"
            result = {"containers": float(n), **await probe_stalls(desktop, seconds)}
            if detail:
                assert desktop.panel.select_key(rows[0].key)
                pane = desktop.panel.show_details()
                assert pane is not None and pane.isVisible()
                await asyncio.sleep(2)  # its first load (inspect, logs) lands; then the pane as it stays open
                opened = await probe_stalls(desktop, seconds)
                result.update({f"detail_{k}": v for k, v in opened.items()})
                result["detail_readings"] = float(len(pane.cpu.values))
                desktop.panel.hide_details()
            results.append(result)
    finally:
        await desktop.stop()
        desktop.window.close()
    return results


def measure_startup(data_dir: Path) -> tuple[float, float]:
    """Run the real `berth` on the same data dir: ms until its window shows, then its RSS after 10 s idle."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--data-dir", str(data_dir), "app", "--rpc-port", "0"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    startup = float("nan")
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            m = re.search(r"window shown (\d+) ms after the process started", line)
            if m:
                startup = float(m.group(1))
                break
        time.sleep(10)
        rss_kib = next(
            int(line.split()[1]) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )  # fmt: skip
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return startup, rss_kib / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", default="200", help="sizes, e.g. 50,200,400 (default 200)")
    parser.add_argument("--seconds", type=float, default=30, help="the panel open this long at each size")
    parser.add_argument("--detail", action="store_true", help="also measure with one row's detail pane open")
    parser.add_argument("--no-startup", action="store_true", help="skip startup_ms and idle_rss_mib")
    args = parser.parse_args()
    sizes = sorted({int(n) for n in args.containers.split(",")})
    data_dir = Path(tempfile.mkdtemp(prefix="berth-bench-panel-"))
    paths = Paths(data_dir, data_dir / "state", data_dir / "logs")
    instance = paths.instance_id()
    qapp = make_qapp()
    loop = QtLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        with loop:
            results = loop.run_until_complete(measure_panel(paths, sizes, args.seconds, args.detail))
        startup_ms, rss = (float("nan"), float("nan")) if args.no_startup else measure_startup(data_dir)
    finally:
        ids = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=berth.instance={instance}"], capture_output=True, text=True
        ).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"panel open {args.seconds:.0f} s at each size; gui stall = how late a {PROBE_MS} ms timer fired")
    print(f"{'containers':>10} {'stats ticks':>11} {'max ms':>7} {'p99 ms':>7} {'cpu %':>6}", end="")
    print(f"   {'detail: max ms':>14} {'p99 ms':>7} {'cpu %':>6}" if args.detail else "")
    for r in results:
        line = f"{r['containers']:>10.0f} {r['stats_ticks']:>11.0f} {r['max_stall']:>7.1f} {r['p99_stall']:>7.1f}"
        line += f" {r['cpu']:>6.1f}"
        if args.detail:
            line += f"   {r['detail_max_stall']:>14.1f} {r['detail_p99_stall']:>7.1f} {r['detail_cpu']:>6.1f}"
        print(line)
    for r in results:
        n = f"{r['containers']:.0f}"
        print(f"full garbage collections at {n}: {r['gc_full']:.0f}, the longest {r['gc_max_ms']:.1f} ms")
        print(f"panel_max_stall_ms_{n}: {r['max_stall']:.1f}")
        print(f"panel_p99_stall_ms_{n}: {r['p99_stall']:.1f}")
        print(f"app_cpu_percent_{n}: {r['cpu']:.1f}")
        if args.detail:
            print(f"panel_detail_max_stall_ms_{n}: {r['detail_max_stall']:.1f}")
            print(f"panel_detail_p99_stall_ms_{n}: {r['detail_p99_stall']:.1f}")
            print(f"app_cpu_percent_detail_{n}: {r['detail_cpu']:.1f}")
    main_r = next((r for r in results if r["containers"] == 200), results[-1])
    if not args.no_startup:
        print(f"startup_ms: {startup_ms:.0f}")
        print(f"idle_rss_mib: {rss:.0f}")
    print(f"app_cpu_percent: {main_r['cpu']:.1f}")
    if args.detail:
        print(f"panel_detail_max_stall_ms: {main_r['detail_max_stall']:.1f}")
    print(f"panel_max_stall_ms: {main_r['max_stall']:.1f}")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # PySide6 6.12 can crash while the interpreter finalizes after a qasync loop closed
    # ("bool_dealloc" during garbage collection); the figures are out, so skip finalization.
    os._exit(code)
