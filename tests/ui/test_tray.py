"""The tray under a real X server (Xvfb) with a tray host (trayer): icon, notification, window on activation.

`make test` installs Xvfb and trayer (Debian). Run by hand where they are missing, the test is skipped and
says why; under CI=true it fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing_part

ROOT = Path(__file__).resolve().parents[2]


def _free_display() -> int:
    n = 140
    while Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
        n += 1
    return n


@pytest.fixture
def x_with_tray(tmp_path: Path) -> Iterator[str]:
    xvfb, trayer = shutil.which("Xvfb"), shutil.which("trayer")
    if not xvfb or not trayer:
        missing = " and ".join(n for n, p in (("Xvfb", xvfb), ("trayer", trayer)) if not p)
        missing_part(f"{missing} not installed (make test installs them: apt-get install xvfb trayer)")
    n = _free_display()
    display = f":{n}"
    log = (tmp_path / "xvfb.log").open("w")
    server = subprocess.Popen([xvfb, display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"], stderr=log)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            missing_part(f"Xvfb could not start on {display}: {(tmp_path / 'xvfb.log').read_text()[-300:]}")
        time.sleep(0.05)
    env = {**os.environ, "DISPLAY": display}
    tray = subprocess.Popen(
        [trayer, "--edge", "top", "--align", "right", "--widthtype", "pixel", "--width", "120", "--height", "32"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield display
    finally:
        for p in (tray, server):
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


@pytest.mark.timeout(120)
def test_tray_icon_notification_and_activation(x_with_tray: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DISPLAY": x_with_tray,
        "QT_QPA_PLATFORM": "xcb",
        "QT_API": "pyside6",
        "PYTHONPATH": str(ROOT),
        "XDG_RUNTIME_DIR": str(tmp_path),
    }
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)  # Qt's own balloon, not a desktop notification service
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("tray_probe.py"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["tray_available"], "trayer runs but Qt sees no system tray"
    assert found["tray_made"] and found["icon_visible"] and found["icon_geometry"]
    # With a tray, closing the window keeps Berth running.
    assert found["close_to_tray"] and found["window_hidden"] and not found["quit_after_close"]
    # A new request: Berth's popup by the tray names the agent, shows the command in monospace, its folder
    # and the time left; the icon carries the count in a badge.
    assert found["notified"] and found["popup_visible"], found
    title, command = found["message"]
    assert "tray-agent" in title and command.startswith("echo from the tray test")
    assert found["popup_mono"] and found["popup_folder"].startswith("in /") and found["popup_near_icon"]
    assert "left to decide" in found["popup_facts"]
    assert found["sent"][0] == "popup" and found["balloon_not_used"]
    assert found["pending_icon"] and found["menu_count"].startswith("1 command waiting")
    assert found["badge_colour"] == "#c2410c", found["badge_colour"]
    assert "1 more waiting" in found["more_waiting"] and "downloads and runs code" in found["risk_warning"]
    assert found["two_on_icon"]
    # Activating the notification brings the window to that request; the menu and a click open it too.
    assert found["window_after_message"] and found["view_after_message"] == "approvals"
    assert found["selected_after_message"]
    assert found["window_after_open_action"] and found["window_after_click"]
    assert found["plain_icon_again"]
