"""Tokens in a real OS keyring: the Secret Service of gnome-keyring, in a D-Bus session of the test's own.

`make test` installs dbus and gnome-keyring. Each test starts `dbus-run-session`, unlocks a fresh
keyring (in a private XDG_DATA_HOME), and runs Berth from the source tree inside that session.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import missing_part
from tests.packaging.helpers import berth_env, run

UNLOCK = 'eval "$(printf pw | gnome-keyring-daemon --unlock --components=secrets)"'
READ_BACK = (
    "import keyring, sys; kr = keyring.get_keyring(); "
    "print(type(kr).__module__); print(kr.get_password('berth', sys.argv[1]) or '')"
)


@pytest.fixture
def session_env(tmp_path: Path) -> dict[str, str]:
    if not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")):
        missing_part("dbus-run-session or gnome-keyring-daemon is not installed (apt-get install dbus gnome-keyring)")
    (tmp_path / "run").mkdir(mode=0o700)
    return berth_env(tmp_path / "data", XDG_DATA_HOME=str(tmp_path / "xdg"), XDG_RUNTIME_DIR=str(tmp_path / "run"))


def test_an_agent_token_goes_to_the_secret_service_and_never_to_a_file(
    session_env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    instance = (data / "instance-id").read_text().strip()
    script = f'{UNLOCK}; "$0" -m app agents add kr > "$1" || exit 1; exec "$0" -c "{READ_BACK}" "{instance}:kr"'
    out = run(["dbus-run-session", "--", "sh", "-c", script, sys.executable, str(tmp_path / "add.out")], session_env)
    assert out.returncode == 0, out.stderr
    backend, stored = out.stdout.strip().splitlines()
    printed = (tmp_path / "add.out").read_text().strip().splitlines()[-1]  # the token is the last line
    assert backend == "keyring.backends.SecretService"
    assert stored == printed and len(printed) >= 40  # the Secret Service holds the very token shown once
    assert "No OS keyring" not in out.stderr
    assert not (data / "tokens.json").exists()  # no plain-text fallback was written
