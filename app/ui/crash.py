"""`sys.excepthook` for the desktop app: log the traceback, tell the person where the log is.

The dialog is opened without `exec()` (no nested event loop inside an asyncio callback), and only
one at a time: a burst of errors gives one dialog, the rest go to the log.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtWidgets import QApplication, QMessageBox

logger = logging.getLogger(__name__)

_open: list[QMessageBox] = []


def install(log_path: Path) -> None:
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
            return
        logger.critical("internal error", exc_info=(kind, value, tb))
        try:
            show(log_path, "".join(traceback.format_exception(kind, value, tb)))
        except Exception:
            logger.exception("could not show the crash dialog")

    sys.excepthook = hook


def show(log_path: Path, details: str) -> QMessageBox | None:
    if QApplication.instance() is None or _open:
        return None
    box = QMessageBox(QMessageBox.Icon.Critical, "Berth hit an internal error", "Something went wrong inside Berth.")
    box.setObjectName("crashBox")
    box.setInformativeText(
        f"Berth keeps running, but what you just did may not have finished.\n\n"
        f"The details are in the log file:\n{log_path}\n\nPlease include it if you report this."
    )
    box.setDetailedText(details)
    box.finished.connect(lambda _r: _open.remove(box) if box in _open else None)
    _open.append(box)
    box.open()
    return box
