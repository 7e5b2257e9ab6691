"""Run the benchmarks one after another, then print one table of every figure with its goal.

Each bench runs as a subprocess (its output passes through as it comes); its `name: value` lines are
collected, and after the last one a table shows each goal's figure, its value, the goal, and whether
it was met. A figure two benches print (startup_ms, idle_rss_mib) is taken from the bench named for it.
A bench that fails leaves its figures `missing` and the exit status 1; a missed goal does not.

    .venv/bin/python -m bench.summary [BENCH ...]     (default: all; e.g. `temp_run concurrent`)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each bench module with its arguments, in the order `make bench` runs them.
BENCHES: dict[str, list[str]] = {
    "temp_run": [],
    "concurrent": [],
    "peers": [],
    "logs_view": [],
    "engine_paths": [],
    "history_search": [],
    "startup": [],
    "panel": ["--detail", "--no-startup"],
}


@dataclass(frozen=True)
class Goal:
    figure: str
    bench: str  # the bench whose line counts
    text: str  # the goal as people say it; "" for a figure reported without one
    met: Callable[[float], bool] | None = None


def _at_most(bound: float) -> Callable[[float], bool]:
    return lambda v: v <= bound


def _below(bound: float) -> Callable[[float], bool]:
    return lambda v: v < bound


GOALS = [
    Goal("rpc_temp_run_ratio", "temp_run", "<= 0.10", _at_most(0.10)),
    Goal("concurrent_ratio", "concurrent", "<= 0.5", _at_most(0.5)),
    Goal("vs_llm_sandbox_ratio", "peers", "<= 0.05", _at_most(0.05)),
    Goal("startup_ms", "startup", "< 1000", _below(1000)),
    Goal("serve_ready_ms", "startup", "< 700", _below(700)),
    Goal("idle_rss_mib", "startup", "< 120", _below(120)),
    Goal("panel_max_stall_ms", "panel", "< 30 (200 containers)", _below(30)),
    Goal("panel_detail_max_stall_ms", "panel", "< 30 (detail pane open)", _below(30)),
    Goal("app_cpu_percent", "panel", "< 5 (panel, 200 containers)", _below(5)),
    Goal("history_search_ms", "history_search", ""),
]

FIGURE_LINE = re.compile(r"^([a-z][a-z0-9_]*): (-?[0-9.]+|nan)\s*$")


def figures(output: str) -> dict[str, float]:
    """The `name: value` lines of a bench's output (a later line of the same name wins)."""
    found: dict[str, float] = {}
    for line in output.splitlines():
        m = FIGURE_LINE.match(line.strip())
        if m:
            found[m.group(1)] = float(m.group(2))
    return found


def run_bench(name: str) -> dict[str, float] | None:
    """Run one bench with its output passing through; its figures, or None when it failed."""
    argv = [sys.executable, "-m", f"bench.{name}", *BENCHES[name]]
    print(f"== {' '.join(['bench/' + name + '.py', *BENCHES[name]])}", flush=True)
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    if proc.wait() != 0:
        print(f"== bench/{name}.py failed (exit status {proc.returncode})", flush=True)
        return None
    return figures("".join(lines))


def table(results: dict[str, dict[str, float] | None]) -> str:
    rows = [("figure", "value", "goal", "result")]
    for goal in GOALS:
        if goal.bench not in results:
            continue  # not run this time
        got = results[goal.bench]
        value = None if got is None else got.get(goal.figure)
        if value is None or value != value:  # missing, or nan
            rows.append((goal.figure, "missing", goal.text or "-", "missing"))
            continue
        verdict = "reported" if goal.met is None else ("met" if goal.met(value) else "MISSED")
        rows.append((goal.figure, f"{value:g}", goal.text or "-", verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "benches", nargs="*", metavar="BENCH", help=f"benches to run (default: all of {', '.join(BENCHES)})"
    )
    args = parser.parse_args()
    unknown = [b for b in args.benches if b not in BENCHES]
    if unknown:
        parser.error(f"no bench named {', '.join(unknown)}")
    chosen = args.benches or list(BENCHES)
    results = {name: run_bench(name) for name in chosen}
    print("\nsummary (goals of issue #16)")
    print(table(results))
    return 1 if any(r is None for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
