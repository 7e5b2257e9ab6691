"""Tests for app.core.tokens: token making and hashing, the keyring path (an in-memory backend), the 0600 fallback."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend

from app.core.tokens import TokenVault, hash_token, new_token


class MemoryKeyring(KeyringBackend):
    """A working keyring that keeps passwords in a dict."""

    priority: float = 5

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not there")


class LockedKeyring(MemoryKeyring):
    """A keyring that looks fine but refuses to store anything (e.g. a locked collection)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("the collection is locked")


class LowPriorityKeyring(MemoryKeyring):
    priority = 0.5


def make(cls: type[KeyringBackend]) -> KeyringBackend:
    """An instance of one of keyring's own (untyped) backends."""
    return cls()


Install = Callable[[KeyringBackend], None]


@pytest.fixture
def use_keyring() -> Iterator[Install]:
    """Install a keyring backend for one test and restore the previous one afterwards."""
    previous = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(previous)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tokens.json"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_token_is_long_random_and_url_safe() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    for t in tokens:
        assert len(base64.urlsafe_b64decode(t + "=")) == 32  # 256 bits
        assert t.replace("-", "").replace("_", "").isalnum()


def test_hash_token_is_sha256_hex() -> None:
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hash_token("abc") != hash_token("abd")


def test_keyring_round_trip(use_keyring: Install, token_file: Path) -> None:
    kr = MemoryKeyring()
    use_keyring(kr)
    vault = TokenVault(token_file, "inst1")
    vault.set("bob", "secret-1")
    assert kr.passwords == {("berth", "inst1:bob"): "secret-1"}
    assert vault.get("bob") == "secret-1"
    assert vault.get("alice") is None
    vault.set("bob", "secret-2")
    assert vault.get("bob") == "secret-2"
    vault.delete("bob")
    vault.delete("bob")  # forgetting twice is fine
    assert vault.get("bob") is None
    assert not vault.using_fallback and vault.warning is None
    assert vault.backend == MemoryKeyring.name
    assert not token_file.exists()


def test_two_instances_never_share_a_token(use_keyring: Install, token_file: Path) -> None:
    use_keyring(MemoryKeyring())
    one, two = TokenVault(token_file, "inst1"), TokenVault(token_file, "inst2")
    one.set("bob", "one")
    two.set("bob", "two")
    assert (one.get("bob"), two.get("bob")) == ("one", "two")


def test_headless_fail_backend_uses_the_file(
    use_keyring: Install, token_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """This venv has only keyring's `fail` backend, as a machine without a desktop session."""
    from keyring.backends import fail

    use_keyring(make(fail.Keyring))
    vault = TokenVault(token_file, "inst1")
    with caplog.at_level(logging.WARNING):
        vault.set("bob", "secret")
        vault.set("alice", "other")
    assert vault.using_fallback and vault.backend == "file"
    assert vault.warning == (
        f"No OS keyring is available on this machine; tokens are kept in {token_file} (readable only by you)."
    )
    assert [r.levelname for r in caplog.records].count("WARNING") == 1  # said once, not per call
    assert vault.get("bob") == "secret"
    assert mode(token_file) == 0o600 and mode(token_file.parent) == 0o700
    assert json.loads(token_file.read_text())["tokens"] == {"inst1:bob": "secret", "inst1:alice": "other"}
    vault.delete("bob")
    assert vault.get("bob") is None and vault.get("alice") == "other"
    assert [p.name for p in token_file.parent.iterdir()] == ["tokens.json"]  # no temporary files left


@pytest.mark.parametrize("backend", ["null", "empty-chain", "low-priority"])
def test_other_non_working_backends_use_the_file(use_keyring: Install, token_file: Path, backend: str) -> None:
    if backend == "null":
        from keyring.backends import null

        use_keyring(make(null.Keyring))
    elif backend == "empty-chain":
        from keyring.backends import chainer

        class EmptyChain(chainer.ChainerBackend):
            backends: ClassVar[list[KeyringBackend]] = []

        use_keyring(make(EmptyChain))
    else:
        use_keyring(LowPriorityKeyring())
    vault = TokenVault(token_file, "i")
    vault.set("bob", "t")
    assert vault.using_fallback and vault.get("bob") == "t" and token_file.exists()


def test_keyring_that_refuses_to_store_switches_to_the_file(use_keyring: Install, token_file: Path) -> None:
    use_keyring(LockedKeyring())
    vault = TokenVault(token_file, "inst1")
    assert not vault.using_fallback  # it looked fine until used
    vault.set("bob", "secret")
    assert vault.using_fallback and vault.backend == "file"
    assert (
        vault.warning is not None and "the collection is locked" in vault.warning and str(token_file) in vault.warning
    )
    assert vault.get("bob") == "secret"
    assert mode(token_file) == 0o600


def test_token_left_in_the_file_is_still_found_then_moved(use_keyring: Install, token_file: Path) -> None:
    """Tokens written while no keyring worked are still found once one works; a new set clears the file copy."""
    from keyring.backends import fail

    use_keyring(make(fail.Keyring))
    TokenVault(token_file, "i").set("bob", "old")
    use_keyring(MemoryKeyring())
    vault = TokenVault(token_file, "i")
    assert vault.get("bob") == "old"
    vault.set("bob", "new")
    assert vault.get("bob") == "new"
    assert json.loads(token_file.read_text())["tokens"] == {}


def test_loose_file_permissions_are_fixed(use_keyring: Install, token_file: Path) -> None:
    from keyring.backends import fail

    use_keyring(make(fail.Keyring))
    token_file.parent.mkdir(parents=True)
    token_file.write_text(json.dumps({"tokens": {"i:bob": "t"}}))
    os.chmod(token_file, 0o644)
    vault = TokenVault(token_file, "i")
    assert vault.get("bob") == "t"
    assert mode(token_file) == 0o600


def test_file_is_private_even_with_a_permissive_umask(use_keyring: Install, token_file: Path) -> None:
    from keyring.backends import fail

    use_keyring(make(fail.Keyring))
    old = os.umask(0)
    try:
        TokenVault(token_file, "i").set("bob", "t")
    finally:
        os.umask(old)
    assert mode(token_file) == 0o600


def test_corrupt_file_reads_as_empty(use_keyring: Install, token_file: Path) -> None:
    from keyring.backends import fail

    use_keyring(make(fail.Keyring))
    token_file.parent.mkdir(parents=True)
    token_file.write_text("{not json")
    vault = TokenVault(token_file, "i")
    assert vault.get("bob") is None
    vault.set("bob", "t")
    assert vault.get("bob") == "t"


def test_fallback_file_is_thread_safe(use_keyring: Install, token_file: Path) -> None:
    from keyring.backends import fail

    use_keyring(make(fail.Keyring))
    vault = TokenVault(token_file, "i")

    def work(n: int) -> None:
        for i in range(20):
            vault.set(f"a{n}-{i}", f"t{n}-{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(json.loads(token_file.read_text())["tokens"]) == 160
    assert vault.get("a7-19") == "t7-19"
