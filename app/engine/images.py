"""Images: whether one is local, pulling it (with progress) when it is not, and the local tags."""

from __future__ import annotations

from collections.abc import Callable

import docker.errors

from app.engine.connection import Connection
from app.errors import ImageUnavailable, NotFound

ProgressCallback = Callable[[str], None]


class Images:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._poolable: dict[str, bool] = {}

    async def ensure(self, image: str, progress: ProgressCallback | None = None) -> None:
        """Make sure `image` is local: pull it if not, reporting progress; ImageUnavailable if that fails."""
        if not await self.has(image):
            await self.conn.call(self.pull_sync, image, progress)

    async def has(self, image: str) -> bool:
        try:
            await self.conn.call(lambda: self.conn.api.inspect_image(image), what=f"image {image}")  # type: ignore[no-untyped-call]
            return True
        except NotFound:
            return False

    async def tags(self) -> list[str]:
        """Tags of the local images (for the default-image setting)."""
        raw = await self.conn.call(lambda: self.conn.api.images())
        return sorted(t for img in raw for t in (img.get("RepoTags") or []) if t != "<none>:<none>")

    async def poolable(self, image: str) -> bool:
        """Whether a warm pool may hold containers of this local image (asked once per image)."""
        if image not in self._poolable:
            raw = await self.conn.call(lambda: self.conn.api.inspect_image(image), what=f"image {image}")  # type: ignore[no-untyped-call]
            # An entrypoint would wrap the idle command but not an exec: such images always run cold.
            self._poolable[image] = not (raw.get("Config") or {}).get("Entrypoint")
        return self._poolable[image]

    def pull_sync(self, image: str, progress: ProgressCallback | None) -> None:
        """Pull `image` (blocking: in a worker thread), reporting progress; ImageUnavailable if that fails."""
        repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
        if progress:
            progress(f"pulling {image} ...")
        try:
            for line in self.conn.api.pull(repo, tag=tag, stream=True, decode=True):
                if "error" in line:
                    raise ImageUnavailable(image, f"image {image!r} is not local and the pull failed: {line['error']}")
                if progress and line.get("status"):
                    detail = line.get("progress") or ""
                    progress(f"{line.get('id', image)}: {line['status']} {detail}".strip())
        except docker.errors.APIError as e:
            raise ImageUnavailable(
                image, f"image {image!r} is not local and could not be pulled: {e.explanation}"
            ) from e
        if progress:
            progress(f"pulled {image}")
