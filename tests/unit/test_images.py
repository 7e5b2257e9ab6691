"""Which images an agent may have pulled: patterns as the person writes them, and how names are matched."""

from __future__ import annotations

import pytest

from app.core.images import ImagePolicy, allowed_by, check_pattern
from app.errors import InvalidParams
from app.model import Agent


@pytest.mark.parametrize(
    ("image", "patterns", "expected"),
    [
        ("python:3.12", ["python:*"], "python:*"),
        ("python", ["python:*"], "python:*"),  # python means python:latest
        ("docker.io/library/python:3.12", ["python:*"], None),  # written in full: match it in full
        ("python:3.12", ["docker.io/library/python:*"], "docker.io/library/python:*"),
        ("berth/busybox:latest", ["berth/*"], "berth/*"),
        ("ghcr.io/my-org/tool:1", ["ghcr.io/my-org/*"], "ghcr.io/my-org/*"),
        ("ghcr.io/other/tool:1", ["ghcr.io/my-org/*"], None),
        ("no-such-registry.invalid/nothing:1", ["python:*", "berth/*"], None),
        ("evil.example/python:3", ["python:*"], None),  # another registry's "python" is not Docker Hub's
    ],
)
def test_patterns(image: str, patterns: list[str], expected: str | None) -> None:
    assert allowed_by(image, patterns) == expected


@pytest.mark.parametrize("bad", ["", " ", "Python:*", "a b", "x;rm", "../x"])
def test_a_pattern_that_is_not_an_image_pattern_is_refused(bad: str) -> None:
    with pytest.raises(InvalidParams):
        check_pattern(bad)


async def test_an_image_from_elsewhere_needs_a_pattern_one_already_here_does_not() -> None:
    """Attack: an agent asks for an image from a registry of its choosing (code the person never chose)."""
    here = {"berth/busybox:latest"}
    asked: list[str] = []

    async def is_local(image: str, agent: str) -> bool:
        asked.append(image)
        return image in here

    policy = ImagePolicy(is_local, lambda: ["python:*"])
    alice = Agent("alice", images=("ghcr.io/alice/*",))
    await policy.check(alice, "berth/busybox:latest")  # already on the machine
    await policy.check(alice, "python:3.12")  # Settings allow it for every agent
    await policy.check(alice, "ghcr.io/alice/tool:2")  # alice's own pattern
    with pytest.raises(InvalidParams) as e:
        await policy.check(alice, "no-such-registry.invalid/nothing:1")
    assert "ghcr.io/alice/*" in e.value.message and "python:*" in e.value.message and e.value.hint
    with pytest.raises(InvalidParams):
        await policy.check(Agent("bob"), "ghcr.io/alice/tool:2")  # alice's pattern is not bob's
