"""Icons and the style sheet from `resources/` (SVG, rendered by Qt at any size)."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

from PySide6.QtGui import QIcon

logger = logging.getLogger(__name__)


def resources_dir() -> Path:
    """`BERTH_RESOURCES`, else `resources/` next to the source tree (or inside a PyInstaller bundle)."""
    env = os.environ.get("BERTH_RESOURCES")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "resources", here.parents[1] / "resources"):
        if candidate.is_dir():
            return candidate
    return here.parents[2] / "resources"


@functools.cache
def icon(name: str) -> QIcon:
    path = resources_dir() / "icons" / f"{name}.svg"
    if not path.exists():
        logger.warning("icon %s is missing (%s)", name, path)
        return QIcon()
    return QIcon(str(path))


def style_sheet() -> str:
    path = resources_dir() / "style.qss"
    try:
        return path.read_text(encoding="utf-8").replace("@ICONS", (resources_dir() / "icons").as_posix())
    except OSError:
        logger.warning("style sheet %s is missing; using Qt's default look", path)
        return ""
