"""Agent tokens: made here, hashed for the database, and kept in the OS keyring (or a 0600 file where none works).

The database only ever sees `hash_token(token)`; the vault keeps the token itself so the person can
copy it again. A keyring that is missing (the `fail`/`null` backends of a headless machine) or that
fails when used makes the vault switch, once and loudly, to a JSON file only the person can read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import stat
import threading
from pathlib import Path
from typing import Any

import keyring
import keyring.errors
from keyring.backend import KeyringBackend
from keyring.backends.chainer import ChainerBackend

logger = logging.getLogger(__name__)

SERVICE = "berth"
_NO_KEYRING_MODULES = ("keyring.backends.fail", "keyring.backends.null")
_KEYRING_ERRORS = (keyring.errors.KeyringError, RuntimeError)


def new_token() -> str:
    """A fresh random token: 32 bytes (256 bits), URL-safe."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the database keeps instead of the token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _backend_name(kr: KeyringBackend) -> str:
    if isinstance(kr, ChainerBackend):
        return ", ".join(str(getattr(b, "name", type(b).__name__)) for b in kr.backends)
    return str(getattr(kr, "name", type(kr).__name__))


def _usable(kr: KeyringBackend) -> bool:
    """False for backends that only refuse (fail, null), an empty chain, or a backend of too low a priority."""
    if type(kr).__module__.startswith(_NO_KEYRING_MODULES):
        return False
    if isinstance(kr, ChainerBackend) and not kr.backends:
        return False
    try:
        return float(kr.priority) >= 1
    except Exception:  # a backend may compute its priority and fail doing so
        return False


class TokenVault:
    """Keeps tokens in the OS keyring under service "berth", user "<namespace>:<name>"; thread-safe and blocking."""

    def __init__(self, fallback_file: Path, namespace: str) -> None:
        self.fallback_file = fallback_file
        self.namespace = namespace
        self._lock = threading.RLock()
        self._detected = False
        self._keyring: KeyringBackend | None = None
        self._warning: str | None = None

    def _user(self, name: str) -> str:
        return f"{self.namespace}:{name}"

    # -- which backend ---------------------------------------------------------------------------

    def _backend(self) -> KeyringBackend | None:
        """The working keyring, or None when tokens go to the fallback file; detected on first use."""
        with self._lock:
            if not self._detected:
                self._detected = True
                try:
                    kr = keyring.get_keyring()
                except Exception as e:
                    self._fail_over(f"the OS keyring could not be loaded ({e})")
                else:
                    if _usable(kr):
                        self._keyring = kr
                        logger.info("tokens are kept in the OS keyring (%s)", _backend_name(kr))
                    else:
                        self._fail_over(None)
            return self._keyring

    def _fail_over(self, reason: str | None) -> None:
        self._keyring = None
        where = f"tokens are kept in {self.fallback_file} (readable only by you)."
        if reason is None:
            self._warning = f"No OS keyring is available on this machine; {where}"
        else:
            self._warning = f"The OS keyring did not work: {reason}; {where}"
        logger.warning("%s", self._warning)

    @property
    def backend(self) -> str:
        kr = self._backend()
        return "file" if kr is None else _backend_name(kr)

    @property
    def using_fallback(self) -> bool:
        return self._backend() is None

    @property
    def warning(self) -> str | None:
        self._backend()
        return self._warning

    # -- tokens ----------------------------------------------------------------------------------

    def set(self, name: str, token: str) -> None:
        with self._lock:
            kr = self._backend()
            if kr is not None:
                try:
                    kr.set_password(SERVICE, self._user(name), token)
                except _KEYRING_ERRORS as e:
                    self._fail_over(f"{_backend_name(kr)} refused to store a token ({e})")
                else:
                    self._file_pop(name)  # a stale copy from a time without a keyring
                    return
            tokens = self._read_file()
            tokens[self._user(name)] = token
            self._write_file(tokens)

    def get(self, name: str) -> str | None:
        with self._lock:
            kr = self._backend()
            if kr is not None:
                try:
                    found = kr.get_password(SERVICE, self._user(name))
                except _KEYRING_ERRORS as e:
                    self._fail_over(f"{_backend_name(kr)} could not be read ({e})")
                else:
                    if found is not None:
                        return found
            return self._read_file().get(self._user(name))

    def delete(self, name: str) -> None:
        """Forget a token wherever it is kept; forgetting an unknown one is not an error."""
        with self._lock:
            kr = self._backend()
            if kr is not None:
                try:
                    kr.delete_password(SERVICE, self._user(name))
                except keyring.errors.PasswordDeleteError:
                    pass
                except _KEYRING_ERRORS as e:
                    self._fail_over(f"{_backend_name(kr)} could not delete a token ({e})")
            self._file_pop(name)

    # -- the fallback file -----------------------------------------------------------------------

    def _file_pop(self, name: str) -> None:
        tokens = self._read_file()
        if tokens.pop(self._user(name), None) is not None:
            self._write_file(tokens)

    def _read_file(self) -> dict[str, str]:
        try:
            fd = os.open(self.fallback_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return {}
        with os.fdopen(fd, "rb") as f:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            if mode & 0o077:
                logger.warning(
                    "token file %s was readable by others (mode %o); fixing it to 0600", self.fallback_file, mode
                )
                os.fchmod(fd, 0o600)
            raw = f.read()
        try:
            data: Any = json.loads(raw)
            tokens = data["tokens"]
            if not isinstance(tokens, dict) or not all(isinstance(v, str) for v in tokens.values()):
                raise ValueError("'tokens' is not an object of strings")
        except (ValueError, KeyError, TypeError) as e:
            logger.error("token file %s is unreadable (%s); treating it as empty", self.fallback_file, e)
            return {}
        return {str(k): v for k, v in tokens.items()}

    def _write_file(self, tokens: dict[str, str]) -> None:
        """Replace the file atomically with a temporary file that is 0600 from its creation."""
        folder = self.fallback_file.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = folder / f".{self.fallback_file.name}.{secrets.token_hex(6)}.tmp"
        body = {"note": "Berth agent tokens, kept here because no OS keyring works", "tokens": tokens}
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(fd, 0o600)
                f.write(json.dumps(body, indent=2, sort_keys=True).encode("utf-8") + b"\n")
                f.flush()
                os.fsync(fd)
            os.replace(tmp, self.fallback_file)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
