"""Runs the desktop app on demo data and saves a PNG of each view (called by scripts/screenshots).

Usage: python scripts/screenshot_driver.py --out DIR --data-dir DIR [--keep]
Under X (DISPLAY set) the pictures come from `/usr/bin/import -window root`, as a person would see the
screen; without X, from Qt's own grab of the window.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import demo_data
from PySide6.QtWidgets import QApplication, QWidget
from qasync import QEventLoop

from app.config import Paths
from app.core.application import Application
from app.main import Runtime, setup_logging
from app.ui.container_model import CONTAINER, RUN
from app.ui.desktop import Desktop, make_qapp

IMPORT = "/usr/bin/import"


async def shot(out: Path, name: str, widget: QWidget) -> None:
    await asyncio.sleep(0.6)  # let it paint
    QApplication.processEvents()
    path = out / f"{name}.png"
    if os.environ.get("DISPLAY") and os.access(IMPORT, os.X_OK):
        await asyncio.to_thread(subprocess.run, [IMPORT, "-window", "root", str(path)], check=True)
    else:
        widget.grab().save(str(path))
    print(f"saved {path}", flush=True)


async def main(out: Path, data_dir: Path, keep: bool) -> None:
    paths = Paths(data_dir, data_dir / "state", data_dir / "logs")
    app = Application(paths, rpc_port=0)
    desktop = Desktop(app, Runtime(app))
    window = desktop.window
    window.move(0, 0)
    window.resize(1280, 800)
    window.show_view("containers")
    window.show()
    await desktop.start()
    demo = await demo_data.populate(app)
    try:
        panel = desktop.panel
        await asyncio.sleep(3)  # stats for a few ticks
        await shot(out, "01-containers", window)

        worker = demo.services["ingest-worker"]
        panel.select_key(worker)
        await shot(out, "02-containers-selected", window)

        (logs,) = panel.open_logs()
        logs.move(110, 70)
        logs.resize(1060, 640)
        await asyncio.sleep(1.5)
        logs.view.search.setText("WARN")
        await asyncio.sleep(0.5)
        logs.view.find_next()
        await shot(out, "03-logs-search", logs)
        logs.view.timestamps_button.setChecked(True)
        logs.view.follow_button.setChecked(True)
        await shot(out, "04-logs-follow-timestamps", logs)
        logs.close()

        failed = next(r for r in desktop.model.rows() if r.type == RUN and r.exit_code == 2)
        panel.select_key(failed.key)
        await shot(out, "05a-run-selected", window)
        (output,) = panel.open_logs()
        output.move(160, 120)
        output.resize(900, 480)
        await shot(out, "05-run-output", output)
        output.close()

        panel.filter_text.setText("web-builder")
        await shot(out, "06-containers-filtered", window)
        panel.filter_text.setText("no-such-thing")
        await shot(out, "07-containers-no-match", window)
        panel.clear_filter()

        window.show_view("approvals")
        window.set_badge("approvals", 2)
        await shot(out, "08-approvals", window)
        window.set_badge("approvals", 0)
        window.show_view("agents")
        await shot(out, "09-agents", window)
        window.show_view("containers")
        assert any(r.type == CONTAINER for r in desktop.model.rows())
    finally:
        if not keep:
            await demo_data.cleanup(app, demo)
        await desktop.stop()
        window.close()

    # The engine down: the same window on an endpoint where nothing answers.
    down_paths = Paths(data_dir / "down", data_dir / "down" / "state", data_dir / "down" / "logs")
    down = Desktop(Application(down_paths, rpc_port=0, engine_endpoint="tcp://127.0.0.1:1"))
    down.window.move(0, 0)
    down.window.resize(1280, 800)
    down.window.show_view("containers")
    down.window.show()
    await down.start()
    await asyncio.sleep(1)
    await shot(out, "10-engine-down", down.window)
    await down.stop()
    down.window.close()


def run() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--keep", action="store_true", help="leave the demo containers running")
    args = parser.parse_args()
    if args.data_dir.exists() and not args.keep:
        shutil.rmtree(args.data_dir)
    paths = Paths(args.data_dir, args.data_dir / "state", args.data_dir / "logs")
    setup_logging(paths)
    args.out.mkdir(parents=True, exist_ok=True)
    qapp = make_qapp()
    loop = QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    with loop:
        loop.run_until_complete(main(args.out.resolve(), args.data_dir.resolve(), args.keep))
    return 0


if __name__ == "__main__":
    sys.exit(run())
