"""The PyInstaller bundle (`make package`) runs on this machine: the CLI, `berth serve`, the window offscreen.

The bundle is built once per test session, from scratch (`--clean`, a fresh work folder), into a temporary
folder; that takes about a minute on two cores. `BERTH_BUNDLE=dist/berth` tests an existing build instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import __version__
from tests.conftest import missing_part
from tests.packaging.helpers import ROOT, Running, berth_env, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BUILD_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder with the `berth` executable."""
    given = os.environ.get("BERTH_BUNDLE")
    if given:
        yield Path(given).resolve()
        return
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        missing_part("PyInstaller is not installed (it is in the dev extras: pip install -e '.[dev]')")
    out = tmp_path_factory.mktemp("bundle")
    t0 = time.monotonic()
    build = subprocess.run(
        [
            sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
            "--distpath", str(out / "dist"), "--workpath", str(out / "build"), str(ROOT / "packaging" / "berth.spec"),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    folder = out / "dist" / "berth"
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    print(f"\nbundle built in {time.monotonic() - t0:.0f} s, {size / 2**20:.0f} MiB")
    yield folder
    shutil.rmtree(out, ignore_errors=True)  # ~200 MiB


def exe(bundle: Path) -> str:
    return str(bundle / "berth")


def test_the_cli_runs_from_the_bundle(bundle: Path, tmp_path: Path) -> None:
    env = berth_env(tmp_path / "data")
    version = run([exe(bundle), "--version"], env)
    assert version.returncode == 0 and version.stdout.strip() == f"berth {__version__}"
    help_ = run([exe(bundle), "serve", "--help"], env)
    assert help_.returncode == 0 and "--rpc-port" in help_.stdout
    empty = run([exe(bundle), "agents", "list"], env)
    assert empty.returncode == 0 and "no agents yet" in empty.stdout, empty.stderr
    added = run([exe(bundle), "agents", "add", "bundled", "--memory", "256m"], env)
    assert added.returncode == 0, added.stderr
    listed = run([exe(bundle), "agents", "list"], env)
    assert listed.returncode == 0 and "bundled" in listed.stdout and "memory=256m" in listed.stdout


def test_the_bundle_carries_what_is_loaded_by_name(bundle: Path) -> None:
    """Modules found only at run time (keyring backends, docker transports) and the resources."""
    internal = bundle / "_internal"
    assert (internal / "resources" / "icons" / "berth.svg").is_file()
    assert (internal / "resources" / "style.qss").is_file()
    assert list(internal.glob("keyring-*.dist-info/entry_points.txt"))  # how keyring finds its backends
    viewer = shutil.which("pyi-archive_viewer", path=str(Path(sys.executable).parent))
    if viewer is None:
        missing_part("pyi-archive_viewer (PyInstaller) is not installed")
    listing = subprocess.run([viewer, "--recursive", "--brief", exe(bundle)], capture_output=True, text=True).stdout
    for module in (
        "keyring.backends.SecretService",
        "keyring.backends.kwallet",
        "secretstorage",
        "docker.transport.unixconn",
        "docker.transport.sshconn",
        "qasync",
        "tree_sitter_bash",
        "app.ui.desktop",
    ):
        assert module in listing, f"{module} is not in the bundle"
    assert "PySide6.QtQml" not in listing and "PySide6.QtQuick" not in listing  # kept lean


def test_berth_serve_runs_from_the_bundle_and_only_once(bundle: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = berth_env(data)
    server = Running([exe(bundle), "serve", "--rpc-port", "0"], data, env)
    try:
        endpoint = server.wait_serving()
        with urllib.request.urlopen(f"{endpoint['url']}/health", timeout=10) as r:
            assert r.status == 200
        second = run([exe(bundle), "serve", "--rpc-port", "0"], env)
        assert second.returncode == 1 and "already running" in second.stderr
    finally:
        assert server.stop() == 0


def test_the_window_starts_offscreen_from_the_bundle(bundle: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = berth_env(data)
    app = Running([exe(bundle), "app", "--rpc-port", "0"], data, env)
    try:
        app.wait_output("window shown", timeout=60)
        app.wait_serving()
        assert "is missing" not in app.output()  # icons and the style sheet were found inside the bundle
        second = run([exe(bundle), "app", "--rpc-port", "0"], env)
        assert second.returncode == 0 and "brought its window to the front" in second.stderr
        app.wait_output("another berth was started on this data dir")
    finally:
        assert app.stop() == 0
    assert "Traceback" not in app.output()


def test_the_bundle_uses_the_secret_service(bundle: Path, tmp_path: Path) -> None:
    if not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")):
        missing_part("dbus-run-session or gnome-keyring-daemon is not installed (apt-get install dbus gnome-keyring)")
    env = berth_env(tmp_path / "data", XDG_DATA_HOME=str(tmp_path / "xdg"), XDG_RUNTIME_DIR=str(tmp_path / "run"))
    (tmp_path / "run").mkdir(mode=0o700)
    script = 'eval "$(printf pw | gnome-keyring-daemon --unlock --components=secrets)"; exec "$0" agents add kr'
    out = run(["dbus-run-session", "--", "sh", "-c", script, exe(bundle)], env)
    assert out.returncode == 0, out.stderr
    assert "No OS keyring" not in out.stderr and not (tmp_path / "data" / "tokens.json").exists()
