"""Dialogs that do not block the event loop: a confirmation awaited as a future, not `exec()`.

A modal `exec()` inside an asyncio task would nest Qt's loop inside the task (qasync's pitfall);
`open()` plus a future keeps one loop and lets tests find and click the box.
"""

from __future__ import annotations

import asyncio

from PySide6.QtWidgets import QDialog, QMessageBox, QPushButton, QWidget


async def run_dialog(dialog: QDialog) -> int:
    """Open `dialog` (window-modal, no nested loop) and await its result code."""
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def finished(result: int) -> None:
        if not done.done():
            done.set_result(result)

    dialog.finished.connect(finished)
    dialog.open()
    return await done


async def confirm(parent: QWidget, title: str, text: str, ok_text: str, *, detail: str = "") -> bool:
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.Cancel, parent)
    box.setObjectName("confirmBox")
    if detail:
        box.setInformativeText(detail)
    ok: QPushButton = box.addButton(ok_text, QMessageBox.ButtonRole.AcceptRole)
    ok.setObjectName("confirm")
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def done(_result: int) -> None:
        if not future.done():
            future.set_result(box.clickedButton() is ok)

    box.finished.connect(done)
    box.open()
    try:
        return await future
    finally:
        box.deleteLater()
