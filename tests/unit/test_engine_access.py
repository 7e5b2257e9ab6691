"""How Berth reads a Docker context the person made (`berth engines add NAME --context CTX`), without the engine.

tests/engines/test_context_engine.py does the same against a real second engine; these pin the file layout the
docker CLI writes and the errors for a context that is missing or names no engine."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from app.engine.connection import read_context
from app.errors import EngineUnavailable


def _context(config: Path, name: str, host: str | None, tls: tuple[str, ...] = (), skip_verify: bool = False) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": skip_verify} if host else {}
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Endpoints": {"docker": endpoint}}))
    if tls:
        folder = config / "contexts" / "tls" / digest / "docker"
        folder.mkdir(parents=True)
        for f in tls:
            (folder / f).write_text("-----BEGIN-----\n")


def test_a_context_s_address_and_tls_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no config.json there: a person who never logged in
    _context(tmp_path, "lab", "tcp://lab:2376", ("ca.pem", "cert.pem", "key.pem"))
    _context(tmp_path, "plain", "ssh://me@box")
    host, tls = read_context("lab")
    assert host == "tcp://lab:2376" and tls is not None
    digest = hashlib.sha256(b"lab").hexdigest()
    assert tls.verify == str(tmp_path / "contexts" / "tls" / digest / "docker" / "ca.pem")
    assert tls.cert is not None and tls.cert[0].endswith("cert.pem")
    assert read_context("plain") == ("ssh://me@box", None)


def test_a_missing_context_or_one_without_an_engine_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(EngineUnavailable, match="no Docker context named 'nope'") as e:
        read_context("nope")
    assert e.value.hint == "`docker context ls` lists them"
    _context(tmp_path, "k8s-only", None)
    with pytest.raises(EngineUnavailable, match="names no Docker engine"):
        read_context("k8s-only")
