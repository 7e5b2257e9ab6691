"""A byte buffer that keeps the first `cap` bytes of a stream: output of container and host runs alike."""

from __future__ import annotations


class CappedBuffer:
    """Keeps at most `cap` bytes; remembers whether more arrived."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._parts: list[bytes] = []
        self.size = 0
        self.truncated = False

    def add(self, data: bytes) -> bool:
        """Append; return False once the cap is reached (the caller may stop reading, or read on and discard)."""
        room = self.cap - self.size
        if len(data) > room:
            self.truncated = True
            data = data[: max(room, 0)]
        if data:
            self._parts.append(data)
            self.size += len(data)
        return not self.truncated

    def text(self) -> str:
        return b"".join(self._parts).decode("utf-8", errors="replace")
