"""Where Berth keeps its files, and its settings.

Paths come from platformdirs; `--data-dir DIR` or `BERTH_DATA_DIR` puts everything (data, state,
logs) under one folder so tests and several instances never share state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from app.model import PoolConfig

logger = logging.getLogger(__name__)

APP_NAME = "berth"
DEFAULT_RPC_PORT = 7450
PREFERRED_IMAGES = ("berth/python:3", "berth/busybox:latest")


@dataclass
class Paths:
    data_dir: Path
    state_dir: Path
    log_dir: Path

    @classmethod
    def resolve(cls, data_dir: str | os.PathLike[str] | None = None) -> Paths:
        """Explicit argument, then BERTH_DATA_DIR, then the platform's folders."""
        chosen = data_dir or os.environ.get("BERTH_DATA_DIR")
        if chosen:
            root = Path(chosen).expanduser().resolve()
            return cls(root, root / "state", root / "logs")
        return cls(
            Path(platformdirs.user_data_dir(APP_NAME)),
            Path(platformdirs.user_state_dir(APP_NAME)),
            Path(platformdirs.user_log_dir(APP_NAME)),
        )

    def ensure(self) -> None:
        for d in (self.data_dir, self.state_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "berth.sqlite3"

    @property
    def endpoint_file(self) -> Path:
        return self.state_dir / "endpoint.json"

    @property
    def settings_file(self) -> Path:
        return self.data_dir / "settings.json"

    @property
    def workspaces_dir(self) -> Path:
        return self.data_dir / "workspaces"

    @property
    def tokens_file(self) -> Path:
        """Fallback token store (0600) when no keyring backend works."""
        return self.data_dir / "tokens.json"

    def instance_id(self) -> str:
        """A stable id of this data dir: the `berth.instance` label of every container it makes."""
        f = self.data_dir / "instance-id"
        try:
            value = f.read_text().strip()
            if value:
                return value
        except FileNotFoundError:
            pass
        self.ensure()
        value = secrets.token_hex(6)
        f.write_text(value + "\n")
        return value


OLD_POOL_MAX_IDLE = 8  # pool_max_idle's default until 2026-12 (no window sets it)


@dataclass
class Settings:
    """Global settings, kept as JSON in the data dir. Unknown keys are ignored, missing ones defaulted."""

    default_image: str | None = None  # None: berth/python:3 when present
    rpc_port: int = DEFAULT_RPC_PORT
    engine_endpoint: str | None = None  # None: DOCKER_HOST or the platform default
    approval_expiry_s: float = 600.0
    notifications: bool = True
    pool_enabled: bool = True
    pool_max_idle: int = 24  # idle pooled containers in all, ~3.3 MiB each with its shim: <= ~80 MiB (pool.py)
    pool_per_key: int = 2
    pool_idle_s: float = 300.0
    hidden_folders: list[str] = field(default_factory=list)  # more folders sandboxed host commands never see
    image_patterns: list[str] = field(default_factory=list)  # images any agent may have pulled (e.g. "python:*")
    history_days: float = 7.0  # finished runs are kept this long...
    history_max_runs: int = 10_000  # ...and at most this many (whichever comes first)
    notify_service_exits: bool = True  # a notification when a service exits by itself or is OOM-killed

    @classmethod
    def load(cls, path: Path) -> Settings:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as e:
            logger.warning("settings file %s is unreadable (%s); using defaults", path, e)
            return cls()
        known = {f.name for f in fields(cls)}
        if raw.get("pool_max_idle") == OLD_POOL_MAX_IDLE:
            del raw["pool_max_idle"]  # the old default, written by every save before saves kept only changes
        return cls(**{k: v for k, v in raw.items() if k in known})

    def save(self, path: Path) -> None:
        """Write the file whole or not at all: a temporary file of this save's own (two saves at once never
        share one), then renamed over the old. Only what differs from the defaults is written, so a better
        default reaches everyone who never changed that setting."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(self.changes(), indent=2) + "\n")
            os.replace(name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def changes(self) -> dict[str, Any]:
        """The settings that differ from the defaults."""
        defaults = asdict(type(self)())
        return {k: v for k, v in asdict(self).items() if v != defaults[k]}


def pool_config(settings: Settings) -> PoolConfig:
    """The warm pool's settings; `BERTH_POOL=0` (or 1) overrides `pool_enabled` for this process, and
    `BERTH_RUNNER=0` makes pooled runs use docker exec instead of the runner."""
    raw = os.environ.get("BERTH_POOL", "").strip().lower()
    enabled = settings.pool_enabled if not raw else raw not in ("0", "false", "no", "off")
    return PoolConfig(
        runner=os.environ.get("BERTH_RUNNER", "").strip().lower() not in ("0", "false", "no", "off"),
        enabled=enabled,
        max_idle=max(0, int(settings.pool_max_idle)),
        per_key=max(1, int(settings.pool_per_key)),
        idle_s=float(settings.pool_idle_s),
    )


def env_rpc_port(default: int) -> int:
    raw = os.environ.get("BERTH_RPC_PORT")
    return int(raw) if raw else default
