"""Reading the engine's output streams with a cap, so a chatty container cannot exhaust memory."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from typing import Any

from docker.utils.socket import frames_iter

from app.capped import CappedBuffer

STDOUT, STDERR = 1, 2

__all__ = ["CappedBuffer", "as_bytes", "raw_socket", "read_capped", "read_multiplexed", "send_stdin"]


def read_capped(chunks: Iterable[bytes], cap: int) -> tuple[str, bool]:
    """Consume a chunk iterator (e.g. a log stream) up to `cap` bytes; close it early if cut."""
    buf = CappedBuffer(cap)
    it: Iterator[bytes] = iter(chunks)
    try:
        for chunk in it:
            if not buf.add(chunk):
                break
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
    return buf.text(), buf.truncated


def as_bytes(stdin: str | bytes | None) -> bytes | None:
    """What to send to a process's stdin (text as UTF-8); None: the process gets no stdin at all."""
    return stdin.encode() if isinstance(stdin, str) else stdin


def raw_socket(sock: Any) -> socket.socket:
    """The plain socket behind what the SDK's attach/exec calls return."""
    return getattr(sock, "_sock", sock)  # type: ignore[no-any-return]


def send_stdin(sock: Any, data: bytes) -> None:
    """Write all of stdin, then half-close so the process sees end of file."""
    raw = raw_socket(sock)
    if data:
        raw.sendall(data)
    try:
        raw.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the process already exited and the engine closed the stream


def read_multiplexed(sock: Any, out: CappedBuffer, err: CappedBuffer) -> None:
    """Demultiplex a non-TTY attach/exec stream into two capped buffers until it ends.

    Reading goes on past the cap (discarding) so the process is not blocked on a full pipe. The
    buffers belong to the caller, so what arrived before a timeout is kept.
    """
    for stream, data in frames_iter(sock, tty=False):  # type: ignore[no-untyped-call]
        (err if stream == STDERR else out).add(data)
