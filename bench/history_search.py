"""Run history search: one word of one run's output among N finished runs (the History view's search box).

Fills a fresh store (SQLite with its full-text index, as Berth keeps it) with N runs of realistic output,
then times searches the view makes: a word found in one run, a word with an agent and exit-code filter,
a word in no run, and the unfiltered newest page. No engine is needed. Ends with
`history_search_ms: X` (p50 of the one-word search at the first size).

    .venv/bin/python -m bench.history_search [--runs 1000,10000] [-n 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.history import History
from app.core.store import Store
from bench.common import percentile


def fill(store: Store, n: int) -> None:
    now = time.time()
    for i in range(n):
        out = "".join(f"step {k} of part {i}: processed {i * 7 + k} records\n" for k in range(20))
        err = f"warning: slow disk on part {i}\n" if i % 10 == 0 else ""
        store.add_run(
            "bulk" if i % 2 else "other", f"c{i}", "berth/python:3", f"python3 job.py --part {i}",
            i % 3, out, err, False, False, False, now - 10_000 + i, now - 9_999 + i,
        )  # fmt: skip
    store.add_run(
        "bulk", "last", "berth/busybox", "sh -c build", 2, "building\n", "error: missing zebrafish.toml\n",
        False, False, False, now, now + 1,
    )  # fmt: skip


def timed(fn: Callable[[], object], n: int) -> list[float]:
    values = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        values.append((time.perf_counter() - t) * 1000)
    return values


def main(sizes: list[int], n: int) -> float:
    first = 0.0
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="berth-bench-history-") as tmp:
            store = Store(Path(tmp) / "berth.sqlite3")
            fill(store, size)
            history = History(store)
            cases: dict[str, Callable[[], object]] = {
                "one word, one run": lambda h=history: h.search("zebrafish"),
                "word + agent + exit": lambda h=history: h.search("processed", agent="bulk", exit=2),
                "word in no run": lambda h=history: h.search("no-such-word-anywhere"),
                "newest page": lambda h=history: h.search(""),
            }
            assert [r.command for r in history.search("zebrafish").runs] == ["sh -c build"]
            for name, fn in cases.items():
                v = timed(fn, n)
                print(f"{size:>6} runs  {name:<22} p50={percentile(v, 50):7.2f} ms  p95={percentile(v, 95):7.2f} ms")
                if name == "one word, one run":
                    print(f"history_search_{size}_p50_ms: {percentile(v, 50):.2f}")
                    first = first or percentile(v, 50)
            store.close()
    return first


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="1000,10000", help="history sizes, comma-separated")
    parser.add_argument("-n", type=int, default=30, help="searches of each kind (default 30)")
    args = parser.parse_args()
    print(f"history_search_ms: {main([int(s) for s in args.runs.split(',')], args.n):.2f}")
