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
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import demo_data
from PySide6.QtWidgets import QMessageBox, QWidget

from app.config import Paths
from app.core.application import Application
from app.core.engine_start import StartFacts
from app.host import ShellResult
from app.runtime import Runtime, setup_logging
from app.ui.agent_dialogs import AddAgentDialog, AgentSettingsDialog
from app.ui.container_model import CONTAINER, RUN
from app.ui.desktop import Desktop, make_qapp
from app.ui.qtloop import QtLoop
from app.ui.token_dialog import TokenDialog

IMPORT = "/usr/bin/import"


async def shot(out: Path, name: str, widget: QWidget) -> None:
    await asyncio.sleep(0.6)  # let it paint (no processEvents() here: it would run other tasks inside this one)
    path = out / f"{name}.png"
    if os.environ.get("DISPLAY") and os.access(IMPORT, os.X_OK):
        await asyncio.to_thread(subprocess.run, [IMPORT, "-window", "root", str(path)], check=True)
    else:
        widget.grab().save(str(path))
    print(f"saved {path}", flush=True)


async def until(predicate: Any, limit_s: float = 10.0) -> None:
    end = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("the screenshot driver waited too long")
        await asyncio.sleep(0.05)


def dialog_of(widgets: list[Any], kind: type) -> Any:
    return next((d for d in widgets if isinstance(d, kind) and d.isVisible()), None)


def visible_confirm(widget: QWidget) -> QMessageBox | None:
    return next((b for b in widget.findChildren(QMessageBox, "confirmBox") if b.isVisible()), None)


async def part_two(out: Path, desktop: Desktop, data_dir: Path) -> None:
    """The Approval Queue (warnings, a hidden character, full access), the tray notification, Agent Settings
    (host folders), Settings (host commands)."""
    app, window, wiring = desktop.app, desktop.window, desktop.wiring
    # A project of the person's, granted to web-builder as a host folder (outside Berth's own folders).
    project = data_dir.parent / f"{data_dir.name}-shop"
    project.mkdir(exist_ok=True)
    wiring.notifier.paused = True  # the demo's requests would each pop up a notification over the window
    ids = await demo_data.populate_approvals(app, str(project))
    queue = wiring.queue
    await until(lambda: queue.pending_model.rowCount() == 4)

    window.show_view("approvals")
    queue.select_request(ids["hidden"])
    await shot(out, "08-approvals-hidden-character", window)
    queue.select_request(ids["host"])
    await shot(out, "08a-approvals-full-access-request", window)
    confirming = queue.approve_full_selected()
    await until(lambda: visible_confirm(queue) is not None)
    await shot(out, "08a2-approvals-full-access-confirm", window)
    box = visible_confirm(queue)
    if box is not None:
        box.reject()
    await confirming
    await queue.open_trust()
    queue.detail.trust.full_access.setChecked(True)
    await shot(out, "08a3-approvals-trust-full-access", window)
    queue.detail.trust.hide()
    queue.select_request(ids["build"])
    await shot(out, "08f-approvals-sandbox-warning", window)
    await queue.open_trust()
    await shot(out, "08b-approvals-trust", window)
    queue.detail.trust.pattern.setText("npm *")
    await shot(out, "08b2-approvals-trust-wildcard", window)
    queue.detail.trust.hide()
    queue.select_request(ids["multi"])
    await shot(out, "08c-approvals-multiline", window)
    queue.select_request(ids["approved"])
    await shot(out, "08d-approvals-history", window)
    queue.select_request(ids["expired"])
    await shot(out, "08e-approvals-expired", window)

    # A new request while the window is in the background: the tray's notification.
    window.show_view("containers")
    window.showMinimized()
    wiring.notifier.paused = False
    await asyncio.sleep(0.5)
    await app.approvals.request("web-builder", "make deploy ENV=staging", str(project), 60, 0, access="host")
    await asyncio.sleep(1.0)
    await shot(out, "12-tray-notification", window)
    if wiring.tray is not None and os.environ.get("DISPLAY"):
        wiring.tray.icon.hide()  # dismiss the balloon, then a close-up of the tray with the marked icon
        wiring.tray.icon.show()
        window.hide()  # no window manager here: the window would cover the tray
        await asyncio.sleep(0.8)
        full, close_up = out / "12a-screen.png", out / "12a-tray-icon-pending.png"
        await asyncio.to_thread(subprocess.run, [IMPORT, "-window", "root", str(full)], check=True)
        scale = ["/usr/bin/convert", str(full), "-crop", "160x34+1120+0", "+repage", "-scale", "300%", str(close_up)]
        await asyncio.to_thread(subprocess.run, scale, check=True)
        full.unlink()
        print(f"saved {close_up}", flush=True)
    if wiring.tray is not None and wiring.notifier.sent:
        wiring.show_request(wiring.notifier.last_request)  # as a click on the notification does
    else:
        window.showNormal()
    await shot(out, "12b-after-notification-click", window)

    agents = wiring.agents
    window.show_view("agents")
    await agents.reload()
    await agents.refresh_usage()
    agents.select("research-bot")
    await shot(out, "09-agents", window)
    await shot(out, "14-agents-usage", window)  # the usage bars (issue 17 names this view)

    task = agents.add_agent()
    add = None
    await until(lambda: dialog_of(agents.dialogs, AddAgentDialog) is not None)
    add = dialog_of(agents.dialogs, AddAgentDialog)
    add.name.setText("claude")
    await shot(out, "09b-add-agent", window)
    add.add_button.click()
    await task
    await until(lambda: dialog_of(agents.dialogs, TokenDialog) is not None)
    token_dialog = dialog_of(agents.dialogs, TokenDialog)
    await shot(out, "09c-agent-token", window)
    token_dialog.close()

    agents.select("web-builder")
    edit = agents.edit_selected()
    await until(lambda: dialog_of(agents.dialogs, AgentSettingsDialog) is not None)
    settings = dialog_of(agents.dialogs, AgentSettingsDialog)
    await shot(out, "09d-agent-settings-limits", window)
    settings.tabs.setCurrentIndex(1)
    settings.patterns.try_command.setText("git status --short")
    await shot(out, "09e-agent-settings-patterns", window)
    settings.tabs.setCurrentIndex(2)
    await shot(out, "09f-agent-settings-folders", window)
    settings.reject()
    await edit

    dialog = wiring.open_settings()
    await asyncio.sleep(1.0)
    await shot(out, "11-settings", window)
    dialog.tabs.setCurrentIndex(1)
    dialog.add_hidden_folder(str(Path.home() / "Documents" / "taxes"))
    dialog.add_hidden_folder(str(Path.home() / ".config" / "rclone"))
    await shot(out, "11c-settings-host-commands", window)
    dialog.tabs.setCurrentIndex(2)
    dialog.patterns.pattern.setText("pytest *")
    await shot(out, "11b-settings-patterns", window)
    engines = dialog.engines
    dialog.tabs.setCurrentWidget(engines)
    # gpu-box (demo_data.GPU_BOX) never answers: its check takes the connection's timeout.
    await until(lambda: engines.model.rowCount() == 2 and engines.refresh_button.isEnabled(), limit_s=30)
    await shot(out, "11c-settings-engines", window)
    adding = engines.add_engine()
    await until(lambda: engines.dialog is not None and engines.dialog.isVisible())
    add = engines.dialog
    add.name.setText("build-box")
    add.address.setText("ssh://ci@build-box.invalid")
    await add.test_connection()
    await shot(out, "11d-settings-add-engine", window)
    add.reject()
    await adding
    dialog.reject()
    await asyncio.sleep(0.2)


