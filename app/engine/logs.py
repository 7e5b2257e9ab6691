"""Container logs: read at once (capped), or followed as they come."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import AsyncGenerator, Iterator
from typing import Any

from docker.types.daemon import CancellableStream

from app.engine.connection import Connection
from app.engine.containers import Containers
from app.engine.follow import follow
from app.engine.streams import read_capped
from app.model import LOGS_CAP

STREAM_NAMES = {0: "stdout", 1: "stdout", 2: "stderr"}


def _frames(response: Any, tty: bool) -> Iterator[tuple[str, bytes]]:
    """The engine's multiplexed log stream as (stream name, bytes), the stream kept (the SDK's `logs` drops it).
    A container with a TTY has one stream only: everything is "stdout"."""
    raw = response.raw
    if tty:
        while chunk := raw.read1(65536):
            yield "stdout", chunk
        return
    while True:
        header = raw.read(8)
        if len(header) < 8:
            return
        stream, length = struct.unpack(">BxxxL", header)
        if not length:
            continue
        data = raw.read(length)
        if not data:
            return
        yield STREAM_NAMES.get(stream, "stdout"), data


def open_log_frames(client: Any, cid: str, *, tty: bool, **params: Any) -> CancellableStream[tuple[str, bytes]]:
    """A followed log with its streams apart; `close()` from another thread ends it (as the SDK's streams)."""
    api = client.api
    query = {
        "stdout": 1,
        "stderr": 1,
        "follow": 1,
        **{k: int(v) if isinstance(v, bool) else v for k, v in params.items()},
    }
    response = api._get(api._url("/containers/{0}/logs", cid), params=query, stream=True)
    api._raise_for_status(response)
    return CancellableStream(_frames(response, tty), response)


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

    async def follow_streams(
        self, ref: str, *, tail: int | None = 1000, timestamps: bool = False
    ) -> AsyncGenerator[tuple[str, str], None]:
        """Like `follow`, yielding ("stdout" | "stderr", text): the logs viewer colours what went to stderr."""
        cid = (await self.containers.inspect(ref)).id
        detail = await self.containers.inspect_detail(cid)

        def open_stream(client: Any) -> Any:
            return open_log_frames(
                client, cid, tty=detail.tty, timestamps=timestamps, tail="all" if tail is None else tail
            )

        def convert(frame: tuple[str, bytes]) -> tuple[str, str]:
            return frame[0], frame[1].decode("utf-8", errors="replace")

        async with contextlib.aclosing(follow(self.conn, f"logs-{cid[:12]}", open_stream, convert)) as chunks:
            async for chunk in chunks:
                yield chunk
