"""Image policy through berth serve: agents use images already here; pulls only where the person allows them."""

from __future__ import annotations

import time

import pytest

from app.errors import ImageUnavailable, InvalidParams
from tests.conftest import BUSYBOX
from tests.e2e.conftest import Server, berth


def test_an_image_from_anywhere_is_refused_without_trying_to_pull(server: Server) -> None:
    """Attack: an agent asks for an image from a registry of its choosing; Berth used to pull it (four tries)."""
    alice = server.client("alice")
    started = time.monotonic()
    with pytest.raises(InvalidParams) as e:
        alice.run("true", image="no-such-registry.invalid/nothing:1")
    assert time.monotonic() - started < 5  # refused at once: no pull was tried
    assert "may not have it pulled" in e.value.message and e.value.hint and "Settings" in e.value.hint
    with pytest.raises(InvalidParams):
        alice.start_service("web", image="no-such-registry.invalid/nothing:1")
    assert alice.run("echo here", image=BUSYBOX)["stdout"] == "here\n"  # an image on this machine is fine


def test_a_pattern_of_the_person_allows_the_pull(server: Server) -> None:
    out = berth(server.data_dir, "agents", "set", "alice", "--image", "no-such-registry.invalid/*").stdout
    assert "may pull: no-such-registry.invalid/*" in out
    with pytest.raises(ImageUnavailable):  # now Berth tries: there is no registry here, so the pull fails
        server.client("alice").run("true", image="no-such-registry.invalid/nothing:1")
    with pytest.raises(InvalidParams):  # bob was not given that pattern
        server.client("bob").run("true", image="no-such-registry.invalid/nothing:1")