async def main(out: Path, data_dir: Path, keep: bool) -> None:
    paths = Paths(data_dir, data_dir / "state", data_dir / "logs")
    paths.ensure()
    demo_data.store_engines(paths)
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
        panel.show_details()
        await asyncio.sleep(4)  # a few stats ticks for the graphs
        await shot(out, "13b-container-graphs", window)
        panel.details.tabs.setCurrentIndex(1)
        await asyncio.sleep(0.5)
        await shot(out, "13-container-detail", window)
        panel.hide_details()

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

        window.show_view("history")
        await asyncio.sleep(1.5)
        await shot(out, "15-history", window)
        desktop.history.search.setText("error")
        await asyncio.sleep(1.5)
        await shot(out, "15-history-search", window)
        desktop.history.search.setText("")

        await part_two(out, desktop, data_dir)
        window.show_view("containers")
        assert any(r.type == CONTAINER for r in desktop.model.rows())
    finally:
        shutil.rmtree(data_dir.parent / f"{data_dir.name}-shop", ignore_errors=True)
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
    await start_docker_failed(out, data_dir)


async def start_docker_failed(out: Path, data_dir: Path) -> None:
    """Start Docker for a rootless engine that is not running, and the start fails. The facts are those of a
    Linux user with systemd and the runner is a fake: nothing is started."""
    socket_dir = "/run/user/1000"
    paths = Paths(data_dir / "rootless", data_dir / "rootless" / "state", data_dir / "rootless" / "logs")
    down = Desktop(Application(paths, rpc_port=0, engine_endpoint=f"unix://{socket_dir}/docker.sock"))
    stderr = (
        "Job for docker.service failed because the control process exited with error code.\n"
        'See "systemctl --user status docker.service" and "journalctl --user -xeu docker.service" for details.'
    )

    async def fails(argv: Any, timeout_s: float) -> ShellResult:
        return ShellResult(1, "", stderr)

    starter = down.app.owner.engine_starter
    starter.facts = StartFacts("linux", 1000, {"systemctl"}, starter.endpoint, systemd=True, runtime_dir=socket_dir)
    starter.run = fails
    down.window.move(0, 0)
    down.window.resize(1280, 800)
    down.window.show_view("containers")
    down.window.show()
    await down.start()
    banner = down.window.banner
    await until(lambda: banner.start_button.isEnabled())
    banner.start_button.click()
    await until(lambda: not banner.failure.isHidden())
    await shot(out, "10b-engine-down-start-failed", down.window)
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
    loop = QtLoop(qapp)
    asyncio.set_event_loop(loop)
    with loop:
        loop.run_until_complete(main(args.out.resolve(), args.data_dir.resolve(), args.keep))
    return 0


if __name__ == "__main__":
    sys.exit(run())
