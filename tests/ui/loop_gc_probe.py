"""Run by test_qtloop.py in a process of its own (a failure here is a segfault): a closed loop whose
reference cycle is collected on a worker thread must leave no Qt timer behind to fire into freed memory."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import qasync
from PySide6.QtWidgets import QApplication

from app.ui.qtloop import QtLoop


def main(kind: str) -> None:
    app = QApplication([])
    loop_class = qasync.QEventLoop if kind == "qasync" else QtLoop

    def make_and_close() -> object:
        loop = loop_class(app)

        async def work() -> None:
            handle = asyncio.get_running_loop().call_later(0.3, lambda: None)
            handle.cancel()  # cancelled: qasync keeps its Qt timer registered until it fires

        loop.run_until_complete(work())
        loop.close()
        return loop

    holder = [make_and_close()]

    def collect_elsewhere() -> None:
        holder.clear()
        gc.collect()  # the loop's reference cycle dies here, off the GUI thread, as it may in the app

    t = threading.Thread(target=collect_elsewhere)
    t.start()
    t.join()
    deadline = time.monotonic() + 0.8
    while time.monotonic() < deadline:  # the cancelled handle's timer would fire in here
        app.processEvents()
        time.sleep(0.01)
    print("survived", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "qtloop")
