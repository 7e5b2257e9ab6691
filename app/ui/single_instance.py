"""One desktop Berth per data dir: a second `berth` brings the running window to the front and exits.

The running app listens on a local socket named after its data dir (only this user may connect);
a second `berth` on the same data dir connects, says `activate`, and exits 0 without starting a
second RPC server. The data dir itself is claimed with `app.instance.InstanceLock`, the same lock
`berth serve` takes, so a window never starts next to a headless server either (and vice versa):
then the second one is refused with a message, exit 1.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QWidget

from app.config import Paths
from app.instance import InstanceLock

logger = logging.getLogger(__name__)

ACTIVATE = b"activate"
MAX_REQUEST = 64  # bytes; anything longer is not one of ours
CONNECT_TIMEOUT_MS = 500
REPLY_TIMEOUT_MS = 2000
STARTING_GRACE_S = 3.0  # a first instance that holds the lock but is not listening yet


def server_name(paths: Paths) -> str:
    """The local socket's name: per user and per data dir, short enough for a Unix socket path."""
    digest = hashlib.sha256(str(paths.data_dir.expanduser().resolve()).encode()).hexdigest()[:16]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return f"berth-{uid}-{digest}"


def bring_to_front(window: QWidget) -> None:
    """Show the window (also from the tray or minimised) and ask the window manager for focus."""
    if window.isMinimized():
        window.showNormal()
    window.show()
    window.raise_()
    window.activateWindow()


def main_window() -> QMainWindow | None:
    for w in QApplication.topLevelWidgets():
        if isinstance(w, QMainWindow):
            return w
    return None


class SingleInstance(QObject):
    """Claim the data dir for this desktop app, or hand over to the one that already has it.

    `claim()` returns True when this process is the first: it then holds the lock and listens for
    later instances, emitting `activated` (after raising the main window) when one asks. False means
    another Berth has the data dir; `exit_code` and `message` say what happened.
    """

    activated = Signal()

    def __init__(self, paths: Paths, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.paths = paths
        self.name = server_name(paths)
        self.lock = InstanceLock(paths)
        self.server: QLocalServer | None = None
        self.window: QWidget | None = None  # what to bring forward; None: the app's main window
        self.exit_code = 0
        self.message = ""

    def claim(self) -> bool:
        if self._ask_running():
            return self._refuse(0, "berth: Berth is already running on this data dir; brought its window to the front")
        if self.lock.acquire():
            self._listen()
            return True
        # The holder is a window that is still starting, or a headless `berth serve`.
        deadline = time.monotonic() + STARTING_GRACE_S
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if self._ask_running():
                return self._refuse(
                    0, "berth: Berth is already running on this data dir; brought its window to the front"
                )
        self._refuse(1, self.lock.refusal())
        self._show_refusal()
        return False

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        self.lock.release()

    # -- the second instance ---------------------------------------------------------------------

    def _ask_running(self) -> bool:
        """True when a desktop Berth answers on this data dir's socket (it was asked to come forward)."""
        sock = QLocalSocket()
        sock.connectToServer(self.name)
        if not sock.waitForConnected(CONNECT_TIMEOUT_MS):
            return False
        sock.write(ACTIVATE + b"\n")
        sock.flush()
        sock.waitForBytesWritten(REPLY_TIMEOUT_MS)
        if sock.waitForReadyRead(REPLY_TIMEOUT_MS):
            reply = bytes(sock.readAll().data()).strip()
            logger.debug("the running Berth replied %r", reply)
        sock.disconnectFromServer()
        return True

    def _refuse(self, code: int, message: str) -> bool:
        self.exit_code = code
        self.message = message
        print(message, file=sys.stderr, flush=True)
        return False

    def _show_refusal(self) -> None:
        """Say it in a dialog too when started from a launcher (nobody reads stderr there)."""
        if QApplication.platformName() in ("offscreen", "minimal"):
            return
        QMessageBox.critical(None, "Berth is already running", self.message.removeprefix("berth: "))

    # -- the first instance ----------------------------------------------------------------------

    def _listen(self) -> None:
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        QLocalServer.removeServer(self.name)  # a crashed instance's socket; we hold the lock, so it is stale
        if not server.listen(self.name):
            logger.warning(
                "cannot listen on %s (%s): a second berth will not find this one", self.name, server.errorString()
            )
            return
        server.newConnection.connect(self._on_connection)
        self.server = server
        logger.debug("single-instance socket %s", server.fullServerName())

    def _on_connection(self) -> None:
        assert self.server is not None
        while self.server.hasPendingConnections():
            sock = self.server.nextPendingConnection()
            sock.readyRead.connect(self._on_request)
            sock.disconnected.connect(sock.deleteLater)

    def _on_request(self) -> None:
        sock = self.sender()
        if not isinstance(sock, QLocalSocket):
            return
        if not sock.canReadLine() and sock.bytesAvailable() < MAX_REQUEST:
            return  # wait for the rest of the line
        request = bytes(sock.readLine(MAX_REQUEST).data()).strip()
        if request == ACTIVATE:
            window = self.window or main_window()
            if window is not None:
                bring_to_front(window)
            logger.info("another berth was started on this data dir: showing the window")
            self.activated.emit()
            sock.write(b"ok\n")
        else:
            logger.warning("ignored a request on the single-instance socket: %r", request[:MAX_REQUEST])
            sock.write(b"unknown\n")
        sock.flush()
        sock.disconnectFromServer()
