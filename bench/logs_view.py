"""The logs viewer with a big log: 100 000 lines arriving in 100 chunks, as a follow stream delivers them.

Measures how late a 10 ms GUI timer fires while the lines go in (the worst GUI stall), the time until
every line is shown, and the time a search for the last line takes. No engine is needed: this is the
viewer alone. Ends with `logs_view_max_stall_ms: X`.

    .venv/bin/python -m bench.logs_view [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QTimer

from app.ui.desktop import make_qapp
from app.ui.logs_viewer import LogsView
from app.ui.qtloop import QtLoop
from bench.common import percentile

TICK_MS = 10


async def one_round() -> tuple[float, float, float, float]:
    view = LogsView()
    view.resize(900, 500)
    view.show()
    lateness: list[float] = []
    last = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        lateness.append(max(0.0, (now - last[0]) * 1000 - TICK_MS))
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(TICK_MS)
    started = time.monotonic()
    for chunk in range(100):
        view.append("".join(f"2024-05-01T10:00:00.{i:09d}Z request {chunk * 1000 + i} ok\n" for i in range(1000)))
        await asyncio.sleep(0)
    while view.pending():
        await asyncio.sleep(0.01)
    shown_s = time.monotonic() - started
    timer.stop()
    view.search.setText("request 99999 ")
    t = time.monotonic()
    found = view.find_next()
    search_ms = (time.monotonic() - t) * 1000
    assert found and view.text.document().blockCount() >= 100_000
    view.close()
    view.deleteLater()
    return max(lateness), percentile(lateness, 99), shown_s, search_ms


async def main(rounds: int) -> None:
    worst: list[float] = []
    for i in range(rounds):
        stall, p99, shown_s, search_ms = await one_round()
        worst.append(stall)
        print(
            f"round {i + 1}: 100 000 lines shown in {shown_s:.2f} s, worst GUI stall {stall:.1f} ms "
            f"(p99 {p99:.1f} ms), search for the last line {search_ms:.0f} ms"
        )
    print(f"logs_view_max_stall_ms: {max(worst):.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    qapp = make_qapp()
    loop = QtLoop(qapp)
    try:
        loop.run_until_complete(main(args.rounds))
    finally:
        loop.close()
