"""Run under X with a tray host (by test_tray.py): the tray icon, a notification, the window on activation.

Prints one JSON line of findings; the test asserts on them. A separate process because the test
session's QApplication is on the offscreen platform, which has no tray.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QSystemTrayIcon

from app.config import Paths
from app.core.application import Application
from app.ui.desktop import Desktop, make_qapp
from app.ui.qtloop import QtLoop


async def until(predicate: Any, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


async def probe(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["tray_available"] = await until(QSystemTrayIcon.isSystemTrayAvailable, 10)
    paths = Paths(root, root / "state", root / "logs")
    app = Application(paths, rpc_port=0)
    desktop = Desktop(app)
    wiring = desktop.wiring
    tray = wiring.tray
    out["tray_made"] = tray is not None
    if tray is None:
        return out
    shown: list[tuple[str, str]] = []
    original = tray.icon.showMessage

    def spy(title: str, body: str, *args: Any) -> None:  # the hook on Qt's balloon
        shown.append((title, body))
        original(title, body, *args)

    tray.icon.showMessage = spy  # type: ignore[method-assign]
    desktop.window.show()
    await desktop.start()
    try:
        out["icon_visible"] = await until(tray.icon.isVisible)
        out["icon_geometry"] = await until(lambda: not tray.icon.geometry().isEmpty())
        out["close_to_tray"] = desktop.window.close_to_tray
        desktop.window.close()  # keeps running in the tray
        await asyncio.sleep(0.3)
        out["quit_after_close"] = desktop._quit.is_set()
        out["window_hidden"] = not desktop.window.isVisible()

        await asyncio.to_thread(app.agents.add, "tray-agent")
        req = await app.approvals.request("tray-agent", "echo from the tray test && sleep 0", None, 60, 0)
        out["notified"] = await until(lambda: bool(shown))
        out["message"] = shown[0] if shown else None
        out["sent"] = [n.channel for n in wiring.notifier.sent]
        out["pending_icon"] = await until(lambda: tray.pending == 1)
        out["menu_count"] = tray.count_action.text()

        tray.icon.messageClicked.emit()  # the person clicks the notification
        out["window_after_message"] = await until(desktop.window.isVisible)
        out["view_after_message"] = desktop.window.current_view()
        shown_req = wiring.queue.detail.request
        out["selected_after_message"] = shown_req is not None and shown_req.request_id == req.request_id

        desktop.window.hide()
        tray.open_action.trigger()  # "Open Berth" in the tray menu
        out["window_after_open_action"] = await until(desktop.window.isVisible)
        desktop.window.hide()
        tray.icon.activated.emit(QSystemTrayIcon.ActivationReason.Trigger)  # a click on the icon
        out["window_after_click"] = await until(desktop.window.isVisible)

        await app.approvals.decide(req.request_id, "deny")
        out["plain_icon_again"] = await until(lambda: tray.pending == 0)
    finally:
        await desktop.stop()
    return out


def main() -> int:
    qapp = make_qapp()
    loop = QtLoop(qapp)
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory() as tmp, loop:
        result = loop.run_until_complete(asyncio.wait_for(probe(Path(tmp)), 60))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
