"""The autostart option: an XDG autostart entry written to and removed from `$XDG_CONFIG_HOME/autostart`."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import __version__
from app.ui import autostart


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def test_enable_writes_the_entry_and_disable_removes_it(config_home: Path) -> None:
    entry = config_home / "autostart" / "berth.desktop"
    assert not autostart.is_enabled()
    autostart.set_enabled(True)
    assert entry.is_file() and autostart.is_enabled()
    text = entry.read_text()
    assert text.startswith("[Desktop Entry]\n") and "Type=Application" in text and "Name=Berth" in text
    autostart.set_enabled(True)  # again: still one entry, still on
    assert autostart.is_enabled() and sorted(p.name for p in entry.parent.iterdir()) == ["berth.desktop"]
    autostart.set_enabled(False)
    assert not entry.exists() and not autostart.is_enabled()
    autostart.set_enabled(False)  # already off: nothing to do, no error


def test_the_entry_is_valid_and_starts_this_berth(config_home: Path) -> None:
    autostart.set_enabled(True)
    entry = config_home / "autostart" / "berth.desktop"
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    exec_line = next(line for line in entry.read_text().splitlines() if line.startswith("Exec="))
    argv = shlex.split(exec_line.removeprefix("Exec="))
    out = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"berth {__version__}"


def test_switched_off_entries_count_as_off(config_home: Path) -> None:
    autostart.set_enabled(True)
    entry = config_home / "autostart" / "berth.desktop"
    entry.write_text(entry.read_text() + "Hidden=true\n")
    assert not autostart.is_enabled()
    autostart.set_enabled(True)  # turning it on again replaces the switched-off entry
    assert autostart.is_enabled()
    entry.write_text(entry.read_text().replace("X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-enabled=false"))
    assert not autostart.is_enabled()


def test_without_xdg_config_home_it_goes_to_dot_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert autostart.entry_path() == tmp_path / ".config" / "autostart" / "berth.desktop"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")  # the spec says: ignore a relative path
    assert autostart.entry_path() == tmp_path / ".config" / "autostart" / "berth.desktop"


def test_the_bundle_starts_itself_and_odd_paths_are_quoted(config_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/Berth apps/berth")
    assert autostart.exec_line() == '"/opt/Berth apps/berth"'
    monkeypatch.setattr(sys, "executable", "/opt/$HOME/berth")
    assert autostart.exec_line() == '"/opt/\\\\$HOME/berth"'  # \$ in the quoted argument, \\ in the file
    autostart.set_enabled(True)
    assert 'Exec="/opt/\\\\$HOME/berth"' in (config_home / "autostart" / "berth.desktop").read_text()


def test_an_unwritable_folder_raises(config_home: Path) -> None:
    config_home.mkdir()
    (config_home / "autostart").write_text("not a folder")
    with pytest.raises(OSError):
        autostart.set_enabled(True)
