"""Container logs: read at once (capped), or followed as they come."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from app.engine.connection import Connection
from app.engine.containers import Containers
from app.engine.follow import follow
from app.engine.streams import read_capped
from app.model import LOGS_CAP


def read_log(conn: Connection, cid: str, cap: int, **params: Any) -> tuple[str, bool]:
    """A container's log so far, at most `cap` bytes, and whether it was cut (blocking: in a worker thread).
    `params` narrow it as the SDK's `logs` does (`stdout=False`, `tail`, `since`, `timestamps`)."""
    return read_capped(conn.api.logs(cid, stream=True, follow=False, **params), cap)


class Logs:
    def __init__(self, conn: Connection, containers: Containers) -> None:
        self.conn = conn
        self.containers = containers

    async def read(
        self,
        ref: str,
        *,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
        cap: int = LOGS_CAP,
    ) -> tuple[str, bool]:
        info = await self.containers.inspect(ref)
        return await self.conn.call(
            read_log,
            self.conn,
            info.id,
            cap,
            tail="all" if tail is None else tail,
            since=since,
            timestamps=timestamps,
        )

    async def follow(self, ref: str, *, tail: int | None = 1000, timestamps: bool = False) -> AsyncGenerator[str, None]:
        """Yield a container's log text (stdout and stderr interleaved) as it comes, until the container stops
        or the consumer stops iterating. A thread and a client of its own: it never holds a pooled connection."""
        info = await self.containers.inspect(ref)

        def open_stream(client: Any) -> Any:
            return client.api.logs(
                info.id, stream=True, follow=True, timestamps=timestamps, tail="all" if tail is None else tail
            )

        async with contextlib.aclosing(
            follow(self.conn, f"logs-{info.id[:12]}", open_stream, lambda b: b.decode("utf-8", errors="replace"))
        ) as chunks:
            async for chunk in chunks:
                yield chunk
