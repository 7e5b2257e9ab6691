"""Start Berth when the person logs in: an XDG autostart entry, `$XDG_CONFIG_HOME/autostart/berth.desktop`.

With Berth started at login, the tray and the RPC port are there when agents need them. The entry runs
the same program that is running now (the bundle's executable, the `berth` script, or `python -m app`),
so it keeps working wherever Berth was installed. Only the settings dialog calls this.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

ENTRY_NAME = "berth.desktop"


def entry_path() -> Path:
    """Where the entry goes: `$XDG_CONFIG_HOME/autostart` (default `~/.config/autostart`)."""
    config = os.environ.get("XDG_CONFIG_HOME")
    base = Path(config) if config and Path(config).is_absolute() else Path.home() / ".config"
    return base / "autostart" / ENTRY_NAME


def is_enabled() -> bool:
    """True when the entry exists and is not switched off (`Hidden=true`, or GNOME's own flag)."""
    try:
        text = entry_path().read_text(encoding="utf-8")
    except OSError:
        return False
    keys = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return keys.get("Hidden", "false").strip() != "true" and keys.get("X-GNOME-Autostart-enabled", "true") != "false"


def set_enabled(on: bool) -> None:
    """Write (or remove) the entry. Raises OSError when the folder cannot be written."""
    path = entry_path()
    if not on:
        try:
            path.unlink()
            logger.info("autostart off: removed %s", path)
        except FileNotFoundError:
            pass
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(entry_text(), encoding="utf-8")
    tmp.replace(path)
    logger.info("autostart on: wrote %s", path)


def entry_text() -> str:
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=Berth\n"
        "Comment=A safe place for AI agents to run code on this computer\n"
        f"Exec={exec_line()}\n"
        "Icon=berth\n"
        "Terminal=false\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def exec_line() -> str:
    return " ".join(_quote(arg) for arg in command())


def command() -> list[str]:
    """The command that starts this Berth's desktop app."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "berth" and script.is_file():
        return [str(script.resolve())]
    found = shutil.which("berth")
    if found:
        return [str(Path(found).resolve())]
    return [sys.executable, "-m", "app"]


def _quote(arg: str) -> str:
    """Quote one argument by the Desktop Entry spec's rules for `Exec`."""
    reserved = set(" \t\n\"'\\><~|&;$*?#()`=")
    if arg and not reserved.intersection(arg):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    # In a .desktop file's string value a backslash is itself escaped once more.
    return '"' + escaped.replace("\\", "\\\\") + '"'
