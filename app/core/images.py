"""Which images an agent may use: those already on this machine, and those the person allows to be pulled.

An agent asking for `no-such-registry.invalid/nothing:1` used to make Berth pull it from anywhere. Pulling
is a feature, but the person decides from where: a pattern list in Settings (for every agent) and in
Agent Settings (for one), such as `berth/*`, `python:*`, `ghcr.io/my-org/*`. An image already on the
machine is always allowed (the person put it there).
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Awaitable, Callable, Sequence

from app.errors import InvalidParams
from app.model import Agent

CACHE_S = 60.0
_PATTERN = re.compile(r"[a-z0-9*?][a-z0-9*?._:/@-]{0,254}")


def check_pattern(pattern: str) -> str:
    """An image pattern as the person may write it; InvalidParams otherwise."""
    text = pattern.strip() if isinstance(pattern, str) else ""
    if not _PATTERN.fullmatch(text):
        raise InvalidParams(f"image pattern: {pattern!r} is not like 'python:*', 'berth/*' or 'ghcr.io/org/*'")
    return text


def _names(image: str) -> list[str]:
    """The ways one image is written: as given, with `:latest`, and on Docker Hub in full."""
    names = [image]
    last = image.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        names.append(image + ":latest")
    for name in list(names):
        first = name.split("/", 1)[0]
        if "/" not in name:
            names.append("docker.io/library/" + name)
        elif "." not in first and ":" not in first and first != "localhost":
            names.append("docker.io/" + name)
    return names


def allowed_by(image: str, patterns: Sequence[str]) -> str | None:
    """The first pattern that allows `image`, or None."""
    for pattern in patterns:
        if any(fnmatch.fnmatchcase(name, pattern) for name in _names(image)):
            return pattern
    return None


class ImagePolicy:
    """`check(agent, image)` before a container is made; `is_local(image)` asks the engine (cached briefly)."""

    def __init__(
        self, is_local: Callable[[str, str], Awaitable[bool]], global_patterns: Callable[[], Sequence[str]]
    ) -> None:
        self._is_local = is_local  # (image, agent): whether the image is on the agent's engine
        self._global = global_patterns
        self._local: dict[tuple[str, str], float] = {}  # (image, agent) found on the agent's engine, and when

    def patterns(self, agent: Agent) -> list[str]:
        return [*agent.images, *self._global()]

    async def check(self, agent: Agent, image: str) -> None:
        """Allowed: a pattern of the agent's or of Settings allows pulling it, or the image is already here."""
        patterns = self.patterns(agent)
        if allowed_by(image, patterns) is not None:
            return
        now = time.monotonic()
        if now - self._local.get((image, agent.name), -1e9) < CACHE_S:
            return
        if await self._is_local(image, agent.name):
            self._local[(image, agent.name)] = now
            return
        allowed = ", ".join(patterns) if patterns else "none"
        raise InvalidParams(
            f"image: {image!r} is not on this machine, and {agent.name!r} may not have it pulled "
            f"(images it may pull: {allowed})",
            hint="use an image that is already here, or allow pulling it in Settings > General > Agents may pull "
            f"(every agent) or Agent Settings > Limits (berth agents set {agent.name} --image PATTERN)",
            image=image,
        )
